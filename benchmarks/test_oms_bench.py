"""Full intent life cycles per second through the intent store, against hand-written SQL.

One life cycle is create -> SUBMITTED -> ACKED -> fill (-> FILLED), four committed
transactions of guarded statements. The baseline issues the same statements (same guards,
same event rows, same durability settings) through raw sqlite3 / psycopg in the same run,
so the ratio is the cost of SQLAlchemy Core and the store's bookkeeping. Target >= 0.5.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ai_trading.config import OmsConfig
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.migrate import upgrade
from ai_trading.oms.models import Fill, IntentState, OrderIntent, utc_now

QTY = Decimal("100")
PRICE = Decimal("187.25")
FEE = Decimal("0.35")
_serial = itertools.count()


def _cid(prefix: str) -> str:
    return f"{prefix}-{next(_serial)}"


def store_lifecycles(store: IntentStore, count: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(count):
            cid = _cid("orm")
            intent = store.create(OrderIntent.new(client_order_id=cid, strategy="bench", symbol="AAPL", side="buy", qty=QTY))
            intent = store.transition(intent, IntentState.SUBMITTED)
            intent = store.transition(intent, IntentState.ACKED, broker_order_id=f"b-{cid}")
            fill = Fill(broker_fill_id=f"f-{cid}", client_order_id=cid, qty=QTY, price=PRICE, fee=FEE, ts=utc_now())
            assert store.record_fill(fill).intent.state is IntentState.FILLED

    return run


# The store's statements, spelled by hand ({p} is the driver's parameter marker).
INSERT_INTENT = (
    "INSERT INTO intents (client_order_id, strategy, symbol, side, qty, order_type, limit_price, time_in_force, state, "
    "filled_qty, filled_notional, fees, broker_order_id, version, attempts, last_error, created_at, updated_at) "
    "VALUES ({p}, 'bench', 'AAPL', 'buy', {p}, 'market', NULL, 'day', 'CREATED', {p}, {p}, {p}, NULL, 1, 0, NULL, {p}, {p}) "
    "ON CONFLICT (client_order_id) DO NOTHING RETURNING id"
)
INSERT_EVENT = (
    "INSERT INTO intent_events (intent_id, event, from_state, to_state, version, detail, ts) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})"
)
UPDATE_STATE = (
    "UPDATE intents SET state = {p}, attempts = {p}, broker_order_id = {p}, version = {p}, updated_at = {p} "
    "WHERE client_order_id = {p} AND version = {p} AND state = {p} RETURNING id"
)
SELECT_INTENT = (
    "SELECT id, qty, state, filled_qty, filled_notional, fees, version FROM intents WHERE client_order_id = {p}"
)
INSERT_FILL = (
    "INSERT INTO fills (broker_fill_id, intent_id, qty, price, fee, ts, recorded_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) "
    "ON CONFLICT (broker_fill_id) DO NOTHING RETURNING id"
)
UPDATE_FILL = (
    "UPDATE intents SET state = {p}, filled_qty = {p}, filled_notional = {p}, fees = {p}, version = {p}, updated_at = {p} "
    "WHERE client_order_id = {p} AND version = {p} AND state = {p} RETURNING id"
)


STATEMENTS = {
    "INSERT_INTENT": INSERT_INTENT,
    "INSERT_EVENT": INSERT_EVENT,
    "UPDATE_STATE": UPDATE_STATE,
    "SELECT_INTENT": SELECT_INTENT,
    "INSERT_FILL": INSERT_FILL,
    "UPDATE_FILL": UPDATE_FILL,
}


def raw_lifecycles(
    connection: Any,
    param_marker: str,
    decimal: Callable[[Decimal], Any],
    stamp: Callable[[datetime], Any],
    count: int,
) -> Callable[[], None]:
    """The baseline: one DB-API connection in autocommit mode, explicit transactions, the
    store's statements and guards; ``decimal``/``stamp`` bind values as the store's types do."""
    sql = {name: text.format(p=param_marker) for name, text in STATEMENTS.items()}

    def transaction(steps: Callable[[Any], None]) -> None:
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE" if param_marker == "?" else "BEGIN")
        steps(cursor)
        cursor.execute("COMMIT")

    def run() -> None:
        for _ in range(count):
            cid = _cid("raw")
            zero = decimal(Decimal(0))

            def create(cur: Any) -> None:
                now = stamp(utc_now())
                cur.execute(sql["INSERT_INTENT"], (cid, decimal(QTY), zero, zero, zero, now, now))
                intent_id = cur.fetchone()[0]
                cur.execute(sql["INSERT_EVENT"], (intent_id, "CREATED", None, "CREATED", 1, None, now))

            def move(src: str, dst: str, version: int, attempts: int, broker_id: str | None) -> Callable[[Any], None]:
                def step(cur: Any) -> None:
                    now = stamp(utc_now())
                    cur.execute(sql["UPDATE_STATE"], (dst, attempts, broker_id, version + 1, now, cid, version, src))
                    intent_id = cur.fetchone()[0]
                    detail = None if broker_id is None else f'{{"broker_order_id": "{broker_id}"}}'
                    cur.execute(sql["INSERT_EVENT"], (intent_id, "TRANSITION", src, dst, version + 1, detail, now))

                return step

            def fill(cur: Any) -> None:
                now = stamp(utc_now())
                cur.execute(sql["SELECT_INTENT"], (cid,))
                intent_id, qty, state, filled, notional, fees, version = cur.fetchone()
                cur.execute(sql["INSERT_FILL"], (f"f-{cid}", intent_id, decimal(QTY), decimal(PRICE), decimal(FEE), now, now))
                assert cur.fetchone() is not None
                new_filled = Decimal(filled) + QTY
                new_state = "FILLED" if new_filled == Decimal(qty) else "PARTIAL_FILLED"
                values = (new_filled, Decimal(notional) + QTY * PRICE, Decimal(fees) + FEE)
                cur.execute(sql["UPDATE_FILL"], (new_state, *map(decimal, values), version + 1, now, cid, version, state))
                assert cur.fetchone() is not None
                detail = f'{{"broker_fill_id": "f-{cid}", "fee": "{FEE}", "price": "{PRICE}", "qty": "{QTY}"}}'
                cur.execute(sql["INSERT_EVENT"], (intent_id, "FILL", state, new_state, version + 1, detail, now))

            transaction(create)
            transaction(move("CREATED", "SUBMITTED", 1, 1, None))
            transaction(move("SUBMITTED", "ACKED", 2, 1, f"b-{cid}"))
            transaction(fill)

    return run


def _sqlite_connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """A raw connection with the store's settings (see ai_trading.oms.engine)."""
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in (f"busy_timeout = {busy_timeout_ms}", "journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON"):
        connection.execute(f"PRAGMA {pragma}")
    return connection


