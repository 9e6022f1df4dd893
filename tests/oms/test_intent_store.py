"""The intent store on SQLite and PostgreSQL: guarded transitions, idempotent fills, exactness."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ai_trading.config import OmsConfig
from ai_trading.errors import ConcurrencyConflict, IllegalTransition, IntentConflict, OverfillError, UnknownIntent
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.models import FILL_DRIVEN, TRANSITIONS, Fill, IntentState, OrderIntent
from ai_trading.oms.schema import fills, intent_events

S = IntentState
ALL_PAIRS = list(itertools.product(IntentState, IntentState))
QTY = Decimal("10")
T0 = datetime(2024, 1, 5, 14, 30, tzinfo=UTC)
CID = "CIDv2:mom:AAPL:buy:20240105:1d:0123456789abcdef:10:1"


def _intent(cid: str = CID, *, symbol: str = "AAPL", side: str = "buy", qty: Decimal = QTY, **extra: object) -> OrderIntent:
    return OrderIntent.new(client_order_id=cid, strategy="mom", symbol=symbol, side=side, qty=qty, now=T0, **extra)  # type: ignore[arg-type]


def _fill(fill_id: str, qty: Decimal, price: Decimal = Decimal("100.5"), cid: str = CID, fee: Decimal = Decimal("0.35")) -> Fill:
    return Fill(broker_fill_id=fill_id, client_order_id=cid, qty=qty, price=price, fee=fee, ts=T0 + timedelta(seconds=1))


def _drive_to(store: IntentStore, state: IntentState, cid: str = CID) -> OrderIntent:
    """An intent brought to ``state`` through the store's public API."""
    intent = store.create(_intent(cid))
    if state is S.CREATED:
        return intent
    intent = store.transition(intent, S.SUBMITTED)
    if state is S.SUBMITTED:
        return intent
    if state is S.REJECTED:
        return store.transition(intent, S.REJECTED, error="insufficient buying power")
    intent = store.transition(intent, S.ACKED, broker_order_id="b-1")
    if state is S.ACKED:
        return intent
    if state is S.CANCELED:
        return store.transition(intent, S.CANCELED)
    qty = QTY if state is S.FILLED else Decimal("4")
    return store.record_fill(_fill("f-setup", qty, cid=cid)).intent


def _event_count(store: IntentStore) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(intent_events)).scalar_one())


@pytest.mark.parametrize(("src", "dst"), ALL_PAIRS)
def test_every_transition_pair(oms_store: IntentStore, src: IntentState, dst: IntentState) -> None:
    intent = _drive_to(oms_store, src)
    assert intent.state is src
    events_before = _event_count(oms_store)
    allowed = dst in TRANSITIONS[src]
    if (src, dst) in FILL_DRIVEN:
        qty = intent.remaining_qty if dst is S.FILLED else Decimal("1")

        def attempt() -> OrderIntent:
            return oms_store.record_fill(_fill("f-attempt", qty)).intent
    else:

        def attempt() -> OrderIntent:
            return oms_store.transition(intent, dst)

    if allowed:
        after = attempt()
        assert (after.state, after.version) == (dst, intent.version + 1)
        assert oms_store.get(CID) == after
        assert _event_count(oms_store) == events_before + 1
    else:
        with pytest.raises(IllegalTransition):
            attempt()
        assert oms_store.get(CID) == intent
        assert _event_count(oms_store) == events_before


@pytest.mark.parametrize("state", [S.CREATED, S.FILLED, S.REJECTED])
def test_states_that_refuse_fills(oms_store: IntentStore, state: IntentState) -> None:
    intent = _drive_to(oms_store, state)
    with pytest.raises(IllegalTransition):
        oms_store.record_fill(_fill("f-late", Decimal("1")))
    assert oms_store.get(CID) == intent
    assert [f.broker_fill_id for f in oms_store.get_fills(CID)] == (["f-setup"] if state is S.FILLED else [])


@pytest.mark.parametrize("dst", [S.PARTIAL_FILLED, S.FILLED])
def test_fill_states_cannot_be_set_by_hand(oms_store: IntentStore, dst: IntentState) -> None:
    intent = _drive_to(oms_store, S.ACKED)
    with pytest.raises(IllegalTransition, match="record_fill"):
        oms_store.transition(intent, dst)


