"""Slow, obviously-correct pure-Python references for the execution kernels.

Written from the model in DESIGN.md and the formulas in the kernel docstrings, with plain
Python floats and integers (the random generator is re-implemented with Python integers),
so that agreement with the Numba kernels means both say what the model says.

One exception: the kernels' normal draws are float32 (see kernels.rng), a few float32
ulps from the exact Box-Muller transform of their bits, :func:`exact_normal_pair`, which
test_random_draws holds them to. The simulator references take the kernels' draws
themselves (:func:`normal_pair`), so that they can check every formula downstream of the
draws to float64 precision. Those draws depend on the kernel's compile flags: the
portfolio kernel's loops (kernels.vector_loop) may fuse and reorder the float32
arithmetic, which rounds about one draw in twelve an ulp or so differently from the
order simulator's, and a ulp of the latency normal moves an arrival mid by up to 1e-8 of
itself. The reference therefore takes each kernel's draws as compiled with its flags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from ai_trading.config import ExecutionConfig
from ai_trading.types import MarketPanel, OrderBatch
from kernels import rng
from kernels.vector_loop import VECTOR_LOOP

MASK = (1 << 64) - 1


def splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def key_hash(seed: int, order_id: int, bar: int, stream: int = 0) -> int:
    h = splitmix64(seed ^ stream)
    h = splitmix64(h ^ (order_id & MASK))
    return splitmix64(h ^ (bar & MASK))


def exact_normal_pair(seed: int, order_id: int, bar: int) -> tuple[float, float]:
    """Box-Muller on the key's bits, in float64: radius from the high 30 bits, angle in the
    first quadrant from 30 low bits, the two lowest bits the signs of the pair; each
    uniform is the float32 nearest to the midpoint of its bits' interval."""
    h = key_hash(seed, order_id, bar)
    u = float(np.float32(((h >> 34) + 0.5) / 2.0**30))
    fraction = float(np.float32((((h >> 2) & (2**30 - 1)) + 0.5) / 2.0**30))
    radius = math.sqrt(-2.0 * math.log(u))
    angle = fraction * math.pi / 2
    first = radius * math.cos(angle) * (-1.0 if h & 1 else 1.0)
    second = radius * math.sin(angle) * (-1.0 if h & 2 else 1.0)
    return first, second


def _kernel_normal_pair(seed: np.uint64, order_id: int, bar: int) -> tuple[np.float32, np.float32]:
    return rng.normal_pair(seed, order_id, bar, rng.STREAM_EXECUTION)


_ORDER_DRAWS = njit(_kernel_normal_pair)
_VECTOR_LOOP_DRAWS = njit(fastmath=VECTOR_LOOP["fastmath"])(_kernel_normal_pair)


def normal_pair(seed: int, order_id: int, bar: int, vector_loop: bool = False) -> tuple[float, float]:
    """The kernels' own float32 draws for a key: the order simulator's, or with
    ``vector_loop`` the portfolio kernel's (see the module docstring)."""
    draws = _VECTOR_LOOP_DRAWS if vector_loop else _ORDER_DRAWS
    first, second = draws(np.uint64(seed), order_id, bar)
    return float(first), float(second)


def latency_bars(cfg: ExecutionConfig, seed: int, order_id: int, first_bar: int, bar_seconds: float, vector_loop: bool = False) -> float:
    """Lognormal latency in bars, from the first normal of the bar after the decision."""
    z = normal_pair(seed, order_id, first_bar, vector_loop)[0]
    return cfg.latency_median_ms / 1000.0 * math.exp(cfg.latency_sigma * z) / bar_seconds


def volatility_bps(close: np.ndarray, valid: np.ndarray, halflife: float) -> np.ndarray:
    """EWMA of squared log returns between consecutive valid closes, weights summing to 1."""
    lam = 0.5 ** (1.0 / halflife)
    out = np.zeros(close.shape)
    for s in range(close.shape[1]):
        returns: list[float] = []
        last = None
        for t in range(close.shape[0]):
            if valid[t, s]:
                if last is not None:
                    returns.append(math.log(close[t, s] / last))
                last = close[t, s]
            if returns:
                n = len(returns)
                weights = [lam ** (n - 1 - k) for k in range(n)]
                var = sum(w * r * r for w, r in zip(weights, returns)) / sum(weights)
                out[t, s] = math.sqrt(var) * 1e4
    return out


