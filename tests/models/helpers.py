"""Shared checks of the policy tests: a perturbation of every bar after t."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ai_trading.features import FeatureBuilder
from ai_trading.models import MarketWindow, Policy, PortfolioState
from ai_trading.types import FloatArray, MarketPanel


def perturbed_after(panel: MarketPanel, t: int, seed: int) -> MarketPanel:
    """``panel`` with every bar after ``t`` replaced by different, still valid bars."""
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.normal(0.0, 0.2, panel.close.shape))
    changes = {name: getattr(panel, name).copy() for name in ("open", "high", "low", "close", "volume")}
    for name in changes:
        changes[name][t + 1 :] *= scale[t + 1 :]
    valid = panel.valid.copy()
    valid[t + 1 :] = rng.random(valid[t + 1 :].shape) > 0.3
    for values in changes.values():
        values[t + 1 :][~valid[t + 1 :]] = np.nan
        values[t + 1 :][valid[t + 1 :] & np.isnan(values[t + 1 :])] = 100.0
    changes["high"] = np.fmax(changes["high"], np.fmax(changes["open"], changes["close"]))
    changes["low"] = np.fmin(changes["low"], np.fmin(changes["open"], changes["close"]))
    return replace(panel, valid=valid, **changes)


def weights_at(policy: Policy, panel: MarketPanel, t: int, state: PortfolioState) -> FloatArray:
    """The policy's weights at ``t``, features built over the whole panel (as evaluation does)."""
    features = FeatureBuilder(policy.feature_spec).build(panel)
    return policy.target_weights(MarketWindow.at(panel, features, t, policy.lookback), state)
