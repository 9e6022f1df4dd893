"""The built-in momentum demo as a policy: trading loops can run it without any training.

The weights are those of ``ai-trading sim``'s demonstration strategy
(:func:`ai_trading.execution.demo.momentum_row`, its standard lookback): long the top
fifth of symbols by trailing return, short the bottom fifth. It reads closes only; its
feature spec is the builder's default so that it runs in the same loop as every model.
"""

from __future__ import annotations

import numpy as np

from ai_trading.execution.demo import DEMO_LOOKBACK, momentum_row
from ai_trading.execution.pnl import forward_filled_close
from ai_trading.features import FeatureSpec, default_spec
from ai_trading.models.policy import MarketWindow, Policy, PortfolioState
from ai_trading.types import FloatArray

DEMO_POLICY_NAME = "demo"


class DemoPolicy(Policy):
    """Cross-sectional momentum over ``universe`` (needs no artifact and no registration).

    :param universe: the symbols it ranks, in weight order
    :param feature_spec: the spec of the loop it runs in (default: the builder's default)
    """

    name = DEMO_POLICY_NAME
    kind = "demo"
    lookback = DEMO_LOOKBACK

    def __init__(self, universe: tuple[str, ...], feature_spec: FeatureSpec | None = None) -> None:
        self.universe = tuple(universe)
        self.feature_spec = feature_spec if feature_spec is not None else default_spec()

    def decide(self, window: MarketWindow, portfolio: PortfolioState) -> FloatArray:
        t = window.panel.n_bars - 1
        if t < self.lookback:
            return np.zeros(len(self.universe))
        return momentum_row(window.panel, forward_filled_close(window.panel), t, self.lookback)
