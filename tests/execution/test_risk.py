"""Pre-trade risk checks: every denial reason, ordering, and a property test against a reference.

The property test draws random targets, prices, positions and limits, plans a rebalance
and sends it through an order manager to a recording broker: every order the broker
receives must satisfy every limit, judged by a slow, independent re-check of the book
after each accepted order (:func:`breaks_a_limit`).
"""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ai_trading.config import CostModelConfig, EngineConfig, ExecutionConfig, ManagerConfig, OmsConfig, RiskConfig
from ai_trading.errors import ConfigError, OrderValidationError
from ai_trading.execution.cost_model import CostModel
from ai_trading.execution.engine import DecisionContext, ExecutionEngine, MarketSnapshot, Portfolio
from ai_trading.execution.risk import Book, DenialReason, PreTradeRisk, ProposedOrder
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import OrderManager
from ai_trading.oms.migrate import upgrade
from ai_trading.oms.models import OrderType, Side, TradingState, utc_now
from tests.execution.recording_broker import RecordingBroker

LOT = Decimal(1)
EQUITY = 1_000_000.0
LIMITS = RiskConfig(
    max_order_notional=10_000.0,
    max_position_notional=20_000.0,
    max_gross_exposure=0.05,
    max_net_exposure=0.03,
    max_price_deviation_bps=100.0,
    max_orders_per_minute=5,
    restricted_symbols="BAD, WORSE",
)


def order(symbol: str = "AAA", side: Side = Side.BUY, qty: str = "10", price: float = 100.0, limit: str | None = None) -> ProposedOrder:
    order_type = OrderType.LIMIT if limit is not None else OrderType.MARKET
    return ProposedOrder(symbol, side, Decimal(qty), order_type, None if limit is None else Decimal(limit), price)


def book(exposure: dict[str, str] | None = None, **closes: float) -> Book:
    marks = {"AAA": 100.0, "BBB": 50.0, "BAD": 10.0, **closes}
    return Book({s: Decimal(q) for s, q in (exposure or {}).items()}, marks, EQUITY)


# (case, orders, book, state, recent orders, expected reason of the first denial)
DENIALS = [
    ("restricted", [order("BAD")], book(), TradingState.ACTIVE, 0, DenialReason.RESTRICTED_SYMBOL),
    ("zero qty", [order(qty="0")], book(), TradingState.ACTIVE, 0, DenialReason.INVALID_QUANTITY),
    ("fractional qty", [order(qty="1.5")], book(), TradingState.ACTIVE, 0, DenialReason.INVALID_QUANTITY),
    ("nan qty", [order(qty="NaN")], book(), TradingState.ACTIVE, 0, DenialReason.INVALID_QUANTITY),
    ("halted", [order()], book(), TradingState.HALTED, 0, DenialReason.TRADING_HALTED),
    ("reducing, opens", [order()], book(), TradingState.REDUCING, 0, DenialReason.NOT_REDUCING),
    ("reducing, flips", [order(side=Side.SELL, qty="30")], book({"AAA": "20"}), TradingState.REDUCING, 0, DenialReason.NOT_REDUCING),
    ("no price", [order("CCC")], book(), TradingState.ACTIVE, 0, DenialReason.NO_PRICE),
    ("collar, limit", [order(limit="102.00")], book(), TradingState.ACTIVE, 0, DenialReason.PRICE_COLLAR),
    ("collar, stale decision price", [order(price=90.0)], book(), TradingState.ACTIVE, 0, DenialReason.PRICE_COLLAR),
    ("order notional", [order(qty="101")], book(), TradingState.ACTIVE, 0, DenialReason.MAX_ORDER_NOTIONAL),
    ("position notional", [order(qty="60")], book({"AAA": "150"}), TradingState.ACTIVE, 0, DenialReason.MAX_POSITION_NOTIONAL),
    # gross 49k -> 54k of a 50k limit (net 11k -> 16k stays within 30k)
    ("gross", [order("BBB", qty="100", price=50.0)], book({"AAA": "-190", "BBB": "300", "CCC": "1500"}, CCC=10.0), TradingState.ACTIVE, 0, DenialReason.MAX_GROSS_EXPOSURE),
    # net 29k -> 34k of a 30k limit (gross stays within 50k)
    ("net", [order("BBB", qty="100", price=50.0)], book({"AAA": "190", "BBB": "100", "CCC": "500"}, CCC=10.0), TradingState.ACTIVE, 0, DenialReason.MAX_NET_EXPOSURE),
    ("rate", [order()], book(), TradingState.ACTIVE, 5, DenialReason.RATE_LIMIT),
]


