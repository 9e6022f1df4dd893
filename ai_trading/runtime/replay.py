"""A replay: the trading loop over stored bars, a simulated clock and the SimBroker.

:func:`open_replay` passes the start-up gates in order, each stopping with
:class:`~ai_trading.errors.StartupGateFailed` naming it:

1. ``config``: the configuration and the request are valid, and a run directory that
   already holds a run holds this one (same model reference, range, symbols, settings);
2. ``database``: the OMS database is at the head revision (the run's own SQLite file is
   created and migrated on first use; a ``dsn`` given must already be at head);
3. ``broker``: the SimBroker's state opens, bound to the run's market;
4. ``reconciliation``: the order manager's start-up reconciliation passed;
5. ``model``: the policy loaded through the verified path, its feature schema hash equal
   to the builder's, the same model as when the run started; the stored bars of the
   run are the ones it started on (data fingerprint);
6. ``history``: the store holds the policy's lookback before the first bar.

Everything the run writes lives in its directory (``run.json``, the OMS SQLite database
unless a ``dsn`` is given, the broker's state, the cost model, the run state), so a
replay never touches the user's OMS database or broker state unless told to.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ai_trading.artifacts.atomic import write_atomic
from ai_trading.brokers.sim import SimBroker
from ai_trading.brokers.sim_market import StoreMarket, utc_ns
from ai_trading.config import AppConfig
from ai_trading.data.store import MarketDataStore, open_store
from ai_trading.errors import AiTradingError, StartupGateFailed
from ai_trading.execution.engine import ExecutionEngine, validate_engine_config
from ai_trading.execution.parameters import validate_execution_config
from ai_trading.features import FeatureBuilder
from ai_trading.features.fingerprint import dataset_fingerprint
from ai_trading.models.policy import panel_rows
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import OrderManager
from ai_trading.oms.migrate import require_head, upgrade
from ai_trading.runtime.clock import ReplayClock
from ai_trading.runtime.feed import StoredBarFeed
from ai_trading.runtime.fill_feedback import FillFeedback
from ai_trading.runtime.loop import ModelIdentity, StepReport, TradingLoop
from ai_trading.runtime.provenance import trading_policy
from ai_trading.runtime.run_state import RunState

RUN_RECORD = "run.json"
OMS_FILE = "oms.sqlite"
BROKER_FILE = "sim_broker.sqlite"


@dataclass(frozen=True)
class ReplayRequest:
    """What to replay.

    :param model: ``demo``, a registered model name or a signed artifact directory
    :param start: first bar (inclusive, ISO date or timestamp; naive = UTC)
    :param end: last bar (exclusive)
    :param symbols: the demo's universe and the broker's symbols; None: every stored symbol
    :param frequency: the bars' frequency; None: the one the symbols are stored at
    :param run_dir: the run directory (created; a second start resumes the run in it)
    :param dsn: the OMS database; None: ``run_dir/oms.sqlite``
    """

    model: str
    start: str
    end: str
    symbols: tuple[str, ...] | None
    frequency: str | None
    run_dir: Path
    dsn: str | None = None


def default_run_dir(config: AppConfig, model: str, start: str, end: str) -> Path:
    """``<runs_dir>/<model>_<start>_<end>``: running the same replay again resumes it."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{Path(model).name}_{start}_{end}")
    return config.runtime.runs_dir / name


def _time_ns(text: str, name: str) -> int:
    try:
        return utc_ns(datetime.fromisoformat(text))
    except ValueError as exc:
        raise StartupGateFailed("config", f"--{name} {text!r} is not an ISO date or timestamp (e.g. 2020-01-02)") from exc


def _settings_digest(config: AppConfig) -> str:
    """The settings a replay's result depends on; a resumed run must have the same."""
    sections = {name: asdict(getattr(config, name)) for name in ("execution", "engine", "risk", "cost_model")}
    sections["runtime"] = {"initial_cash": config.runtime.initial_cash, "horizon": config.runtime.horizon}
    return hashlib.sha256(json.dumps(sections, sort_keys=True, default=str).encode()).hexdigest()


