"""Shared pieces of the replay tests: a small built-in store, parity settings, a replay run
in-process, and the same policy through the PortfolioSimulator."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from ai_trading.config import (
    AppConfig,
    EngineConfig,
    ExecutionConfig,
    RiskConfig,
    RuntimeConfig,
)
from ai_trading.data.store import MarketDataStore
from ai_trading.execution.portfolio import PortfolioResult, PortfolioSimulator
from ai_trading.features import FeatureBuilder
from ai_trading.models.policy import Policy
from ai_trading.models.run import policy_targets
from ai_trading.runtime.replay import (
    BROKER_FILE,
    ReplayRequest,
    open_replay,
    run_replay,
)
from ai_trading.runtime.run_state import RunState
from ai_trading.types import FloatArray

N_SYMBOLS = 6
N_BARS = 320
DATA_SEED = 7
SYMBOLS = tuple(f"SYN{i:02d}" for i in range(N_SYMBOLS))
START, END = "2015-03-02", "2015-11-02"
CASH = 1_000_000.0

# Everything random or discretionary switched off, so the replay and the fused simulator
# face the same deterministic execution: no noise, a fixed latency, one bar in force (the
# fused path's rule), lots of a millionth of a share, no minimum notional, no band.
PARITY_EXECUTION = ExecutionConfig(seed=3, slippage_noise_bps=0.0, latency_sigma=0.0, tif_bars=1)
PARITY_ENGINE = EngineConfig(lot_size=0.000001, min_order_notional=0.0, max_cost_share=1e9)
NO_LIMITS = RiskConfig(
    max_order_notional=1e12, max_position_notional=1e12, max_gross_exposure=100.0, max_net_exposure=100.0,
    max_price_deviation_bps=1e6, max_orders_per_minute=1_000_000,
)  # fmt: skip


def make_store(path: Path, n_bars: int = N_BARS, n_symbols: int = N_SYMBOLS) -> Path:
    with MarketDataStore(path) as store:
        store.generate("daily", n_symbols, n_bars, DATA_SEED)
    return path


def parity_config(root: Path, **sections: object) -> AppConfig:
    config = AppConfig(
        execution=PARITY_EXECUTION, engine=PARITY_ENGINE, risk=NO_LIMITS,
        runtime=RuntimeConfig(initial_cash=CASH, runs_dir=root / "runs"),
    )  # fmt: skip
    return replace(config, **sections)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ReplayOutcome:
    """A finished replay: equity per bar (ns -> currency), final shares per symbol, the
    execution log, the client order ids of every order the broker holds (in booking order)
    and how many submissions it refused as duplicates."""

    equity: dict[int, float]
    positions: dict[str, float]
    execution_log: pa.Table
    broker_orders: list[str]
    refused_duplicates: int


def outcome(run_dir: Path, config: AppConfig) -> ReplayOutcome:
    """What a run directory holds now."""
    with RunState(run_dir, read_only=True) as state:
        curve = state.equity_curve()
        _, positions = state.cash_and_positions(config.runtime.initial_cash)
        log = state.execution_log()
    with closing(sqlite3.connect(run_dir / BROKER_FILE)) as broker_db:
        orders = [str(row[0]) for row in broker_db.execute("SELECT client_order_id FROM orders ORDER BY id")]
        refused = int(broker_db.execute("SELECT count(*) FROM submissions WHERE accepted = 0").fetchone()[0])
    equity = dict(zip(curve.column("bar_ts").to_pylist(), curve.column("equity").to_pylist(), strict=True))
    return ReplayOutcome(equity, {s: q for s, q in positions.items() if q}, log, orders, refused)


def replay(config: AppConfig, store_path: Path, run_dir: Path, model: str = "demo", symbols: tuple[str, ...] | None = SYMBOLS,
           start: str = START, end: str = END, dsn: str | None = None) -> ReplayOutcome:  # fmt: skip
    """Run a replay to its end in this process."""
    with MarketDataStore(store_path, read_only=True) as store:
        session = open_replay(config, ReplayRequest(model, start, end, symbols, None, run_dir, dsn), store)
        try:
            assert not run_replay(session)
        finally:
            session.close()
    return outcome(run_dir, config)


def backtest(config: AppConfig, store_path: Path, policy: Policy, start: str = START, end: str = END) -> tuple[np.ndarray, PortfolioResult, FloatArray]:
    """The same policy's targets from ``start`` through the PortfolioSimulator, on the
    panel from the first stored bar to ``end``: (bar times, result, targets)."""
    with MarketDataStore(store_path, read_only=True) as store:
        panel = store.panel(policy.universe, None, end)
    first = int(np.searchsorted(panel.ts, np.datetime64(start, "ns").astype(np.int64)))
    features = FeatureBuilder(policy.feature_spec).build(panel)
    targets = policy_targets(policy, panel, features, config.runtime.initial_cash, start=first)
    result = PortfolioSimulator(config.execution).run(targets, panel, config.runtime.initial_cash)
    return panel.ts, result, targets
