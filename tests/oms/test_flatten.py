"""The flatten path: the one way past HALTED, narrow, audited, and exactly-once."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ai_trading.brokers.sim import SimBroker
from ai_trading.config import ExecutionConfig
from ai_trading.data.synthetic import generate_panel
from ai_trading.errors import FlattenRefused
from ai_trading.oms.idempotency import build_client_order_id, signal_hash
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import (
    FLATTEN_STRATEGY,
    Checkpoint,
    OrderManager,
    closing_orders,
)
from ai_trading.oms.models import IntentState, OrderIntent, TradingState
from tests.oms.oms_harness import N_BARS, N_SYMBOLS, NO_GRACE, PANEL_SEED, finish

ACCOUNT = "acct"
SESSION = date(2024, 1, 5)
SYMBOLS = [f"SYN{i:02d}" for i in range(N_SYMBOLS)]
# Orders fill within a bar or two, so positions are whole and flatten orders close them.
EXECUTION = ExecutionConfig(seed=9, max_participation=0.5, tif_bars=50)
# (symbol, side, qty) of the positions built before the kill switch
OPENING = [("SYN00", "buy", 300), ("SYN01", "sell", 200), ("SYN02", "buy", 100)]


class Crash(BaseException):
    """Stands for the process dying at a checkpoint (not an Exception: nothing catches it)."""


def _intent(strategy: str, symbol: str, side: str, qty: int, tag: str = "") -> OrderIntent:
    digest = signal_hash({"symbol": symbol, "tag": tag})
    cid = build_client_order_id(strategy, symbol, side, SESSION, "1d", digest, qty, 1)
    return OrderIntent.new(client_order_id=cid, strategy=strategy, symbol=symbol, side=side, qty=Decimal(qty))


def open_broker(path: Path) -> SimBroker:
    return SimBroker(path, generate_panel(N_SYMBOLS, N_BARS, seed=PANEL_SEED), EXECUTION)


def _manager(store: IntentStore, broker: SimBroker, checkpoint: object = None) -> OrderManager:
    manager = OrderManager(store, broker, NO_GRACE, checkpoint=checkpoint, account=ACCOUNT)  # type: ignore[arg-type]
    assert manager.start().passed
    return manager


def _fill_all(manager: OrderManager, broker: SimBroker) -> None:
    deadline = time.monotonic() + 60
    while manager.store.open_intents():
        assert time.monotonic() < deadline, "orders still open after 60 s"
        manager.poll()
        broker.advance()


@pytest.fixture
def positioned(oms_store: IntentStore, tmp_path: Path) -> tuple[OrderManager, SimBroker]:
    """An account holding the OPENING positions (filled), then HALTED."""
    broker = open_broker(tmp_path / "sim.sqlite")
    manager = _manager(oms_store, broker)
    finish(manager, broker, [_intent("model", s, side, qty) for s, side, qty in OPENING])
    manager.trading_state.set(ACCOUNT, TradingState.HALTED, reason="test kill", changed_by="tester")
    return manager, broker


def test_closing_orders_close_each_position_and_skip_symbols_with_open_orders() -> None:
    positions = {"A": Decimal(5), "B": Decimal(-3), "C": Decimal(2)}
    open_c = _intent("model", "C", "buy", 1)
    plan = closing_orders(positions, [open_c], SESSION)
    assert [(i.symbol, i.side.value, i.qty) for i in plan.intents] == [("A", "sell", Decimal(5)), ("B", "buy", Decimal(3))]
    assert set(plan.skipped) == {"C"}
    assert all(i.strategy == FLATTEN_STRATEGY and i.client_order_id.startswith("CIDv2:flatten:") for i in plan.intents)
    again = closing_orders(positions, [open_c], SESSION)
    assert [i.client_order_id for i in again.intents] == [i.client_order_id for i in plan.intents]
    rebuilt = closing_orders(positions, [open_c.__class__(**{**open_c.__dict__, "filled_qty": Decimal(1)})], SESSION)
    assert rebuilt.intents[0].client_order_id == plan.intents[0].client_order_id  # other symbols' history does not matter


def test_flatten_while_halted_sends_exactly_the_closing_orders_once_and_audits_them(
    positioned: tuple[OrderManager, SimBroker],
) -> None:
    manager, broker = positioned
    held = manager.store.positions()
    assert held == {"SYN00": Decimal(300), "SYN01": Decimal(-200), "SYN02": Decimal(100)}
    refused = manager.submit(_intent("model", "SYN00", "buy", 10, "new"))
    assert refused.state is IntentState.REJECTED and "HALTED" in (refused.last_error or "")
    plan = manager.plan_flatten(SESSION)
    sent = manager.submit_flatten(plan.intents, authorised_by="alice", reason="desk flatten")
    assert {(i.symbol, i.side.value, i.qty) for i in sent} == {("SYN00", "sell", 300), ("SYN01", "buy", 200), ("SYN02", "sell", 100)}
    again = manager.submit_flatten(plan.intents, authorised_by="alice", reason="desk flatten")
    assert [i.client_order_id for i in again] == [i.client_order_id for i in sent]
    _fill_all(manager, broker)
    assert manager.store.positions() == {}
    assert {p.symbol: p.qty for p in broker.positions() if p.qty} == {}
    flatten_orders = [o for o in broker.all_orders() if o.client_order_id.startswith("CIDv2:flatten:")]
    assert sorted(o.client_order_id for o in flatten_orders) == sorted(i.client_order_id for i in sent)
    audit = manager.flatten_audit()
    assert [(a.client_order_id, a.authorised_by, a.reason, a.trading_state) for a in audit] == [
        (i.client_order_id, "alice", "desk flatten", TradingState.HALTED) for i in sent
    ]
    assert {a.symbol: a.position_before for a in audit} == held
    assert manager.trading_state.get(ACCOUNT).state is TradingState.HALTED  # flatten does not reset the switch
    assert manager.plan_flatten(SESSION).intents == ()


def test_retry_after_a_crash_mid_flatten_sends_nothing_twice(oms_store: IntentStore, positioned: tuple[OrderManager, SimBroker]) -> None:
    manager, broker = positioned
    plan = manager.plan_flatten(SESSION)
    sends = 0

    def crash_after_second_send(point: Checkpoint) -> None:
        nonlocal sends
        if point is Checkpoint.AFTER_SEND:
            sends += 1
            if sends == 2:
                raise Crash

    crashing = _manager(oms_store, broker, crash_after_second_send)
    with pytest.raises(Crash):
        crashing.submit_flatten(plan.intents, authorised_by="alice", reason="flatten, first try")
    restarted = _manager(oms_store, broker)  # a new process: start-up reconciliation adopts what was sent
    replanned = restarted.plan_flatten(SESSION)  # the two sent are open: only the third is planned again
    assert [i.client_order_id for i in replanned.intents] == [plan.intents[2].client_order_id]
    assert set(replanned.skipped) == {plan.intents[0].symbol, plan.intents[1].symbol}
    restarted.submit_flatten(plan.intents, authorised_by="alice", reason="flatten, retry")  # the same ids again
    restarted.submit_flatten(replanned.intents, authorised_by="alice", reason="flatten, retry")
    _fill_all(restarted, broker)
    per_cid: dict[str, int] = {}
    for order in broker.all_orders():
        per_cid[order.client_order_id] = per_cid.get(order.client_order_id, 0) + 1
    assert all(per_cid[i.client_order_id] == 1 for i in plan.intents)
    assert restarted.store.positions() == {}
    audit = restarted.flatten_audit()
    assert len(audit) == len(plan.intents) and audit[0].reason == "flatten, first try"


REFUSED = [
    pytest.param("model", "SYN00", "sell", 300, id="not-a-flatten-strategy"),
    pytest.param(FLATTEN_STRATEGY, "SYN00", "sell", 299, id="partial-close"),
    pytest.param(FLATTEN_STRATEGY, "SYN00", "sell", 301, id="flips-through-flat"),
    pytest.param(FLATTEN_STRATEGY, "SYN00", "buy", 300, id="adds-to-long"),
    pytest.param(FLATTEN_STRATEGY, "SYN01", "sell", 5, id="adds-to-short"),
    pytest.param(FLATTEN_STRATEGY, "NEW", "buy", 10, id="opens-a-position"),
]


@pytest.mark.parametrize(("strategy", "symbol", "side", "qty"), REFUSED)
def test_a_non_closing_order_is_refused_by_the_flatten_path_and_nothing_is_written(
    positioned: tuple[OrderManager, SimBroker], strategy: str, symbol: str, side: str, qty: int
) -> None:
    manager, broker = positioned
    orders_before = len(broker.all_orders())
    good = [i for i in manager.plan_flatten(SESSION).intents if i.symbol == "SYN02"]
    with pytest.raises(FlattenRefused, match="nothing was sent"):
        manager.submit_flatten([*good, _intent(strategy, symbol, side, qty, "bad")], authorised_by="alice", reason="x")
    assert len(broker.all_orders()) == orders_before
    assert manager.flatten_audit() == []
    assert manager.store.open_intents() == []


def test_flatten_is_refused_while_other_orders_are_open_in_the_symbol(positioned: tuple[OrderManager, SimBroker]) -> None:
    manager, _ = positioned
    manager.trading_state.set(ACCOUNT, TradingState.REDUCING, reason="let a reducing order rest", changed_by="tester")
    resting = manager.submit(_intent("model", "SYN00", "sell", 50, "resting"))
    assert resting.state is IntentState.ACKED
    plan = manager.plan_flatten(SESSION)
    assert "SYN00" in plan.skipped and all(i.symbol != "SYN00" for i in plan.intents)
    forced = closing_orders({"SYN00": Decimal(300)}, [], SESSION).intents
    with pytest.raises(FlattenRefused, match="cancel them first"):
        manager.submit_flatten(forced, authorised_by="alice", reason="x")


def test_flatten_needs_who_and_why(positioned: tuple[OrderManager, SimBroker]) -> None:
    manager, _ = positioned
    with pytest.raises(FlattenRefused, match="authorised_by, reason"):
        manager.submit_flatten(manager.plan_flatten(SESSION).intents, authorised_by=" ", reason="x")


def test_cancel_open_cancels_every_open_order_while_halted(oms_store: IntentStore, tmp_path: Path) -> None:
    broker = open_broker(tmp_path / "sim.sqlite")
    manager = _manager(oms_store, broker)
    resting = manager.submit_all([_intent("model", s, "buy", 100, "rest") for s in SYMBOLS])
    assert all(i.state is IntentState.ACKED for i in resting)
    manager.trading_state.set(ACCOUNT, TradingState.HALTED, reason="kill", changed_by="tester")
    outcomes = manager.cancel_open()
    assert sorted(o.before.client_order_id for o in outcomes) == sorted(i.client_order_id for i in resting)
    assert all(o.error is None and o.after is not None and o.after.state is IntentState.CANCELED for o in outcomes)
    assert manager.store.open_intents() == [] and broker.list_open_orders() == []