@contextmanager
def _gate(name: str) -> Iterator[None]:
    try:
        yield
    except StartupGateFailed:
        raise
    except AiTradingError as exc:
        raise StartupGateFailed(name, str(exc)) from exc


@dataclass
class ReplaySession:
    """A replay that passed its gates: the loop and what it holds open (close when done)."""

    request: ReplayRequest
    loop: TradingLoop
    state: RunState
    manager: OrderManager
    broker: SimBroker
    identity: ModelIdentity
    universe: tuple[str, ...]
    clock: ReplayClock
    initial_cash: float
    _resources: ExitStack

    def close(self) -> None:
        self._resources.close()


def _check_config(config: AppConfig, request: ReplayRequest, record: dict[str, Any] | None) -> tuple[int, int]:
    validate_execution_config(config.execution)
    validate_engine_config(config.engine)
    if not (np.isfinite(config.runtime.initial_cash) and config.runtime.initial_cash > 0):
        raise StartupGateFailed("config", f"runtime.initial_cash must be a finite amount > 0, got {config.runtime.initial_cash!r}")
    start, end = _time_ns(request.start, "start"), _time_ns(request.end, "end")
    if start >= end:
        raise StartupGateFailed("config", f"--start {request.start} must be before --end {request.end} (the end is exclusive)")
    if record is not None:
        asked = _request_record(request, config)
        differs = sorted(key for key, value in asked.items() if record.get(key) != value)
        if differs:
            raise StartupGateFailed(
                "config",
                f"{request.run_dir} holds another replay (it differs in {', '.join(differs)}): "
                "pass another --out, or repeat the run's own command to resume it",
            )
    return start, end


def _request_record(request: ReplayRequest, config: AppConfig) -> dict[str, Any]:
    return {
        "model": request.model,
        "start": request.start,
        "end": request.end,
        "symbols": None if request.symbols is None else list(request.symbols),
        "frequency": request.frequency,
        "settings_sha256": _settings_digest(config),
    }


def _frequency(store: MarketDataStore, symbols: tuple[str, ...], asked: str | None) -> str:
    if asked is not None:
        return asked
    found = {f for names in store.frequencies(symbols).values() for f in names}
    if len(found) != 1:
        raise StartupGateFailed("config", f"the symbols are stored at {sorted(found) or 'no'} frequencies: pass --frequency")
    return found.pop()


def open_replay(config: AppConfig, request: ReplayRequest, market_store: MarketDataStore | None = None) -> ReplaySession:
    """Pass the start-up gates (module docstring) and return the ready session.

    :param market_store: the market-data store (default: the configured one, read-only)
    """
    resources = ExitStack()
    try:
        return _open(config, request, market_store, resources)
    except BaseException:
        resources.close()
        raise


