"""trading state with its audit log, rebalance records and their risk denials

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

A frozen snapshot: spell tables and columns out with op.* here; never import
ai_trading.oms.schema, so that later schema changes cannot rewrite this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

DECIMAL = sa.Numeric().with_variant(sa.Text(), "sqlite")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
STATES = "'ACTIVE', 'REDUCING', 'HALTED'"


def upgrade() -> None:
    # The order rate limit counts intents created in the last minute.
    op.create_index("ix_intents_created_at", "intents", ["created_at"])
    op.create_table(
        "trading_state",
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(128), nullable=False),
        sa.Column("changed_at", TIMESTAMP, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("account", name="pk_trading_state"),
        sa.CheckConstraint(f"state IN ({STATES})", name="ck_trading_state_state"),
    )
    op.create_table(
        "trading_state_audit",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(128), nullable=False),
        sa.Column("changed_at", TIMESTAMP, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_trading_state_audit"),
        sa.CheckConstraint(f"to_state IN ({STATES})", name="ck_trading_state_audit_to_state"),
    )
    op.create_index("ix_trading_state_audit_account_id", "trading_state_audit", ["account", "id"])
    op.create_table(
        "rebalances",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(16), nullable=False),
        sa.Column("session", sa.Date(), nullable=False),
        sa.Column("horizon", sa.String(32), nullable=False),
        sa.Column("signal_hash", sa.String(16), nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=False),
        sa.Column("trading_state", sa.String(16), nullable=False),
        sa.Column("equity", DECIMAL, nullable=False),
        sa.Column("n_orders", sa.Integer(), nullable=False),
        sa.Column("n_denied", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rebalances"),
        sa.UniqueConstraint(
            "account", "strategy", "session", "horizon", "signal_hash",
            name="uq_rebalances_account_strategy_session_horizon_signal_hash",
        ),
    )
    op.create_table(
        "risk_denials",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("rebalance_id", ID, nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("qty", DECIMAL, nullable=False),
        sa.Column("order_type", sa.String(8), nullable=False),
        sa.Column("limit_price", DECIMAL, nullable=True),
        sa.Column("decision_price", DECIMAL, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("limit_value", DECIMAL, nullable=False),
        sa.Column("value", DECIMAL, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_risk_denials"),
        sa.ForeignKeyConstraint(["rebalance_id"], ["rebalances.id"], name="fk_risk_denials_rebalance_id_rebalances"),
    )
    op.create_index("ix_risk_denials_rebalance_id", "risk_denials", ["rebalance_id"])


def downgrade() -> None:
    op.drop_index("ix_risk_denials_rebalance_id", table_name="risk_denials")
    op.drop_table("risk_denials")
    op.drop_table("rebalances")
    op.drop_index("ix_trading_state_audit_account_id", table_name="trading_state_audit")
    op.drop_table("trading_state_audit")
    op.drop_table("trading_state")
    op.drop_index("ix_intents_created_at", table_name="intents")