def test_lost_race_raises_and_never_overwrites(oms_store: IntentStore, oms_database_url: str) -> None:
    intent = _drive_to(oms_store, S.ACKED)
    with IntentStore.open(OmsConfig(dsn=oms_database_url)) as other:
        seen_by_other = other.get(CID)
        assert seen_by_other == intent
        canceled = oms_store.transition(intent, S.CANCELED)
        with pytest.raises(ConcurrencyConflict, match="another writer"):
            other.transition(seen_by_other, S.REJECTED, error="late reject")
        assert other.get(CID) == canceled
    # The same stale copy loses on the winning store too.
    with pytest.raises(ConcurrencyConflict):
        oms_store.transition(intent, S.REJECTED)
    assert oms_store.get(CID) == canceled


def test_fill_after_concurrent_change_sees_the_new_version(oms_store: IntentStore, oms_database_url: str) -> None:
    _drive_to(oms_store, S.ACKED)
    with IntentStore.open(OmsConfig(dsn=oms_database_url)) as other:
        other.record_fill(_fill("f-1", Decimal("4")))
    result = oms_store.record_fill(_fill("f-2", Decimal("6")))
    assert (result.intent.state, result.intent.filled_qty, result.intent.version) == (S.FILLED, QTY, 5)


def test_replayed_fill_is_a_no_op(oms_store: IntentStore) -> None:
    _drive_to(oms_store, S.ACKED)
    first = oms_store.record_fill(_fill("f-1", Decimal("4")))
    events = _event_count(oms_store)
    replay = oms_store.record_fill(_fill("f-1", Decimal("4.000")))
    assert first.applied and not replay.applied
    assert replay.intent == first.intent == oms_store.get(CID)
    assert _event_count(oms_store) == events
    assert len(oms_store.get_fills(CID)) == 1
    with pytest.raises(IntentConflict, match="different values"):
        oms_store.record_fill(_fill("f-1", Decimal("5")))
    assert oms_store.get(CID) == first.intent


def test_overfill_raises_and_records_nothing(oms_store: IntentStore) -> None:
    _drive_to(oms_store, S.ACKED)
    partial = oms_store.record_fill(_fill("f-1", Decimal("9.5"))).intent
    events = _event_count(oms_store)
    with pytest.raises(OverfillError):
        oms_store.record_fill(_fill("f-2", Decimal("0.5000001")))
    assert oms_store.get(CID) == partial
    assert [f.broker_fill_id for f in oms_store.get_fills(CID)] == ["f-1"]
    assert _event_count(oms_store) == events


def test_late_fills_after_cancel(oms_store: IntentStore) -> None:
    intent = _drive_to(oms_store, S.ACKED)
    oms_store.record_fill(_fill("f-1", Decimal("4")))
    canceled = oms_store.transition(oms_store.get(CID) or intent, S.CANCELED)
    late = oms_store.record_fill(_fill("f-2", Decimal("3"))).intent
    assert (canceled.state, late.state, late.filled_qty) == (S.CANCELED, S.CANCELED, Decimal("7"))
    assert oms_store.record_fill(_fill("f-3", Decimal("3"))).intent.state is S.FILLED


def test_decimals_are_exact(oms_store: IntentStore) -> None:
    qty = Decimal("12345678901234567890.123456789012345678")
    limit = Decimal("98765.432109876543210987654321")
    cid = "exact-1"
    stored = oms_store.create(_intent(cid, qty=qty, order_type="limit", limit_price=limit))
    oms_store.transition(stored, S.SUBMITTED)
    parts = [Decimal("0.000000000000000001"), Decimal("12345678901234567890.000000000000000001"), Decimal("0.123456789012345676")]
    prices = [Decimal("0.1"), Decimal("0.2"), Decimal("98765.432109876543210987654321")]
    for number, (part, price) in enumerate(zip(parts, prices, strict=True)):
        oms_store.record_fill(_fill(f"x-{number}", part, price=price, cid=cid, fee=Decimal("0.000000000000000003")))
    final = oms_store.get(cid)
    assert final is not None
    assert (final.qty, final.limit_price, final.state) == (qty, limit, S.FILLED)
    with localcontext(prec=200):  # wide enough that the reference sums are exact
        assert final.filled_qty == qty == sum(parts)
        notional = sum(p * q for p, q in zip(parts, prices, strict=True))
    assert len(notional.as_tuple().digits) > 28  # beyond the default Decimal precision
    assert final.filled_notional == notional
    assert final.fees == Decimal("0.000000000000000009")
    assert [f.qty for f in oms_store.get_fills(cid)] == parts
    assert oms_store.positions() == {"AAPL": qty}


