"""Equity and P&L from executed fills: positions move only when fills say so."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ai_trading.types import FillBatch, FloatArray, MarketPanel


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
    np.add.at(net_flow, fills.bar, -(signed * fills.price) - fills.fee)
    np.add.at(gross_flow, fills.bar, -(signed * fills.mid))
    marks = forward_filled_close(panel)
    holdings = np.einsum("ts,ts->t", positions, marks)
    net = initial_cash + np.cumsum(net_flow) + holdings
    gross = initial_cash + np.cumsum(gross_flow) + holdings
    return FillEquity(net=net, gross=gross, cost=np.diff(gross - net, prepend=0.0), positions=positions)
