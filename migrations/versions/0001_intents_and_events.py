"""intents and the append-only intent event log

Revision ID: 0001
Revises:
Create Date: 2026-11-24

A frozen snapshot: spell tables and columns out with op.* here; never import
ai_trading.oms.schema, so that later schema changes cannot rewrite this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Exact decimals: arbitrary-precision NUMERIC on PostgreSQL, text on SQLite (whose NUMERIC
# affinity would turn them into floats). Ids: SQLite autoincrements only INTEGER keys.
DECIMAL = sa.Numeric().with_variant(sa.Text(), "sqlite")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "intents",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("client_order_id", sa.String(128), nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("qty", DECIMAL, nullable=False),
        sa.Column("order_type", sa.String(8), nullable=False),
        sa.Column("limit_price", DECIMAL, nullable=True),
        sa.Column("time_in_force", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("filled_qty", DECIMAL, nullable=False),
        sa.Column("filled_notional", DECIMAL, nullable=False),
        sa.Column("fees", DECIMAL, nullable=False),
        sa.Column("broker_order_id", sa.String(64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_intents"),
        sa.UniqueConstraint("client_order_id", name="uq_intents_client_order_id"),
        sa.CheckConstraint("side IN ('buy', 'sell')", name="ck_intents_side"),
        sa.CheckConstraint("order_type IN ('market', 'limit')", name="ck_intents_order_type"),
        sa.CheckConstraint(
            "time_in_force IN ('day', 'gtc', 'opg', 'cls', 'ioc', 'fok')", name="ck_intents_time_in_force"
        ),
        sa.CheckConstraint(
            "state IN ('CREATED', 'SUBMITTED', 'ACKED', 'PARTIAL_FILLED', 'FILLED', 'CANCELED', 'REJECTED')",
            name="ck_intents_state",
        ),
    )
    op.create_index("ix_intents_state", "intents", ["state"])
    op.create_table(
        "intent_events",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("intent_id", ID, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("ts", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_intent_events"),
        sa.ForeignKeyConstraint(["intent_id"], ["intents.id"], name="fk_intent_events_intent_id_intents"),
    )
    op.create_index("ix_intent_events_intent_id_id", "intent_events", ["intent_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_intent_events_intent_id_id", table_name="intent_events")
    op.drop_table("intent_events")
    op.drop_index("ix_intents_state", table_name="intents")
    op.drop_table("intents")
