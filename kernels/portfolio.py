"""Target-weight portfolio simulation: targets -> orders -> fills -> costs, fused in one pass.

At the close of each decision bar ``t`` the portfolio's target weights become one order
per symbol for the gap between the target and the current position; the order arrives
in bar ``t + 1`` after its latency and fills there under the participation cap, priced
by the same formulas as :mod:`kernels.fills` (time in force one bar: an unfilled
remainder stays a position gap for the next decision to close). Each fill also updates
the per-symbol EWMA cost model in the same pass. This is the engine evaluation and the
RL environment step on.

Latency here must be shorter than a bar (checked by the wrapper); a draw beyond the bar
is capped at the bar's close.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.cost_model import ewma_observe
from kernels.costs import fill_fee, learned_spread, participation_power, spread_bps
from kernels.fills import QTY_EPS, interpolated_mid, latency_bars, slice_price
from kernels.layout import P_FEE_MIN, P_IMPACT_BETA, P_MAX_PARTICIPATION, P_NOISE_BPS
from kernels.rng import STREAM_SLIPPAGE, standard_normal

# Per-bar outputs of simulate_portfolio / portfolio_step (float64[N_BAR_STATS]).
B_EQUITY = 0  # equity marked at the bar's close, after its fills
B_COST = 1  # execution cost vs reference mid plus fees, currency, positive = paid
B_FEES = 2  # fees, currency
B_TRADED = 3  # traded notional, currency
B_GROSS_EXPOSURE = 4  # sum |position value| at the close
B_NET_EXPOSURE = 5  # sum position value at the close
N_BAR_STATS = 6


@njit(cache=True, nogil=True)
def mark_to_market(t: int, close: np.ndarray, valid: np.ndarray, positions: np.ndarray, marks: np.ndarray) -> tuple[float, float]:
    """Move each symbol's mark to bar ``t``'s close where valid; return the net and the
    gross (sum of absolute) value of the positions at those marks."""
    value = 0.0
    gross = 0.0
    for s in range(positions.shape[0]):
        if valid[t, s]:
            marks[s] = close[t, s]
        if positions[s] != 0.0:
            position_value = positions[s] * marks[s]
            value += position_value
            gross += abs(position_value)
    return value, gross


@njit(cache=True, nogil=True)
def portfolio_step(
    t: int,
    targets: np.ndarray,
    positions: np.ndarray,
    cash: np.ndarray,
    marks: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    valid: np.ndarray,
    data_spread_bps: np.ndarray,
    sigma_bps: np.ndarray,
    coefs: np.ndarray,
    params: np.ndarray,
    seed: np.uint64,
    cost_state: np.ndarray,
    decay: float,
    fill_qty: np.ndarray,
    fill_price: np.ndarray,
    bar_stats: np.ndarray,
) -> None:
    """Rebalance at decision bar ``t`` to ``targets`` (weights of equity, signed) and
    execute in bar ``t + 1``; updates ``positions``, ``cash[0]`` and ``marks`` in place,
    writes signed filled shares and prices per symbol (0 / NaN when nothing filled) and
    bar ``t + 1``'s statistics. ``marks`` must hold the prices at bar ``t``'s close.
    Cost-model learning is skipped when ``cost_state`` has no rows."""
    n_symbols = positions.shape[0]
    a = t + 1
    has_data_spread = data_spread_bps.shape[0] == close.shape[0]
    learn = cost_state.shape[0] == n_symbols
    noise_on = params[P_NOISE_BPS] != 0.0
    beta = params[P_IMPACT_BETA]
    equity = cash[0]
    for s in range(n_symbols):
        if positions[s] != 0.0:
            equity += positions[s] * marks[s]
    cost = 0.0
    fees = 0.0
    traded = 0.0
    for s in range(n_symbols):
        fill_qty[s] = 0.0
        fill_price[s] = np.nan
        if not (valid[t, s] and valid[a, s]):
            continue
        gap = targets[s] * equity / marks[s] - positions[s]
        qty = abs(gap)
        if qty <= QTY_EPS:
            continue
        side = 1 if gap > 0.0 else -1
        frac = min(latency_bars(seed, s, t, params), 1.0)
        reference = interpolated_mid(open_[a, s], close[a, s], frac)
        bar_volume = volume[a, s]
        qty = min(qty, params[P_MAX_PARTICIPATION] * bar_volume * (1.0 - frac))
        if qty <= QTY_EPS:
            continue
        sigma = sigma_bps[t, s]
        quoted = data_spread_bps[a, s] if has_data_spread else np.nan
        z = standard_normal(seed, s, a, STREAM_SLIPPAGE) if noise_on else 0.0
        price = slice_price(side, qty, reference, bar_volume, sigma, quoted, coefs, s, params, z)
        fee = max(fill_fee(price, qty, params), params[P_FEE_MIN])
        positions[s] += side * qty
        cash[0] -= side * qty * price + fee
        fill_qty[s] = side * qty
        fill_price[s] = price
        cost += side * qty * (price - reference) + fee
        fees += fee
        traded += qty * price
        if learn and sigma > 0.0:
            cost_bps = side * (price - reference) / reference * 1e4
            half = 0.5 * quoted if quoted == quoted else 0.0
            ewma_observe(cost_state[s], participation_power(qty / bar_volume, beta), (cost_bps - half) / sigma, quoted, decay)
    value, gross = mark_to_market(a, close, valid, positions, marks)
    bar_stats[B_EQUITY] = cash[0] + value
    bar_stats[B_COST] = cost
    bar_stats[B_FEES] = fees
    bar_stats[B_TRADED] = traded
    bar_stats[B_GROSS_EXPOSURE] = gross
    bar_stats[B_NET_EXPOSURE] = value


@njit(cache=True, nogil=True)
def simulate_portfolio(
    targets: np.ndarray,
    initial_cash: float,
    open_: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    valid: np.ndarray,
    data_spread_bps: np.ndarray,
    sigma_bps: np.ndarray,
    coefs: np.ndarray,
    params: np.ndarray,
    seed: np.uint64,
    cost_state: np.ndarray,
    decay: float,
    out_fill_qty: np.ndarray,
    out_fill_price: np.ndarray,
    out_bar_stats: np.ndarray,
) -> None:
    """Run the whole panel: decide at every bar ``t < T - 1`` from ``targets[t]`` (NaN
    rows mean hold), execute in ``t + 1``. Bar 0 starts flat with ``initial_cash``.
    Writes signed fills ``[T, S]`` (row 0 is empty) and per-bar statistics ``[T, N_BAR_STATS]``."""
    n_bars, n_symbols = close.shape
    positions = np.zeros(n_symbols)
    cash = np.array([initial_cash])
    marks = np.full(n_symbols, np.nan)
    mark_to_market(0, close, valid, positions, marks)
    out_fill_qty[0] = 0.0
    out_fill_price[0] = np.nan
    out_bar_stats[0] = 0.0
    out_bar_stats[0, B_EQUITY] = initial_cash
    hold = np.empty(n_symbols)
    for t in range(n_bars - 1):
        row = targets[t]
        if row[0] != row[0]:
            for s in range(n_symbols):
                hold[s] = positions[s] * marks[s] / out_bar_stats[t, B_EQUITY] if positions[s] != 0.0 else 0.0
            row = hold
        portfolio_step(
            t, row, positions, cash, marks, open_, close, volume, valid, data_spread_bps, sigma_bps,
            coefs, params, seed, cost_state, decay, out_fill_qty[t + 1], out_fill_price[t + 1], out_bar_stats[t + 1],
        )  # fmt: skip
