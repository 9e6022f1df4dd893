"""OrderManager: write-ahead submission, blocking until reconciliation, checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ai_trading.brokers.sim import SimBroker
from ai_trading.errors import BrokerError, OrderRejected, TradingBlocked, UnknownOutcomeError
from ai_trading.oms.broker import BatchBroker, BrokerFill, BrokerOrder, BrokerPosition, OrderRequest, SubmitOutcome
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import Checkpoint, OrderManager
from ai_trading.oms.models import IntentState, TradingState
from ai_trading.oms.reconcile import order_request
from ai_trading.oms.trading_state import TradingStateStore
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


class _BatchFates:
    """A batch broker that answers each order of a batch with a given fate: ``ok``,
    ``lost`` (sent, reply lost), ``rejected`` (refused, not sent), ``down`` (never sent);
    an id the broker already holds is refused as a duplicate by the broker itself."""

    def __init__(self, inner: SimBroker, fates: list[str]) -> None:
        self.inner = inner
        self.fates = fates

    def submit_batch(self, requests: Sequence[OrderRequest]) -> list[SubmitOutcome]:
        sent = [r for r, fate in zip(requests, self.fates, strict=True) if fate in ("ok", "lost")]
        answers = iter(self.inner.submit_batch(sent))
        outcomes: list[SubmitOutcome] = []
        for fate in self.fates:
            if fate == "rejected":
                outcomes.append(OrderRejected("insufficient buying power"))
            elif fate == "down":
                outcomes.append(BrokerError("cannot connect: order not sent"))
            else:
                answer = next(answers)
                lost = fate == "lost" and isinstance(answer, BrokerOrder)
                outcomes.append(UnknownOutcomeError("read timeout after the request was sent") if lost else answer)
        return outcomes

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_each_outcome_of_a_batch_send_is_resolved_as_a_single_send_resolves_it(oms_store: IntentStore, broker: SimBroker) -> None:
    intents = make_intents(6, 5)
    manager = OrderManager(oms_store, _BatchFates(broker, ["ok", "ok", "lost", "rejected", "down"]), NO_GRACE)  # type: ignore[arg-type]
    manager.start()
    broker.submit(order_request(intents[1]))  # already at the broker (an earlier send): refused as a duplicate
    stored = manager.submit_batch(intents)
    assert [i.state for i in stored] == [IntentState.ACKED, IntentState.ACKED, IntentState.ACKED, IntentState.REJECTED, IntentState.SUBMITTED]
    by_cid = {o.client_order_id: o.broker_order_id for o in broker.all_orders()}
    assert [i.broker_order_id for i in stored[:3]] == [by_cid[i.client_order_id] for i in intents[:3]]
    assert stored[3].last_error == "insufficient buying power" and stored[4].broker_order_id is None
    arrivals = [(s.client_order_id, s.accepted) for s in broker.submissions()]
    cids = [i.client_order_id for i in intents]
    assert sorted(arrivals) == sorted([(cids[1], True), (cids[0], True), (cids[1], False), (cids[2], True)])


def test_a_batch_broker_gets_one_send_after_one_read_of_the_trading_state(
    oms_store: IntentStore, broker: SimBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = OrderManager(oms_store, broker, NO_GRACE)
    manager.start()
    reads: list[str] = []
    read = TradingStateStore.get
    monkeypatch.setattr(TradingStateStore, "get", lambda self, account: reads.append(account) or read(self, account))
    monkeypatch.setattr(SimBroker, "submit", lambda self, request: pytest.fail("a batch broker got a single submit"))
    stored = manager.submit_batch(make_intents(7, 6))
    assert all(i.state is IntentState.ACKED for i in stored) and len(broker.all_orders()) == 6
    assert reads == [manager.account]


class _OneByOne:
    """A broker without a batch capability (as Alpaca): one ``submit`` per order. Before
    sending the order at ``halt_at`` a kill switch elsewhere commits HALTED."""

    def __init__(self, inner: SimBroker, manager_state: TradingStateStore, account: str, halt_at: int) -> None:
        self.inner, self.state, self.account, self.halt_at = inner, manager_state, account, halt_at
        self.sent = 0

    def submit(self, request: OrderRequest) -> BrokerOrder:
        if self.sent == self.halt_at:
            self.state.set(self.account, TradingState.HALTED, reason="kill switch", changed_by="other")
        self.sent += 1
        return self.inner.submit(request)

    def cancel(self, broker_order_id: str) -> None:
        self.inner.cancel(broker_order_id)

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        return self.inner.get_order(client_order_id)

    def list_open_orders(self) -> list[BrokerOrder]:
        return self.inner.list_open_orders()

    def list_fills(self, since: datetime | None = None) -> list[BrokerFill]:
        return self.inner.list_fills(since)

    def positions(self) -> list[BrokerPosition]:
        return self.inner.positions()


def test_without_a_batch_capability_each_send_reads_the_state_so_a_halt_stops_the_rest(oms_store: IntentStore, broker: SimBroker) -> None:
    one_by_one = _OneByOne(broker, TradingStateStore(oms_store.engine), "default", halt_at=1)
    manager = OrderManager(oms_store, one_by_one, NO_GRACE, account="default")
    assert not isinstance(one_by_one, BatchBroker)
    manager.start()
    stored = manager.submit_batch(make_intents(8, 4))
    # The second order's state was read before the halt committed: it went, nothing after it.
    assert [i.state for i in stored] == [IntentState.ACKED, IntentState.ACKED, IntentState.REJECTED, IntentState.REJECTED]
    assert all("HALTED" in (i.last_error or "") for i in stored[2:])
    assert [s.client_order_id for s in broker.submissions()] == [i.client_order_id for i in stored[:2]]
