"""Writes that share one transaction: incremental positions, the one-statement batch
acknowledgement, an all-or-nothing reconciliation pass, and the positions backfill."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, select

from ai_trading.config import OmsConfig
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.intent_writer import EXACT
from ai_trading.oms.migrate import downgrade, upgrade
from ai_trading.oms.models import Fill, IntentState, OrderIntent, Side
from ai_trading.oms.reconcile import Reconciler, order_request
from ai_trading.oms.schema import fills, intents
from tests.oms.oms_harness import NO_GRACE, check_invariants, make_intents, open_broker

S = IntentState
T0 = datetime(2024, 1, 5, 14, 30, tzinfo=UTC)
SYMBOLS = ("AAA", "BBB", "CCC")
RUNS = itertools.count()


class Injected(RuntimeError):
    """The crash stand-in raised inside a reconciliation pass."""


def _intent(cid: str, symbol: str, side: str, qty: Decimal) -> OrderIntent:
    return OrderIntent.new(client_order_id=cid, strategy="mom", symbol=symbol, side=side, qty=qty, now=T0)  # type: ignore[arg-type]


def _acked(store: IntentStore, intent: OrderIntent) -> OrderIntent:
    created = store.create(intent)
    return store.transition(store.transition(created, S.SUBMITTED), S.ACKED, broker_order_id=f"b-{intent.client_order_id}")


def reference_positions(store: IntentStore) -> dict[str, Decimal]:
    """The slow, obviously correct book: every stored fill, signed by its intent's side."""
    query = select(intents.c.symbol, intents.c.side, fills.c.qty).join(intents, fills.c.intent_id == intents.c.id)
    totals: dict[str, Decimal] = {}
    with store.engine.connect() as connection, localcontext(EXACT):
        for symbol, side, qty in connection.execute(query):
            totals[symbol] = totals.get(symbol, Decimal(0)) + Side(side).sign * qty
    return {symbol: qty for symbol, qty in totals.items() if qty}


