"""The guarded writes of intents and fills, all on one open transaction.

An :class:`IntentWriter` is what :meth:`~ai_trading.oms.intent_store.IntentStore.writes`
yields: every change it makes (state transitions, fills, acknowledgements, the running
positions) lands in the caller's one transaction, so a single change commits alone and a
poll of many intents commits all of them together or none (a crash leaves no intent half
updated). Each intent change is ``UPDATE intents ... WHERE client_order_id = ? AND
version = ? AND state = ?`` plus an event row; when the guard matches no row another
writer got there first and :class:`~ai_trading.errors.ConcurrencyConflict` is raised.
Event rows are queued and written in one multi-row insert when the transaction finishes.

Positions are kept incrementally in ``fill_positions`` (one row per symbol, the signed sum
of its fills): each recorded fill adds to its symbol in the same transaction, so reading
positions costs the number of symbols, not the length of the fill history. The deltas of
a transaction are applied at its end in symbol order (after every intent row it changed),
the lock order that keeps concurrent writers on PostgreSQL from deadlocking.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    Context,
    Decimal,
    Inexact,
    localcontext,
)
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import Connection, Row, bindparam, case, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from ai_trading.errors import (
    ConcurrencyConflict,
    IllegalTransition,
    IntentConflict,
    UnknownIntent,
)
from ai_trading.oms.models import (
    FILL_DRIVEN,
    ZERO,
    Fill,
    IntentState,
    OrderIntent,
    check_transition,
    state_after_fill,
    utc_now,
)
from ai_trading.oms.schema import fill_positions, fills, intent_events, intents

logger = logging.getLogger(__name__)

# Sums and products of Decimals are exact or raise: no silent rounding of money or quantity.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact])
INTENT_COLUMNS = tuple(column for column in intents.c if column.name != "id")
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
SELECT_REPLAYED_FILL = (
    select(intents.c.client_order_id, fills.c.qty, fills.c.price, fills.c.fee)
    .join(intents, fills.c.intent_id == intents.c.id)
    .where(fills.c.broker_fill_id == bindparam("fill_id"))
)
SET_POSITION = update(fill_positions).where(fill_positions.c.symbol == bindparam("at")).values(qty=bindparam("new_qty"))


@dataclass(frozen=True)
class FillResult:
    """What :meth:`IntentWriter.record_fill` did: the intent after it, and whether the fill was new."""

    intent: OrderIntent
    applied: bool


@dataclass(frozen=True)
class DialectStatements:
    """The statements whose conflict clause is spelled per dialect (built once per dialect)."""

    insert_fill: Insert
    open_positions: Insert


@cache
def dialect_statements(dialect_name: str) -> DialectStatements:
    insert = (postgresql if dialect_name == "postgresql" else sqlite).insert
    return DialectStatements(
        insert_fill=insert(fills).on_conflict_do_nothing(index_elements=[fills.c.broker_fill_id]).returning(fills.c.id),
        open_positions=insert(fill_positions).on_conflict_do_nothing(index_elements=[fill_positions.c.symbol]),
    )


def intent_of(row: Row[Any]) -> OrderIntent:
    return OrderIntent(**{column.name: row._mapping[column.name] for column in INTENT_COLUMNS})


def plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Enum members as their values: drivers must not guess how to bind them."""
    return {key: value.value if isinstance(value, StrEnum) else value for key, value in values.items()}


def event_detail(values: Mapping[str, object]) -> str | None:
    present = {
        key: format(value, "f") if isinstance(value, Decimal) else str(value)
        for key, value in values.items()
        if value is not None
    }
    return json.dumps(present, sort_keys=True) if present else None


def event_row(intent_id: int, event: str, from_state: IntentState | None, intent: OrderIntent, detail: str | None) -> dict[str, Any]:
    return {
        "intent_id": intent_id,
        "event": event,
        "from_state": None if from_state is None else from_state.value,
        "to_state": intent.state.value,
        "version": intent.version,
        "detail": detail,
        "ts": intent.updated_at,
    }


