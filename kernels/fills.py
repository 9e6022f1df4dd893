"""Order-by-order fill simulation: latency, arrival, partial fills, limits, fees.

Each order is independent: it may take up to ``max_participation`` of every bar's volume,
and its random draws are keyed by (seed, order id, bar), so results do not depend on how
orders are batched or ordered.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.costs import fill_fee, learned_spread, slippage_bps, spread_bps
from kernels.layout import (
    P_FEE_MIN,
    P_LATENCY_MEDIAN_BARS,
    P_LATENCY_SIGMA,
    P_MAX_PARTICIPATION,
    P_NOISE_BPS,
    S_FILLED,
    S_NO_DECISION_PRICE,
    S_NO_MARKET,
    S_PARTIAL,
    S_UNFILLED,
)
from kernels.rng import STREAM_EXECUTION, normal_pair_at, order_key
from kernels.vecmath import exp_clamped

MARKET = 0
LIMIT = 1
QTY_EPS = 1e-9  # shares below this count as nothing left to fill


@njit(cache=True, nogil=True, inline="always")
def latency_bars(z: float, params: np.ndarray) -> float:
    """Latency in bars: lognormal ``median * exp(sigma * z)``, ``z`` the first normal of
    the order's draws in the bar after its decision."""
    return params[P_LATENCY_MEDIAN_BARS] * exp_clamped(params[P_LATENCY_SIGMA] * z)


@njit(cache=True, nogil=True, inline="always")
def interpolated_mid(open_: float, close: float, frac: float) -> float:
    """Mid at a fraction of the way through a bar, on the straight line from open to close."""
    return open_ + (close - open_) * frac


@njit(cache=True, nogil=True, inline="always")
def slice_price(
    side: int,
    qty: float,
    reference: float,
    bar_volume: float,
    sigma_bps: float,
    data_spread_bps: float,
    coefs: np.ndarray,
    symbol: int,
    params: np.ndarray,
    noise_z: float,
) -> float:
    """Price of a marketable slice: the reference moved against the order by half the
    spread plus slippage (including ``noise_bps * z``), in bps of the reference."""
    participation = qty / bar_volume
    half_spread = 0.5 * spread_bps(reference, sigma_bps, data_spread_bps, learned_spread(coefs, symbol), params)
    cost_bps = half_spread + slippage_bps(sigma_bps, participation, coefs, symbol, params) + params[P_NOISE_BPS] * noise_z
    return price_at_cost(side, reference, cost_bps)


@njit(cache=True, nogil=True, inline="always")
def price_at_cost(side: float, reference: float, cost_bps: float) -> float:
    """The reference moved against a ``side`` (+1 buy, -1 sell) order by ``cost_bps``."""
    return reference * (1.0 + side * cost_bps * 1e-4)


@njit(cache=True, nogil=True, inline="always")
def limit_fill_price(side: int, market_price: float, limit: float, bar_high: float, bar_low: float) -> float:
    """Price a limit order gets in a bar, or NaN when it does not fill there.

    Marketable (the slice price is within the limit): fills at the slice price. Otherwise
    it rests and fills at the limit only when the bar trades through it (low < limit for a
    buy, high > limit for a sell). Never at a worse price than the limit.
    """
    if side * (market_price - limit) <= 0.0:
        return market_price
    if (side > 0 and bar_low < limit) or (side < 0 and bar_high > limit):
        return limit
    return np.nan


