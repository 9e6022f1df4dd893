"""adopted positions (holdings that predate the OMS) and their audit log

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

A frozen snapshot: spell tables and columns out with op.* here; never import
ai_trading.oms.schema, so that later schema changes cannot rewrite this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

DECIMAL = sa.Numeric().with_variant(sa.Text(), "sqlite")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
ACTIONS = "'adopt', 'replace'"


def upgrade() -> None:
    op.create_table(
        "adopted_positions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("qty", DECIMAL, nullable=False),
        sa.Column("avg_price", DECIMAL, nullable=True),
        sa.Column("adopted_at", TIMESTAMP, nullable=False),
        sa.Column("adopted_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_adopted_positions"),
        sa.UniqueConstraint("account", "symbol", name="uq_adopted_positions_account_symbol"),
    )
    op.create_table(
        "adopted_positions_audit",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("qty", DECIMAL, nullable=False),
        sa.Column("avg_price", DECIMAL, nullable=True),
        sa.Column("previous_qty", DECIMAL, nullable=True),
        sa.Column("broker_qty", DECIMAL, nullable=False),
        sa.Column("fills_qty", DECIMAL, nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("adopted_by", sa.String(128), nullable=False),
        sa.Column("adopted_at", TIMESTAMP, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_adopted_positions_audit"),
        sa.CheckConstraint(f"action IN ({ACTIONS})", name="ck_adopted_positions_audit_action"),
    )
    op.create_index("ix_adopted_positions_audit_account_id", "adopted_positions_audit", ["account", "id"])


def downgrade() -> None:
    op.drop_index("ix_adopted_positions_audit_account_id", table_name="adopted_positions_audit")
    op.drop_table("adopted_positions_audit")
    op.drop_table("adopted_positions")
