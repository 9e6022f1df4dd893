"""One wiring of the trading loop for replay, paper and live: the start-up gates, then the loop.

:func:`open_session` passes the gates in order, each stopping with
:class:`~ai_trading.errors.StartupGateFailed` naming it:

1. ``config``: the configuration and the request are valid, and a run directory that
   already holds a run holds this one (the mode's request record is unchanged);
2. ``database``: the OMS database is at the head revision (the run's own SQLite file is
   created and migrated on first use; a ``dsn`` given must already be at head);
3. ``broker``: the mode's broker opens and answers;
4. ``reconciliation``: the order manager's start-up reconciliation passed;
5. ``model``: the policy loaded through the verified path, its feature schema hash equal
   to the builder's, the same model as the run last traded (a model traded by registry
   name follows the registry: a change while the run was stopped is recorded as a switch)
   and whatever the mode checks of the data (a replay's stored bars are those it started on);
6. ``history``: the store holds the policy's lookback before the first decision.

Once the database gate passed, the run's alert :class:`~ai_trading.runtime.monitor.Monitor`
exists (a failed reconciliation gate is alerted too); the loop gets it, and a registry
watch for a model traded by name, before it starts.

What differs between the modes (the request, the broker, the clock, the feed) comes
from a :class:`TradingMode`; everything the run writes lives in its directory
(``run.json``, the OMS SQLite database unless a ``dsn`` is given, a SimBroker's state, the
cost model, the run state).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ai_trading.artifacts.atomic import write_atomic
from ai_trading.brokers.sim_market import StoreMarket
from ai_trading.config import AppConfig
from ai_trading.data.store import MarketDataStore
from ai_trading.errors import AiTradingError, StartupGateFailed
from ai_trading.execution.engine import ExecutionEngine, validate_engine_config
from ai_trading.execution.parameters import validate_execution_config
from ai_trading.features import FeatureBuilder
from ai_trading.models.policy import Policy
from ai_trading.models.registry_loading import follows_registry
from ai_trading.oms.broker import Broker
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import OrderManager
from ai_trading.oms.migrate import require_head, upgrade
from ai_trading.runtime.clock import Clock
from ai_trading.runtime.feed import BarFeed
from ai_trading.runtime.fill_feedback import FillFeedback
from ai_trading.runtime.loop import BrokerClock, ModelIdentity, StepReport, TradingLoop
from ai_trading.runtime.model_watch import ModelSwitch, ModelSwitches, open_watch
from ai_trading.runtime.monitor import Monitor, open_monitor
from ai_trading.runtime.provenance import trading_policy
from ai_trading.runtime.run_state import RunState
from ai_trading.runtime.wall_clock import DataStatus

RUN_RECORD = "run.json"
OMS_FILE = "oms.sqlite"
BROKER_FILE = "sim_broker.sqlite"


@dataclass(frozen=True)
class Timing:
    """When and on which bars a run trades.

    :param data_fingerprint: the fingerprint of the stored bars the run starts on
    :param planned_bars: the bars the clock will give (None: open-ended)
    :param record: what the mode keeps in ``run.json`` when the run starts
    :param data_status: whether the feed keeps up with the calendar (``DATA_STALE``), for
        monitoring; None where the bars are stored already (replay)
    :param observe_data: registers a callback the clock calls with each new data status
        (the monitor's staleness rule), also while it waits between bars; None for replay
    """

    clock: Clock
    feed: BarFeed
    data_fingerprint: str
    planned_bars: int | None
    record: dict[str, Any] = field(default_factory=dict)
    data_status: Callable[[], DataStatus] | None = None
    observe_data: Callable[[Callable[[DataStatus], None]], None] | None = None


class TradingMode(Protocol):
    """What a replay, a paper run and a live run do differently."""

    @property
    def name(self) -> str: ...

    @property
    def broker_label(self) -> str:
        """Names the broker in alerts (``sim``, ``alpaca``)."""
        ...

    def check(self, config: AppConfig) -> None:
        """The mode's own request checks (``config`` gate)."""
        ...

    def request_record(self, config: AppConfig) -> dict[str, Any]:
        """What a resumed run must repeat (compared with ``run.json``)."""
        ...

    def open_broker(self, store: MarketDataStore, symbols: tuple[str, ...], frequency: str, resources: ExitStack) -> tuple[Broker, BrokerClock | None]:
        """The broker (closed with ``resources``) and its clock when it is simulated."""
        ...

    def timing(self, store: MarketDataStore, market: StoreMarket, policy: Policy, identity: ModelIdentity, record: dict[str, Any] | None) -> Timing:
        """The clock and the feed; checks the data against ``record`` (``model`` gate)
        and the lookback (``history`` gate), raising :class:`StartupGateFailed`."""
        ...


@dataclass(frozen=True)
class SessionRequest:
    """What every mode names.

    :param model: ``demo``, a registered model name or a signed artifact directory
    :param symbols: the demo's universe and a SimBroker's symbols; None: every stored symbol
    :param frequency: the bars' frequency; None: the one the symbols are stored at
    :param run_dir: the run directory (created; a second start resumes the run in it)
    :param dsn: the OMS database; None: ``run_dir/oms.sqlite``
    """

    model: str
    symbols: tuple[str, ...] | None
    frequency: str | None
    run_dir: Path
    dsn: str | None = None


@dataclass
class TradingSession:
    """A run that passed its gates: the loop and what it holds open (close when done)."""

    request: SessionRequest
    loop: TradingLoop
    state: RunState
    manager: OrderManager
    broker: Broker
    identity: ModelIdentity
    universe: tuple[str, ...]
    timing: Timing
    initial_cash: float
    _resources: ExitStack

    def hold(self, resources: ExitStack) -> None:
        """Close ``resources`` (the store the caller opened for the session) with the session."""
        self._resources.push(resources)

    def close(self) -> None:
        self._resources.close()


def settings_digest(config: AppConfig) -> str:
    """The settings a run's result depends on; a resumed run must have the same."""
    sections = {name: asdict(getattr(config, name)) for name in ("execution", "engine", "risk", "cost_model")}
    sections["runtime"] = {"initial_cash": config.runtime.initial_cash, "horizon": config.runtime.horizon}
    return hashlib.sha256(json.dumps(sections, sort_keys=True, default=str).encode()).hexdigest()


@contextmanager
def gate(name: str) -> Iterator[None]:
    """Turn a domain error inside into :class:`StartupGateFailed` of gate ``name``."""
    try:
        yield
    except StartupGateFailed:
        raise
    except AiTradingError as exc:
        raise StartupGateFailed(name, str(exc)) from exc


def _check_config(config: AppConfig, mode: TradingMode, request: SessionRequest, record: dict[str, Any] | None) -> None:
    validate_execution_config(config.execution)
    validate_engine_config(config.engine)
    if not (np.isfinite(config.runtime.initial_cash) and config.runtime.initial_cash > 0):
        raise StartupGateFailed("config", f"runtime.initial_cash must be a finite amount > 0, got {config.runtime.initial_cash!r}")
    mode.check(config)
    if record is not None:
        asked = _request_record(mode, request, config)
        differs = sorted(key for key, value in asked.items() if record.get(key) != value)
        if differs:
            raise StartupGateFailed(
                "config",
                f"{request.run_dir} holds another {record.get('mode', 'replay')} run (it differs in {', '.join(differs)}): "
                "pass another --out, or repeat the run's own command to resume it",
            )


def _request_record(mode: TradingMode, request: SessionRequest, config: AppConfig) -> dict[str, Any]:
    return mode.request_record(config) | {
        "model": request.model,
        "symbols": None if request.symbols is None else list(request.symbols),
        "frequency": request.frequency,
        "settings_sha256": settings_digest(config),
    }


def _frequency(store: MarketDataStore, symbols: tuple[str, ...], asked: str | None) -> str:
    if asked is not None:
        return asked
    found = {f for names in store.frequencies(symbols).values() for f in names}
    if len(found) != 1:
        raise StartupGateFailed("config", f"the symbols are stored at {sorted(found) or 'no'} frequencies: pass --frequency")
    return found.pop()


def open_session(config: AppConfig, mode: TradingMode, request: SessionRequest, store: MarketDataStore) -> TradingSession:
    """Pass the start-up gates (module docstring) and return the ready session.

    :param store: the market-data store the loop reads (and a live feed appends to)
    """
    resources = ExitStack()
    try:
        return _open(config, mode, request, store, resources)
    except BaseException:
        resources.close()
        raise


def _open(config: AppConfig, mode: TradingMode, request: SessionRequest, store: MarketDataStore, resources: ExitStack) -> TradingSession:
    record_path = request.run_dir / RUN_RECORD
    record = json.loads(record_path.read_text()) if record_path.exists() else None
    with gate("config"):
        _check_config(config, mode, request, record)
        stored = tuple(store.symbols())
        symbols = request.symbols if request.symbols is not None else stored
        missing = sorted(set(symbols) - set(stored))
        if missing or not symbols:
            raise StartupGateFailed("config", f"the store {store.path} holds no bars of {', '.join(missing) or 'any symbol'}")
        frequency = _frequency(store, symbols, request.frequency)
        state = resources.enter_context(RunState(request.run_dir))
    with gate("database"):
        dsn = request.dsn or f"sqlite:///{request.run_dir / OMS_FILE}"
        oms_config = replace(config.oms, dsn=dsn)
        if request.dsn is None:
            upgrade(oms_config)  # the run's own database: created here, at head
        intents = resources.enter_context(IntentStore.open(oms_config))
        require_head(intents.engine)
        # From here on alerts can be queued (closed before the store: LIFO).
        monitor = open_monitor(config, intents.engine, loop=mode.name, broker=mode.broker_label)
        resources.callback(monitor.close)
    with gate("broker"):
        broker, broker_clock = mode.open_broker(store, symbols, frequency, resources)
        broker.list_open_orders()
    with gate("reconciliation"):
        # One process trades this run: an intent claimed but not sent before a crash is
        # resent at once, on the bar it was decided at.
        manager = OrderManager(intents, broker, replace(config.manager, resend_grace_s=0.0), account=config.risk.account)
        report = manager.start()
        monitor.reconciliation(report)
        if not report.passed:
            raise StartupGateFailed("reconciliation", f"{report.summary()}: inspect the run's OMS database, resolve, restart")
    builder = FeatureBuilder()
    with gate("model"):
        policy, identity = trading_policy(request.model, config, builder, symbols)
        outside = sorted(set(policy.universe) - set(symbols))
        if outside:
            raise StartupGateFailed("model", f"model {identity.name!r} trades {', '.join(outside)}, not among the run's symbols")
        switches = ModelSwitches(request.run_dir)
        resources.callback(switches.close)
        last = switches.last()
        traded = None if record is None else record.get("manifest_sha256") if last is None else last.to_manifest
        moved = record is not None and traded != identity.manifest_sha256
        if moved and not follows_registry(request.model):
            raise StartupGateFailed(
                "model",
                f"the model changed since {request.run_dir} started (manifest {traded} -> "
                f"{identity.manifest_sha256}): run it into another --out",
            )
        market = StoreMarket(store, policy.universe, frequency)
    with gate("history"):
        timing = mode.timing(store, market, policy, identity, record)
    if record is None:
        document = _request_record(mode, request, config) | {
            "mode": mode.name, "model_name": identity.name, "model_version": identity.version,
            "manifest_sha256": identity.manifest_sha256, "model_dataset_fingerprint": identity.dataset_fingerprint,
            "data_fingerprint": timing.data_fingerprint, "feature_schema_hash": builder.feature_schema_hash,
            "universe": list(policy.universe), "frequency_used": frequency, "created_at": datetime.now(UTC).isoformat(),
        } | timing.record  # fmt: skip
        write_atomic(record_path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())
    if moved:  # the registry's current model changed while the run was stopped
        before = (last.to_name, last.to_version) if last is not None else (record["model_name"], record["model_version"])
        switches.record(ModelSwitch(
            state.cursor().bar_ts or 0, datetime.now(UTC).isoformat(), before[0], before[1], traded, identity.name,
            identity.version, str(identity.manifest_sha256),
        ))  # fmt: skip
    cost_model = state.load_cost_model(config.cost_model, config.execution)
    loop = TradingLoop(
        clock=timing.clock, feed=timing.feed, market=market, store=store, frequency=frequency, policy=policy,
        builder=builder, model=identity, engine=ExecutionEngine(manager, cost_model, config.engine, config.risk),
        manager=manager, feedback=FillFeedback(intents, state, cost_model, config.execution.vol_halflife_bars),
        state=state, initial_cash=config.runtime.initial_cash, horizon=config.runtime.horizon,
        halflife_bars=config.execution.vol_halflife_bars, broker_clock=broker_clock,
    )  # fmt: skip
    watch = open_watch(config, request.model, loop, state, monitor.raise_alerts)
    if watch is not None:
        resources.callback(watch.close)
    loop.attach(monitor, watch)
    if timing.observe_data is not None:
        timing.observe_data(lambda status: _observe_data(monitor, status))
    return TradingSession(request, loop, state, manager, broker, identity, policy.universe, timing, config.runtime.initial_cash, resources)


def _observe_data(monitor: Monitor, status: DataStatus) -> None:
    """The staleness rule on each status the clock reports, delivered while it waits."""
    monitor.data_staleness(status.feed, status.seconds_late)
    monitor.pump()


def run_session(session: TradingSession, stop: Callable[[], bool] = lambda: False, on_step: Callable[[StepReport], None] | None = None) -> bool:
    """Run the session's loop until its clock ends or ``stop()``; True when stopped (a
    real-time clock that was waiting when asked to stop ends without a step). The
    execution log is exported as Parquet either way."""
    outcome = session.loop.run(stop, on_step)
    session.state.export_execution_log()
    return outcome.stopped or stop()
