"""The durable intent store: intents, fills, their events and foreign orders.

Every change is guarded (``UPDATE intents ... WHERE client_order_id = ? AND version = ?
AND state = ?`` plus an event row, see :mod:`ai_trading.oms.intent_writer`): when the
guard matches no row another writer got there first, and
:class:`~ai_trading.errors.ConcurrencyConflict` is raised: the caller reloads and decides
again; nothing is ever overwritten. A single change is one transaction; :meth:`IntentStore.writes`
gives one transaction to many (a poll's fills and transitions). Recording a fill inserts it
(idempotent on the broker's fill id), advances the intent, its symbol's position and
appends the event together, so a replayed fill is a no-op and a crash leaves all or nothing.

The store opens only a database at the latest Alembic revision (``ai-trading db upgrade``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Self

from sqlalchemy import Connection, Engine, Row, Select, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ai_trading.config import OmsConfig
from ai_trading.errors import IllegalTransition, IntentConflict
from ai_trading.oms.engine import connect, create_oms_engine, transaction
from ai_trading.oms.idempotency import is_client_order_id
from ai_trading.oms.intent_writer import (
    INSERT_EVENT,
    INTENT_COLUMNS,
    SELECT_BY_CID,
    FillResult,
    IntentWriter,
    event_row,
    intent_of,
    plain,
    positions_of,
)
from ai_trading.oms.migrate import require_head
from ai_trading.oms.models import (
    FINAL_STATES,
    Fill,
    ForeignOrder,
    IntentEvent,
    IntentState,
    OrderIntent,
    RebalanceRecord,
    Side,
    utc_now,
)
from ai_trading.oms.rebalance_log import insert_rebalance_statement, write_rebalance
from ai_trading.oms.schema import fills, foreign_orders, intent_events, intents

logger = logging.getLogger(__name__)

FOREIGN_COLUMNS = tuple(column for column in foreign_orders.c if column.name != "id")
FOREIGN_REFRESHED = ("client_order_id", "cid_shaped", "symbol", "side", "qty", "filled_qty", "status", "last_seen_at")


@dataclass(frozen=True)
class BatchResult:
    """What :meth:`IntentStore.create_batch` stored: the intents as stored (new or found,
    in the order given) and the id of the rebalance record (None when none was given)."""

    intents: list[OrderIntent]
    rebalance_id: int | None


class IntentStore:
    """Intents, fills, their event log and foreign orders in PostgreSQL or SQLite.

    :param engine: engine of a database at the head revision (see :meth:`open`); raises
        :class:`~ai_trading.errors.StoreNotMigrated` otherwise
    """

    def __init__(self, engine: Engine) -> None:
        require_head(engine)
        self._engine = engine
        # One connection per thread, kept for the store's life: a pool checkout per
        # transaction would cost more than the statements of a short transition.
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._connections_lock = threading.Lock()
        insert: Callable[..., Any] = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert
        self._insert_intent = (
            insert(intents).on_conflict_do_nothing(index_elements=[intents.c.client_order_id]).returning(intents.c.id)
        )
        self._insert_intents = (
            insert(intents)
            .on_conflict_do_nothing(index_elements=[intents.c.client_order_id])
            .returning(intents.c.id, intents.c.client_order_id)
        )
        self._insert_rebalance = insert_rebalance_statement(insert)
        upsert = insert(foreign_orders)
        self._upsert_foreign = upsert.on_conflict_do_update(
            index_elements=[foreign_orders.c.broker_order_id], set_={key: upsert.excluded[key] for key in FOREIGN_REFRESHED}
        ).returning(*FOREIGN_COLUMNS)

    @classmethod
    def open(cls, config: OmsConfig) -> Self:
        """The store of ``config.dsn``, with its own engine (closed by :meth:`close`)."""
        engine = create_oms_engine(config)
        with ExitStack() as on_failure:
            on_failure.callback(engine.dispose)
            store = cls(engine)
            on_failure.pop_all()
        return store

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- intents -------------------------------------------------------------------------

    def create(self, intent: OrderIntent) -> OrderIntent:
        """Persist a new CREATED intent (write-ahead: before anything is sent).

        Idempotent: when the client_order_id is already stored for the same order, the stored
        intent is returned unchanged (whatever its state); for a different order
        :class:`~ai_trading.errors.IntentConflict` is raised.
        """
        if intent.state is not IntentState.CREATED or intent.version != 1 or intent.filled_qty or intent.attempts:
            raise IllegalTransition(f"intent {intent.client_order_id}: a new intent must be CREATED, version 1, unsent and unfilled")
        values = plain({column.name: getattr(intent, column.name) for column in INTENT_COLUMNS})
        with self.writes() as writer:
            intent_id = writer.connection.execute(self._insert_intent, values).scalar_one_or_none()
            if intent_id is None:
                stored = writer.require(intent.client_order_id)[1]
                if not stored.same_order(intent):
                    raise IntentConflict(
                        f"intent {intent.client_order_id} already exists for a different order "
                        f"({stored.side} {stored.qty} {stored.symbol} {stored.order_type}); a CIDv2 id names one order"
                    )
                return stored
            writer.append_event(intent_id, "CREATED", None, intent, None)
        logger.info("OMS_INTENT_CREATED", extra={"client_order_id": intent.client_order_id})
        return intent

    def create_batch(self, batch: Sequence[OrderIntent], *, rebalance: RebalanceRecord | None = None) -> BatchResult:
        """Persist many new CREATED intents, and the rebalance that decided them, in ONE transaction.

        One multi-row insert writes the intents and one their events, instead of a
        transaction per intent. Idempotent like :meth:`create`: an id already stored for
        the same order is returned as stored; for a different order
        :class:`~ai_trading.errors.IntentConflict` is raised and nothing is written. A
        ``rebalance`` whose key is already stored keeps its first record and denials.
        """
        for intent in batch:
            if intent.state is not IntentState.CREATED or intent.version != 1 or intent.filled_qty or intent.attempts:
                raise IllegalTransition(f"intent {intent.client_order_id}: a new intent must be CREATED, version 1, unsent and unfilled")
        cids = [intent.client_order_id for intent in batch]
        if len(set(cids)) != len(cids):
            raise IntentConflict("a batch names the same client_order_id twice; a CIDv2 id names one order")
        with self._transaction() as connection:
            rebalance_id = None if rebalance is None else write_rebalance(connection, self._insert_rebalance, rebalance)
            rows = [plain({column.name: getattr(intent, column.name) for column in INTENT_COLUMNS}) for intent in batch]
            inserted = (
                {row.client_order_id: row.id for row in connection.execute(self._insert_intents, rows)} if rows else {}
            )
            existing = [cid for cid in cids if cid not in inserted]
            stored = {} if not existing else {
                row.client_order_id: intent_of(row)
                for row in connection.execute(select(*INTENT_COLUMNS).where(intents.c.client_order_id.in_(existing)))
            }  # fmt: skip
            for intent in batch:
                found = stored.get(intent.client_order_id)
                if found is not None and not found.same_order(intent):
                    raise IntentConflict(
                        f"intent {intent.client_order_id} already exists for a different order "
                        f"({found.side} {found.qty} {found.symbol} {found.order_type}); a CIDv2 id names one order"
                    )
            events = [event_row(inserted[i.client_order_id], "CREATED", None, i, None) for i in batch if i.client_order_id in inserted]
            if events:
                connection.execute(INSERT_EVENT, events)
        logger.info("OMS_INTENTS_CREATED", extra={"intents_created": len(inserted), "found": len(existing), "rebalance_id": rebalance_id})
        return BatchResult([stored.get(i.client_order_id, i) for i in batch], rebalance_id)

    def claim_batch(self, batch: Sequence[OrderIntent]) -> list[OrderIntent]:
        """CREATED -> SUBMITTED for every intent of ``batch`` still CREATED, in one statement
        and one transaction; returns the claimed ones (the claim is what lets only one
        process send an intent: intents another writer moved first are left out)."""
        created = {i.client_order_id: i for i in batch if i.state is IntentState.CREATED}
        if not created:
            return []
        now = utc_now()
        claim = (
            update(intents)
            .where(and_(intents.c.client_order_id.in_(list(created)), intents.c.state == IntentState.CREATED.value))
            .values(
                state=IntentState.SUBMITTED.value,
                attempts=intents.c.attempts + 1,
                version=intents.c.version + 1,
                updated_at=now,
            )
            .returning(intents.c.id, intents.c.client_order_id, intents.c.version, intents.c.attempts)
        )
        with self._transaction() as connection:
            claimed: list[tuple[int, OrderIntent]] = []
            for row in connection.execute(claim):
                after = replace(
                    created[row.client_order_id], state=IntentState.SUBMITTED, version=row.version, attempts=row.attempts, updated_at=now
                )
                claimed.append((row.id, after))
            if claimed:
                connection.execute(INSERT_EVENT, [event_row(i, "TRANSITION", IntentState.CREATED, a, None) for i, a in claimed])
        order = {cid: k for k, cid in enumerate(created)}
        return sorted((intent for _, intent in claimed), key=lambda intent: order[intent.client_order_id])

    def acknowledge_batch(self, acks: Sequence[tuple[OrderIntent, str]]) -> list[OrderIntent]:
        """SUBMITTED -> ACKED with the broker's order id for each ``(intent, broker_order_id)``,
        all in one transaction; returns the acknowledged intents. An intent another writer
        moved first (a concurrent poll adopted it) is left out, not overwritten. One guarded
        ``UPDATE`` and one multi-row event insert serve the whole batch."""
        with self.writes() as writer:
            done = writer.acknowledge(acks)
        logger.info("OMS_INTENTS_ACKED", extra={"acked": len(done)})
        return done

    def count_created_since(self, since: datetime) -> int:
        """How many intents were created at or after ``since`` (the order rate limit's count)."""
        query = select(func.count()).select_from(intents).where(intents.c.created_at >= since)
        with self._transaction() as connection:
            return int(connection.execute(query).scalar_one())

    def created_at(self, stamp: datetime) -> list[OrderIntent]:
        """The intents created at exactly ``stamp`` (one batch shares its stamp), oldest first."""
        query = select(*INTENT_COLUMNS).where(intents.c.created_at == stamp).order_by(intents.c.id)
        return [intent_of(row) for row in self._rows(query)]

    def get(self, client_order_id: str) -> OrderIntent | None:
        """The stored intent, or None."""
        with self._transaction() as connection:
            row = connection.execute(SELECT_BY_CID, {"cid": client_order_id}).first()
        return None if row is None else intent_of(row)

    def list_intents(self, states: Iterable[IntentState] | None = None) -> list[OrderIntent]:
        """Intents in ``states`` (all when None), oldest first."""
        query = select(*INTENT_COLUMNS).order_by(intents.c.id)
        if states is not None:
            query = query.where(intents.c.state.in_([IntentState(state).value for state in states]))
        return [intent_of(row) for row in self._rows(query)]

    def open_intents(self) -> list[OrderIntent]:
        """Intents not in a final state: what reconciliation must resolve, oldest first."""
        return self.list_intents(set(IntentState) - FINAL_STATES)

    def transition(
        self,
        intent: OrderIntent,
        to: IntentState,
        *,
        broker_order_id: str | None = None,
        error: str | None = None,
    ) -> OrderIntent:
        """Move ``intent`` (as last read) to state ``to``; returns the stored result.

        Entering SUBMITTED counts one send attempt. PARTIAL_FILLED and FILLED follow only from
        :meth:`record_fill`. Raises :class:`~ai_trading.errors.IllegalTransition` for a move
        the table forbids and :class:`~ai_trading.errors.ConcurrencyConflict` when the stored
        intent is no longer at ``intent.state`` and ``intent.version``.
        """
        with self.writes() as writer:
            return writer.transition(intent, to, broker_order_id=broker_order_id, error=error)

    def record_attempt(self, intent: OrderIntent, *, error: str | None = None) -> OrderIntent:
        """Count one more send of a SUBMITTED intent (a resend under the same id), noting ``error``."""
        if intent.state is not IntentState.SUBMITTED:
            raise IllegalTransition(f"intent {intent.client_order_id} is {intent.state}: only SUBMITTED intents are (re)sent")
        changes: dict[str, Any] = {"attempts": intent.attempts + 1}
        if error is not None:
            changes["last_error"] = error
        with self.writes() as writer:
            updated = writer.update(intent, changes, "ATTEMPT", {"error": error})
        logger.info("OMS_INTENT_ATTEMPT", extra={"client_order_id": intent.client_order_id, "attempts": updated.attempts})
        return updated

    # -- fills ---------------------------------------------------------------------------

    def record_fill(self, fill: Fill, *, broker_order_id: str | None = None) -> FillResult:
        """Record one broker fill and advance its intent, in one transaction.

        A fill whose ``broker_fill_id`` is already stored is a no-op (``applied`` False); one
        stored with different values raises :class:`~ai_trading.errors.IntentConflict`.
        Cumulative quantity decides PARTIAL_FILLED / FILLED (late fills after a cancel keep
        CANCELED until complete); more than the order quantity raises
        :class:`~ai_trading.errors.OverfillError` and records nothing. ``broker_order_id`` is
        stored when the intent has none yet (its acknowledgement may have been lost).
        """
        with self.writes() as writer:
            return writer.record_fill(fill, broker_order_id=broker_order_id)

    def get_fills(self, client_order_id: str) -> list[Fill]:
        """The recorded fills of an intent, in recording order."""
        query = (
            select(fills.c.broker_fill_id, intents.c.client_order_id, fills.c.qty, fills.c.price, fills.c.fee, fills.c.ts)
            .join(intents, fills.c.intent_id == intents.c.id)
            .where(intents.c.client_order_id == client_order_id)
            .order_by(fills.c.id)
        )
        return [Fill(**row._mapping) for row in self._rows(query)]

    def positions(self) -> dict[str, Decimal]:
        """Net position per symbol (buys positive): the exact sum of the recorded fills,
        kept per symbol as each fill is recorded (one row per symbol is read).

        Flat symbols are left out, as brokers leave them out of their position lists.
        """
        with self._transaction() as connection:
            return positions_of(connection)

    # -- events --------------------------------------------------------------------------

    def get_events(self, client_order_id: str) -> list[IntentEvent]:
        """The append-only history of an intent, oldest first."""
        query = (
            select(
                intent_events.c.event,
                intent_events.c.from_state,
                intent_events.c.to_state,
                intent_events.c.version,
                intent_events.c.detail,
                intent_events.c.ts,
            )
            .join(intents, intent_events.c.intent_id == intents.c.id)
            .where(intents.c.client_order_id == client_order_id)
            .order_by(intent_events.c.id)
        )
        return [
            IntentEvent(
                client_order_id=client_order_id,
                event=row.event,
                from_state=None if row.from_state is None else IntentState(row.from_state),
                to_state=IntentState(row.to_state),
                version=row.version,
                detail=None if row.detail is None else json.loads(row.detail),
                ts=row.ts,
            )
            for row in self._rows(query)
        ]

    # -- foreign orders ------------------------------------------------------------------

    def upsert_foreign_order(
        self,
        *,
        broker_order_id: str,
        client_order_id: str | None,
        symbol: str,
        side: Side | str,
        qty: Decimal,
        filled_qty: Decimal,
        status: str,
        seen_at: datetime | None = None,
    ) -> ForeignOrder:
        """Record (or refresh) a broker order the OMS did not create; keeps its first sighting."""
        seen = utc_now() if seen_at is None else seen_at
        values = {
            "broker_order_id": broker_order_id,
            "client_order_id": client_order_id,
            "cid_shaped": client_order_id is not None and is_client_order_id(client_order_id),
            "symbol": symbol,
            "side": Side(side).value,
            "qty": qty,
            "filled_qty": filled_qty,
            "status": status,
            "first_seen_at": seen,
            "last_seen_at": seen,
        }
        with self._transaction() as connection:
            row = connection.execute(self._upsert_foreign, values).one()
        logger.info("OMS_FOREIGN_ORDER_SEEN", extra={"broker_order_id": broker_order_id, "client_order_id": client_order_id})
        return ForeignOrder(**row._mapping)

    def foreign_orders(self) -> list[ForeignOrder]:
        """Every foreign order seen, in order of first sighting."""
        return [ForeignOrder(**row._mapping) for row in self._rows(select(*FOREIGN_COLUMNS).order_by(foreign_orders.c.id))]

    # -- transactions --------------------------------------------------------------------

    @contextmanager
    def writes(self) -> Iterator[IntentWriter]:
        """One transaction for many changes: everything done through the yielded writer
        commits together when the block ends, or not at all when an error escapes it (a
        crash inside leaves nothing of it). Intents it reads are locked until then."""
        with self._transaction() as connection:
            writer = IntentWriter(connection)
            yield writer
            writer.finish()

    # -- internals -----------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """This thread's connection inside one transaction (committed unless an error escapes).

        A connection lost in an earlier transaction is replaced through :func:`connect`,
        so that a database still down reads as :class:`DatabaseUnavailable` here too."""
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is not None and (connection.closed or connection.invalidated):
            self._forget(connection)
            connection = None
        if connection is None:
            connection = connect(self._engine)
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        with transaction(connection):
            yield connection

    def _forget(self, connection: Connection) -> None:
        """Close this thread's ``connection`` and drop it from the store."""
        self._local.connection = None
        connection.close()
        with self._connections_lock:
            self._connections.remove(connection)

    def _rows(self, query: Select[Any]) -> list[Row[Any]]:
        with self._transaction() as connection:
            return list(connection.execute(query))