ORDERS = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.sampled_from(["buy", "sell"]),
        st.decimals(min_value=Decimal("0.001"), max_value=Decimal(500), places=3),
        st.integers(min_value=1, max_value=3),  # fills the order is split into
        st.booleans(),  # recorded in one shared transaction (a poll) or one by one
        st.booleans(),  # every fill replayed once more
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders=ORDERS)
def test_positions_equal_the_sum_of_all_fills(oms_store: IntentStore, orders: list[tuple[str, str, Decimal, int, bool, bool]]) -> None:
    run = next(RUNS)
    for k, (symbol, side, qty, parts, shared, replay) in enumerate(orders):
        intent = _acked(oms_store, _intent(f"r{run}-{k}", symbol, side, qty))
        units = int(qty.scaleb(3))  # whole thousandths, split exactly into parts > 0
        parts = min(parts, units)
        sizes = [Decimal(units // parts).scaleb(-3)] * (parts - 1)
        sizes.append(Decimal(units - units // parts * (parts - 1)).scaleb(-3))
        batch = [
            Fill(broker_fill_id=f"f{run}-{k}-{j}", client_order_id=intent.client_order_id, qty=size, price=Decimal("10.25"),
                 fee=Decimal("0.01"), ts=T0 + timedelta(seconds=j))
            for j, size in enumerate(sizes)
        ]  # fmt: skip
        batch += batch if replay else []
        if shared:
            with oms_store.writes() as writer:
                applied = [writer.record_fill(fill).applied for fill in batch]
        else:
            applied = [oms_store.record_fill(fill).applied for fill in batch]
        assert applied == [True] * parts + [False] * (parts if replay else 0)
        assert oms_store.get(intent.client_order_id).state is S.FILLED  # type: ignore[union-attr]
    assert oms_store.positions() == reference_positions(oms_store)


def test_a_failed_shared_transaction_leaves_no_position(oms_store: IntentStore) -> None:
    intent = _acked(oms_store, _intent("c-1", "AAA", "buy", Decimal(5)))
    fill = Fill(broker_fill_id="f-1", client_order_id="c-1", qty=Decimal(2), price=Decimal(10), fee=Decimal(0), ts=T0)
    with pytest.raises(Injected), oms_store.writes() as writer:
        writer.record_fill(fill)
        raise Injected("crash before commit")
    assert oms_store.get("c-1") == intent and oms_store.get_fills("c-1") == []
    assert oms_store.positions() == {} == reference_positions(oms_store)


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()[:3]).upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_acknowledge_batch_is_one_update_and_leaves_lost_races_out(oms_store: IntentStore, oms_database_url: str) -> None:
    claimed = []
    for k in range(5):
        created = oms_store.create(_intent(f"a-{k}", SYMBOLS[k % 3], "buy", Decimal(k + 1)))
        claimed.append(oms_store.transition(created, S.SUBMITTED))
    with IntentStore.open(OmsConfig(dsn=oms_database_url)) as other:  # another writer moves a-2 first
        other.transition(claimed[2], S.ACKED, broker_order_id="b-other")
    acks = [(intent, f"b-{intent.client_order_id}") for intent in claimed]
    with _statements(oms_store.engine) as seen:
        done = oms_store.acknowledge_batch(acks)
    assert [i.client_order_id for i in done] == ["a-0", "a-1", "a-3", "a-4"]
    assert seen.count("UPDATE INTENTS SET") == 1 and seen.count("INSERT INTO INTENT_EVENTS") == 1
    for intent in claimed:
        stored = oms_store.get(intent.client_order_id)
        assert stored is not None and stored.state is S.ACKED and stored.version == intent.version + 1
        expected = "b-other" if intent.client_order_id == "a-2" else f"b-{intent.client_order_id}"
        assert stored.broker_order_id == expected
        assert [(e.from_state, e.to_state) for e in oms_store.get_events(intent.client_order_id)][-1] == (S.SUBMITTED, S.ACKED)
    assert oms_store.acknowledge_batch(acks) == []  # every guard now stale: nothing overwritten


def test_a_reconciliation_pass_is_all_or_nothing(oms_store: IntentStore, tmp_path: Path) -> None:
    broker = open_broker(tmp_path / "broker.sqlite")
    batch = make_intents(0, 4)
    for intent in batch:
        oms_store.create(intent)
    claimed = oms_store.claim_batch(batch)
    for intent in claimed:
        broker.submit(order_request(intent))
    broker.advance(6)
    assert len(broker.list_fills()) >= 2
    recorded = itertools.count(1)

    def crash_at_second_fill() -> None:
        if next(recorded) == 2:
            raise Injected("killed mid-pass")

    before = {i.client_order_id: oms_store.get(i.client_order_id) for i in batch}
    with pytest.raises(Injected):
        Reconciler(oms_store, broker, NO_GRACE, on_fill_recorded=crash_at_second_fill).sync()
    assert {i.client_order_id: oms_store.get(i.client_order_id) for i in batch} == before
    assert all(oms_store.get_fills(i.client_order_id) == [] for i in batch)
    assert oms_store.positions() == {}
    report = Reconciler(oms_store, broker, NO_GRACE).sync()
    assert report.fills_applied == len(broker.list_fills())
    assert all(oms_store.get(i.client_order_id).state is not S.SUBMITTED for i in batch)  # type: ignore[union-attr]
    assert oms_store.positions() == reference_positions(oms_store)
    assert check_invariants(oms_store, broker, batch) == []


def test_upgrade_to_0007_sums_the_fills_already_recorded(oms_store: IntentStore, oms_database_url: str) -> None:
    config = OmsConfig(dsn=oms_database_url)
    with oms_store as store:
        _acked(store, _intent("m-1", "AAA", "buy", Decimal("7.5")))
        _acked(store, _intent("m-2", "AAA", "sell", Decimal("2.25")))
        _acked(store, _intent("m-3", "BBB", "sell", Decimal(1)))
        for k, (cid, qty) in enumerate([("m-1", "7.5"), ("m-2", "2.25"), ("m-3", "1")]):
            store.record_fill(Fill(broker_fill_id=f"mf-{k}", client_order_id=cid, qty=Decimal(qty), price=Decimal(3), fee=Decimal(0), ts=T0))
        expected = reference_positions(store)
        assert store.positions() == expected == {"AAA": Decimal("5.25"), "BBB": Decimal(-1)}
    downgrade(config, "0006")
    upgrade(config)
    with IntentStore.open(config) as store:
        assert store.positions() == expected