@pytest.mark.parametrize(("case", "orders", "before", "state", "recent", "reason"), DENIALS, ids=[d[0] for d in DENIALS])
def test_each_denial_reason(case: str, orders: list[ProposedOrder], before: Book, state: TradingState, recent: int, reason: DenialReason) -> None:
    result = PreTradeRisk(LIMITS, LOT).check(orders, before, state, recent)
    assert result.accepted == () and [d.reason for d in result.denied] == [reason], case
    record = result.denied[0].record()
    assert (record.reason, record.symbol, str(record.qty)) == (reason.value, orders[0].symbol, str(orders[0].qty))


def test_the_same_orders_pass_within_the_limits() -> None:
    orders = [order(qty="50"), order("BBB", side=Side.SELL, qty="100", price=50.0, limit="49.90")]
    result = PreTradeRisk(LIMITS, LOT).check(orders, book(), TradingState.ACTIVE, 3)
    assert [o.symbol for o in result.accepted] == ["AAA", "BBB"] and result.denied == ()


def test_the_rate_limit_counts_the_orders_accepted_in_the_same_rebalance() -> None:
    orders = [order(s, qty="1", price=10.0) for s in ("C1", "C2", "C3")]
    result = PreTradeRisk(LIMITS, LOT).check(orders, book(C1=10.0, C2=10.0, C3=10.0), TradingState.ACTIVE, 3)
    assert [o.symbol for o in result.accepted] == ["C1", "C2"]
    assert [(d.order.symbol, d.reason, d.value) for d in result.denied] == [("C3", DenialReason.RATE_LIMIT, 6.0)]


def test_reducing_orders_are_judged_first_and_free_room() -> None:
    # Gross is at its limit (0.05 of 1M = 50k): the buy fits only after the sell reduced it.
    orders = [order("AAA", qty="50"), order("BBB", side=Side.BUY, qty="100", price=50.0)]
    before = book({"AAA": "100", "BBB": "-800"})
    alone = PreTradeRisk(LIMITS, LOT).check(orders[:1], before, TradingState.ACTIVE, 0)
    assert [d.reason for d in alone.denied] == [DenialReason.MAX_GROSS_EXPOSURE]
    result = PreTradeRisk(LIMITS, LOT).check(orders, before, TradingState.ACTIVE, 0)
    assert [o.symbol for o in result.accepted] == ["BBB", "AAA"] and result.denied == ()


def test_reducing_state_lets_reductions_through() -> None:
    orders = [order(side=Side.SELL, qty="20"), order("BBB", side=Side.BUY, qty="10", price=50.0)]
    result = PreTradeRisk(LIMITS, LOT).check(orders, book({"AAA": "20", "BBB": "-30"}), TradingState.REDUCING, 0)
    assert len(result.accepted) == 2 and result.denied == ()


def test_a_position_past_its_limit_can_still_be_reduced() -> None:
    result = PreTradeRisk(LIMITS, LOT).check([order(side=Side.SELL, qty="10")], book({"AAA": "900"}), TradingState.ACTIVE, 0)
    assert len(result.accepted) == 1


def test_bad_configuration_and_equity_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="risk.max_order_notional"):
        PreTradeRisk(RiskConfig(max_order_notional=-1.0), LOT)
    with pytest.raises(ConfigError, match="lot_size"):
        PreTradeRisk(LIMITS, Decimal(0))
    with pytest.raises(OrderValidationError, match="equity"):
        PreTradeRisk(LIMITS, LOT).check([order()], Book({}, {"AAA": 100.0}, 0.0), TradingState.ACTIVE, 0)


# -- property: nothing that breaks a limit reaches the broker ---------------------------


