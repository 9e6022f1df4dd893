"""SimBroker.submit_batch: the same orders, fills and audit rows as one submit per order,
in one transaction that a SIGKILL leaves whole or absent."""

from __future__ import annotations

import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ai_trading.errors import DuplicateOrderError, OrderRejected
from ai_trading.oms.broker import BatchBroker, BrokerOrder, OrderRequest, SubmitOutcome, submit_many
from tests.brokers.batch_crash_child import BATCH_SIZE, open_broker, requests

REPO_ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ("SYN00", "SYN01", "SYN02", "SYN03", "ZZZ")  # ZZZ: not traded, rejected
KILL_POINTS = (1, BATCH_SIZE // 2, BATCH_SIZE)  # orders booked inside the transaction before the kill
CHILD_TIMEOUT_S = 120


def _outcome_key(outcome: SubmitOutcome) -> tuple[object, ...]:
    if isinstance(outcome, BrokerOrder):
        return ("order", outcome)
    return (type(outcome).__name__, str(outcome))


request_strategy = st.builds(
    lambda cid, symbol, side, qty, limit: OrderRequest(
        client_order_id=f"c{cid}", symbol=symbol, side=side, qty=Decimal(qty),
        order_type="market" if limit is None else "limit", limit_price=None if limit is None else Decimal(limit),
    ),
    st.integers(0, 25),  # a small id space: duplicates within and across batches
    st.sampled_from(SYMBOLS),
    st.sampled_from(("buy", "sell")),
    st.integers(1, 3_000),
    st.one_of(st.none(), st.integers(5_000, 15_000).map(lambda cents: f"{cents / 100:.2f}")),
)  # fmt: skip
# Batches of requests, each followed by how many bars the clock moves before the next.
batches_strategy = st.lists(st.tuples(st.lists(request_strategy, min_size=0, max_size=12), st.integers(0, 3)), min_size=1, max_size=5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=batches_strategy)
def test_a_batch_books_exactly_what_one_submit_per_order_books(tmp_path_factory: pytest.TempPathFactory, batches: list[tuple[list[OrderRequest], int]]) -> None:
    root = tmp_path_factory.mktemp("batch")
    batched, single = open_broker(root / "batched.sqlite"), open_broker(root / "single.sqlite")
    for broker in (batched, single):
        broker.advance(10)
    for batch, bars in batches:
        from_batch = batched.submit_batch(batch)
        one_by_one: list[SubmitOutcome] = []
        for request in batch:
            try:
                one_by_one.append(single.submit(request))
            except (DuplicateOrderError, OrderRejected) as exc:
                one_by_one.append(exc)
        assert [_outcome_key(o) for o in from_batch] == [_outcome_key(o) for o in one_by_one]
        batched.advance(bars)
        single.advance(bars)
    batched.advance(40)
    single.advance(40)
    assert batched.submissions() == single.submissions()
    assert batched.all_orders() == single.all_orders()
    assert batched.list_fills() == single.list_fills()  # prices, quantities and fees bit for bit


def test_duplicates_are_refused_per_order_and_audited(tmp_path: Path) -> None:
    broker = open_broker(tmp_path / "broker.sqlite")
    first = broker.submit(requests()[0])
    batch = [requests()[0], requests()[1], requests()[1], OrderRequest("x", "ZZZ", "buy", Decimal(1))]
    outcomes = broker.submit_batch(batch)
    assert isinstance(outcomes[0], DuplicateOrderError) and isinstance(outcomes[2], DuplicateOrderError)
    assert isinstance(outcomes[1], BrokerOrder) and isinstance(outcomes[3], OrderRejected)
    assert [o.client_order_id for o in broker.all_orders()] == [first.client_order_id, outcomes[1].client_order_id]
    audit = [(s.client_order_id, s.accepted) for s in broker.submissions()]
    cids = [r.client_order_id for r in requests()[:2]]
    assert audit == [(cids[0], True), (cids[0], False), (cids[1], True), (cids[1], False)]  # the unknown symbol never arrived


def test_submit_many_uses_the_batch_when_the_broker_has_one(tmp_path: Path) -> None:
    broker = open_broker(tmp_path / "broker.sqlite")
    assert isinstance(broker, BatchBroker)
    outcomes = submit_many(broker, requests())
    assert all(isinstance(o, BrokerOrder) for o in outcomes) and len(broker.all_orders()) == BATCH_SIZE


@pytest.mark.parametrize("kill_after", KILL_POINTS)
def test_a_sigkill_inside_the_batch_records_none_of_it(tmp_path: Path, kill_after: int) -> None:
    db = tmp_path / "broker.sqlite"
    command = [sys.executable, "-m", "tests.brokers.batch_crash_child", "--db", str(db), "--kill-after", str(kill_after)]
    child = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    broker = open_broker(db)
    assert broker.all_orders() == [] and broker.submissions() == [] and broker.list_fills() == []
    again = broker.submit_batch(requests())  # the retry after the crash is a first submission
    assert all(isinstance(o, BrokerOrder) for o in again)


def test_a_sigkill_after_the_batch_returned_keeps_all_of_it(tmp_path: Path) -> None:
    db = tmp_path / "broker.sqlite"
    command = [sys.executable, "-m", "tests.brokers.batch_crash_child", "--db", str(db), "--kill-after", "0"]
    child = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    broker = open_broker(db)
    assert [o.client_order_id for o in broker.all_orders()] == [r.client_order_id for r in requests()]
    assert all(s.accepted for s in broker.submissions()) and len(broker.submissions()) == BATCH_SIZE
    assert all(isinstance(o, DuplicateOrderError) for o in broker.submit_batch(requests()))
