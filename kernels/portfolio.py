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

from kernels.cost_model import ewma_observe_columns
from kernels.costs import fill_fee, participation_power
from kernels.fills import QTY_EPS, interpolated_mid, latency_bars, slice_price
from kernels.layout import N_OBSERVATION, O_SPREAD, O_X, O_Y, P_FEE_MIN, P_IMPACT_BETA, P_MAX_PARTICIPATION
from kernels.rng import STREAM_EXECUTION, normal_pair

# Per-bar outputs of simulate_portfolio / portfolio_step (float64[N_BAR_STATS]).
B_EQUITY = 0  # equity marked at the bar's close, after its fills
B_COST = 1  # execution cost vs reference mid plus fees, currency, positive = paid
B_FEES = 2  # fees, currency
B_TRADED = 3  # traded notional, currency
B_GROSS_EXPOSURE = 4  # sum |position value| at the close
B_NET_EXPOSURE = 5  # sum position value at the close
N_BAR_STATS = 6


# Loops over symbols run vectorised (AVX2/AVX-512): no Python error checks (the inputs are
# validated by the wrappers), and per-bar sums may be reassociated into vector lanes.
VECTOR_LOOP = {"error_model": "numpy", "fastmath": {"contract", "reassoc"}, "_nrt": False}


@njit(cache=True, nogil=True, **VECTOR_LOOP)
def mark_to_market(t: int, close: np.ndarray, valid: np.ndarray, positions: np.ndarray, marks: np.ndarray) -> tuple[float, float]:
    """Move each symbol's mark to bar ``t``'s close where valid; return the net and the
    gross (sum of absolute) value of the positions at those marks."""
    value = 0.0
    gross = 0.0
    for s in range(positions.shape[0]):
        mark = close[t, s] if valid[t, s] else marks[s]
        marks[s] = mark
        position_value = positions[s] * mark if positions[s] != 0.0 else 0.0
        value += position_value
        gross += abs(position_value)
    return value, gross


@njit(cache=True, nogil=True, **VECTOR_LOOP)
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
    learn: bool,
    cost_state: np.ndarray,
    observations: np.ndarray,
    decay: float,
    fill_qty: np.ndarray,
    fill_price: np.ndarray,
    bar_stats: np.ndarray,
) -> None:
    """Rebalance at decision bar ``t`` to ``targets`` (weights of equity, signed) and
    execute in bar ``t + 1``; updates ``positions``, ``cash[0]`` and ``marks`` in place,
    writes signed filled shares and prices per symbol (0 / NaN when nothing filled) and
    bar ``t + 1``'s statistics. ``marks`` must hold the prices at bar ``t``'s close.

    ``data_spread_bps`` is ``[T, S]``, or one row of NaN when the data has no spreads.
    With ``learn``, each fill's observation goes through ``observations[N_OBSERVATION, S]``
    into the moment-major cost state ``cost_state[N_COST_STATE, S]``. All arrays are
    always full size, so the vectoriser's overlap checks see real extents.

    Every symbol is priced whether or not it trades, and a mask decides what is kept:
    the loop has no branches, so it runs in vector lanes."""
    n_symbols = positions.shape[0]
    a = t + 1
    spread_row = a if data_spread_bps.shape[0] == close.shape[0] else 0
    beta = params[P_IMPACT_BETA]
    max_participation = params[P_MAX_PARTICIPATION]
    fee_min = params[P_FEE_MIN]
    equity = cash[0]
    for s in range(n_symbols):
        equity += positions[s] * marks[s] if positions[s] != 0.0 else 0.0
    spent = 0.0
    cost = 0.0
    fees = 0.0
    traded = 0.0
    for s in range(n_symbols):
        gap = targets[s] * equity / marks[s] - positions[s]
        side = 1.0 if gap > 0.0 else -1.0
        latency_z, noise_z = normal_pair(seed, s, a, STREAM_EXECUTION)
        frac = min(latency_bars(latency_z, params), 1.0)
        reference = interpolated_mid(open_[a, s], close[a, s], frac)
        bar_volume = volume[a, s]
        qty = min(abs(gap), max_participation * bar_volume * (1.0 - frac))
        trade = valid[t, s] and valid[a, s] and qty > QTY_EPS
        sigma = sigma_bps[t, s]
        quoted = data_spread_bps[spread_row, s]
        price = slice_price(side, qty, reference, bar_volume, sigma, quoted, coefs, s, params, noise_z)
        fee = max(fill_fee(price, qty, params), fee_min) if trade else 0.0
        signed_qty = side * qty if trade else 0.0
        # Untraded symbols may have NaN prices (missing bars): zero them before summing.
        slippage = price - reference if trade else 0.0
        notional = qty * price if trade else 0.0
        positions[s] += signed_qty
        fill_qty[s] = signed_qty
        fill_price[s] = price if trade else np.nan
        spent += side * notional + fee
        cost += signed_qty * slippage + fee
        fees += fee
        traded += notional
        # Written whether or not learning is on: a loop-invariant branch here would make
        # LLVM split the loop in two, and it keeps only one of the copies vectorised.
        observe = trade and sigma > 0.0
        cost_bps = side * (price - reference) / reference * 1e4
        half = 0.5 * quoted if quoted == quoted else 0.0
        observations[O_X, s] = participation_power(qty / bar_volume, beta)
        observations[O_Y, s] = (cost_bps - half) / sigma if observe else np.nan
        observations[O_SPREAD, s] = quoted if observe else np.nan
    cash[0] -= spent
    if learn:
        ewma_observe_columns(cost_state, observations, decay)
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
    learn: bool,
    cost_state: np.ndarray,
    decay: float,
    out_fill_qty: np.ndarray,
    out_fill_price: np.ndarray,
    out_bar_stats: np.ndarray,
) -> None:
    """Run the whole panel: decide at every bar ``t < T - 1`` from ``targets[t]`` (NaN
    rows mean hold), execute in ``t + 1``. Bar 0 starts flat with ``initial_cash``.
    Writes signed fills ``[T, S]`` (row 0 is empty) and per-bar statistics ``[T, N_BAR_STATS]``;
    with ``learn``, every fill updates the moment-major ``cost_state`` (see :func:`portfolio_step`)."""
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
    observations = np.empty((N_OBSERVATION, n_symbols))
    for t in range(n_bars - 1):
        row = targets[t]
        if row[0] != row[0]:
            for s in range(n_symbols):
                hold[s] = positions[s] * marks[s] / out_bar_stats[t, B_EQUITY] if positions[s] != 0.0 else 0.0
            row = hold
        portfolio_step(
            t, row, positions, cash, marks, open_, close, volume, valid, data_spread_bps, sigma_bps,
            coefs, params, seed, learn, cost_state, observations, decay, out_fill_qty[t + 1], out_fill_price[t + 1],
            out_bar_stats[t + 1],
        )  # fmt: skip
