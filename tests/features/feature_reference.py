"""Slow, obviously-correct references for every feature kind, and panel generators.

Each reference loops over (t, s) and computes the textbook formula from the raw panel
with ``math``; a value exists only where every bar of its lookback window is valid.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from ai_trading.features.spec import Feature
from ai_trading.types import MarketPanel

DAY_NS = 86_400 * 1_000_000_000


def random_panel(
    rng: np.random.Generator,
    n_bars: int,
    n_symbols: int,
    missing: float = 0.0,
    with_spread: bool = False,
) -> MarketPanel:
    """A random-walk daily panel with consistent OHLC; a fraction ``missing`` of bars is NaN."""
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (n_bars, n_symbols)), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.005, close.shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.01, close.shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.01, close.shape)))
    volume = rng.lognormal(12.0, 0.5, close.shape)
    valid = rng.random(close.shape) >= missing
    arrays = [open_, high, low, close, volume]
    for array in arrays:
        array[~valid] = np.nan
    spread = rng.uniform(1.0, 20.0, close.shape) if with_spread else None
    return MarketPanel(
        ts=np.arange(n_bars, dtype=np.int64) * DAY_NS,
        symbols=tuple(f"SYM{i:03d}" for i in range(n_symbols)),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        valid=valid,
        spread_bps=spread,
    )


@st.composite
def panels(draw: st.DrawFn, max_bars: int = 40, max_symbols: int = 4) -> MarketPanel:
    n_bars = draw(st.integers(1, max_bars))
    n_symbols = draw(st.integers(1, max_symbols))
    seed = draw(st.integers(0, 2**32 - 1))
    missing = draw(st.sampled_from([0.0, 0.1, 0.3]))
    with_spread = draw(st.booleans())
    return random_panel(np.random.default_rng(seed), n_bars, n_symbols, missing, with_spread)


def _bars_read(feature: Feature, t: int) -> list[int]:
    """The bars a feature's value at ``t`` needs: both endpoints of a return, else the whole window."""
    if feature.kind in ("log_return", "momentum"):
        return [t, t - feature.params.get("skip", 0), t - feature.params["window"]]
    return list(range(t - feature.lookback, t + 1))


def _window_ok(panel: MarketPanel, t: int, s: int, feature: Feature) -> bool:
    return t - feature.lookback >= 0 and all(panel.valid[k, s] for k in _bars_read(feature, t))


def _true_range(panel: MarketPanel, k: int, s: int) -> float:
    h, lo, prev = panel.high[k, s], panel.low[k, s], panel.close[k - 1, s]
    return max(h - lo, abs(h - prev), abs(lo - prev))


def _corwin_schultz(panel: MarketPanel, t: int, s: int) -> float:
    h1, l1, h0, l0 = panel.high[t, s], panel.low[t, s], panel.high[t - 1, s], panel.low[t - 1, s]
    beta = math.log(h1 / l1) ** 2 + math.log(h0 / l0) ** 2
    gamma = math.log(max(h1, h0) / min(l1, l0)) ** 2
    k = 3.0 - 2.0 * math.sqrt(2.0)
    alpha = (math.sqrt(2.0 * beta) - math.sqrt(beta)) / k - math.sqrt(gamma / k)
    return max(0.0, 2.0 * (math.exp(alpha) - 1.0) / (1.0 + math.exp(alpha))) * 1e4


def _zscore(values: list[float], current: float) -> float:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return (current - mean) / std if std > 0.0 else math.nan


def _value(panel: MarketPanel, feature: Feature, t: int, s: int) -> float:
    p = feature.params
    c = panel.close
    if feature.kind == "log_return":
        return math.log(c[t, s] / c[t - p["window"], s])
    if feature.kind == "momentum":
        return math.log(c[t - p["skip"], s] / c[t - p["window"], s])
    if feature.kind == "realized_vol":
        w = p["window"]
        return math.sqrt(sum(math.log(c[k, s] / c[k - 1, s]) ** 2 for k in range(t - w + 1, t + 1)) / w)
    if feature.kind == "volume_zscore":
        w = p["window"]
        return _zscore([math.log1p(panel.volume[k, s]) for k in range(t - w, t)], math.log1p(panel.volume[t, s]))
    if feature.kind == "sma_gap":
        w = p["window"]
        return math.log(c[t, s] / (sum(c[k, s] for k in range(t - w + 1, t + 1)) / w))
    if feature.kind == "atr":
        w = p["window"]
        return sum(_true_range(panel, k, s) for k in range(t - w + 1, t + 1)) / w / c[t, s]
    if feature.kind == "hl_range":
        return math.log(panel.high[t, s] / panel.low[t, s])
    if feature.kind == "spread":
        if panel.spread_bps is not None and p["source"] != "range":
            return float(panel.spread_bps[t, s])
        return _corwin_schultz(panel, t, s)
    raise AssertionError(f"no reference for {feature.kind}")


def reference_feature(panel: MarketPanel, feature: Feature) -> np.ndarray:
    """``[T, S]`` float64 reference values, NaN where the feature is undefined."""
    out = np.full((panel.n_bars, panel.n_symbols), np.nan)
    for t in range(panel.n_bars):
        for s in range(panel.n_symbols):
            if _window_ok(panel, t, s, feature):
                out[t, s] = _value(panel, feature, t, s)
    return out

