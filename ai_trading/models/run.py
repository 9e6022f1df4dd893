"""A policy run bar by bar over a panel: the target weights it decides, for evaluation.

The portfolio each decision sees is the book the policy's own earlier targets imply,
rebalanced exactly at the decision close and marked at every close (no costs): the
simulator that then executes these targets charges the costs and produces the equity
every metric is computed from. Live and replay runs hand the policy the broker's book
instead; the policy code is the same.
"""

from __future__ import annotations

import numpy as np

from ai_trading.errors import EvaluationError
from ai_trading.execution.pnl import forward_filled_close
from ai_trading.features import FeatureSet
from ai_trading.models.policy import MarketWindow, Policy, PortfolioState
from ai_trading.types import FloatArray, MarketPanel


def policy_targets(
    policy: Policy, panel: MarketPanel, features: FeatureSet, initial_cash: float, rebalance_bars: int = 1, start: int = 0
) -> FloatArray:
    """Weights ``[T, S]``: the policy's decision at every ``rebalance_bars``-th bar from
    ``start`` (at the earliest its lookback) on, starting flat; never at the last bar, which
    has no next bar to trade in. NaN rows hold."""
    if rebalance_bars < 1 or not initial_cash > 0:
        raise EvaluationError(f"rebalance_bars must be >= 1 and initial_cash > 0, got {rebalance_bars} and {initial_cash}")
    close = forward_filled_close(panel)
    marks = np.where(close > 0, close, 0.0)
    weights = np.full(panel.close.shape, np.nan)
    shares = np.zeros(panel.n_symbols)
    cash, peak = float(initial_cash), float(initial_cash)
    for t in range(max(policy.lookback, start), panel.n_bars - 1, rebalance_bars):
        value = shares * marks[t]
        equity = cash + float(value.sum())
        peak = max(peak, equity)
        held = value / equity if equity > 0 else np.zeros_like(value)
        state = PortfolioState(cash, shares.copy(), held, equity, peak)
        row = policy.target_weights(MarketWindow.at(panel, features, t, policy.lookback), state)
        weights[t] = row
        shares = np.where(marks[t] > 0, row * equity / np.where(marks[t] > 0, marks[t], 1.0), 0.0)
        cash = equity - float((shares * marks[t]).sum())
    return weights
