"""The OMS tables, as SQLAlchemy Core metadata (the target of Alembic's autogenerate check).

Tables are created only by the revisions in ``migrations/``; this module describes the
head schema for queries and for the test that migrations and metadata agree.

Two column types make both databases exact:

- :class:`ExactDecimal` is ``NUMERIC`` (arbitrary precision) on PostgreSQL and ``TEXT`` on
  SQLite, where a NUMERIC column would turn values into 8-byte floats.
- :class:`UtcDateTime` is ``timestamptz`` on PostgreSQL; SQLite has no time zones, so
  values are stored as UTC and read back as timezone-aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.types import TypeEngine

from ai_trading.oms.models import IntentState, OrderType, Side, TimeInForce

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ExactDecimal(TypeDecorator[Decimal]):
    """Decimal stored without loss: NUMERIC on PostgreSQL, canonical text on SQLite."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetime: timestamptz on PostgreSQL, UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given where UTC was required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _one_of(column: str, values: list[str], name: str) -> CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


# SQLite only autoincrements a primary key spelled INTEGER.
Id = BigInteger().with_variant(Integer(), "sqlite")

intents = Table(
    "intents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("client_order_id", String(128), nullable=False, unique=True),
    Column("strategy", String(64), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("qty", ExactDecimal(), nullable=False),
    Column("order_type", String(8), nullable=False),
    Column("limit_price", ExactDecimal(), nullable=True),
    Column("time_in_force", String(8), nullable=False),
    Column("state", String(16), nullable=False),
    Column("filled_qty", ExactDecimal(), nullable=False),
    Column("filled_notional", ExactDecimal(), nullable=False),
    Column("fees", ExactDecimal(), nullable=False),
    Column("broker_order_id", String(64), nullable=True),
    Column("version", Integer(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("last_error", Text(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    _one_of("side", [s.value for s in Side], "side"),
    _one_of("order_type", [t.value for t in OrderType], "order_type"),
    _one_of("time_in_force", [t.value for t in TimeInForce], "time_in_force"),
    _one_of("state", [s.value for s in IntentState], "state"),
    Index(None, "state"),
)

intent_events = Table(
    "intent_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("intent_id", Id, ForeignKey("intents.id"), nullable=False),
    Column("event", String(32), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("version", Integer(), nullable=False),
    Column("detail", Text(), nullable=True),
    Column("ts", UtcDateTime(), nullable=False),
    Index(None, "intent_id", "id"),
)

fills = Table(
    "fills",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("broker_fill_id", String(128), nullable=False, unique=True),
    Column("intent_id", Id, ForeignKey("intents.id"), nullable=False),
    Column("qty", ExactDecimal(), nullable=False),
    Column("price", ExactDecimal(), nullable=False),
    Column("fee", ExactDecimal(), nullable=False),
    Column("ts", UtcDateTime(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Index(None, "intent_id"),
)

foreign_orders = Table(
    "foreign_orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("broker_order_id", String(64), nullable=False, unique=True),
    Column("client_order_id", String(128), nullable=True),
    Column("cid_shaped", Boolean(), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("qty", ExactDecimal(), nullable=False),
    Column("filled_qty", ExactDecimal(), nullable=False),
    Column("status", String(32), nullable=False),
    Column("first_seen_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
)

OMS_TABLES: tuple[Table, ...] = (intents, intent_events, fills, foreign_orders)
