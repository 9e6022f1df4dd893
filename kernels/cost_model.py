"""Per-symbol EWMA cost-model kernels: learn from fills, produce pricing coefficients.

State is ``float64[S, COST_ROW_WIDTH]`` (one row per symbol, the moments in the columns
of :mod:`kernels.layout`, allocated by :func:`zeros_cost_rows`): exponentially weighted
sums ``sum_k lambda**age_k * v_k`` of each moment and of the weights themselves, so means
are ``M / W`` (bias-corrected EWMA) and ``W`` counts the effective number of observations.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from kernels.costs import learned_spread, participation_power, slippage_bps, spread_bps
from kernels.layout import (
    COST_ROW_WIDTH,
    C_IMPACT_ETA,
    C_SLIP_BASE_BPS,
    C_SLIP_VOL_COEF,
    C_SPREAD_BPS,
    M_SPREAD,
    M_SPREAD_WEIGHT,
    M_WEIGHT,
    M_X,
    M_XX,
    M_XY,
    M_Y,
)
from kernels.vector_loop import VECTOR_LOOP, choose, multiply_add, multiply_add_lanes, prefetch

PREFETCH_AHEAD = 128  # observations: far enough ahead to cover a memory access, near enough to stay in cache


@njit(cache=True, nogil=True, inline="always")
def fill_observation(
    side: float, price: float, mid: float, participation: float, sigma_bps: float, spread_bps: float, beta: float
) -> tuple[float, float]:
    """Regression pair of one fill: ``x = participation**beta`` and
    ``y = (side * (price - mid) / mid * 1e4 - spread_bps / 2) / sigma_bps``, the
    volatility-normalised slippage beyond the half spread (the whole cost when the spread
    is unknown). ``y`` is NaN where it cannot be normalised (sigma <= 0 or bad prices)."""
    y = slippage_y(side * (price - mid) / mid * 1e4, spread_bps, sigma_bps) if mid > 0.0 else np.nan
    return participation_power(participation, beta), y


@njit(cache=True, nogil=True, inline="always")
def slippage_y(cost_bps: float, spread_bps: float, sigma_bps: float) -> float:
    """The cost model's ``y`` of a cost: ``(cost_bps - spread_bps / 2) / sigma_bps``, the
    half spread taken as 0 when unknown; NaN when ``sigma_bps <= 0``."""
    half = 0.5 * spread_bps if spread_bps == spread_bps else 0.0
    return (cost_bps - half) / sigma_bps if sigma_bps > 0.0 else np.nan


@njit(cache=True, nogil=True)
def fill_observations(
    side: np.ndarray,
    price: np.ndarray,
    mid: np.ndarray,
    participation: np.ndarray,
    sigma_bps: np.ndarray,
    spread_bps: np.ndarray,
    beta: float,
    out_x: np.ndarray,
    out_y: np.ndarray,
) -> None:
    """:func:`fill_observation` of every fill."""
    for k in range(side.shape[0]):
        out_x[k], out_y[k] = fill_observation(side[k], price[k], mid[k], participation[k], sigma_bps[k], spread_bps[k], beta)


@njit(cache=True, nogil=True, inline="always")
def moment_columns(state: np.ndarray) -> tuple[np.ndarray, ...]:
    """The moments of symbol-major state ``[S, COST_ROW_WIDTH]`` as one view per moment."""
    return (state[:, 0], state[:, 1], state[:, 2], state[:, 3], state[:, 4], state[:, 5], state[:, 6])


@njit(cache=True, nogil=True, inline="always")
def moment_rows(state: np.ndarray) -> tuple[np.ndarray, ...]:
    """The moments of moment-major state ``[N_COST_STATE, S]`` as one contiguous row each:
    the layout for loops over symbols, which then vectorise."""
    return (state[0], state[1], state[2], state[3], state[4], state[5], state[6])


@njit(cache=True, nogil=True, inline="always")
def ewma_observe(moments: tuple[np.ndarray, ...], s: int, x: float, y: float, spread_bps: float, decay: float) -> None:
    """Fold one observation into symbol ``s``'s EWMA sums (``moments``: one array per
    moment, in ``M_*`` order, indexed by symbol): the slippage moments ``W, Sx, Sy, Sxx,
    Sxy`` unless ``y`` is NaN, the spread pair unless the spread is NaN.

    Every moment is stored either way, as ``moment * factor + value`` rounded once, with
    ``factor, value`` either ``decay`` and the observation or ``1, 0``: a loop over symbols
    then stores unconditionally and selects only the factors and values (a store of a
    choice between a new value and the one loaded from the same place becomes a masked
    store, which AMD CPUs execute in microcode, several times slower)."""
    ewma_observe_slippage(moments, s, x, y, decay)
    ewma_observe_spread(moments, s, spread_bps, decay)


@njit(cache=True, nogil=True, inline="always")
def ewma_observe_slippage(moments: tuple[np.ndarray, ...], s: int, x: float, y: float, decay: float) -> None:
    """The slippage moments of :func:`ewma_observe`: ``W, Sx, Sy, Sxx, Sxy`` unless ``y`` is NaN."""
    slip = y == y
    slip_decay = choose(slip, decay, 1.0)
    x = choose(slip, x, 0.0)
    y = choose(slip, y, 0.0)
    ewma_fold(moments[M_WEIGHT], s, slip_decay, choose(slip, 1.0, 0.0))
    ewma_fold(moments[M_X], s, slip_decay, x)
    ewma_fold(moments[M_Y], s, slip_decay, y)
    ewma_fold(moments[M_XX], s, slip_decay, x * x)
    ewma_fold(moments[M_XY], s, slip_decay, x * y)


@njit(cache=True, nogil=True, inline="always")
def ewma_observe_spread(moments: tuple[np.ndarray, ...], s: int, spread_bps: float, decay: float) -> None:
    """The spread pair of :func:`ewma_observe`, unless the spread is NaN."""
    quoted = spread_bps == spread_bps
    spread_decay = choose(quoted, decay, 1.0)
    ewma_fold(moments[M_SPREAD_WEIGHT], s, spread_decay, choose(quoted, 1.0, 0.0))
    ewma_fold(moments[M_SPREAD], s, spread_decay, choose(quoted, spread_bps, 0.0))


@njit(cache=True, nogil=True, inline="always")
def ewma_fold(moment: np.ndarray, s: int, factor: float, value: float) -> None:
    """``moment[s] <- moment[s] * factor + value``, rounded once as :func:`ewma_observe_row`
    rounds it."""
    moment[s] = multiply_add(moment[s], factor, value)


@njit(cache=True, nogil=True, inline="always")
def ewma_observe_row(flat_state: np.ndarray, s: int, x: float, y: float, spread_bps: float, decay: float) -> None:
    """:func:`ewma_observe` of an observation with both ``y`` and the spread present, into
    row ``s`` of symbol-major state (flattened): every moment, in ``M_*`` order, and the
    unused lane (which stays 0) in one vector multiply-add."""
    values = (1.0, x, y, x * x, x * y, 1.0, spread_bps, 0.0)
    multiply_add_lanes(flat_state, uint64(s) * uint64(COST_ROW_WIDTH), decay, values)


@njit(cache=True, nogil=True, **VECTOR_LOOP)
def ewma_update(state: np.ndarray, symbol: np.ndarray, x: np.ndarray, y: np.ndarray, spread_bps: np.ndarray, decay: float) -> None:
    """Fold observations, in order, into the per-symbol EWMA sums (in place on ``state``,
    C-contiguous ``[S, COST_ROW_WIDTH]``). ``symbol`` must index rows of ``state`` (the
    wrapper checks): it is read as unsigned, which spares every access the fix-up a signed
    index gets for counting from the end.

    An observation with ``y`` and the spread updates its row in one vector operation;
    one that lacks either folds moment by moment, to the same sums. Every eighth
    observation the inputs' lines ``PREFETCH_AHEAD`` observations on are requested."""
    moments = moment_columns(state)
    flat_state = state.reshape(-1)
    for k in range(symbol.shape[0]):
        if k % 8 == 0:
            ahead = k + PREFETCH_AHEAD
            prefetch(symbol, ahead)
            prefetch(x, ahead)
            prefetch(y, ahead)
            prefetch(spread_bps, ahead)
        s = uint64(symbol[k])
        y_k = y[k]
        spread_k = spread_bps[k]
        if y_k == y_k and spread_k == spread_k:
            ewma_observe_row(flat_state, s, x[k], y_k, spread_k, decay)
        else:
            ewma_observe(moments, s, x[k], y_k, spread_k, decay)


