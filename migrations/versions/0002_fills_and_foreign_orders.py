"""fills (unique broker fill id) and foreign orders

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

A frozen snapshot: spell tables and columns out with op.* here; never import
ai_trading.oms.schema, so that later schema changes cannot rewrite this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

DECIMAL = sa.Numeric().with_variant(sa.Text(), "sqlite")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fills",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("broker_fill_id", sa.String(128), nullable=False),
        sa.Column("intent_id", ID, nullable=False),
        sa.Column("qty", DECIMAL, nullable=False),
        sa.Column("price", DECIMAL, nullable=False),
        sa.Column("fee", DECIMAL, nullable=False),
        sa.Column("ts", TIMESTAMP, nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fills"),
        sa.UniqueConstraint("broker_fill_id", name="uq_fills_broker_fill_id"),
        sa.ForeignKeyConstraint(["intent_id"], ["intents.id"], name="fk_fills_intent_id_intents"),
    )
    op.create_index("ix_fills_intent_id", "fills", ["intent_id"])
    op.create_table(
        "foreign_orders",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("broker_order_id", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(128), nullable=True),
        sa.Column("cid_shaped", sa.Boolean(), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("qty", DECIMAL, nullable=False),
        sa.Column("filled_qty", DECIMAL, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("first_seen_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_foreign_orders"),
        sa.UniqueConstraint("broker_order_id", name="uq_foreign_orders_broker_order_id"),
    )


def downgrade() -> None:
    op.drop_table("foreign_orders")
    op.drop_index("ix_fills_intent_id", table_name="fills")
    op.drop_table("fills")