@njit(cache=True, nogil=True)
def simulate_orders(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    valid: np.ndarray,
    data_spread_bps: np.ndarray,
    sigma_bps: np.ndarray,
    order_id: np.ndarray,
    order_symbol: np.ndarray,
    order_bar: np.ndarray,
    order_side: np.ndarray,
    order_qty: np.ndarray,
    order_type: np.ndarray,
    order_limit: np.ndarray,
    order_tif: np.ndarray,
    coefs: np.ndarray,
    params: np.ndarray,
    seed: np.uint64,
    out_status: np.ndarray,
    out_arrival_bar: np.ndarray,
    out_arrival_price: np.ndarray,
    out_decision_price: np.ndarray,
    out_filled: np.ndarray,
    out_avg_price: np.ndarray,
    out_fees: np.ndarray,
    out_last_bar: np.ndarray,
    fill_order: np.ndarray,
    fill_bar: np.ndarray,
    fill_qty: np.ndarray,
    fill_price: np.ndarray,
    fill_fee_out: np.ndarray,
    fill_mid: np.ndarray,
    fill_participation: np.ndarray,
    fill_sigma: np.ndarray,
    fill_spread: np.ndarray,
) -> int:
    """Fill every order; returns the number of fill events written.

    Decision at the close of ``order_bar``; the order arrives ``latency`` later, in bar
    ``t0 + 1 + floor(latency_bars)`` at the fraction ``frac`` of that bar, where the
    arrival mid is interpolated between the bar's open and close. In the arrival bar it
    may take ``max_participation`` of the volume left after ``frac``; in each later bar of
    its time in force, ``max_participation`` of the bar's volume at the bar's
    ``(open + high + low + close) / 4`` reference. Missing bars trade nothing but still use
    up time in force. Slippage uses the volatility known before the bar (``sigma[b-1]``).
    The fill arrays need room for ``sum(min(tif, T - 1 - t0))`` events.
    """
    n_bars = close.shape[0]
    n_orders = order_id.shape[0]
    has_data_spread = data_spread_bps.shape[0] == n_bars
    cap_fraction = params[P_MAX_PARTICIPATION]
    noise_on = params[P_NOISE_BPS] != 0.0
    n_fills = 0
    for i in range(n_orders):
        s = order_symbol[i]
        t0 = order_bar[i]
        side = order_side[i]
        oid = order_id[i]
        out_filled[i] = 0.0
        out_fees[i] = 0.0
        out_avg_price[i] = np.nan
        out_arrival_price[i] = np.nan
        out_arrival_bar[i] = -1
        out_last_bar[i] = -1
        if not valid[t0, s]:
            out_decision_price[i] = np.nan
            out_status[i] = S_NO_DECISION_PRICE
            continue
        out_decision_price[i] = close[t0, s]
        key = order_key(seed, oid, STREAM_EXECUTION)
        lat = latency_bars(normal_pair_at(key, t0 + 1)[0], params)
        skip = int(np.floor(lat))
        frac = lat - skip
        start = t0 + 1 + skip
        end = min(start + order_tif[i], n_bars)
        remaining = order_qty[i]
        filled = 0.0  # summed, not order_qty - remaining, which loses digits on large orders
        notional = 0.0
        fees = 0.0
        last_fill = -1
        for b in range(start, end):
            out_last_bar[i] = b
            if not valid[b, s]:
                continue
            if out_arrival_bar[i] < 0:
                out_arrival_bar[i] = b
                bar_frac = frac if b == start else 0.0
                reference = interpolated_mid(open_[b, s], close[b, s], bar_frac)
                out_arrival_price[i] = reference
                available = volume[b, s] * (1.0 - bar_frac)
            else:
                reference = 0.25 * (open_[b, s] + high[b, s] + low[b, s] + close[b, s])
                available = volume[b, s]
            qty = min(remaining, cap_fraction * available)
            if qty <= QTY_EPS:
                continue
            sigma = sigma_bps[b - 1, s]
            quoted = data_spread_bps[b, s] if has_data_spread else np.nan
            z = normal_pair_at(key, b)[1] if noise_on else 0.0
            price = slice_price(side, qty, reference, volume[b, s], sigma, quoted, coefs, s, params, z)
            if order_type[i] == LIMIT:
                price = limit_fill_price(side, price, order_limit[i], high[b, s], low[b, s])
                if price != price:
                    continue
            fee = fill_fee(price, qty, params)
            fill_order[n_fills] = i
            fill_bar[n_fills] = b
            fill_qty[n_fills] = qty
            fill_price[n_fills] = price
            fill_fee_out[n_fills] = fee
            fill_mid[n_fills] = reference
            fill_participation[n_fills] = qty / volume[b, s]
            fill_sigma[n_fills] = sigma
            fill_spread[n_fills] = quoted
            last_fill = n_fills
            n_fills += 1
            remaining -= qty
            filled += qty
            notional += price * qty
            fees += fee
            if remaining <= QTY_EPS:
                break
        if last_fill >= 0:
            if fees < params[P_FEE_MIN]:
                fill_fee_out[last_fill] += params[P_FEE_MIN] - fees
                fees = params[P_FEE_MIN]
            complete = remaining <= QTY_EPS
            out_filled[i] = order_qty[i] if complete else filled
            out_avg_price[i] = notional / out_filled[i]
            out_fees[i] = fees
            out_status[i] = S_FILLED if complete else S_PARTIAL
        elif out_arrival_bar[i] >= 0:
            out_status[i] = S_UNFILLED
        else:
            out_status[i] = S_NO_MARKET
    return n_fills