@dataclass
class RefFill:
    order: int
    bar: int
    qty: float
    price: float
    fee: float
    mid: float


@dataclass
class RefOrder:
    status: str
    arrival_bar: int = -1
    arrival_price: float = math.nan
    decision_price: float = math.nan
    filled: float = 0.0
    avg_price: float = math.nan
    fees: float = 0.0
    fills: list[RefFill] = field(default_factory=list)


def slice_cost_bps(cfg: ExecutionConfig, reference: float, qty: float, bar_volume: float, sigma: float, quoted: float, z: float) -> float:
    if cfg.use_data_spread and not math.isnan(quoted):
        spread = quoted
    else:
        spread = max(cfg.tick_size / reference * 1e4, cfg.spread_floor_bps + cfg.spread_vol_mult * sigma)
    participation = qty / bar_volume
    slippage = cfg.slippage_base_bps + cfg.slippage_vol_coef * sigma + cfg.impact_eta * sigma * participation**cfg.impact_beta
    return spread / 2 + slippage + cfg.slippage_noise_bps * z


def simulate_orders(cfg: ExecutionConfig, orders: OrderBatch, panel: MarketPanel, sigma: np.ndarray | None = None) -> list[RefOrder]:
    """Per-order reference; ``sigma`` may be given precomputed (benchmarks time the fills only)."""
    if sigma is None:
        sigma = volatility_bps(panel.close, panel.valid, cfg.vol_halflife_bars)
    results = []
    n_bars = panel.n_bars
    for i in range(len(orders)):
        s, t0, side, oid = int(orders.symbol[i]), int(orders.bar[i]), int(orders.side[i]), int(orders.order_id[i])
        if not panel.valid[t0, s]:
            results.append(RefOrder("no_decision_price"))
            continue
        out = RefOrder("no_market", decision_price=float(panel.close[t0, s]))
        latency = latency_bars(cfg, cfg.seed, oid, t0 + 1, panel.bar_seconds)
        skip = math.floor(latency)
        frac = latency - skip
        start = t0 + 1 + skip
        remaining = float(orders.qty[i])
        for b in range(start, min(start + int(orders.tif_bars[i]), n_bars)):
            if not panel.valid[b, s]:
                continue
            o, h, lo, c, v = (float(a[b, s]) for a in (panel.open, panel.high, panel.low, panel.close, panel.volume))
            if out.arrival_bar < 0:
                f = frac if b == start else 0.0
                reference = o + (c - o) * f
                out.arrival_bar, out.arrival_price = b, reference
                available = v * (1 - f)
            else:
                reference = (o + h + lo + c) / 4
                available = v
            qty = min(remaining, cfg.max_participation * available)
            if qty <= 1e-9:
                continue
            quoted = float(panel.spread_bps[b, s]) if panel.spread_bps is not None else math.nan
            z = normal_pair(cfg.seed, oid, b)[1]
            price = reference * (1 + side * slice_cost_bps(cfg, reference, qty, v, sigma[b - 1, s], quoted, z) / 1e4)
            if orders.order_type[i] == 1:
                limit = float(orders.limit_price[i])
                if side * (price - limit) > 0:
                    through = lo < limit if side > 0 else h > limit
                    if not through:
                        continue
                    price = limit
            fee = cfg.fee_bps / 1e4 * price * qty + cfg.fee_per_share * qty
            out.fills.append(RefFill(i, b, qty, price, fee, reference))
            remaining -= qty
            if remaining <= 1e-9:
                break
        if out.fills:
            total_fee = sum(f.fee for f in out.fills)
            if total_fee < cfg.fee_min:
                out.fills[-1].fee += cfg.fee_min - total_fee
            out.filled = sum(f.qty for f in out.fills) if remaining > 1e-9 else float(orders.qty[i])
            out.avg_price = sum(f.qty * f.price for f in out.fills) / out.filled
            out.fees = sum(f.fee for f in out.fills)
            out.status = "filled" if remaining <= 1e-9 else "partial"
        elif out.arrival_bar >= 0:
            out.status = "unfilled"
        results.append(out)
    return results


