"""A 500-symbol rebalance, from target weights to every order acknowledged by the SimBroker.

One item is one order. The engine plans, checks risk, writes every intent ahead in one
transaction, claims them in one, sends each to the SimBroker and acknowledges them in
one more. The baseline sends the same number of intents through the manager's one-by-one
``submit_all`` (three committed transactions per intent), in the same run. Each round
flips the sign of the targets, so netting against the previous round's open orders makes
it trade every symbol again.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ai_trading.brokers.sim import SimBroker
from ai_trading.config import CostModelConfig, EngineConfig, ExecutionConfig, ManagerConfig, OmsConfig, RiskConfig
from ai_trading.data.synthetic import generate_panel
from ai_trading.execution.cost_model import CostModel
from ai_trading.execution.engine import DecisionContext, ExecutionEngine, MarketSnapshot
from ai_trading.execution.parameters import panel_volatility_bps
from ai_trading.oms.idempotency import build_client_order_id, signal_hash
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import OrderManager
from ai_trading.oms.migrate import upgrade
from ai_trading.oms.models import IntentState, OrderIntent

N_BARS = 30
BAR = 20
EQUITY = 10_000_000.0
EXECUTION = ExecutionConfig()
UNLIMITED = RiskConfig(
    max_order_notional=1e12, max_position_notional=1e12, max_gross_exposure=100.0, max_net_exposure=100.0,
    max_orders_per_minute=1_000_000,
)  # fmt: skip
ENGINE = EngineConfig(min_order_notional=0.0, max_cost_share=1.0)


def _symbols(full_size: bool) -> int:
    return 500 if full_size else 20


def _manager(dsn: str, broker_path: Path, n_symbols: int) -> tuple[OrderManager, SimBroker]:
    config = OmsConfig(dsn=dsn)
    upgrade(config)
    broker = SimBroker(broker_path, generate_panel(n_symbols, N_BARS, seed=3), EXECUTION)
    broker.advance(BAR)
    manager = OrderManager(IntentStore.open(config), broker, ManagerConfig(resend_grace_s=0.0))
    manager.start()
    return manager, broker


def engine_rebalances(manager: OrderManager, broker: SimBroker) -> Callable[[], None]:
    panel = broker.panel  # the broker's own market: decisions at its clock bar
    market = MarketSnapshot(
        tuple(panel.symbols), panel.close[BAR], panel.volume[BAR], panel_volatility_bps(panel, EXECUTION.vol_halflife_bars)[BAR]
    )
    engine = ExecutionEngine(manager, CostModel(CostModelConfig(), EXECUTION), ENGINE, UNLIMITED)
    weights = np.full(panel.n_symbols, 0.5 / panel.n_symbols)
    rounds = itertools.count()

    def run() -> None:
        k = next(rounds)
        result = engine.rebalance(weights * (-1) ** k, market, DecisionContext("bench", "1", date(2024, 1, 1 + k), "1d"), EQUITY)
        assert len(result.intents) == panel.n_symbols and all(i.state is IntentState.ACKED for i in result.intents)

    return run


def one_by_one(manager: OrderManager, symbols: tuple[str, ...]) -> Callable[[], None]:
    n_symbols = len(symbols)
    rounds = itertools.count()

    def run() -> None:
        k = next(rounds)
        intents = []
        for i in range(n_symbols):
            symbol, qty = symbols[i], Decimal(100 + i)
            cid = build_client_order_id("base", symbol, "buy", "20240105", "1d", signal_hash({"k": k}), qty, 1)
            intents.append(OrderIntent.new(client_order_id=cid, strategy="base", symbol=symbol, side="buy", qty=qty))
        assert all(i.state is IntentState.ACKED for i in manager.submit_all(intents))

    return run


def _run(throughput: Any, tmp_path: Path, dsn: str, baseline_dsn: str) -> None:
    n = _symbols(throughput.full_size)
    manager, broker = _manager(dsn, tmp_path / "broker.sqlite", n)
    base_manager, _ = _manager(baseline_dsn, tmp_path / "base_broker.sqlite", n)
    try:
        baseline = one_by_one(base_manager, tuple(broker.panel.symbols))
        throughput.measure(engine_rebalances(manager, broker), n, baseline, n, rounds=3, baseline_rounds=2)
    finally:
        manager.store.close()
        base_manager.store.close()


def test_rebalance_sqlite(throughput: Any, tmp_path: Path) -> None:
    _run(throughput, tmp_path, f"sqlite:///{tmp_path / 'oms.sqlite'}", f"sqlite:///{tmp_path / 'base.sqlite'}")


@pytest.mark.postgres
def test_rebalance_postgres(throughput: Any, tmp_path: Path, create_postgres_database: Callable[[str], str]) -> None:
    _run(throughput, tmp_path, create_postgres_database("ai_trading_bench"), create_postgres_database("ai_trading_bench"))
