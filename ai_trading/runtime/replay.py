"""A replay: the trading loop over stored bars, a simulated clock and the SimBroker.

:func:`open_replay` passes the start-up gates of :mod:`ai_trading.runtime.session`; the
replay's own parts are the request (a range of stored bars), the ``model`` gate's check
that the stored bars of the run are the ones it started on (data fingerprint), and the
``history`` gate: the store holds the policy's lookback before the first bar.

Everything the run writes lives in its directory (``run.json``, the OMS SQLite database
unless a ``dsn`` is given, the broker's state, the cost model, the run state), so a
replay never touches the user's OMS database or broker state unless told to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ai_trading.brokers.sim import SimBroker
from ai_trading.brokers.sim_market import StoreMarket, utc_ns
from ai_trading.config import AppConfig
from ai_trading.data.store import MarketDataStore, open_store
from ai_trading.errors import StartupGateFailed
from ai_trading.features.fingerprint import dataset_fingerprint
from ai_trading.models.policy import Policy, panel_rows
from ai_trading.runtime.clock import ReplayClock
from ai_trading.runtime.feed import StoredBarFeed
from ai_trading.runtime.loop import BrokerClock, ModelIdentity, StepReport
from ai_trading.runtime.session import (
    BROKER_FILE,
    OMS_FILE,
    RUN_RECORD,
    SessionRequest,
    Timing,
    TradingSession,
    gate,
    open_session,
    run_session,
)

__all__ = ["BROKER_FILE", "OMS_FILE", "RUN_RECORD", "ReplayRequest", "default_run_dir", "open_replay", "run_replay"]


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


class ReplayMode:
    """The replay's parts of the wiring (:class:`~ai_trading.runtime.session.TradingMode`)."""

    name = "replay"
    broker_label = "sim"

    def __init__(self, request: ReplayRequest, config: AppConfig) -> None:
        self._request = request
        self._config = config

    def check(self, config: AppConfig) -> None:
        start, end = _time_ns(self._request.start, "start"), _time_ns(self._request.end, "end")
        if start >= end:
            raise StartupGateFailed("config", f"--start {self._request.start} must be before --end {self._request.end} (the end is exclusive)")

    def request_record(self, config: AppConfig) -> dict[str, Any]:
        return {"start": self._request.start, "end": self._request.end}

    def open_broker(self, store: MarketDataStore, symbols: tuple[str, ...], frequency: str, resources: ExitStack) -> tuple[SimBroker, BrokerClock]:
        broker = SimBroker(self._request.run_dir / BROKER_FILE, StoreMarket(store, symbols, frequency), self._config.execution)
        return broker, broker

    def timing(self, store: MarketDataStore, market: StoreMarket, policy: Policy, identity: ModelIdentity, record: dict[str, Any] | None) -> Timing:
        start, end = _time_ns(self._request.start, "start"), _time_ns(self._request.end, "end")
        full = market.panel_through(end)
        in_range = full.ts[(full.ts >= start) & (full.ts < end)]
        fingerprint = dataset_fingerprint(panel_rows(full, 0, int(np.searchsorted(full.ts, end))))
        if record is not None and record.get("data_fingerprint") != fingerprint:
            raise StartupGateFailed(
                "model",
                f"the stored bars changed since {self._request.run_dir} started (data {record.get('data_fingerprint')} -> "
                f"{fingerprint}): replay into another --out",
            )
        if in_range.size == 0:
            raise StartupGateFailed("history", f"no {full.frequency} bars of {', '.join(policy.universe)} from {self._request.start} to {self._request.end}")
        before = int(np.searchsorted(full.ts, in_range[0]))
        if before < policy.lookback:
            raise StartupGateFailed(
                "history",
                f"model {identity.name!r} needs {policy.lookback} bars before its first decision, the store holds {before} "
                f"before {self._request.start}: start later or ingest earlier bars",
            )
        return Timing(ReplayClock(in_range), StoredBarFeed(), fingerprint, int(in_range.size))


def open_replay(config: AppConfig, request: ReplayRequest, market_store: MarketDataStore | None = None) -> TradingSession:
    """Pass the start-up gates and return the ready session.

    :param market_store: the market-data store (default: the configured one, read-only)
    """
    session_request = SessionRequest(request.model, request.symbols, request.frequency, request.run_dir, request.dsn)
    if market_store is not None:
        return open_session(config, ReplayMode(request, config), session_request, market_store)
    with ExitStack() as owned:
        with gate("config"):
            store = owned.enter_context(open_store(config.data))
        session = open_session(config, ReplayMode(request, config), session_request, store)
        session.hold(owned.pop_all())
        return session


def run_replay(session: TradingSession, stop: Callable[[], bool] = lambda: False, on_step: Callable[[StepReport], None] | None = None) -> bool:
    """Run the session's loop to the end of its range or until ``stop()``; True when stopped.
    The execution log is exported as Parquet either way."""
    return run_session(session, stop, on_step)
