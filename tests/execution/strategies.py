"""Hypothesis strategies for small market panels and order batches."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ai_trading.types import LIMIT, MARKET, MarketPanel, OrderBatch


@st.composite
def panels(draw: st.DrawFn, max_bars: int = 25, max_symbols: int = 3, with_spread: bool | None = None) -> MarketPanel:
    """Random-walk OHLCV panels with missing bars, thin bars and optional quoted spreads."""
    n_bars = draw(st.integers(3, max_bars))
    n_symbols = draw(st.integers(1, max_symbols))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    start = rng.uniform(5.0, 500.0, n_symbols)
    close = start * np.exp(np.cumsum(rng.normal(0.0, 0.02, (n_bars, n_symbols)), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.01, (n_bars, n_symbols)))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, (n_bars, n_symbols)))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, (n_bars, n_symbols)))
    volume = rng.choice([0.0, 50.0, 1e3, 1e5], size=(n_bars, n_symbols), p=[0.05, 0.15, 0.4, 0.4])
    valid = rng.uniform(size=(n_bars, n_symbols)) > 0.1
    for a in (open_, high, low, close, volume):
        a[~valid] = np.nan
    spread = None
    if with_spread if with_spread is not None else draw(st.booleans()):
        spread = rng.uniform(0.5, 30.0, (n_bars, n_symbols))
        spread[rng.uniform(size=spread.shape) < 0.2] = np.nan
    bar_seconds = draw(st.sampled_from([0.05, 1.0, 60.0, 86400.0]))
    ts = (np.arange(n_bars) * bar_seconds * 1e9).astype(np.int64)
    return MarketPanel(ts=ts, symbols=tuple(f"S{i}" for i in range(n_symbols)), open=open_, high=high, low=low, close=close, volume=volume, valid=valid, spread_bps=spread)


@st.composite
def order_batches(draw: st.DrawFn, panel: MarketPanel, max_orders: int = 12, limits: bool = True) -> OrderBatch:
    n = draw(st.integers(1, max_orders))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    order_type = rng.choice([MARKET, LIMIT], n) if limits else np.full(n, MARKET)
    symbol = rng.integers(0, panel.n_symbols, n)
    bar = rng.integers(0, panel.n_bars, n)
    ref = np.nan_to_num(panel.close[bar, symbol], nan=100.0)
    limit_price = np.where(order_type == LIMIT, ref * rng.uniform(0.95, 1.05, n), np.nan)
    return OrderBatch(
        order_id=rng.permutation(10 * n)[:n],
        symbol=symbol,
        bar=bar,
        side=rng.choice([-1, 1], n),
        qty=rng.choice([1.0, 100.0, 5e3, 1e5], n) * rng.uniform(0.5, 1.5, n),
        order_type=order_type,
        limit_price=limit_price,
        tif_bars=rng.integers(1, 6, n),
    )