def test_timestamps_are_utc_aware(oms_store: IntentStore) -> None:
    new_york = timezone(timedelta(hours=-5))
    intent = OrderIntent.new(client_order_id=CID, strategy="mom", symbol="AAPL", side="buy", qty=QTY, now=T0.astimezone(new_york))
    oms_store.create(intent)
    stored = oms_store.get(CID)
    assert stored is not None and stored.created_at == T0 and stored.created_at.utcoffset() == timedelta(0)
    assert all(event.ts.tzinfo is not None for event in oms_store.get_events(CID))


def test_events_are_appended_in_order(oms_store: IntentStore) -> None:
    intent = _drive_to(oms_store, S.ACKED)
    intent = oms_store.record_fill(_fill("f-1", Decimal("4"))).intent
    oms_store.record_fill(_fill("f-2", Decimal("6")))
    events = oms_store.get_events(CID)
    assert [e.event for e in events] == ["CREATED", "TRANSITION", "TRANSITION", "FILL", "FILL"]
    assert [e.version for e in events] == [1, 2, 3, 4, 5]
    assert [e.to_state for e in events] == [S.CREATED, S.SUBMITTED, S.ACKED, S.PARTIAL_FILLED, S.FILLED]
    assert [e.from_state for e in events] == [None, S.CREATED, S.SUBMITTED, S.ACKED, S.PARTIAL_FILLED]
    assert events[2].detail == {"broker_order_id": "b-1"}
    assert events[3].detail == {"broker_fill_id": "f-1", "qty": "4", "price": "100.5", "fee": "0.35"}
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(events))


def test_create_is_idempotent_per_order(oms_store: IntentStore) -> None:
    submitted = _drive_to(oms_store, S.SUBMITTED)
    assert oms_store.create(_intent()) == submitted
    with pytest.raises(IntentConflict, match="different order"):
        oms_store.create(_intent(qty=Decimal("11")))
    with pytest.raises(IllegalTransition):
        oms_store.create(submitted)


def test_attempts_and_errors(oms_store: IntentStore) -> None:
    submitted = _drive_to(oms_store, S.SUBMITTED)
    resent = oms_store.record_attempt(submitted, error="timeout")
    assert (resent.attempts, resent.last_error, resent.version) == (2, "timeout", submitted.version + 1)
    assert oms_store.get(CID) == resent
    acked = oms_store.transition(resent, S.ACKED, broker_order_id="b-9")
    with pytest.raises(IllegalTransition):
        oms_store.record_attempt(acked)


def test_queries(oms_store: IntentStore) -> None:
    buy = _drive_to(oms_store, S.ACKED, cid="buy-aapl")
    oms_store.record_fill(_fill("f-1", Decimal("10"), cid=buy.client_order_id))
    sell = oms_store.transition(oms_store.transition(oms_store.create(_intent("sell-aapl", side="sell", qty=Decimal("2.5"))), S.SUBMITTED), S.ACKED)
    oms_store.record_fill(_fill("f-2", Decimal("2.5"), cid=sell.client_order_id))
    flat = oms_store.transition(oms_store.create(_intent("buy-msft", symbol="MSFT", qty=Decimal("1"))), S.SUBMITTED)
    oms_store.record_fill(_fill("f-3", Decimal("1"), cid=flat.client_order_id))
    flat_out = oms_store.transition(oms_store.create(_intent("sell-msft", symbol="MSFT", side="sell", qty=Decimal("1"))), S.SUBMITTED)
    oms_store.record_fill(_fill("f-4", Decimal("1"), cid=flat_out.client_order_id))
    waiting = oms_store.create(_intent("waiting"))
    assert oms_store.positions() == {"AAPL": Decimal("7.5")}
    assert [i.client_order_id for i in oms_store.open_intents()] == ["waiting"]
    assert oms_store.open_intents() == [waiting]
    assert len(oms_store.list_intents()) == 5
    assert [i.client_order_id for i in oms_store.list_intents([S.FILLED])] == ["buy-aapl", "sell-aapl", "buy-msft", "sell-msft"]
    assert oms_store.get("missing") is None
    with pytest.raises(UnknownIntent):
        oms_store.record_fill(_fill("f-5", Decimal("1"), cid="missing"))


