"""Rebalance records and the risk denials persisted with them, in the OMS database.

A rebalance is written in the same transaction as its intents (see
:meth:`~ai_trading.oms.intent_store.IntentStore.create_batch`, which calls
:func:`write_rebalance`); :class:`RebalanceLog` reads them back. Records are keyed by
(account, strategy, session, horizon, signal_hash): the same decision recomputed after a
crash finds its first record, whose ``decided_at`` also stamps every intent it created.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, and_, select
from sqlalchemy.sql.dml import Insert

from ai_trading.oms.engine import connect, transaction
from ai_trading.oms.models import DenialRecord, OrderType, RebalanceRecord, Side, TradingState
from ai_trading.oms.schema import rebalances, risk_denials

REBALANCE_KEY = (
    rebalances.c.account,
    rebalances.c.strategy,
    rebalances.c.session,
    rebalances.c.horizon,
    rebalances.c.signal_hash,
)
REBALANCE_COLUMNS = tuple(column for column in rebalances.c if column.name != "id")


def insert_rebalance_statement(dialect_insert: Callable[..., Any]) -> Insert:
    """``INSERT ... ON CONFLICT (key) DO NOTHING RETURNING id`` in the dialect's spelling."""
    return (
        dialect_insert(rebalances)
        .on_conflict_do_nothing(index_elements=[column.name for column in REBALANCE_KEY])
        .returning(rebalances.c.id)
    )


def _key(account: str, strategy: str, session: date, horizon: str, signal_hash: str) -> Any:
    values = {"account": account, "strategy": strategy, "session": session, "horizon": horizon, "signal_hash": signal_hash}
    return and_(*(column == values[column.name] for column in REBALANCE_KEY))


def write_rebalance(connection: Connection, statement: Insert, record: RebalanceRecord) -> int:
    """Insert ``record`` and its denials inside the caller's transaction; returns its id.
    A key already stored keeps its first record (and denials)."""
    values = {column.name: getattr(record, column.name) for column in REBALANCE_COLUMNS}
    values["trading_state"] = record.trading_state.value
    rebalance_id = connection.execute(statement, values).scalar_one_or_none()
    if rebalance_id is None:
        key = _key(record.account, record.strategy, record.session, record.horizon, record.signal_hash)
        return int(connection.execute(select(rebalances.c.id).where(key)).scalar_one())
    if record.denials:
        rows = [
            {
                "rebalance_id": rebalance_id,
                "symbol": d.symbol,
                "side": d.side.value,
                "qty": d.qty,
                "order_type": d.order_type.value,
                "limit_price": d.limit_price,
                "decision_price": d.decision_price,
                "reason": d.reason,
                "limit_value": d.limit,
                "value": d.value,
            }
            for d in record.denials
        ]
        connection.execute(risk_denials.insert(), rows)
    return int(rebalance_id)


class RebalanceLog:
    """Reads rebalance records and their denials.

    :param engine: engine of the OMS database at the head revision
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def find(self, account: str, strategy: str, session: date, horizon: str, signal_hash: str) -> tuple[int, RebalanceRecord] | None:
        """The stored record of this decision and its id, or None."""
        query = select(rebalances).where(_key(account, strategy, session, horizon, signal_hash))
        with connect(self._engine) as connection, transaction(connection):
            row = connection.execute(query).first()
            return None if row is None else (row.id, self._record(connection, row))

    def get(self, rebalance_id: int) -> RebalanceRecord | None:
        with connect(self._engine) as connection, transaction(connection):
            row = connection.execute(select(rebalances).where(rebalances.c.id == rebalance_id)).first()
            return None if row is None else self._record(connection, row)

    def list_ids(self) -> list[int]:
        """Ids of every stored rebalance, oldest first."""
        with connect(self._engine) as connection, transaction(connection):
            return [int(i) for i in connection.execute(select(rebalances.c.id).order_by(rebalances.c.id)).scalars()]

    def recent_with_denials(self, account: str, limit: int) -> list[RebalanceRecord]:
        """The latest ``limit`` rebalances of ``account`` that refused an order, oldest first."""
        query = (
            select(rebalances)
            .where(rebalances.c.account == account, rebalances.c.n_denied > 0)
            .order_by(rebalances.c.id.desc())
            .limit(limit)
        )
        with connect(self._engine) as connection, transaction(connection):
            return [self._record(connection, row) for row in reversed(connection.execute(query).all())]

    @staticmethod
    def _record(connection: Connection, row: Any) -> RebalanceRecord:
        query = select(risk_denials).where(risk_denials.c.rebalance_id == row.id).order_by(risk_denials.c.id)
        denials = tuple(
            DenialRecord(
                symbol=d.symbol,
                side=Side(d.side),
                qty=d.qty,
                order_type=OrderType(d.order_type),
                limit_price=d.limit_price,
                decision_price=d.decision_price,
                reason=d.reason,
                limit=d.limit_value,
                value=d.value,
            )
            for d in connection.execute(query)
        )
        values = {column.name: getattr(row, column.name) for column in REBALANCE_COLUMNS}
        values["trading_state"] = TradingState(row.trading_state)
        return RebalanceRecord(**values, denials=denials)
