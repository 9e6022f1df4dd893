"""ExecutionEngine: netting, lots, minimum notional, no-trade band, collar, trading states,
persistence of the rebalance, and the same ids after a crash (nothing sent twice)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from ai_trading.brokers.sim import SimBroker
from ai_trading.config import CostModelConfig, EngineConfig, ExecutionConfig, RiskConfig
from ai_trading.errors import DataValidationError
from ai_trading.execution.cost_model import CostModel
from ai_trading.execution.engine import DecisionContext, ExecutionEngine, MarketSnapshot, Portfolio
from ai_trading.execution.parameters import panel_volatility_bps
from ai_trading.execution.risk import DenialReason
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import Checkpoint, OrderManager
from ai_trading.oms.models import IntentState, OrderType, Side, TradingState, utc_now
from tests.oms.oms_harness import EXECUTION, NO_GRACE, open_broker

BAR = 100
EQUITY = 1_000_000.0
DECISION = DecisionContext("demo", "3", date(2024, 1, 5), "1d")
WIDE = RiskConfig(max_order_notional=1e9, max_position_notional=1e9, max_gross_exposure=10.0, max_net_exposure=10.0)
LOOSE = EngineConfig(min_order_notional=0.0, max_cost_share=1.0)


class Crash(BaseException):
    """Stands in for the process dying at a checkpoint."""


@pytest.fixture()
def broker(tmp_path: Path) -> SimBroker:
    broker = open_broker(tmp_path / "broker.sqlite")
    broker.advance(BAR)
    return broker


def started(store: IntentStore, broker: SimBroker, checkpoint=None) -> OrderManager:  # type: ignore[no-untyped-def]
    manager = OrderManager(store, broker, NO_GRACE, checkpoint=checkpoint)
    manager.start()
    return manager


def engine_of(manager: OrderManager, config: EngineConfig = LOOSE, risk: RiskConfig = WIDE) -> ExecutionEngine:
    return ExecutionEngine(manager, CostModel(CostModelConfig(), EXECUTION), config, risk)


def snapshot(broker: SimBroker) -> MarketSnapshot:
    panel = broker.panel  # the broker's market, at its clock bar
    sigma = panel_volatility_bps(panel, EXECUTION.vol_halflife_bars)
    return MarketSnapshot(tuple(panel.symbols), panel.close[BAR], panel.volume[BAR], sigma[BAR])


def test_targets_are_netted_against_positions_and_open_orders_and_rounded_to_lots(oms_store: IntentStore, broker: SimBroker) -> None:
    market = snapshot(broker)
    weights = np.array([0.02, -0.01, 0.0])
    held = Portfolio({"SYN00": Decimal(30), "SYN02": Decimal(-7)}, {"SYN00": Decimal(20), "SYN01": Decimal(-5)})
    engine = engine_of(started(oms_store, broker), EngineConfig(lot_size=10.0, min_order_notional=0.0, max_cost_share=1.0))
    plan = engine.plan(weights, market, DECISION, EQUITY, held, TradingState.ACTIVE, 0, utc_now())
    got = {o.intent.symbol: o.intent.side.sign * o.intent.qty for o in plan.orders}
    for k, symbol in enumerate(market.symbols):
        exposure = held.exposure().get(symbol, Decimal(0))
        expected_lots = round((weights[k] * EQUITY / market.close[k] - float(exposure)) / 10)
        assert got.get(symbol, Decimal(0)) == Decimal(expected_lots * 10), symbol
    assert all(o.intent.qty % 10 == 0 and o.decision_price == market.close[market.symbols.index(o.intent.symbol)] for o in plan.orders)
    assert got["SYN02"] == Decimal(10)  # a zero target closes the position (-7 rounds to one lot)


def test_small_and_expensive_trades_are_skipped(oms_store: IntentStore, broker: SimBroker) -> None:
    market = snapshot(broker)
    manager = started(oms_store, broker)
    weights = np.array([0.001, 0.05, 0.05])
    small = engine_of(manager, EngineConfig(min_order_notional=5_000.0, max_cost_share=1.0))
    plan = small.plan(weights, market, DECISION, EQUITY, Portfolio({}, {}), TradingState.ACTIVE, 0, utc_now())
    assert [(s.symbol, s.reason) for s in plan.skipped] == [("SYN00", "min_notional")]
    # The band compares the cost model's prediction with the configured share.
    costs = CostModel(CostModelConfig(), EXECUTION).predict(
        list(market.symbols), market.close, np.abs(np.round(weights * EQUITY / market.close)), market.volume, market.sigma_bps
    )
    share = float(np.median(costs)) * 1e-4
    banded = engine_of(manager, EngineConfig(min_order_notional=0.0, max_cost_share=share))
    plan = banded.plan(weights, market, DECISION, EQUITY, Portfolio({}, {}), TradingState.ACTIVE, 0, utc_now())
    skipped = {s.symbol for s in plan.skipped}
    assert skipped == {s for s, c in zip(market.symbols, costs, strict=True) if c * 1e-4 > share} and skipped
    assert all(s.reason == "no_trade_band" and s.value > share for s in plan.skipped)


def test_marketable_limits_sit_the_collar_away_rounded_outward_to_the_tick(oms_store: IntentStore, broker: SimBroker) -> None:
    market = snapshot(broker)
    config = EngineConfig(min_order_notional=0.0, max_cost_share=1.0, order_type="limit", limit_collar_bps=25.0)
    plan = engine_of(started(oms_store, broker), config).plan(
        np.array([0.02, -0.02, 0.0]), market, DECISION, EQUITY, Portfolio({}, {}), TradingState.ACTIVE, 0, utc_now()
    )
    for planned in plan.orders:
        intent, close = planned.intent, planned.decision_price
        assert intent.order_type is OrderType.LIMIT and intent.limit_price is not None
        exact = close * (1 + intent.side.sign * 25e-4)
        assert abs(float(intent.limit_price) - exact) < 0.01 and intent.limit_price % Decimal("0.01") == 0
        assert (float(intent.limit_price) >= exact) if intent.side is Side.BUY else (float(intent.limit_price) <= exact)


def test_rebalance_persists_record_and_denials_and_sends_only_what_passed(oms_store: IntentStore, broker: SimBroker) -> None:
    market = snapshot(broker)
    risk = RiskConfig(max_order_notional=1e9, max_position_notional=1e9, max_gross_exposure=10.0, max_net_exposure=10.0, restricted_symbols="SYN01")
    engine = engine_of(started(oms_store, broker), LOOSE, risk)
    result = engine.rebalance(np.array([0.02, 0.02, -0.02]), market, DECISION, EQUITY)
    assert [d.reason for d in result.plan.denials] == [DenialReason.RESTRICTED_SYMBOL]
    assert {i.symbol for i in result.intents} == {"SYN00", "SYN02"} and all(i.state is IntentState.ACKED for i in result.intents)
    assert sorted(s.client_order_id for s in broker.submissions()) == sorted(i.client_order_id for i in result.intents)
    (rebalance_id,) = engine.rebalances.list_ids()
    record = engine.rebalances.get(rebalance_id)
    assert record is not None and (record.n_orders, record.n_denied, record.signal_hash) == (2, 1, result.plan.signal_hash)
    assert [(d.symbol, d.reason) for d in record.denials] == [("SYN01", "restricted_symbol")]


def test_halted_sends_nothing_and_reducing_only_reductions(oms_store: IntentStore, broker: SimBroker) -> None:
    market = snapshot(broker)
    manager = started(oms_store, broker)
    engine = engine_of(manager)
    manager.trading_state.set(manager.account, TradingState.HALTED, reason="test", changed_by="pytest")
    halted = engine.rebalance(np.array([0.02, 0.02, 0.0]), market, DECISION, EQUITY)
    assert halted.intents == [] and {d.reason for d in halted.plan.denials} == {DenialReason.TRADING_HALTED}
    assert broker.submissions() == []
    manager.trading_state.set(manager.account, TradingState.ACTIVE, reason="test", changed_by="pytest")
    opened = engine.rebalance(np.array([0.02, 0.02, 0.0]), market, DecisionContext("demo", "3", date(2024, 1, 8), "1d"), EQUITY)
    assert len(opened.intents) == 2
    manager.trading_state.set(manager.account, TradingState.REDUCING, reason="test", changed_by="pytest")
    # Open orders count as exposure: halving SYN00 reduces it, adding SYN02 does not.
    reducing = engine.rebalance(np.array([0.01, 0.03, 0.01]), market, DecisionContext("demo", "3", date(2024, 1, 9), "1d"), EQUITY)
    assert [(i.symbol, i.side) for i in reducing.intents] == [("SYN00", Side.SELL)]
    assert {(d.order.symbol, d.reason) for d in reducing.plan.denials} == {("SYN01", DenialReason.NOT_REDUCING), ("SYN02", DenialReason.NOT_REDUCING)}


def test_manager_refuses_at_the_send_when_halted_after_the_plan(oms_store: IntentStore, broker: SimBroker) -> None:
    def halt_now(point: Checkpoint) -> None:
        if point is Checkpoint.AFTER_SUBMITTED:
            # Another process engages the kill switch between the plan and the send.
            manager.trading_state.set(manager.account, TradingState.HALTED, reason="kill switch", changed_by="other")

    manager = started(oms_store, broker, halt_now)
    result = engine_of(manager).rebalance(np.array([0.02, 0.02, 0.0]), snapshot(broker), DECISION, EQUITY)
    assert len(result.plan.orders) == 2 and broker.submissions() == []
    assert all(i.state is IntentState.REJECTED and "HALTED" in (i.last_error or "") for i in result.intents)


@pytest.mark.parametrize("crash_at", [Checkpoint.AFTER_CREATED, Checkpoint.AFTER_SUBMITTED, Checkpoint.AFTER_SEND])
def test_a_recomputed_rebalance_gets_the_same_ids_and_sends_nothing_twice(oms_store: IntentStore, broker: SimBroker, crash_at: Checkpoint) -> None:
    market, weights = snapshot(broker), np.array([0.02, -0.015, 0.01])
    sends = 0

    def crash(point: Checkpoint) -> None:
        nonlocal sends
        sends += point is Checkpoint.AFTER_SEND
        if point is crash_at and sends <= 1:
            raise Crash(point)

    with pytest.raises(Crash):
        engine_of(started(oms_store, broker, crash)).rebalance(weights, market, DECISION, EQUITY)
    broker.advance(5)  # time passes, the first order may fill, before the restart
    manager = started(oms_store, broker)  # start-up reconciliation resolves what was in flight
    again = engine_of(manager).rebalance(weights, market, DECISION, EQUITY)
    first_ids = sorted(i.client_order_id for i in oms_store.list_intents())
    assert sorted(o.intent.client_order_id for o in again.plan.orders) == first_ids and len(first_ids) == 3
    submitted = [s.client_order_id for s in broker.submissions() if s.accepted]
    assert sorted(submitted) == first_ids  # each id reached the broker exactly once
    assert all(i.state is not IntentState.CREATED for i in oms_store.list_intents())
    assert len(engine_of(manager).rebalances.list_ids()) == 1


def test_bad_input_is_a_clear_error(oms_store: IntentStore, broker: SimBroker) -> None:
    market = snapshot(broker)
    engine = engine_of(started(oms_store, broker))
    with pytest.raises(DataValidationError, match="finite"):
        engine.plan(np.array([np.nan, 0, 0]), market, DECISION, EQUITY, Portfolio({}, {}), TradingState.ACTIVE, 0, utc_now())
    with pytest.raises(DataValidationError, match="outside the policy's symbols"):
        engine.plan(np.zeros(3), market, DECISION, EQUITY, Portfolio({"XYZ": Decimal(1)}, {}), TradingState.ACTIVE, 0, utc_now())
    nan_close = MarketSnapshot(market.symbols, np.array([np.nan, *market.close[1:]]), market.volume, market.sigma_bps)
    with pytest.raises(DataValidationError, match="SYN00 has a target"):
        engine.plan(np.array([0.01, 0, 0]), nan_close, DECISION, EQUITY, Portfolio({}, {}), TradingState.ACTIVE, 0, utc_now())
