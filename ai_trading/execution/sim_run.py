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
from ai_trading.errors import DataValidationError
from ai_trading.execution.demo import DEMO_BOOK, demo_idle_reason, demo_orders
from ai_trading.execution.pnl import FillEquity, equity_from_fills
from ai_trading.execution.simulator import ExecutionSimulator, SimExecutionResult
from ai_trading.types import MarketPanel


def _iso(ts_ns: np.int64) -> str:
    return str(np.datetime_as_string(np.datetime64(int(ts_ns), "ns"), unit="s")) + "Z"


@dataclass(frozen=True, eq=False)
class SimRun:
    panel: MarketPanel
    result: SimExecutionResult
    equity: FillEquity
    sim_seconds: float
    note: str | None  # why there were no orders, when there were none

    def summary(self) -> dict[str, Any]:
        totals = self.result.totals()
        bar_symbols = self.panel.n_bars * self.panel.n_symbols
        return {
            "symbols": self.panel.n_symbols,
            "bars": self.panel.n_bars,
            "start": _iso(self.panel.ts[0]),
            "end": _iso(self.panel.ts[-1]),
            **totals.to_dict(),
            "book": DEMO_BOOK,
            "gross_pnl": self.equity.gross_pnl,
            "net_pnl": self.equity.net_pnl,
            "execution_cost": self.equity.gross_pnl - self.equity.net_pnl,
            "sim_seconds": self.sim_seconds,
            "bar_symbols_per_s": bar_symbols / self.sim_seconds if self.sim_seconds > 0 else float("nan"),
            "note": self.note,
        }

    def write(self, out: Path) -> list[Path]:
        """Fills and orders as Parquet, and the equity and cost plot as PNG."""
        out.mkdir(parents=True, exist_ok=True)
        symbols = np.array(self.panel.symbols, dtype=object)
        fills = self.result.fills.to_arrow().append_column("symbol_name", pa.array(symbols[self.result.fills.symbol], pa.string()))
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


def run_demo(panel: MarketPanel, config: ExecutionConfig) -> SimRun:
    """Demo strategy orders on ``panel``, filled by the simulator, turned into equity."""
    if panel.n_bars == 0:
        raise DataValidationError("the selected market data", None, "it holds no bars: choose other symbols or a wider start/end")
    orders = demo_orders(panel)
    simulator = ExecutionSimulator(config)
    start = time.perf_counter()
    result = simulator.simulate(orders, panel)
    seconds = time.perf_counter() - start
    note = demo_idle_reason(panel) if len(orders) == 0 else None
    return SimRun(panel=panel, result=result, equity=equity_from_fills(result.fills, panel, DEMO_BOOK), sim_seconds=seconds, note=note)
