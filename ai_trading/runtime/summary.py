"""What a trading run did, from its durable state: orders, fills, costs, P&L, risk denials.

Costs are positive when paid. ``realized_cost`` is the implementation shortfall of the
filled shares against the decision price plus fees (as the simulator reports it);
``slippage_bps_arrival`` is the notional-weighted fill price against the arrival price,
the quantity the EWMA cost model predicts (``predicted_bps``, fees excluded).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select

from ai_trading.brokers.sim_market import utc_datetime
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.schema import rebalances, risk_denials
from ai_trading.runtime.run_state import RunState


@dataclass(frozen=True)
class RunSummary:
    """The figures a run's summary line shows (``to_dict`` for ``--json``)."""

    model: str
    bars: int
    last_bar: str | None
    stopped: bool
    orders: int
    fills: int
    filled_notional: float
    fees: float
    realized_cost: float
    realized_cost_bps: float
    slippage_bps_arrival: float
    predicted_bps: float
    predicted_cost: float
    initial_cash: float
    final_equity: float
    pnl: float
    pnl_pct: float
    risk_denials: int
    denials_by_reason: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.denials_by_reason.items())) or "none"
        return [
            (
                f"model {self.model}: {self.bars} bars{'' if self.last_bar is None else f' through {self.last_bar}'}"
                f"{' (stopped; run the same command to resume)' if self.stopped else ''}"
            ),
            f"orders {self.orders}, fills {self.fills}, filled notional {self.filled_notional:,.2f}",
            (
                f"cost realized {self.realized_cost:,.2f} ({self.realized_cost_bps:.2f} bps of filled notional vs decision, "
                f"fees {self.fees:,.2f} included)"
            ),
            (
                f"cost vs arrival {self.slippage_bps_arrival:.2f} bps realized, {self.predicted_bps:.2f} bps predicted by the "
                f"cost model ({self.predicted_cost:,.2f}; fees excluded)"
            ),
            f"P&L {self.pnl:,.2f} ({self.pnl_pct:+.3f}% of {self.initial_cash:,.0f}); equity {self.final_equity:,.2f}",
            f"risk denials {self.risk_denials}: {reasons}",
        ]


def run_summary(state: RunState, intents: IntentStore, model: str, initial_cash: float, stopped: bool) -> RunSummary:
    """The summary of a run from its run state and OMS database."""
    cursor = state.cursor()
    totals = state.query(
        "SELECT count(*) AS orders_logged, coalesce(sum(filled_qty * avg_price), 0) AS notional, coalesce(sum(fees), 0) AS fees, "
        "coalesce(sum(realized_cost), 0) AS realized, coalesce(sum(predicted_cost), 0) AS predicted, "
        "coalesce(sum(slippage_bps_arrival * filled_qty * avg_price) / nullif(sum(filled_qty * avg_price), 0), 'NaN') AS arrival_bps, "
        "coalesce(sum(expected_cost_bps * filled_qty * avg_price) / nullif(sum(filled_qty * avg_price), 0), 'NaN') AS predicted_bps "
        "FROM execution_log WHERE filled_qty > 0"
    ).to_pylist()[0]
    fills = int(state.query("SELECT count(*) AS n FROM applied_fills").column("n")[0].as_py())
    curve = state.equity_curve()
    final = float(curve.column("equity")[-1].as_py()) if curve.num_rows else initial_cash
    notional = float(totals["notional"])
    query = (
        select(risk_denials.c.reason, func.count())
        .join(rebalances, rebalances.c.id == risk_denials.c.rebalance_id)
        .where(rebalances.c.strategy == model)
        .group_by(risk_denials.c.reason)
    )
    with intents.engine.connect() as connection:
        by_reason = {str(reason): int(n) for reason, n in connection.execute(query).all()}
    return RunSummary(
        model=model,
        bars=curve.num_rows,
        last_bar=None if cursor.bar_ts is None else utc_datetime(cursor.bar_ts).date().isoformat(),
        stopped=stopped,
        orders=cursor.orders,
        fills=fills,
        filled_notional=notional,
        fees=float(totals["fees"]),
        realized_cost=float(totals["realized"]),
        realized_cost_bps=float(totals["realized"]) / notional * 1e4 if notional > 0 else float("nan"),
        slippage_bps_arrival=float(totals["arrival_bps"]),
        predicted_bps=float(totals["predicted_bps"]),
        predicted_cost=float(totals["predicted"]),
        initial_cash=initial_cash,
        final_equity=final,
        pnl=final - initial_cash,
        pnl_pct=(final - initial_cash) / initial_cash * 100.0,
        risk_denials=cursor.denials,
        denials_by_reason=by_reason,
    )