def _sizes(full_size: bool) -> tuple[int, int]:
    """(store lifecycles, baseline lifecycles) per round."""
    return (200, 200) if full_size else (10, 10)


def test_intent_lifecycles_sqlite(throughput: Any, tmp_path: Path) -> None:
    store_config = OmsConfig(dsn=f"sqlite:///{tmp_path / 'store.sqlite'}")
    raw_path = tmp_path / "raw.sqlite"
    upgrade(store_config)
    upgrade(OmsConfig(dsn=f"sqlite:///{raw_path}"))
    items, baseline_items = _sizes(throughput.full_size)
    raw = _sqlite_connect(raw_path, int(store_config.sqlite_busy_timeout_s * 1000))
    sqlite_text = lambda t: t.replace(tzinfo=None).isoformat(" ")  # noqa: E731 - as SQLAlchemy stores it
    baseline = raw_lifecycles(raw, "?", lambda d: format(d, "f"), sqlite_text, baseline_items)
    with IntentStore.open(store_config) as store:
        throughput.measure(store_lifecycles(store, items), items, baseline, baseline_items)
        assert len(store.list_intents([IntentState.FILLED])) >= items
    raw.close()


@pytest.mark.postgres
def test_intent_lifecycles_postgres(throughput: Any, create_postgres_database: Callable[[str], str]) -> None:
    import psycopg

    store_url, raw_url = create_postgres_database("ai_trading_bench"), create_postgres_database("ai_trading_bench")
    upgrade(OmsConfig(dsn=store_url))
    upgrade(OmsConfig(dsn=raw_url))
    items, baseline_items = _sizes(throughput.full_size)
    with psycopg.connect(raw_url, autocommit=True) as raw, IntentStore.open(OmsConfig(dsn=store_url)) as store:
        baseline = raw_lifecycles(raw, "%s", lambda d: d, lambda t: t, baseline_items)
        throughput.measure(store_lifecycles(store, items), items, baseline, baseline_items)
        assert len(store.list_intents([IntentState.FILLED])) >= items
