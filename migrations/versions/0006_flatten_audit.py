"""flatten audit: closing orders sent through the path a HALTED account allows

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

A frozen snapshot: spell tables and columns out with op.* here; never import
ai_trading.oms.schema, so that later schema changes cannot rewrite this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

DECIMAL = sa.Numeric().with_variant(sa.Text(), "sqlite")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "flatten_audit",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("qty", DECIMAL, nullable=False),
        sa.Column("position_before", DECIMAL, nullable=False),
        sa.Column("trading_state", sa.String(16), nullable=False),
        sa.Column("authorised_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flatten_audit"),
        sa.UniqueConstraint("client_order_id", name="uq_flatten_audit_client_order_id"),
    )
    op.create_index("ix_flatten_audit_account_id", "flatten_audit", ["account", "id"])


def downgrade() -> None:
    op.drop_index("ix_flatten_audit_account_id", table_name="flatten_audit")
    op.drop_table("flatten_audit")
