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
    Date,
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
    UniqueConstraint,
)
from sqlalchemy.types import TypeEngine

from ai_trading.oms.models import IntentState, OrderType, Side, TimeInForce, TradingState

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
    Index(None, "created_at"),
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

TRADING_STATES = [s.value for s in TradingState]

trading_state = Table(
    "trading_state",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("changed_by", String(128), nullable=False),
    Column("changed_at", UtcDateTime(), nullable=False),
    Column("version", Integer(), nullable=False),
    _one_of("state", TRADING_STATES, "state"),
)

trading_state_audit = Table(
    "trading_state_audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("changed_by", String(128), nullable=False),
    Column("changed_at", UtcDateTime(), nullable=False),
    Column("version", Integer(), nullable=False),
    _one_of("to_state", TRADING_STATES, "to_state"),
    Index(None, "account", "id"),
)

rebalances = Table(
    "rebalances",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("model_version", String(16), nullable=False),
    Column("session", Date(), nullable=False),
    Column("horizon", String(32), nullable=False),
    Column("signal_hash", String(16), nullable=False),
    Column("decided_at", UtcDateTime(), nullable=False),
    Column("trading_state", String(16), nullable=False),
    Column("equity", ExactDecimal(), nullable=False),
    Column("n_orders", Integer(), nullable=False),
    Column("n_denied", Integer(), nullable=False),
    UniqueConstraint("account", "strategy", "session", "horizon", "signal_hash"),
)

risk_denials = Table(
    "risk_denials",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("rebalance_id", Id, ForeignKey("rebalances.id"), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("qty", ExactDecimal(), nullable=False),
    Column("order_type", String(8), nullable=False),
    Column("limit_price", ExactDecimal(), nullable=True),
    Column("decision_price", ExactDecimal(), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("limit_value", ExactDecimal(), nullable=False),
    Column("value", ExactDecimal(), nullable=False),
    Index(None, "rebalance_id"),
)

OMS_TABLES: tuple[Table, ...] = (
    intents,
    intent_events,
    fills,
    foreign_orders,
    trading_state,
    trading_state_audit,
    rebalances,
    risk_denials,
)

# -- alerting (ai_trading.monitoring): the notification outbox and silences -------------

NOTIFICATION_STATUSES = ["pending", "delivered", "failed"]

alert_notifications = Table(
    "alert_notifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("receiver", String(128), nullable=False),
    Column("payload", Text(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("version", Integer(), nullable=False),
    Column("last_error", Text(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("delivered_at", UtcDateTime(), nullable=True),
    _one_of("status", NOTIFICATION_STATUSES, "status"),
    Index(None, "status", "next_attempt_at"),
)

alert_silences = Table(
    "alert_silences",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("matchers", Text(), nullable=False),
    Column("creator", String(128), nullable=False),
    Column("comment", Text(), nullable=False),
    Column("starts_at", UtcDateTime(), nullable=False),
    Column("ends_at", UtcDateTime(), nullable=False),
    Index(None, "ends_at"),
)

OMS_TABLES = (*OMS_TABLES, alert_notifications, alert_silences)

# -- adopted positions (ai_trading.oms.adoption): holdings that predate the OMS ----------

ADOPTION_ACTIONS = ["adopt", "replace"]

adopted_positions = Table(
    "adopted_positions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("qty", ExactDecimal(), nullable=False),
    Column("avg_price", ExactDecimal(), nullable=True),
    Column("adopted_at", UtcDateTime(), nullable=False),
    Column("adopted_by", String(128), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("version", Integer(), nullable=False),
    UniqueConstraint("account", "symbol"),
)

adopted_positions_audit = Table(
    "adopted_positions_audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("action", String(8), nullable=False),
    Column("qty", ExactDecimal(), nullable=False),
    Column("avg_price", ExactDecimal(), nullable=True),
    Column("previous_qty", ExactDecimal(), nullable=True),
    Column("broker_qty", ExactDecimal(), nullable=False),
    Column("fills_qty", ExactDecimal(), nullable=False),
    Column("forced", Boolean(), nullable=False),
    Column("adopted_by", String(128), nullable=False),
    Column("adopted_at", UtcDateTime(), nullable=False),
    Column("reason", Text(), nullable=False),
    _one_of("action", ADOPTION_ACTIONS, "action"),
    Index(None, "account", "id"),
)

OMS_TABLES = (*OMS_TABLES, adopted_positions, adopted_positions_audit)

# -- flatten audit (ai_trading.oms.manager.OrderManager.submit_flatten): closing orders --
# sent through the path a HALTED account allows; one row per order, written before it is sent.

flatten_audit = Table(
    "flatten_audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("client_order_id", String(128), nullable=False, unique=True),
    Column("symbol", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("qty", ExactDecimal(), nullable=False),
    Column("position_before", ExactDecimal(), nullable=False),
    Column("trading_state", String(16), nullable=False),
    Column("authorised_by", String(128), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("requested_at", UtcDateTime(), nullable=False),
    Index(None, "account", "id"),
)

OMS_TABLES = (*OMS_TABLES, flatten_audit)

# -- positions from fills (ai_trading.oms.intent_writer): the signed sum of each symbol's --
# fills, kept in the transaction that records each fill, so reading the book does not
# scan the whole fill history.

fill_positions = Table(
    "fill_positions",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("qty", ExactDecimal(), nullable=False),
)

OMS_TABLES = (*OMS_TABLES, fill_positions)