def breaks_a_limit(config: RiskConfig, sent: list[tuple[str, str, Decimal]], exposure: dict[str, Decimal], prices: dict[str, float], equity: float, state: TradingState) -> str | None:
    """Replay the sent orders one by one on the book; name the first limit one of them breaks
    (or increases past its limit), or None. Independent of PreTradeRisk's bookkeeping."""
    book_qty = dict(exposure)
    restricted = {s.strip() for s in config.restricted_symbols.split(",") if s.strip()}

    def totals() -> tuple[float, float]:
        return (sum(abs(float(q)) * prices[s] for s, q in book_qty.items()), sum(float(q) * prices[s] for s, q in book_qty.items()))

    if state is TradingState.HALTED and sent:
        return "sent while halted"
    if len(sent) > config.max_orders_per_minute:
        return "rate"
    for symbol, side, qty in sent:
        price = prices[symbol]
        signed = qty if side == "buy" else -qty
        before = book_qty.get(symbol, Decimal(0))
        after = before + signed
        gross0, net0 = totals()
        book_qty[symbol] = after
        gross1, net1 = totals()
        if symbol in restricted:
            return "restricted"
        if not (qty > 0 and qty == qty.to_integral_value()):
            return "quantity"
        if state is TradingState.REDUCING and not (abs(after) < abs(before) and after * before >= 0):
            return "not reducing"
        if float(qty) * price > config.max_order_notional * (1 + 1e-9):
            return "order notional"
        if abs(float(after)) * price > config.max_position_notional * (1 + 1e-9) and abs(after) > abs(before):
            return "position notional"
        if gross1 > config.max_gross_exposure * equity * (1 + 1e-9) and gross1 > gross0 * (1 + 1e-9):
            return "gross"
        if abs(net1) > config.max_net_exposure * equity * (1 + 1e-9) and abs(net1) > abs(net0) * (1 + 1e-9):
            return "net"
    return None


N_SYMBOLS = 6
SYMBOLS = tuple(f"P{i}" for i in range(N_SYMBOLS))


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    weights = np.array(draw(st.lists(st.floats(-0.3, 0.3), min_size=N_SYMBOLS, max_size=N_SYMBOLS)))
    prices = np.array(draw(st.lists(st.floats(1.0, 500.0), min_size=N_SYMBOLS, max_size=N_SYMBOLS)))
    positions = draw(st.lists(st.integers(-3000, 3000), min_size=N_SYMBOLS, max_size=N_SYMBOLS))
    limits = RiskConfig(
        max_order_notional=draw(st.floats(1_000.0, 200_000.0)),
        max_position_notional=draw(st.floats(1_000.0, 300_000.0)),
        max_gross_exposure=draw(st.floats(0.05, 2.0)),
        max_net_exposure=draw(st.floats(0.0, 1.0)),
        max_orders_per_minute=draw(st.integers(0, N_SYMBOLS)),
        restricted_symbols=",".join(draw(st.lists(st.sampled_from(SYMBOLS), max_size=2))),
    )
    state = draw(st.sampled_from(list(TradingState)))
    return {"weights": weights, "prices": prices, "positions": positions, "limits": limits, "state": state}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_no_order_that_breaks_a_limit_reaches_the_broker(scenario: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> None:
    path: Path = tmp_path_factory.mktemp("risk") / "oms.sqlite"
    config = OmsConfig(dsn=f"sqlite:///{path}")
    upgrade(config)
    limits: RiskConfig = scenario["limits"]  # type: ignore[assignment]
    state: TradingState = scenario["state"]  # type: ignore[assignment]
    prices: np.ndarray = scenario["prices"]  # type: ignore[assignment]
    exposure = {s: Decimal(q) for s, q in zip(SYMBOLS, scenario["positions"], strict=True) if q}  # type: ignore[call-overload]
    broker = RecordingBroker()
    with IntentStore.open(config) as store:
        manager = OrderManager(store, broker, ManagerConfig(resend_grace_s=0.0))
        manager.start()
        engine = ExecutionEngine(manager, CostModel(CostModelConfig(), ExecutionConfig()), EngineConfig(max_cost_share=1.0, min_order_notional=0.0), limits)
        market = MarketSnapshot(SYMBOLS, prices, np.full(N_SYMBOLS, 1e7), np.full(N_SYMBOLS, 100.0))
        decision = DecisionContext("prop", "1", date(2024, 1, 5), "1d")
        plan = engine.plan(scenario["weights"], market, decision, EQUITY, Portfolio(exposure, {}), state, 0, utc_now())  # type: ignore[arg-type]
        manager.submit_batch([o.intent for o in plan.orders], rebalance=plan.record)
    sent = [(r.symbol, r.side, r.qty) for r in broker.requests]
    assert len(sent) == len(plan.orders)
    marks = dict(zip(SYMBOLS, map(float, prices), strict=True))
    assert breaks_a_limit(limits, sent, exposure, marks, EQUITY, state) is None
    # Every order the engine wanted is accounted for: sent, or denied with a reason.
    assert len(plan.orders) + len(plan.denials) == len({*(o.intent.symbol for o in plan.orders), *(d.order.symbol for d in plan.denials)})
    assert all(math.isfinite(d.limit) for d in plan.denials)

