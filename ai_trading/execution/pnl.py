"""Equity, P&L and execution cost from executed fills: positions move only when fills say so.

Every fill is measured against its reference mid (the arrival mid for an order's first
slice, the bar's ``(open + high + low + close) / 4`` for later ones, see
:mod:`kernels.fills`): ``cost = side * (price - mid) * qty + fee``, positive when paid.
That cost splits into the half spread the simulator charged, the slippage and impact
beyond it (including the zero-mean noise, and a limit fill's price improvement), and
fees; the three add up to it exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ai_trading.config import ExecutionConfig
from ai_trading.execution.parameters import execution_params
from ai_trading.types import FillBatch, FloatArray, MarketPanel
from kernels.costs import spread_bps
from kernels.layout import C_SPREAD_BPS


@dataclass(frozen=True, eq=False)
class FillEquity:
    """Equity at each bar's close from fills marked at the last valid close.

    ``gross`` is the same book had every fill executed at its reference mid without
    fees, so ``gross - net`` is the cumulative execution cost.
    """

    net: FloatArray
    gross: FloatArray
    cost: FloatArray
    positions: FloatArray

    @property
    def net_pnl(self) -> float:
        return float(self.net[-1] - self.net[0])

    @property
    def gross_pnl(self) -> float:
        return float(self.gross[-1] - self.gross[0])


def forward_filled_close(panel: MarketPanel) -> FloatArray:
    """Close prices with missing bars carrying the last valid close (0 before the first)."""
    close = np.where(panel.valid, panel.close, np.nan)
    index = np.where(panel.valid, np.arange(panel.n_bars)[:, None], 0)
    np.maximum.accumulate(index, axis=0, out=index)
    filled = close[index, np.arange(panel.n_symbols)]
    return np.nan_to_num(filled, nan=0.0)


def equity_from_fills(fills: FillBatch, panel: MarketPanel, initial_cash: float) -> FillEquity:
    """Cash and positions after each bar's fills, marked to market at the bar's close."""
    shape = (panel.n_bars, panel.n_symbols)
    signed = fills.side * fills.qty
    traded = np.zeros(shape)
    np.add.at(traded, (fills.bar, fills.symbol), signed)
    positions = np.cumsum(traded, axis=0)
    net_flow = np.zeros(panel.n_bars)
    gross_flow = np.zeros(panel.n_bars)
    np.add.at(gross_flow, fills.bar, -(signed * fills.mid))
    np.add.at(net_flow, fills.bar, -(signed * fills.mid) - fill_costs(fills))
    marks = forward_filled_close(panel)
    holdings = np.einsum("ts,ts->t", positions, marks)
    net = initial_cash + np.cumsum(net_flow) + holdings
    gross = initial_cash + np.cumsum(gross_flow) + holdings
    return FillEquity(net=net, gross=gross, cost=np.diff(gross - net, prepend=0.0), positions=positions)


@dataclass(frozen=True)
class CostBreakdown:
    """Execution cost of a set of fills against their reference mids, currency, positive
    when paid; ``spread + slippage_impact + fees == total``.

    :param spread: half the spread charged on each fill (the data's quoted spread, else the
        learned or modeled one), times its notional at the mid
    :param slippage_impact: the rest of the price paid beyond the mid: size-free slippage,
        participation impact and noise (negative for a limit order's price improvement)
    :param fees: fees of the fills, minimums included
    :param traded_notional: ``sum(qty * price)`` of the fills
    """

    spread: float
    slippage_impact: float
    fees: float
    traded_notional: float

    @property
    def total(self) -> float:
        return self.spread + self.slippage_impact + self.fees

    def bps(self, part: float) -> float:
        """``part`` in bps of the traded notional; NaN when nothing traded."""
        return part / self.traded_notional * 1e4 if self.traded_notional > 0 else float("nan")

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "total": self.total}


def fill_costs(fills: FillBatch) -> FloatArray:
    """Per fill: ``side * (price - mid) * qty + fee``, currency, positive when paid."""
    return fills.side * (fills.price - fills.mid) * fills.qty + fills.fee


def charged_spread_bps(fills: FillBatch, config: ExecutionConfig, coefs: FloatArray, bar_seconds: float) -> FloatArray:
    """The full spread the fill kernel charged each fill, bps of its mid.

    ``fills.spread_bps`` holds only the data's quoted spread (the cost model learns from
    nothing else), so the spread used where it is NaN (learned, else modeled) is asked of
    the kernels' own :func:`kernels.costs.spread_bps` with the simulator's inputs.

    :param coefs: the per-symbol coefficients the simulator priced with
        (``ExecutionSimulator.symbol_coefs(panel)``: learned spreads or NaN)
    """
    params = execution_params(config, bar_seconds)
    learned = coefs[C_SPREAD_BPS]
    out = np.empty(len(fills))
    for k in range(len(fills)):
        out[k] = spread_bps(fills.mid[k], fills.sigma_bps[k], fills.spread_bps[k], learned[fills.symbol[k]], params)
    return out


def cost_breakdown(fills: FillBatch, charged_spread: FloatArray) -> CostBreakdown:
    """Split the fills' cost against their mids into spread, slippage and impact, and fees.

    :param charged_spread: full spread charged per fill, bps (:func:`charged_spread_bps`)
    """
    spread = float(np.sum(0.5 * charged_spread * 1e-4 * fills.mid * fills.qty))
    fees = float(np.sum(fills.fee))
    beyond_mid = float(np.sum(fill_costs(fills))) - fees
    return CostBreakdown(
        spread=spread, slippage_impact=beyond_mid - spread, fees=fees, traded_notional=float(np.sum(fills.qty * fills.price))
    )
