"""Cost formulas shared by every fill kernel: volatility, spread, slippage and fees.

All costs are in basis points of the reference (mid) price unless stated otherwise.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.layout import (
    C_IMPACT_ETA,
    C_SLIP_BASE_BPS,
    C_SLIP_VOL_COEF,
    C_SPREAD_BPS,
    P_FEE_BPS,
    P_FEE_PER_SHARE,
    P_IMPACT_BETA,
    P_SPREAD_FLOOR_BPS,
    P_SPREAD_VOL_MULT,
    P_TICK_SIZE,
    P_USE_DATA_SPREAD,
)
from kernels.vecmath import exp_clamped, log_positive


@njit(cache=True, nogil=True)
def ewma_volatility_bps(close: np.ndarray, valid: np.ndarray, halflife: float, out: np.ndarray) -> None:
    """Per-bar volatility in bps, causal: ``out[t, s]`` uses closes up to bar t only.

    ``var_t = sum_k w_k r_k**2 / sum_k w_k`` with ``w_k = lambda**(t-k)``,
    ``lambda = 0.5**(1/halflife)`` and ``r`` the log return between consecutive valid
    closes (RiskMetrics 1996 EWMA, bias-corrected by the weight sum). Before a symbol's
    first return the estimate is 0.
    """
    n_bars, n_symbols = close.shape
    lam = 0.5 ** (1.0 / halflife)
    moment = np.zeros(n_symbols)
    weight = np.zeros(n_symbols)
    last = np.full(n_symbols, np.nan)
    for t in range(n_bars):
        for s in range(n_symbols):
            price = close[t, s]
            if valid[t, s] and price > 0.0:
                if last[s] > 0.0:
                    r = np.log(price / last[s])
                    moment[s] = lam * moment[s] + (1.0 - lam) * r * r
                    weight[s] = lam * weight[s] + (1.0 - lam)
                last[s] = price
            out[t, s] = np.sqrt(moment[s] / weight[s]) * 1e4 if weight[s] > 0.0 else 0.0


@njit(cache=True, nogil=True, inline="always")
def spread_bps(price: float, sigma_bps: float, data_spread_bps: float, learned_spread_bps: float, params: np.ndarray) -> float:
    """Full quoted spread in bps: the data's where present, else learned, else modeled.

    Model: ``max(tick / price * 1e4, floor + vol_mult * sigma_bps)``: spreads widen with
    volatility (Roll 1984; Corwin and Schultz 2012) and never go below one tick.
    Branch-free, with every parameter read up front, so loops over symbols vectorise.
    """
    modeled = params[P_SPREAD_FLOOR_BPS] + params[P_SPREAD_VOL_MULT] * sigma_bps
    tick_bps = params[P_TICK_SIZE] / price * 1e4
    modeled = modeled if modeled > tick_bps else tick_bps
    unobserved = learned_spread_bps if learned_spread_bps == learned_spread_bps else modeled
    observed = params[P_USE_DATA_SPREAD] > 0.0 and data_spread_bps == data_spread_bps
    return data_spread_bps if observed else unobserved


@njit(cache=True, nogil=True, inline="always")
def participation_power(participation: float, beta: float) -> float:
    """``participation**beta`` for ``participation >= 0``, without a call to ``pow`` so
    that loops over symbols vectorise; the square root (beta = 0.5) is exact."""
    if beta == 0.5:
        return np.sqrt(participation)
    return exp_clamped(beta * log_positive(participation)) if participation > 0.0 else (1.0 if beta == 0.0 else 0.0)


@njit(cache=True, nogil=True, inline="always")
def slippage_bps(sigma_bps: float, participation: float, coefs: np.ndarray, symbol: int, params: np.ndarray) -> float:
    """Expected slippage beyond the half spread, bps of the reference price.

    ``base + vol_coef * sigma_bps + eta * sigma_bps * participation**beta``; the last term
    is the size/participation impact in the Almgren et al. (2005) form (beta 0.5 gives the
    square-root law, Toth et al. 2011).
    """
    impact = impact_scale_bps(sigma_bps, coefs, symbol) * participation_power(participation, params[P_IMPACT_BETA])
    return size_free_slippage_bps(sigma_bps, coefs, symbol) + impact


@njit(cache=True, nogil=True, inline="always")
def size_free_slippage_bps(sigma_bps: float, coefs: np.ndarray, symbol: int) -> float:
    """The part of :func:`slippage_bps` that does not depend on the order's size."""
    return coefs[C_SLIP_BASE_BPS, symbol] + coefs[C_SLIP_VOL_COEF, symbol] * sigma_bps


@njit(cache=True, nogil=True, inline="always")
def impact_scale_bps(sigma_bps: float, coefs: np.ndarray, symbol: int) -> float:
    """Impact of :func:`slippage_bps` at participation 1, bps: ``eta * sigma_bps``."""
    return coefs[C_IMPACT_ETA, symbol] * sigma_bps


@njit(cache=True, nogil=True, inline="always")
def learned_spread(coefs: np.ndarray, symbol: int) -> float:
    return coefs[C_SPREAD_BPS, symbol]


@njit(cache=True, nogil=True, inline="always")
def fill_fee(price: float, qty: float, params: np.ndarray) -> float:
    """Fee of one fill in currency: bps of notional plus a per-share fee.

    The per-order minimum is applied by the caller once the order is done.
    """
    return params[P_FEE_BPS] * 1e-4 * price * qty + params[P_FEE_PER_SHARE] * qty
