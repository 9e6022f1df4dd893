"""One end-to-end simulation run, as ``ai-trading sim`` performs it, and its summary."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ai_trading.config import ExecutionConfig
from ai_trading.data.frequency import panel_frequency
from ai_trading.errors import DataValidationError
from ai_trading.execution.demo import DEMO_BOOK, DEMO_DESCRIPTION, demo_idle_reason, demo_orders
from ai_trading.execution.pnl import CostBreakdown, FillEquity, charged_spread_bps, cost_breakdown, equity_from_fills
from ai_trading.execution.simulator import ExecutionSimulator, SimExecutionResult
from ai_trading.types import MarketPanel

NAN = float("nan")
ARROW_TIMESTAMP = pa.timestamp("ns", tz="UTC")
"""Parquet outputs store times as timestamps (int64 ns UTC in memory), so readers see dates."""
COSTS_DECIDE = 1.0
"""Explain the result in words when the execution cost is at least this share of the
gross P&L's size: the costs then decide the sign or most of the size of the net P&L."""


def _iso(ts_ns: np.int64) -> str:
    return str(np.datetime_as_string(np.datetime64(int(ts_ns), "ns"), unit="s")) + "Z"


@dataclass(frozen=True, eq=False)
class SimRun:
    """One demo run: the simulated executions, the equity they imply, and their cost.

    :param periods_per_year: bars in a year of the panel's frequency (annualises turnover)
    :param costs: cost of the fills against their reference mids, split into its parts
    """

    panel: MarketPanel
    result: SimExecutionResult
    equity: FillEquity
    costs: CostBreakdown
    periods_per_year: float
    sim_seconds: float
    note: str | None  # why there were no orders, when there were none

    def summary(self) -> dict[str, Any]:
        """Every figure of ``ai-trading sim``, named with its unit (README: the simulator)."""
        result, costs = self.result, self.costs
        filled = result.filled_qty > 0
        qty = result.filled_qty[filled]
        arrival_notional = float(np.sum(qty * result.arrival_price[filled]))
        decision_notional = float(np.sum(qty * result.decision_price[filled]))
        paid = result.orders.side[filled] * qty
        vs_arrival = float(np.sum(paid * (result.avg_price[filled] - result.arrival_price[filled])))
        shortfall = float(np.sum(result.realized_cost))
        years = self.panel.n_bars / self.periods_per_year
        gross, net = self.equity.gross_pnl, self.equity.net_pnl
        ordered = float(np.sum(result.orders.qty))
        fills = result.fills
        bar_symbols = self.panel.n_bars * self.panel.n_symbols
        return {
            "what": DEMO_DESCRIPTION,
            "symbols": self.panel.n_symbols,
            "bars": self.panel.n_bars,
            "start": _iso(self.panel.ts[0]),
            "end": _iso(self.panel.ts[-1]),
            "frequency": panel_frequency(self.panel),
            "periods_per_year": self.periods_per_year,
            "years": years,
            "orders": len(result.orders),
            "fills": len(fills),
            "ordered_shares": ordered,
            "filled_shares": float(np.sum(result.filled_qty)),
            "fill_rate": float(np.sum(result.filled_qty)) / ordered if ordered > 0 else NAN,
            "participation_share_weighted": float(np.average(fills.participation, weights=fills.qty)) if len(fills) else NAN,
            "traded_notional": costs.traded_notional,
            "turnover_per_year": costs.traded_notional / DEMO_BOOK / years if years > 0 else NAN,
            "cost": costs.total,
            "cost_bps": costs.bps(costs.total),
            "cost_spread": costs.spread,
            "cost_spread_bps": costs.bps(costs.spread),
            "cost_slippage_impact": costs.slippage_impact,
            "cost_slippage_impact_bps": costs.bps(costs.slippage_impact),
            "cost_fees": costs.fees,
            "cost_fees_bps": costs.bps(costs.fees),
            "shortfall_vs_decision": shortfall,
            "shortfall_vs_decision_bps": shortfall / decision_notional * 1e4 if decision_notional > 0 else NAN,
            "price_drift": shortfall - costs.total,
            "slippage_vs_arrival_bps": vs_arrival / arrival_notional * 1e4 if arrival_notional > 0 else NAN,
            "book": DEMO_BOOK,
            "gross_pnl": gross,
            "net_pnl": net,
            "net_pnl_share_of_book": net / DEMO_BOOK,
            "cost_share_of_gross": costs.total / abs(gross) if gross != 0 else NAN,
            "explanation": self.explanation(years),
            "sim_seconds": self.sim_seconds,
            "bar_symbols_per_s": bar_symbols / self.sim_seconds if self.sim_seconds > 0 else NAN,
            "note": self.note,
        }

    def explanation(self, years: float) -> str | None:
        """The result in words when the execution cost decides it (see :data:`COSTS_DECIDE`)."""
        cost, gross = self.costs.total, self.equity.gross_pnl
        if not (cost > 0 and cost >= COSTS_DECIDE * abs(gross)) or years <= 0:
            return None
        turnover = self.costs.traded_notional / DEMO_BOOK / years
        paid = (
            f"the book was traded {turnover:.1f}x a year at {self.costs.bps(cost):.1f} bps, "
            f"a cost of {cost / DEMO_BOOK / years:.1%} of the book a year"
        )
        if gross > 0:
            return f"costs exceed the gross gain ({cost / gross:.0%} of it): {paid}, against a gross gain of {gross:,.0f}"
        return f"the loss is mostly cost: {paid}, on top of a gross P&L of {gross:,.0f} before costs"

    def write(self, out: Path) -> list[Path]:
        """Fills and orders as Parquet, and the equity and cost plot as PNG."""
        out.mkdir(parents=True, exist_ok=True)
        symbols = np.array(self.panel.symbols, dtype=object)
        fills = self.result.fills.to_arrow()
        fills = fills.set_column(fills.schema.get_field_index("ts"), "ts", fills["ts"].cast(ARROW_TIMESTAMP))
        fills = fills.append_column("symbol_name", pa.array(symbols[self.result.fills.symbol], pa.string()))
        orders = self.result.to_arrow().append_column("symbol_name", pa.array(symbols[self.result.orders.symbol], pa.string()))
        written = [out / "fills.parquet", out / "orders.parquet", out / "equity.png"]
        pq.write_table(fills, written[0])
        pq.write_table(orders, written[1])
        plot_equity(self.panel, self.equity, written[2])
        return written