def test_fill_sets_a_missing_broker_order_id(oms_store: IntentStore) -> None:
    _drive_to(oms_store, S.SUBMITTED)
    after = oms_store.record_fill(_fill("f-1", Decimal("1")), broker_order_id="b-late").intent
    assert (after.state, after.broker_order_id) == (S.PARTIAL_FILLED, "b-late")
    assert oms_store.record_fill(_fill("f-2", Decimal("1")), broker_order_id="b-other").intent.broker_order_id == "b-late"


def test_foreign_orders_upsert(oms_store: IntentStore) -> None:
    cid_shaped = "CIDv2:other:MSFT:sell:20240105:1d:0123456789abcdef:3:1"
    first = oms_store.upsert_foreign_order(
        broker_order_id="x-1", client_order_id="manual-1", symbol="MSFT", side="sell",
        qty=Decimal("3"), filled_qty=Decimal("0"), status="new", seen_at=T0,
    )
    again = oms_store.upsert_foreign_order(
        broker_order_id="x-1", client_order_id="manual-1", symbol="MSFT", side="sell",
        qty=Decimal("3"), filled_qty=Decimal("1.5"), status="partially_filled", seen_at=T0 + timedelta(minutes=5),
    )
    shaped = oms_store.upsert_foreign_order(
        broker_order_id="x-2", client_order_id=cid_shaped, symbol="MSFT", side="sell",
        qty=Decimal("3"), filled_qty=Decimal("0"), status="new", seen_at=T0,
    )
    assert (first.cid_shaped, shaped.cid_shaped) == (False, True)
    assert (again.first_seen_at, again.last_seen_at, again.filled_qty) == (T0, T0 + timedelta(minutes=5), Decimal("1.5"))
    assert oms_store.foreign_orders() == [again, shaped]
    assert oms_store.list_intents() == []


SHARED_FILE_WRITER = textwrap.dedent(
    """
    import sys
    from decimal import Decimal, localcontext
    from ai_trading.config import OmsConfig
    from ai_trading.oms.intent_store import IntentStore
    from ai_trading.oms.models import Fill, IntentState, OrderIntent, utc_now

    url, prefix = sys.argv[1], sys.argv[2]
    with IntentStore.open(OmsConfig(dsn=url)) as store:
        for n in range(25):
            cid = f"{prefix}-{n}"
            intent = store.create(OrderIntent.new(client_order_id=cid, strategy="s", symbol="AAPL", side="buy", qty=Decimal(1)))
            intent = store.transition(intent, IntentState.SUBMITTED)
            store.record_fill(Fill(broker_fill_id=cid, client_order_id=cid, qty=Decimal(1), price=Decimal(1), ts=utc_now()))
    """
)


@pytest.mark.parametrize("oms_database_url", ["sqlite"], indirect=True)
def test_two_processes_share_a_sqlite_file(oms_store: IntentStore, oms_database_url: str, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(SHARED_FILE_WRITER)
    writers = [subprocess.Popen([sys.executable, str(script), oms_database_url, name]) for name in ("p", "q")]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0]
    assert len(oms_store.list_intents([S.FILLED])) == 50
    assert oms_store.positions() == {"AAPL": Decimal(50)}
    with oms_store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(fills)).scalar_one() == 50
