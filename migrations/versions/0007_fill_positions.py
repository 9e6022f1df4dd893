"""fill positions: each symbol's signed sum of fills, kept with every fill

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

A frozen snapshot: spell tables and columns out with op.* here; never import
ai_trading.oms.schema, so that later schema changes cannot rewrite this revision.
The table starts from the fills already recorded, summed exactly (Decimal; quantities
are TEXT on SQLite, NUMERIC on PostgreSQL).
"""

from __future__ import annotations

from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    Context,
    Decimal,
    Inexact,
    localcontext,
)

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

DECIMAL = sa.Numeric().with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "fill_positions",
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("qty", DECIMAL, nullable=False),
        sa.PrimaryKeyConstraint("symbol", name="pk_fill_positions"),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT intents.symbol, intents.side, fills.qty FROM fills JOIN intents ON fills.intent_id = intents.id")
    )
    totals: dict[str, Decimal] = {}
    with localcontext(Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact])):  # exact or raise
        for symbol, side, qty in rows:
            totals[symbol] = totals.get(symbol, Decimal(0)) + (Decimal(str(qty)) if side == "buy" else -Decimal(str(qty)))
    if totals:
        as_text = bind.dialect.name == "sqlite"
        table = sa.table("fill_positions", sa.column("symbol"), sa.column("qty"))
        op.bulk_insert(table, [{"symbol": s, "qty": format(q, "f") if as_text else q} for s, q in sorted(totals.items())])


def downgrade() -> None:
    op.drop_table("fill_positions")