class IntentWriter:
    """Guarded intent changes, fills and positions inside one open transaction.

    Intents read or written through the writer are remembered by client_order_id, so a
    poll reads each intent once: that is sound because the rows are locked for the
    transaction's life (``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite).

    :param connection: a connection inside the transaction every change joins
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._statements = dialect_statements(connection.dialect.name)
        self._known: dict[str, tuple[int, OrderIntent]] = {}
        self._position_deltas: dict[str, Decimal] = {}
        self._events: list[dict[str, Any]] = []

    @property
    def connection(self) -> Connection:
        return self._connection

    def lock(self, client_order_ids: Collection[str]) -> dict[str, OrderIntent]:
        """The stored intents of ``client_order_ids`` (unknown ids left out), locked for
        this transaction in id order (the order every write of several intents takes)."""
        cids = [cid for cid in dict.fromkeys(client_order_ids) if cid not in self._known]
        if cids:
            query = (
                select(intents.c.id, *INTENT_COLUMNS)
                .where(intents.c.client_order_id.in_(cids))
                .order_by(intents.c.id)
                .with_for_update()
            )
            for row in self._connection.execute(query):
                self._known[row.client_order_id] = (row.id, intent_of(row))
        return {cid: self._known[cid][1] for cid in client_order_ids if cid in self._known}

    def require(self, client_order_id: str) -> tuple[int, OrderIntent]:
        """The id and state of an intent; raises :class:`UnknownIntent` when none is stored."""
        known = self._known.get(client_order_id)
        if known is not None:
            return known
        row = self._connection.execute(SELECT_BY_CID, {"cid": client_order_id}).first()
        if row is None:
            raise UnknownIntent(f"no intent with client_order_id {client_order_id!r}; foreign orders are recorded apart")
        self._known[client_order_id] = (row.id, intent_of(row))
        return self._known[client_order_id]

    def transition(
        self,
        intent: OrderIntent,
        to: IntentState,
        *,
        broker_order_id: str | None = None,
        error: str | None = None,
    ) -> OrderIntent:
        """Move ``intent`` (as last read) to state ``to``; see :meth:`IntentStore.transition`."""
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
        updated = self.update(intent, changes, "TRANSITION", {"broker_order_id": broker_order_id, "error": error})
        logger.info(
            "OMS_INTENT_TRANSITION",
            extra={"client_order_id": intent.client_order_id, "from_state": intent.state, "to_state": to},
        )
        return updated

    def record_fill(self, fill: Fill, *, broker_order_id: str | None = None) -> FillResult:
        """Record one broker fill, advance its intent and its symbol's position; see
        :meth:`IntentStore.record_fill`."""
        intent_id, current = self.require(fill.client_order_id)
        row = {
            "broker_fill_id": fill.broker_fill_id,
            "intent_id": intent_id,
            "qty": fill.qty,
            "price": fill.price,
            "fee": fill.fee,
            "ts": fill.ts,
            "recorded_at": utc_now(),
        }
        if self._connection.execute(self._statements.insert_fill, row).scalar_one_or_none() is None:
            self._check_replay(fill)
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
        updated = self.update(current, changes, "FILL", detail)
        with localcontext(EXACT):
            delta = current.side.sign * fill.qty
            self._position_deltas[current.symbol] = self._position_deltas.get(current.symbol, ZERO) + delta
        logger.info(
            "OMS_FILL_RECORDED",
            extra={"client_order_id": fill.client_order_id, "broker_fill_id": fill.broker_fill_id, "state": updated.state},
        )
        return FillResult(updated, applied=True)

    def acknowledge(self, acks: Sequence[tuple[OrderIntent, str]]) -> list[OrderIntent]:
        """SUBMITTED -> ACKED with the broker's order id for each ``(intent, broker_order_id)``,
        in ONE guarded ``UPDATE`` and one multi-row event insert; returns the acknowledged
        intents in the order given. An intent another writer moved first (its state or
        version no longer as read) is left out, not overwritten."""
        given: dict[str, tuple[OrderIntent, str]] = {}
        for intent, broker_order_id in acks:
            check_transition(intent.state, IntentState.ACKED)
            given.setdefault(intent.client_order_id, (intent, broker_order_id))
        if not given:
            return []
        # Rows locked in id order first, as a poll locks them (no deadlock on PostgreSQL).
        lock = select(intents.c.id).where(intents.c.client_order_id.in_(list(given))).order_by(intents.c.id).with_for_update()
        self._connection.execute(lock).all()
        now = utc_now()
        cid = intents.c.client_order_id
        # The guard is per intent (its version as read), so it is a CASE on the id;
        # literal() types each value, which PostgreSQL needs inside a CASE.
        version_read = case({c: literal(i.version) for c, (i, _) in given.items()}, value=cid)
        broker_id = case({c: literal(b) for c, (_, b) in given.items()}, value=cid)
        statement = (
            update(intents)
            .where(cid.in_(list(given)), intents.c.state == IntentState.SUBMITTED.value, intents.c.version == version_read)
            .values(state=IntentState.ACKED.value, broker_order_id=broker_id, version=intents.c.version + 1, updated_at=now)
            .returning(intents.c.id, cid)
        )
        done: dict[str, OrderIntent] = {}
        for row in self._connection.execute(statement):
            intent, broker_order_id = given[row.client_order_id]
            after = replace(intent, state=IntentState.ACKED, broker_order_id=broker_order_id, version=intent.version + 1, updated_at=now)
            done[row.client_order_id] = after
            self._known[row.client_order_id] = (row.id, after)
            self._events.append(event_row(row.id, "TRANSITION", intent.state, after, event_detail({"broker_order_id": broker_order_id})))
        for lost in given.keys() - done.keys():
            logger.info("OMS_ACK_LOST_RACE", extra={"client_order_id": lost})
        return [done[c] for c in given if c in done]

    def update(self, intent: OrderIntent, changes: dict[str, Any], event: str, detail: Mapping[str, object]) -> OrderIntent:
        """One guarded change of ``intent`` (as last read) and its event row."""
        now = utc_now()
        values = {**changes, "version": intent.version + 1, "updated_at": now}
        guard = {"guard_cid": intent.client_order_id, "guard_version": intent.version, "guard_state": intent.state.value}
        intent_id = self._connection.execute(GUARDED_UPDATE, {**plain(values), **guard}).scalar_one_or_none()
        if intent_id is None:
            self._known.pop(intent.client_order_id, None)
            raise ConcurrencyConflict(
                f"intent {intent.client_order_id} is no longer {intent.state} at version {intent.version}: "
                "another writer changed it first; reload it and decide again"
            )
        updated = replace(intent, **values)
        self._known[intent.client_order_id] = (intent_id, updated)
        self.append_event(intent_id, event, intent.state, updated, event_detail(detail))
        return updated

    def append_event(self, intent_id: int, event: str, from_state: IntentState | None, intent: OrderIntent, detail: str | None) -> None:
        """Queue one event row; :meth:`finish` writes the transaction's events in one insert."""
        self._events.append(event_row(intent_id, event, from_state, intent, detail))

    def finish(self) -> None:
        """Write what this transaction queued, just before it commits: its events (one
        multi-row insert, in the order they happened) and its positions."""
        if self._events:
            self._connection.execute(INSERT_EVENT, self._events)
            self._events = []
        self._flush_positions()

    def _flush_positions(self) -> None:
        """Add this transaction's fills to ``fill_positions``, symbol by symbol in order
        (a missing row is created at zero first, so that it can be locked and read)."""
        deltas = {symbol: delta for symbol, delta in sorted(self._position_deltas.items()) if delta}
        self._position_deltas.clear()
        if not deltas:
            return
        symbols = list(deltas)
        self._connection.execute(self._statements.open_positions, [{"symbol": s, "qty": ZERO} for s in symbols])
        query = (
            select(fill_positions.c.symbol, fill_positions.c.qty)
            .where(fill_positions.c.symbol.in_(symbols))
            .order_by(fill_positions.c.symbol)
            .with_for_update()
        )
        with localcontext(EXACT):
            rows = [{"at": symbol, "new_qty": qty + deltas[symbol]} for symbol, qty in self._connection.execute(query)]
        self._connection.execute(SET_POSITION, rows)

    def _check_replay(self, fill: Fill) -> None:
        row = self._connection.execute(SELECT_REPLAYED_FILL, {"fill_id": fill.broker_fill_id}).one()
        if tuple(row) != (fill.client_order_id, fill.qty, fill.price, fill.fee):
            raise IntentConflict(
                f"fill {fill.broker_fill_id} is already recorded with different values "
                f"(intent {row.client_order_id}, qty {row.qty}, price {row.price}, fee {row.fee})"
            )


def positions_of(connection: Connection) -> dict[str, Decimal]:
    """Net position per symbol from ``fill_positions``; flat symbols left out."""
    query = select(fill_positions.c.symbol, fill_positions.c.qty).order_by(fill_positions.c.symbol)
    return {symbol: qty for symbol, qty in connection.execute(query) if qty}
