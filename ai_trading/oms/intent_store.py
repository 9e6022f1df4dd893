"""The durable intent store: every intent change is one guarded transaction.

Each change is ``UPDATE intents ... WHERE client_order_id = ? AND version = ? AND state = ?``
plus an event row, committed together. When the guard matches no row another writer got
there first, and :class:`~ai_trading.errors.ConcurrencyConflict` is raised: the caller
reloads and decides again; nothing is ever overwritten. Recording a fill inserts it
(idempotent on the broker's fill id), advances the intent and appends the event in one
transaction, so a replayed fill is a no-op and a crash leaves either all or nothing.

The store opens only a database at the latest Alembic revision (``ai-trading db upgrade``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, Inexact, localcontext
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, Row, Select, and_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ai_trading.config import OmsConfig
from ai_trading.errors import ConcurrencyConflict, IllegalTransition, IntentConflict, UnknownIntent
from ai_trading.oms.engine import connect, create_oms_engine, transaction
from ai_trading.oms.idempotency import is_client_order_id
from ai_trading.oms.migrate import require_head
from ai_trading.oms.models import (
    FILL_DRIVEN,
    FINAL_STATES,
    ZERO,
    Fill,
    ForeignOrder,
    IntentEvent,
    IntentState,
    OrderIntent,
    RebalanceRecord,
    Side,
    check_transition,
    state_after_fill,
    utc_now,
)
from ai_trading.oms.rebalance_log import insert_rebalance_statement, write_rebalance
from ai_trading.oms.schema import fills, foreign_orders, intent_events, intents

logger = logging.getLogger(__name__)

# Sums and products of Decimals are exact or raise: no silent rounding of money or quantity.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact])
INTENT_COLUMNS = tuple(column for column in intents.c if column.name != "id")
FOREIGN_COLUMNS = tuple(column for column in foreign_orders.c if column.name != "id")
# Statements are built once and executed with parameters: SQLAlchemy then reuses their
# compiled form instead of rebuilding and re-keying a statement per call.
SELECT_BY_CID = select(intents.c.id, *INTENT_COLUMNS).where(intents.c.client_order_id == bindparam("cid"))
GUARDED_UPDATE = (
    update(intents)
    .where(
        intents.c.client_order_id == bindparam("guard_cid"),
        intents.c.version == bindparam("guard_version"),
        intents.c.state == bindparam("guard_state"),
    )
    .returning(intents.c.id)
)
INSERT_EVENT = intent_events.insert()
FOREIGN_REFRESHED = ("client_order_id", "cid_shaped", "symbol", "side", "qty", "filled_qty", "status", "last_seen_at")


@dataclass(frozen=True)
class BatchResult:
    """What :meth:`IntentStore.create_batch` stored: the intents as stored (new or found,
    in the order given) and the id of the rebalance record (None when none was given)."""

    intents: list[OrderIntent]
    rebalance_id: int | None


@dataclass(frozen=True)
class FillResult:
    """What :meth:`IntentStore.record_fill` did: the intent after it, and whether the fill was new."""

    intent: OrderIntent
    applied: bool


def _intent(row: Row[Any]) -> OrderIntent:
    return OrderIntent(**{column.name: row._mapping[column.name] for column in INTENT_COLUMNS})


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Enum members as their values: drivers must not guess how to bind them."""
    return {key: value.value if isinstance(value, StrEnum) else value for key, value in values.items()}


