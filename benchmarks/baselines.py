"""Plain NumPy/Python versions of the benchmarked work, timed in the same run.

They implement the same model as the kernels in the most direct way (NumPy vectorised
over symbols, a Python loop over bars; a Python loop over events) so the benchmarks'
``speedup`` says what the Numba kernels buy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ai_trading.config import ExecutionConfig
from ai_trading.types import MarketPanel, OrderBatch
from tests.execution import reference


def portfolio_numpy(config: ExecutionConfig, targets: np.ndarray, panel: MarketPanel, sigma: np.ndarray, cash: float) -> np.ndarray:
    """Target-weight rebalancing with spread, slippage, impact, cap and fees; no random
    terms (the baseline is given the cheaper problem). Returns equity per bar."""
    n_bars, n_symbols = panel.close.shape
    positions = np.zeros(n_symbols)
    marks = np.where(panel.valid[0], panel.close[0], 0.0)
    equity_curve = np.empty(n_bars)
    equity_curve[0] = cash
    frac = min(config.latency_median_ms / 1000.0 / panel.bar_seconds, 1.0)
    for t in range(n_bars - 1):
        a = t + 1
        equity = cash + positions @ marks
        tradable = panel.valid[t] & panel.valid[a]
        gap = np.where(tradable, targets[t] * equity / np.where(marks > 0, marks, 1.0) - positions, 0.0)
        side = np.sign(gap)
        reference = panel.open[a] + (panel.close[a] - panel.open[a]) * frac
        qty = np.minimum(np.abs(gap), config.max_participation * panel.volume[a] * (1 - frac))
        qty = np.where(tradable, qty, 0.0)
        s = sigma[t]
        spread = np.maximum(config.tick_size / reference * 1e4, config.spread_floor_bps + config.spread_vol_mult * s)
        participation = qty / panel.volume[a]
        cost_bps = spread / 2 + config.slippage_base_bps + config.slippage_vol_coef * s + config.impact_eta * s * np.sqrt(participation)
        price = reference * (1 + side * cost_bps * 1e-4)
        fee = np.where(qty > 0, np.maximum(config.fee_bps * 1e-4 * price * qty + config.fee_per_share * qty, config.fee_min), 0.0)
        traded = np.where(qty > 0, side * qty, 0.0)
        positions += traded
        cash -= np.nansum(traded * price) + fee.sum()
        marks = np.where(panel.valid[a], panel.close[a], marks)
        equity_curve[a] = cash + positions @ marks
    return equity_curve


def ewma_update_python(state: np.ndarray, symbol: np.ndarray, x: np.ndarray, y: np.ndarray, spread: np.ndarray, decay: float) -> None:
    """The EWMA cost-model update, one Python iteration per fill."""
    for k in range(symbol.size):
        row = state[symbol[k]]
        xk, yk = x[k], y[k]
        row[0] = decay * row[0] + 1.0
        row[1] = decay * row[1] + xk
        row[2] = decay * row[2] + yk
        row[3] = decay * row[3] + xk * xk
        row[4] = decay * row[4] + xk * yk
        row[5] = decay * row[5] + 1.0
        row[6] = decay * row[6] + spread[k]


def volatility_numpy(close: np.ndarray, valid: np.ndarray, halflife: float) -> np.ndarray:
    """The EWMA volatility recursion, NumPy over symbols and a Python loop over bars."""
    lam = 0.5 ** (1.0 / halflife)
    moment = np.zeros(close.shape[1])
    weight = np.zeros(close.shape[1])
    last = np.full(close.shape[1], np.nan)
    out = np.zeros(close.shape)
    for t in range(close.shape[0]):
        seen = valid[t] & (last > 0)
        r = np.log(np.where(seen, close[t] / np.where(seen, last, 1.0), 1.0))
        moment = np.where(seen, lam * moment + (1 - lam) * r * r, moment)
        weight = np.where(seen, lam * weight + (1 - lam), weight)
        last = np.where(valid[t], close[t], last)
        out[t] = np.sqrt(moment / np.where(weight > 0, weight, 1.0)) * 1e4
    return out


def reference_order_simulation(config: ExecutionConfig, orders: OrderBatch, panel: MarketPanel) -> Callable[[], object]:
    """The pure-Python order simulator (tests.execution.reference) as a baseline. It takes
    the kernels' draws from a Numba helper compiled on first use; that compile happens
    here, so that the timing measures the simulation alone."""
    reference.normal_pair(config.seed, 0, 0)
    return lambda: reference.simulate_orders(config, orders, panel, volatility_numpy(panel.close, panel.valid, config.vol_halflife_bars))
