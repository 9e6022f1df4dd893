"""The built-in demonstration strategy of ``ai-trading sim``.

Cross-sectional momentum: every ``rebalance_bars`` bars, rank symbols by their trailing
``lookback`` return, hold the top fifth long and the bottom fifth short with equal weights
of a fixed book, each position capped at ``max_adv_fraction`` of the symbol's trailing
average volume (a desk would not hold more of a thin name than it can trade out of).
Orders are the changes of the intended book, decided at the rebalance bar's close, each
live until the next rebalance. It exists to exercise the simulator
end to end, not as investment advice.
"""

from __future__ import annotations

import numpy as np

from ai_trading.execution.pnl import forward_filled_close
from ai_trading.types import BoolArray, FloatArray, MarketPanel, OrderBatch


def momentum_tradable(panel: MarketPanel, close: FloatArray, t: int, lookback: int) -> BoolArray:
    """Symbols the strategy can rank at bar ``t``: a bar now and a price ``lookback`` bars
    ago (``close`` forward-filled)."""
    return panel.valid[t] & (close[t - lookback] > 0)


def ranked_bucket(n_symbols: int) -> int:
    """Symbols held on each side: a fifth of the panel, at least one."""
    return max(n_symbols // 5, 1)


def momentum_row(panel: MarketPanel, close: FloatArray, t: int, lookback: int) -> FloatArray:
    """Weights ``[S]`` decided at bar ``t`` (``t >= lookback``): the top fifth by trailing
    return long, the bottom fifth short, flat when too few symbols can be ranked."""
    bucket = ranked_bucket(panel.n_symbols)
    past = close[t - lookback]
    tradable = momentum_tradable(panel, close, t, lookback)
    row = np.zeros(panel.n_symbols)
    if tradable.sum() >= 2 * bucket:
        momentum = np.where(tradable, close[t] / np.where(past > 0, past, 1.0) - 1.0, np.nan)
        order = np.argsort(momentum[tradable])
        names = np.flatnonzero(tradable)
        row[names[order[-bucket:]]] = 0.5 / bucket
        row[names[order[:bucket]]] = -0.5 / bucket
    return row


def momentum_weights(panel: MarketPanel, lookback: int, rebalance_bars: int) -> FloatArray:
    """Target weights ``[T, S]`` at rebalance bars (NaN elsewhere); long/short fifths."""
    close = forward_filled_close(panel)
    weights = np.full((panel.n_bars, panel.n_symbols), np.nan)
    for t in range(lookback, panel.n_bars - 1, rebalance_bars):
        weights[t] = momentum_row(panel, close, t, lookback)
    return weights


def trailing_mean_volume(panel: MarketPanel, window: int) -> FloatArray:
    """Mean volume over the last ``window`` bars up to and including t (missing bars = 0)."""
    volume = np.where(panel.valid, panel.volume, 0.0)
    cumulative = np.cumsum(volume, axis=0)
    lagged = np.vstack([np.zeros((window, panel.n_symbols)), cumulative[:-window]])[: panel.n_bars]
    counts = np.minimum(np.arange(1, panel.n_bars + 1), window)[:, None]
    return (cumulative - lagged) / counts


def book_orders(weights: FloatArray, panel: MarketPanel, book: float, rebalance_bars: int, max_adv_fraction: float, adv_window: int) -> OrderBatch:
    """Orders that move the intended book (``weights * book`` in shares, capped by
    liquidity) between rebalances."""
    decided = np.flatnonzero(~np.isnan(weights[:, 0]))
    close = forward_filled_close(panel)
    adv = trailing_mean_volume(panel, adv_window)
    shares = np.zeros((decided.size, panel.n_symbols))
    for k, t in enumerate(decided):
        wanted = np.where(close[t] > 0, weights[t] * book / np.where(close[t] > 0, close[t], 1.0), 0.0)
        cap = max_adv_fraction * adv[t]
        shares[k] = np.round(np.clip(wanted, -cap, cap))
    change = np.diff(shares, axis=0, prepend=0.0)
    rows, symbols = np.nonzero(change)
    qty = change[rows, symbols]
    return OrderBatch.market(
        order_id=np.arange(rows.size),
        symbol=symbols,
        bar=decided[rows],
        side=np.sign(qty).astype(np.int64),
        qty=np.abs(qty),
        tif_bars=rebalance_bars,
    )


DEMO_BOOK = 10_000_000.0
DEMO_LOOKBACK = 20
DEMO_REBALANCE_BARS = 5
DEMO_MAX_ADV_FRACTION = 0.02
DEMO_ADV_WINDOW = 20
DEMO_DESCRIPTION = (
    f"the built-in demo: long the top fifth and short the bottom fifth of the symbols by "
    f"{DEMO_LOOKBACK}-bar return, a {DEMO_BOOK:,.0f} book rebalanced every {DEMO_REBALANCE_BARS} bars, "
    f"at most {DEMO_MAX_ADV_FRACTION:.0%} of a name's {DEMO_ADV_WINDOW}-bar average volume; on your own data: "
    "`ai-trading data ingest SPY.csv QQQ.csv`, then `ai-trading sim --symbols SPY,QQQ`"
)
"""One line that says what ``ai-trading sim`` runs and how to run it on one's own data."""


def demo_orders(panel: MarketPanel) -> OrderBatch:
    """The demo strategy's orders on ``panel`` with its standard settings."""
    weights = momentum_weights(panel, DEMO_LOOKBACK, DEMO_REBALANCE_BARS)
    return book_orders(weights, panel, DEMO_BOOK, DEMO_REBALANCE_BARS, DEMO_MAX_ADV_FRACTION, DEMO_ADV_WINDOW)


def demo_idle_reason(panel: MarketPanel) -> str:
    """Why the demo strategy places no orders on ``panel``, in terms a user can act on."""
    if panel.n_bars <= DEMO_LOOKBACK + 1:
        return (
            f"the demo strategy needs more than {DEMO_LOOKBACK + 1} bars (a {DEMO_LOOKBACK}-bar lookback, "
            f"then a bar to trade in); the selection has {panel.n_bars}"
        )
    close = forward_filled_close(panel)
    rankable = max(
        int(momentum_tradable(panel, close, t, DEMO_LOOKBACK).sum())
        for t in range(DEMO_LOOKBACK, panel.n_bars - 1, DEMO_REBALANCE_BARS)
    )
    needed = 2 * ranked_bucket(panel.n_symbols)
    if rankable < needed:
        return (
            f"the demo strategy ranks at least {needed} symbols with a bar at the same time and {DEMO_LOOKBACK} "
            f"bars of history; at most {rankable} of these {panel.n_symbols} have one at a rebalance bar "
            f"(symbols of different bar frequencies never do: simulate them separately)"
        )
    return f"every position the demo strategy wanted rounds to 0 shares under its cap of {DEMO_MAX_ADV_FRACTION:.0%} of trailing volume"