def zeros_cost_rows(n_symbols: int) -> np.ndarray:
    """Zero EWMA state for ``n_symbols``, ``float64[n_symbols, COST_ROW_WIDTH]``, starting
    on a 64-byte boundary so that each row is one cache line: a vector update of a row
    that straddles two lines costs :func:`ewma_update` a fifth of its speed."""
    line = 64 // np.dtype(np.float64).itemsize
    buffer = np.zeros(n_symbols * COST_ROW_WIDTH + line)
    start = (-buffer.ctypes.data % 64) // buffer.itemsize
    return buffer[start : start + n_symbols * COST_ROW_WIDTH].reshape(n_symbols, COST_ROW_WIDTH)


@njit(cache=True, nogil=True)
def estimate_coefs(state: np.ndarray, min_weight: float, min_x_var: float, coefs: np.ndarray) -> None:
    """Overwrite ``coefs[:, s]`` for every symbol with at least ``min_weight`` effective
    observations: the weighted least-squares line ``y = a + eta * x`` gives
    ``vol_coef = a``, ``eta = max(slope, 0)`` and ``base = 0`` (slippage scales with
    volatility). When ``x`` barely varies the slope is not identified and the configured
    ``eta`` is kept, with ``a = mean(y) - eta * mean(x)``. The learned spread is the EWMA
    of observed spreads, or 0 when slippage was learned without spreads (then ``y``
    already contains the spread)."""
    for s in range(state.shape[0]):
        row = state[s]
        w = row[M_WEIGHT]
        if w < min_weight:
            continue
        mean_x = row[M_X] / w
        mean_y = row[M_Y] / w
        var_x = row[M_XX] / w - mean_x * mean_x
        eta = coefs[C_IMPACT_ETA, s]
        if var_x > min_x_var:
            slope = (row[M_XY] / w - mean_x * mean_y) / var_x
            eta = slope if slope > 0.0 else 0.0
        coefs[C_SLIP_BASE_BPS, s] = 0.0
        coefs[C_SLIP_VOL_COEF, s] = mean_y - eta * mean_x
        coefs[C_IMPACT_ETA, s] = eta
        coefs[C_SPREAD_BPS, s] = row[M_SPREAD] / row[M_SPREAD_WEIGHT] if row[M_SPREAD_WEIGHT] > 0.0 else 0.0


@njit(cache=True, nogil=True)
def predict_cost_bps(
    symbol: np.ndarray,
    price: np.ndarray,
    qty: np.ndarray,
    bar_volume: np.ndarray,
    sigma_bps: np.ndarray,
    data_spread_bps: np.ndarray,
    coefs: np.ndarray,
    params: np.ndarray,
    out: np.ndarray,
) -> None:
    """Expected cost of each order in bps of its price: half spread plus slippage at
    participation ``qty / bar_volume``, with the same formulas the fill kernels charge."""
    for k in range(symbol.shape[0]):
        s = symbol[k]
        half = 0.5 * spread_bps(price[k], sigma_bps[k], data_spread_bps[k], learned_spread(coefs, s), params)
        out[k] = half + slippage_bps(sigma_bps[k], qty[k] / bar_volume[k], coefs, s, params)