def _detail(values: Mapping[str, object]) -> str | None:
    present = {
        key: format(value, "f") if isinstance(value, Decimal) else str(value)
        for key, value in values.items()
        if value is not None
    }
    return json.dumps(present, sort_keys=True) if present else None


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
        self._insert_fill = insert(fills).on_conflict_do_nothing(index_elements=[fills.c.broker_fill_id]).returning(fills.c.id)
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

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
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
        values = _plain({column.name: getattr(intent, column.name) for column in INTENT_COLUMNS})
        with self._transaction() as connection:
            intent_id = connection.execute(self._insert_intent, values).scalar_one_or_none()
            if intent_id is None:
                stored = self._require(connection, intent.client_order_id)
                if not stored.same_order(intent):
                    raise IntentConflict(
                        f"intent {intent.client_order_id} already exists for a different order "
                        f"({stored.side} {stored.qty} {stored.symbol} {stored.order_type}); a CIDv2 id names one order"
                    )
                return stored
            self._append_event(connection, intent_id, "CREATED", None, intent, None)
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
            rows = [_plain({column.name: getattr(intent, column.name) for column in INTENT_COLUMNS}) for intent in batch]
            inserted = (
                {row.client_order_id: row.id for row in connection.execute(self._insert_intents, rows)} if rows else {}
            )
            existing = [cid for cid in cids if cid not in inserted]
            stored = {} if not existing else {
                row.client_order_id: _intent(row)
                for row in connection.execute(select(*INTENT_COLUMNS).where(intents.c.client_order_id.in_(existing)))
            }  # fmt: skip
            for intent in batch:
                found = stored.get(intent.client_order_id)
                if found is not None and not found.same_order(intent):
                    raise IntentConflict(
                        f"intent {intent.client_order_id} already exists for a different order "
                        f"({found.side} {found.qty} {found.symbol} {found.order_type}); a CIDv2 id names one order"
                    )
            events = [self._event_row(inserted[i.client_order_id], "CREATED", None, i, None) for i in batch if i.client_order_id in inserted]
            if events:
                connection.execute(INSERT_EVENT, events)
        logger.info("OMS_INTENTS_CREATED", extra={"created": len(inserted), "found": len(existing), "rebalance_id": rebalance_id})
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
                connection.execute(INSERT_EVENT, [self._event_row(i, "TRANSITION", IntentState.CREATED, a, None) for i, a in claimed])
        order = {cid: k for k, cid in enumerate(created)}
        return sorted((intent for _, intent in claimed), key=lambda intent: order[intent.client_order_id])

    def acknowledge_batch(self, acks: Sequence[tuple[OrderIntent, str]]) -> list[OrderIntent]:
        """SUBMITTED -> ACKED with the broker's order id for each ``(intent, broker_order_id)``,
        all in one transaction; returns the acknowledged intents. An intent another writer
        moved first (a concurrent poll adopted it) is left out, not overwritten."""
        done: list[OrderIntent] = []
        with self._transaction() as connection:
            for intent, broker_order_id in acks:
                check_transition(intent.state, IntentState.ACKED)
                changes = {"state": IntentState.ACKED, "broker_order_id": broker_order_id}
                try:
                    done.append(self._update(connection, intent, changes, "TRANSITION", {"broker_order_id": broker_order_id}))
                except ConcurrencyConflict:
                    logger.info("OMS_ACK_LOST_RACE", extra={"client_order_id": intent.client_order_id})
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
        return [_intent(row) for row in self._rows(query)]

    def get(self, client_order_id: str) -> OrderIntent | None:
        """The stored intent, or None."""
        with self._transaction() as connection:
            row = connection.execute(SELECT_BY_CID, {"cid": client_order_id}).first()
        return None if row is None else _intent(row)

    def list_intents(self, states: Iterable[IntentState] | None = None) -> list[OrderIntent]:
        """Intents in ``states`` (all when None), oldest first."""
        query = select(*INTENT_COLUMNS).order_by(intents.c.id)
        if states is not None:
            query = query.where(intents.c.state.in_([IntentState(state).value for state in states]))
        return [_intent(row) for row in self._rows(query)]

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
        to = IntentState(to)
        if (intent.state, to) in FILL_DRIVEN:
            raise IllegalTransition(f"{intent.state} -> {to} follows from fills: record them with record_fill()")
        check_transition(intent.state, to)
        changes: dict[str, Any] = {"state": to}
        if to is IntentState.SUBMITTED:
            changes["attempts"] = intent.attempts + 1
        if broker_order_id is not None:
            changes["broker_order_id"] = broker_order_id
        if error is not None:
            changes["last_error"] = error
        with self._transaction() as connection:
            updated = self._update(connection, intent, changes, "TRANSITION", {"broker_order_id": broker_order_id, "error": error})
        logger.info(
            "OMS_INTENT_TRANSITION",
            extra={"client_order_id": intent.client_order_id, "from_state": intent.state, "to_state": to},
        )
        return updated

    def record_attempt(self, intent: OrderIntent, *, error: str | None = None) -> OrderIntent:
        """Count one more send of a SUBMITTED intent (a resend under the same id), noting ``error``."""
        if intent.state is not IntentState.SUBMITTED:
            raise IllegalTransition(f"intent {intent.client_order_id} is {intent.state}: only SUBMITTED intents are (re)sent")
        changes: dict[str, Any] = {"attempts": intent.attempts + 1}
        if error is not None:
            changes["last_error"] = error
        with self._transaction() as connection:
            updated = self._update(connection, intent, changes, "ATTEMPT", {"error": error})
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
        with self._transaction() as connection:
            intent_id, current = self._require_with_id(connection, fill.client_order_id)
            row = {
                "broker_fill_id": fill.broker_fill_id,
                "intent_id": intent_id,
                "qty": fill.qty,
                "price": fill.price,
                "fee": fill.fee,
                "ts": fill.ts,
                "recorded_at": utc_now(),
            }
            if connection.execute(self._insert_fill, row).scalar_one_or_none() is None:
                self._check_replay(connection, fill)
                logger.info("OMS_FILL_REPLAYED", extra={"broker_fill_id": fill.broker_fill_id})
                return FillResult(current, applied=False)
            with localcontext(EXACT):
                filled_qty = current.filled_qty + fill.qty
                changes: dict[str, Any] = {
                    "state": state_after_fill(current.state, filled_qty, current.qty),
                    "filled_qty": filled_qty,
                    "filled_notional": current.filled_notional + fill.qty * fill.price,
                    "fees": current.fees + fill.fee,
                }
            if broker_order_id is not None and current.broker_order_id is None:
                changes["broker_order_id"] = broker_order_id
            detail = {"broker_fill_id": fill.broker_fill_id, "qty": fill.qty, "price": fill.price, "fee": fill.fee}
            updated = self._update(connection, current, changes, "FILL", detail)
        logger.info(
            "OMS_FILL_RECORDED",
            extra={"client_order_id": fill.client_order_id, "broker_fill_id": fill.broker_fill_id, "state": updated.state},
        )
        return FillResult(updated, applied=True)

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
        """Net position per symbol (buys positive), summed exactly from the recorded fills.

        Flat symbols are left out, as brokers leave them out of their position lists.
        """
        query = select(intents.c.symbol, intents.c.side, fills.c.qty).join(intents, fills.c.intent_id == intents.c.id)
        totals: dict[str, Decimal] = {}
        with localcontext(EXACT):
            for symbol, side, qty in self._rows(query):
                totals[symbol] = totals.get(symbol, ZERO) + Side(side).sign * qty
        return {symbol: qty for symbol, qty in sorted(totals.items()) if qty}

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

    def _require_with_id(self, connection: Connection, client_order_id: str) -> tuple[int, OrderIntent]:
        row = connection.execute(SELECT_BY_CID, {"cid": client_order_id}).first()
        if row is None:
            raise UnknownIntent(f"no intent with client_order_id {client_order_id!r}; foreign orders are recorded apart")
        return row.id, _intent(row)

    def _require(self, connection: Connection, client_order_id: str) -> OrderIntent:
        return self._require_with_id(connection, client_order_id)[1]

    def _check_replay(self, connection: Connection, fill: Fill) -> None:
        row = connection.execute(
            select(intents.c.client_order_id, fills.c.qty, fills.c.price, fills.c.fee)
            .join(intents, fills.c.intent_id == intents.c.id)
            .where(fills.c.broker_fill_id == fill.broker_fill_id)
        ).one()
        if tuple(row) != (fill.client_order_id, fill.qty, fill.price, fill.fee):
            raise IntentConflict(
                f"fill {fill.broker_fill_id} is already recorded with different values "
                f"(intent {row.client_order_id}, qty {row.qty}, price {row.price}, fee {row.fee})"
            )

    def _update(
        self, connection: Connection, intent: OrderIntent, changes: dict[str, Any], event: str, detail: Mapping[str, object]
    ) -> OrderIntent:
        now = utc_now()
        values = {**changes, "version": intent.version + 1, "updated_at": now}
        guard = {"guard_cid": intent.client_order_id, "guard_version": intent.version, "guard_state": intent.state.value}
        intent_id = connection.execute(GUARDED_UPDATE, {**_plain(values), **guard}).scalar_one_or_none()
        if intent_id is None:
            raise ConcurrencyConflict(
                f"intent {intent.client_order_id} is no longer {intent.state} at version {intent.version}: "
                "another writer changed it first; reload it and decide again"
            )
        updated = replace(intent, **values)
        self._append_event(connection, intent_id, event, intent.state, updated, _detail(detail))
        return updated

    def _append_event(
        self,
        connection: Connection,
        intent_id: int,
        event: str,
        from_state: IntentState | None,
        intent: OrderIntent,
        detail: str | None,
    ) -> None:
        connection.execute(INSERT_EVENT, self._event_row(intent_id, event, from_state, intent, detail))

    @staticmethod
    def _event_row(
        intent_id: int, event: str, from_state: IntentState | None, intent: OrderIntent, detail: str | None
    ) -> dict[str, Any]:
        return {
            "intent_id": intent_id,
            "event": event,
            "from_state": None if from_state is None else from_state.value,
            "to_state": intent.state.value,
            "version": intent.version,
            "detail": detail,
            "ts": intent.updated_at,
        }