def plot_equity(panel: MarketPanel, equity: FillEquity, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    when = panel.ts.astype("datetime64[ns]")
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=[3, 1])
    top.plot(when, equity.gross, label="gross (fills at mid, no fees)", linewidth=1)
    top.plot(when, equity.net, label="net (after spread, slippage, fees)", linewidth=1)
    top.set_ylabel("equity")
    top.legend(loc="upper left")
    bottom.plot(when, np.cumsum(equity.cost), color="tab:red", linewidth=1)
    bottom.set_ylabel("cumulative cost")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run_demo(panel: MarketPanel, config: ExecutionConfig, periods_per_year: float) -> SimRun:
    """Demo strategy orders on ``panel``, filled by the simulator, turned into equity and cost.

    :param periods_per_year: bars in a year of the panel's frequency
        (:func:`ai_trading.data.frequency.panel_periods_per_year`)
    """
    if panel.n_bars == 0:
        raise DataValidationError("the selected market data", None, "it holds no bars: choose other symbols or a wider start/end")
    orders = demo_orders(panel)
    simulator = ExecutionSimulator(config)
    start = time.perf_counter()
    result = simulator.simulate(orders, panel)
    seconds = time.perf_counter() - start
    note = demo_idle_reason(panel) if len(orders) == 0 else None
    spread = charged_spread_bps(result.fills, config, simulator.symbol_coefs(panel), panel.bar_seconds)
    return SimRun(
        panel=panel,
        result=result,
        equity=equity_from_fills(result.fills, panel, DEMO_BOOK),
        costs=cost_breakdown(result.fills, spread),
        periods_per_year=periods_per_year,
        sim_seconds=seconds,
        note=note,
    )
