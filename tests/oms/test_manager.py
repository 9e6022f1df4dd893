"""OrderManager: write-ahead submission, blocking until reconciliation, checkpoints."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ai_trading.brokers.sim import SimBroker
from ai_trading.errors import BrokerError, TradingBlocked, UnknownOutcomeError
from ai_trading.oms.broker import BrokerOrder, OrderRequest
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import Checkpoint, OrderManager
from ai_trading.oms.models import IntentState
from tests.oms.oms_harness import NO_GRACE, check_invariants, finish, make_intents, open_broker


@pytest.fixture()
def broker(tmp_path: Path) -> SimBroker:
    return open_broker(tmp_path / "broker.sqlite")


def test_trading_is_blocked_until_start_up_reconciliation_passes(oms_store: IntentStore, broker: SimBroker) -> None:
    manager = OrderManager(oms_store, broker, NO_GRACE)
    intent = make_intents(0, 1)[0]
    with pytest.raises(TradingBlocked, match="start"):
        manager.submit(intent)
    assert oms_store.get(intent.client_order_id) is None and broker.all_orders() == []
    report = manager.start()
    assert report.passed and manager.trading_allowed
    assert manager.submit(intent).state is IntentState.ACKED


def test_a_failed_reconciliation_keeps_trading_blocked(oms_store: IntentStore, broker: SimBroker) -> None:
    # Someone else trades the account: the broker holds a position the OMS cannot explain.
    broker.submit(OrderRequest(client_order_id="manual-1", symbol="SYN00", side="buy", qty=Decimal(100)))
    broker.advance(6)
    manager = OrderManager(oms_store, broker, NO_GRACE)
    report = manager.start()
    assert not report.passed and report.position_mismatches
    with pytest.raises(TradingBlocked, match="differences"):
        manager.submit(make_intents(0, 1)[0])


def test_batch_runs_to_final_states_with_matching_positions(oms_store: IntentStore, broker: SimBroker) -> None:
    manager = OrderManager(oms_store, broker, NO_GRACE)
    manager.start()
    intents = make_intents(1, 6)
    finish(manager, broker, intents)
    assert check_invariants(oms_store, broker, intents) == []
    states = {oms_store.get(i.client_order_id).state for i in intents}  # type: ignore[union-attr]
    assert IntentState.FILLED in states
    events = [e.event for e in oms_store.get_events(intents[0].client_order_id)]
    assert events[:3] == ["CREATED", "TRANSITION", "TRANSITION"] and "FILL" in events


def test_checkpoints_fire_in_order(oms_store: IntentStore, broker: SimBroker) -> None:
    seen: list[Checkpoint] = []
    manager = OrderManager(oms_store, broker, NO_GRACE, checkpoint=seen.append)
    manager.start()
    finish(manager, broker, make_intents(2, 1))
    assert seen[:3] == [Checkpoint.AFTER_CREATED, Checkpoint.AFTER_SUBMITTED, Checkpoint.AFTER_SEND]
    assert set(seen[3:]) == {Checkpoint.DURING_FILLS} and len(seen) > 3


def test_resubmitting_an_existing_intent_never_sends_it_again(oms_store: IntentStore, broker: SimBroker) -> None:
    manager = OrderManager(oms_store, broker, NO_GRACE)
    manager.start()
    intent = make_intents(3, 1)[0]
    manager.submit(intent)
    again = manager.submit(intent)
    assert again.state is IntentState.ACKED
    assert [s.client_order_id for s in broker.submissions()] == [intent.client_order_id]


class _LosesReplies:
    """A broker whose submit reaches the exchange but whose reply is lost (a read timeout)."""

    def __init__(self, inner: SimBroker) -> None:
        self.inner = inner

    def submit(self, request: OrderRequest) -> BrokerOrder:
        self.inner.submit(request)
        raise UnknownOutcomeError("read timeout after the request was sent")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


class _Unreachable(_LosesReplies):
    def submit(self, request: OrderRequest) -> BrokerOrder:
        raise BrokerError("cannot connect: order not sent")


def test_unknown_outcome_is_resolved_by_lookup_not_resend(oms_store: IntentStore, broker: SimBroker) -> None:
    manager = OrderManager(oms_store, _LosesReplies(broker), NO_GRACE)  # type: ignore[arg-type]
    manager.start()
    intent = make_intents(4, 1)[0]
    stored = manager.submit(intent)
    assert stored.state is IntentState.ACKED and stored.broker_order_id is not None
    assert [s.client_order_id for s in broker.submissions()] == [intent.client_order_id]


def test_an_order_that_never_arrived_is_resent_under_the_same_id(oms_store: IntentStore, broker: SimBroker) -> None:
    down = OrderManager(oms_store, _Unreachable(broker), NO_GRACE)  # type: ignore[arg-type]
    down.start()
    intent = make_intents(5, 1)[0]
    assert down.submit(intent).state is IntentState.SUBMITTED
    assert broker.all_orders() == []
    report = OrderManager(oms_store, broker, NO_GRACE).start()
    assert report.resent == [intent.client_order_id] and report.passed
    assert oms_store.get(intent.client_order_id).state is IntentState.ACKED  # type: ignore[union-attr]
    assert [o.client_order_id for o in broker.all_orders()] == [intent.client_order_id]