def simulate_portfolio(cfg: ExecutionConfig, targets: np.ndarray, panel: MarketPanel, cash: float) -> list[float]:
    """Equity at each bar's close for a portfolio rebalancing to ``targets`` every bar."""
    sigma = volatility_bps(panel.close, panel.valid, cfg.vol_halflife_bars)
    n_bars, n_symbols = panel.close.shape
    positions = [0.0] * n_symbols
    marks = [float(panel.close[0, s]) if panel.valid[0, s] else math.nan for s in range(n_symbols)]
    equity_curve = [cash]
    for t in range(n_bars - 1):
        a = t + 1
        equity = cash + sum(p * m for p, m in zip(positions, marks) if p != 0)
        hold = np.isnan(targets[t]).all()
        for s in range(n_symbols):
            if hold or not (panel.valid[t, s] and panel.valid[a, s]):
                continue
            gap = targets[t, s] * equity / marks[s] - positions[s]
            if abs(gap) <= 1e-9:
                continue
            side = 1 if gap > 0 else -1
            frac = min(latency_bars(cfg, cfg.seed, s, a, panel.bar_seconds, vector_loop=True), 1.0)
            o, c, v = float(panel.open[a, s]), float(panel.close[a, s]), float(panel.volume[a, s])
            reference = o + (c - o) * frac
            qty = min(abs(gap), cfg.max_participation * v * (1 - frac))
            if qty <= 1e-9:
                continue
            quoted = float(panel.spread_bps[a, s]) if panel.spread_bps is not None else math.nan
            z = normal_pair(cfg.seed, s, a, vector_loop=True)[1]
            price = reference * (1 + side * slice_cost_bps(cfg, reference, qty, v, sigma[t, s], quoted, z) / 1e4)
            fee = max(cfg.fee_bps / 1e4 * price * qty + cfg.fee_per_share * qty, cfg.fee_min)
            positions[s] += side * qty
            cash -= side * qty * price + fee
        for s in range(n_symbols):
            if panel.valid[a, s]:
                marks[s] = float(panel.close[a, s])
        equity_curve.append(cash + sum(p * m for p, m in zip(positions, marks) if p != 0))
    return equity_curve


def learned_cost_state(cfg: ExecutionConfig, panel: MarketPanel, fill_qty: np.ndarray, fill_price: np.ndarray, decay: float) -> np.ndarray:
    """EWMA sums ``[S, 7]`` (W, Sx, Sy, Sxx, Sxy, spread W, spread sum) after folding, in
    time order, every fill of a target-weight run: ``x = participation**beta`` and
    ``y = (side * (price - mid) / mid * 1e4 - quoted / 2) / sigma`` against its arrival mid."""
    sigma = volatility_bps(panel.close, panel.valid, cfg.vol_halflife_bars)
    state = np.zeros((panel.n_symbols, 7))
    for a in range(1, panel.n_bars):
        for s in range(panel.n_symbols):
            qty = float(fill_qty[a, s])
            if qty == 0.0:
                continue
            side = 1.0 if qty > 0 else -1.0
            frac = min(latency_bars(cfg, cfg.seed, s, a, panel.bar_seconds, vector_loop=True), 1.0)
            o, c = float(panel.open[a, s]), float(panel.close[a, s])
            mid = o + (c - o) * frac
            quoted = float(panel.spread_bps[a, s]) if panel.spread_bps is not None else math.nan
            x = (abs(qty) / float(panel.volume[a, s])) ** cfg.impact_beta
            row = state[s]
            if sigma[a - 1, s] > 0:
                y = (side * (float(fill_price[a, s]) - mid) / mid * 1e4 - (0.0 if math.isnan(quoted) else quoted / 2)) / sigma[a - 1, s]
                row[:5] = decay * row[:5] + [1.0, x, y, x * x, x * y]
            if not math.isnan(quoted):
                row[5:] = decay * row[5:] + [1.0, quoted]
    return state