def _open(config: AppConfig, request: ReplayRequest, market_store: MarketDataStore | None, resources: ExitStack) -> ReplaySession:
    record_path = request.run_dir / RUN_RECORD
    record = json.loads(record_path.read_text()) if record_path.exists() else None
    with _gate("config"):
        start, end = _check_config(config, request, record)
        store = market_store if market_store is not None else resources.enter_context(open_store(config.data))
        stored = tuple(store.symbols())
        symbols = request.symbols if request.symbols is not None else stored
        missing = sorted(set(symbols) - set(stored))
        if missing or not symbols:
            raise StartupGateFailed("config", f"the store {store.path} holds no bars of {', '.join(missing) or 'any symbol'}")
        frequency = _frequency(store, symbols, request.frequency)
        state = resources.enter_context(RunState(request.run_dir))
    with _gate("database"):
        dsn = request.dsn or f"sqlite:///{request.run_dir / OMS_FILE}"
        oms_config = replace(config.oms, dsn=dsn)
        if request.dsn is None:
            upgrade(oms_config)  # the run's own database: created here, at head
        intents = resources.enter_context(IntentStore.open(oms_config))
        require_head(intents.engine)
    with _gate("broker"):
        broker = SimBroker(request.run_dir / BROKER_FILE, StoreMarket(store, symbols, frequency), config.execution)
        broker.list_open_orders()
    with _gate("reconciliation"):
        # One process trades this run: an intent claimed but not sent before a crash is
        # resent at once, on the bar it was decided at.
        manager = OrderManager(intents, broker, replace(config.manager, resend_grace_s=0.0), account=config.risk.account)
        report = manager.start()
        if not report.passed:
            raise StartupGateFailed("reconciliation", f"{report.summary()}: inspect the run's OMS database, resolve, restart")
    builder = FeatureBuilder()
    with _gate("model"):
        policy, identity = trading_policy(request.model, config, builder, symbols)
        outside = sorted(set(policy.universe) - set(symbols))
        if outside:
            raise StartupGateFailed("model", f"model {identity.name!r} trades {', '.join(outside)}, not among the replay's symbols")
        market = StoreMarket(store, policy.universe, frequency)
        full = market.panel_through(end)
        in_range = full.ts[(full.ts >= start) & (full.ts < end)]
        fingerprint = dataset_fingerprint(panel_rows(full, 0, int(np.searchsorted(full.ts, end))))
        if record is not None and (record.get("manifest_sha256"), record.get("data_fingerprint")) != (identity.manifest_sha256, fingerprint):
            raise StartupGateFailed(
                "model",
                f"the model or the stored bars changed since {request.run_dir} started (manifest {record.get('manifest_sha256')} "
                f"-> {identity.manifest_sha256}, data {record.get('data_fingerprint')} -> {fingerprint}): replay into another --out",
            )
    with _gate("history"):
        if in_range.size == 0:
            raise StartupGateFailed("history", f"no {frequency} bars of {', '.join(policy.universe)} from {request.start} to {request.end}")
        before = int(np.searchsorted(full.ts, in_range[0]))
        if before < policy.lookback:
            raise StartupGateFailed(
                "history",
                f"model {identity.name!r} needs {policy.lookback} bars before its first decision, the store holds {before} "
                f"before {request.start}: start later or ingest earlier bars",
            )
    if record is None:
        document = _request_record(request, config) | {
            "model_name": identity.name, "model_version": identity.version, "manifest_sha256": identity.manifest_sha256,
            "model_dataset_fingerprint": identity.dataset_fingerprint, "data_fingerprint": fingerprint,
            "feature_schema_hash": builder.feature_schema_hash, "universe": list(policy.universe),
            "frequency_used": frequency, "created_at": datetime.now(UTC).isoformat(),
        }  # fmt: skip
        write_atomic(record_path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())
    cost_model = state.load_cost_model(config.cost_model, config.execution)
    clock = ReplayClock(in_range)
    loop = TradingLoop(
        clock=clock, feed=StoredBarFeed(), market=market, store=store, frequency=frequency, policy=policy, builder=builder,
        model=identity, engine=ExecutionEngine(manager, cost_model, config.engine, config.risk), manager=manager,
        feedback=FillFeedback(intents, state, cost_model, config.execution.vol_halflife_bars), state=state,
        initial_cash=config.runtime.initial_cash, horizon=config.runtime.horizon,
        halflife_bars=config.execution.vol_halflife_bars, broker_clock=broker,
    )  # fmt: skip
    return ReplaySession(request, loop, state, manager, broker, identity, policy.universe, clock, config.runtime.initial_cash, resources)


def run_replay(session: ReplaySession, stop: Callable[[], bool] = lambda: False, on_step: Callable[[StepReport], None] | None = None) -> bool:
    """Run the session's loop to the end of its range or until ``stop()``; True when stopped.
    The execution log is exported as Parquet either way."""
    outcome = session.loop.run(stop, on_step)
    session.state.export_execution_log()
    return outcome.stopped
