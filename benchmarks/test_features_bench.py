"""Building the default feature set: FeatureBuilder (Numba kernels) vs plain NumPy.

Full size: 500 symbols x 2520 daily bars (10 years), 1% of bars missing. Items are
bar-symbols (T * S). The NumPy baseline computes the same twelve features with
vectorised array code (sliding windows for rolling statistics) plus the same dataset
fingerprint, and is checked against the builder, so the ratio compares equal work.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ai_trading.features import FeatureBuilder, dataset_fingerprint, default_spec
from ai_trading.types import MarketPanel

FULL_SHAPE = (2520, 500)
SMALL_SHAPE = (300, 20)
DAY_NS = 86_400 * 1_000_000_000


def _panel(n_bars: int, n_symbols: int, seed: int = 0) -> MarketPanel:
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (n_bars, n_symbols)), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.005, close.shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.01, close.shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.01, close.shape)))
    valid = rng.random(close.shape) >= 0.01
    arrays = [open_, high, low, close, rng.lognormal(12.0, 0.5, close.shape)]
    for array in arrays:
        array[~valid] = np.nan
    return MarketPanel(np.arange(n_bars, dtype=np.int64) * DAY_NS, tuple(f"S{i:04d}" for i in range(n_symbols)),
                       *arrays, valid=valid)


def _lag(x: np.ndarray, k: int, fill: float | bool = np.nan) -> np.ndarray:
    out = np.full_like(x, fill)
    out[k:] = x[: x.shape[0] - k]
    return out


def _windows(x: np.ndarray, w: int) -> np.ndarray:
    """``[T, S, w]`` windows ending at each bar; the first ``w - 1`` rows are padding."""
    pad = np.full((w - 1, x.shape[1]), False if x.dtype == bool else np.nan, dtype=x.dtype)
    return sliding_window_view(np.concatenate([pad, x]), w, axis=0)


def numpy_features(panel: MarketPanel) -> np.ndarray:
    """The default spec in plain NumPy (same formulas and validity rules as the kernels)."""
    c, h, lo, v, ok = panel.close, panel.high, panel.low, panel.volume, panel.valid
    lc = np.log(c)
    all_ok = {w: _windows(ok, w + 1).all(axis=-1) for w in (1, 14, 20, 60)}
    out = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for w in (1, 5, 20, 60):
            out.append(np.where(ok & _lag(ok, w, False), lc - _lag(lc, w), np.nan))
        out.append(np.where(ok & _lag(ok, 21, False) & _lag(ok, 252, False), _lag(lc, 21) - _lag(lc, 252), np.nan))
        r1 = lc - _lag(lc, 1)
        for w in (20, 60):
            out.append(np.where(all_ok[w], np.sqrt(np.mean(_windows(r1, w) ** 2, axis=-1)), np.nan))
        lv = np.log1p(v)
        prev = _windows(_lag(lv, 1), 20)
        std = prev.std(axis=-1, ddof=1)
        out.append(np.where(all_ok[20] & (std > 0), (lv - prev.mean(axis=-1)) / std, np.nan))
        out.append(np.where(_windows(ok, 20).all(axis=-1), np.log(c / _windows(c, 20).mean(axis=-1)), np.nan))
        pc = _lag(c, 1)
        tr = np.maximum(h - lo, np.maximum(np.abs(h - pc), np.abs(lo - pc)))
        out.append(np.where(all_ok[14], _windows(tr, 14).mean(axis=-1) / c, np.nan))
        out.append(np.where(ok, np.log(h / lo), np.nan))
        beta = np.log(h / lo) ** 2 + _lag(np.log(h / lo), 1) ** 2
        gamma = np.log(np.maximum(h, _lag(h, 1)) / np.minimum(lo, _lag(lo, 1))) ** 2
        k = 3.0 - 2.0 * np.sqrt(2.0)
        alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / k - np.sqrt(gamma / k)
        spread = np.maximum(0.0, 2.0 * (np.exp(alpha) - 1.0) / (1.0 + np.exp(alpha))) * 1e4
        out.append(np.where(all_ok[1], spread, np.nan))
    dataset_fingerprint(panel)  # the builder hashes its input too: equal work
    return np.stack(out, axis=-1).astype(np.float32)


def test_default_feature_set_throughput(throughput) -> None:  # type: ignore[no-untyped-def]
    n_bars, n_symbols = FULL_SHAPE if throughput.full_size else SMALL_SHAPE
    panel = _panel(n_bars, n_symbols)
    builder = FeatureBuilder(default_spec())
    features = builder.build(panel)  # compile outside the timed region
    np.testing.assert_allclose(features.values, numpy_features(panel), rtol=1e-4, atol=1e-5)
    result = throughput.measure(
        lambda: builder.build(panel), n_bars * n_symbols, lambda: numpy_features(panel), n_bars * n_symbols
    )
    assert result.values.shape == (n_bars, n_symbols, len(default_spec().features))
