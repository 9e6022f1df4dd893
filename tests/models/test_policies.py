"""The ridge and demo policies: causal, and equal to the vectorised code they wrap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.errors import DataValidationError, FeatureSchemaMismatch
from ai_trading.execution.demo import DEMO_LOOKBACK, momentum_weights
from ai_trading.features import FeatureBuilder, default_spec
from ai_trading.models import DemoPolicy, MarketWindow, PortfolioState, RidgePolicy, RidgeModel, panel_rows
from ai_trading.models.ridge import BarStatistics, forward_returns, standardized_design, target_weights
from ai_trading.models.run import policy_targets
from tests.models.helpers import perturbed_after, weights_at
from tests.rl_trading.helpers import SMALL_SPEC, random_panel

N_BARS, N_SYMBOLS = 90, 6


@pytest.fixture(scope="module")
def panel():  # type: ignore[no-untyped-def]
    return random_panel(N_BARS, N_SYMBOLS, seed=3)


def _ridge(panel) -> RidgePolicy:  # type: ignore[no-untyped-def]
    features = FeatureBuilder(SMALL_SPEC).build(panel)
    design = standardized_design(features.values, panel.valid)
    stats = BarStatistics.compute(design, forward_returns(panel.close, panel.valid, 5))
    model = RidgeModel.fit(stats, np.arange(60), 1.0, SMALL_SPEC.names, SMALL_SPEC.schema_hash)
    return RidgePolicy("ridge-test", model, panel.symbols, SMALL_SPEC, 0.3, 1.0, True)


def _policies(panel):  # type: ignore[no-untyped-def]
    return [_ridge(panel), DemoPolicy(panel.symbols, SMALL_SPEC)]


@settings(max_examples=15, deadline=None)
@given(t=st.integers(DEMO_LOOKBACK, N_BARS - 2), seed=st.integers(0, 2**31 - 1), kind=st.sampled_from([0, 1]))
def test_weights_at_t_ignore_every_later_bar(panel, t: int, seed: int, kind: int) -> None:  # type: ignore[no-untyped-def]
    policy = _policies(panel)[kind]
    state = PortfolioState.flat(N_SYMBOLS, 1e6)
    before = weights_at(policy, panel, t, state)
    after = weights_at(policy, perturbed_after(panel, t, seed), t, state)
    np.testing.assert_array_equal(before, after)
    assert before.shape == (N_SYMBOLS,) and np.all(np.isfinite(before))


def test_the_causality_check_sees_a_change_at_t() -> None:
    """The property above could not pass vacuously: perturbing from bar t on moves the weights."""
    panel = random_panel(N_BARS, N_SYMBOLS, seed=3)
    state = PortfolioState.flat(N_SYMBOLS, 1e6)
    for policy in _policies(panel):
        moved = [not np.array_equal(weights_at(policy, panel, 60, state), weights_at(policy, perturbed_after(panel, 59, s), 60, state)) for s in range(5)]
        assert any(moved), policy.name


def test_ridge_policy_equals_the_vectorised_walk_forward_rows(panel) -> None:  # type: ignore[no-untyped-def]
    policy = _ridge(panel)
    features = FeatureBuilder(SMALL_SPEC).build(panel)
    vectorised = target_weights(policy.model.predict(standardized_design(features.values, panel.valid)), 0.3, 1.0, True)
    state = PortfolioState.flat(N_SYMBOLS, 1e6)
    for t in (10, 40, N_BARS - 1):
        np.testing.assert_allclose(weights_at(policy, panel, t, state), vectorised[t], rtol=1e-12, atol=1e-15)
    assert np.abs(vectorised[40]).sum() > 0


def test_demo_policy_equals_the_sim_demo_strategy() -> None:
    full = random_panel(80, 10, seed=5)
    full = panel_rows(full, 0, 80)
    valid_everywhere = type(full)(
        ts=full.ts, symbols=full.symbols, open=np.nan_to_num(full.open, nan=50.0), high=np.nan_to_num(full.high, nan=51.0),
        low=np.nan_to_num(full.low, nan=49.0), close=np.nan_to_num(full.close, nan=50.0),
        volume=np.nan_to_num(full.volume, nan=1e5), valid=np.ones_like(full.valid),
    )  # fmt: skip
    expected = momentum_weights(valid_everywhere, DEMO_LOOKBACK, 5)
    decided = policy_targets(DemoPolicy(valid_everywhere.symbols, SMALL_SPEC), valid_everywhere,
                             FeatureBuilder(SMALL_SPEC).build(valid_everywhere), 1e6, 5)  # fmt: skip
    np.testing.assert_array_equal(decided, expected)
    assert np.nansum(np.abs(decided)) > 0


def test_a_window_of_other_features_or_symbols_is_refused(panel) -> None:  # type: ignore[no-untyped-def]
    policy = DemoPolicy(panel.symbols, default_spec())
    features = FeatureBuilder(SMALL_SPEC).build(panel)
    with pytest.raises(FeatureSchemaMismatch, match="schema"):
        policy.target_weights(MarketWindow.at(panel, features, 50, 20), PortfolioState.flat(N_SYMBOLS, 1.0))
    other = DemoPolicy(panel.symbols[::-1], SMALL_SPEC)
    with pytest.raises(DataValidationError, match="trades"):
        other.target_weights(MarketWindow.at(panel, features, 50, 20), PortfolioState.flat(N_SYMBOLS, 1.0))


def test_policy_targets_hold_between_rebalances_and_never_decide_at_the_last_bar(panel) -> None:  # type: ignore[no-untyped-def]
    policy = _ridge(panel)
    weights = policy_targets(policy, panel, FeatureBuilder(SMALL_SPEC).build(panel), 1e6, rebalance_bars=4, start=30)
    decided = np.flatnonzero(~np.isnan(weights[:, 0]))
    assert decided[0] == 30 and np.all(np.diff(decided) == 4) and decided[-1] < N_BARS - 1
