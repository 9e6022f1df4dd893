"""Per-symbol EWMA cost-model kernels: learn from fills, produce pricing coefficients.

State is ``float64[S, N_COST_STATE]`` (one row per symbol, layout in :mod:`kernels.layout`):
exponentially weighted sums ``sum_k lambda**age_k * v_k`` of each moment and of the
weights themselves, so means are ``M / W`` (bias-corrected EWMA) and ``W`` counts the
effective number of observations.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.costs import learned_spread, participation_power, slippage_bps, spread_bps
from kernels.layout import (
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
    O_SPREAD,
    O_X,
    O_Y,
)


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
    """Regression pairs of each fill: ``x = participation**beta`` and
    ``y = (side * (price - mid) / mid * 1e4 - spread_bps / 2) / sigma_bps``, the
    volatility-normalised slippage beyond the half spread (the whole cost when the spread
    is unknown). ``y`` is NaN where it cannot be normalised (sigma <= 0 or bad prices)."""
    for k in range(side.shape[0]):
        cost = side[k] * (price[k] - mid[k]) / mid[k] * 1e4
        half = 0.5 * spread_bps[k] if spread_bps[k] == spread_bps[k] else 0.0
        sigma = sigma_bps[k]
        out_x[k] = participation_power(participation[k], beta)
        out_y[k] = (cost - half) / sigma if sigma > 0.0 and mid[k] > 0.0 else np.nan


@njit(cache=True, nogil=True, inline="always")
def ewma_observe(row: np.ndarray, x: float, y: float, spread_bps: float, decay: float) -> None:
    """Fold one observation into a symbol's EWMA sums: ``m <- decay * m + v`` for the
    slippage moments ``W, Sx, Sy, Sxx, Sxy`` (skipped when ``y`` is NaN) and, when the
    spread is finite, for the spread pair."""
    if y == y:
        row[M_WEIGHT] = decay * row[M_WEIGHT] + 1.0
        row[M_X] = decay * row[M_X] + x
        row[M_Y] = decay * row[M_Y] + y
        row[M_XX] = decay * row[M_XX] + x * x
        row[M_XY] = decay * row[M_XY] + x * y
    if spread_bps == spread_bps:
        row[M_SPREAD_WEIGHT] = decay * row[M_SPREAD_WEIGHT] + 1.0
        row[M_SPREAD] = decay * row[M_SPREAD] + spread_bps


@njit(cache=True, nogil=True)
def ewma_update(state: np.ndarray, symbol: np.ndarray, x: np.ndarray, y: np.ndarray, spread_bps: np.ndarray, decay: float) -> None:
    """Fold observations, in order, into the per-symbol EWMA sums (in place on ``state``)."""
    for k in range(symbol.shape[0]):
        ewma_observe(state[symbol[k]], x[k], y[k], spread_bps[k], decay)


@njit(cache=True, nogil=True)
def ewma_observe_columns(state: np.ndarray, observations: np.ndarray, decay: float) -> None:
    """Fold one observation per symbol (``observations[N_OBSERVATION, S]``, layout in
    :mod:`kernels.layout`) into moment-major state ``[N_COST_STATE, S]``: the layout of
    the per-bar portfolio kernels, whose loops run across symbols."""
    for s in range(state.shape[1]):
        ewma_observe(state[:, s], observations[O_X, s], observations[O_Y, s], observations[O_SPREAD, s], decay)


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
