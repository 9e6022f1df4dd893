"""The SB3 policy observes exactly what the environment observes, and is causal."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.features import FeatureBuilder
from ai_trading.models import MarketWindow, PortfolioState
from tests.models.helpers import perturbed_after, weights_at
from tests.rl_trading.helpers import SMALL_SPEC, make_market, random_panel

pytestmark = pytest.mark.rl
sb3 = pytest.importorskip("stable_baselines3")
from ai_trading.models.sb3 import SB3Policy  # noqa: E402
from ai_trading.rl_trading.env import PortfolioEnv, VecPortfolioEnv  # noqa: E402

N_BARS, N_SYMBOLS = 80, 4


@pytest.fixture(scope="module")
def panel():  # type: ignore[no-untyped-def]
    return random_panel(N_BARS, N_SYMBOLS, seed=11)


@pytest.fixture(scope="module")
def policy(panel) -> SB3Policy:  # type: ignore[no-untyped-def]
    market = make_market(panel)
    model = sb3.PPO("MlpPolicy", VecPortfolioEnv(market, 2), n_steps=16, batch_size=32, seed=0, device="cpu")
    model.learn(32)
    return SB3Policy("ppo-test.seed0", model, panel.symbols, SMALL_SPEC, leverage_limit=1.0)


def test_live_observation_equals_the_environment_observation(panel, policy: SB3Policy) -> None:  # type: ignore[no-untyped-def]
    env = PortfolioEnv(make_market(panel))
    features = FeatureBuilder(SMALL_SPEC).build(panel)
    obs, info = env.reset(seed=3)
    rng = np.random.default_rng(0)
    compared = 0
    for _ in range(15):
        state = env._batch.state
        t = int(state.bar[0])
        equity = float(state.equity[0])
        weights = np.where(state.positions[0] != 0, state.positions[0] * state.marks[0], 0.0) / equity
        book = PortfolioState(float(state.cash[0, 0]), state.positions[0].copy(), weights, equity, float(state.peak[0]))
        live = policy.observation(MarketWindow.at(panel, features, t, policy.lookback), book)
        np.testing.assert_array_equal(live, obs)
        compared += 1
        obs, _, terminated, truncated, info = env.step(rng.uniform(-1, 1, N_SYMBOLS).astype(np.float32))
        if terminated or truncated:
            break
    assert compared >= 5 and np.abs(obs[-N_SYMBOLS - 5 : -5]).sum() > 0  # positions were held and observed


@settings(max_examples=8, deadline=None)
@given(t=st.integers(20, N_BARS - 2), seed=st.integers(0, 2**31 - 1))
def test_sb3_weights_at_t_ignore_every_later_bar(panel, policy: SB3Policy, t: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    state = PortfolioState(4e5, np.array([100.0, 0.0, -50.0, 0.0]), np.array([0.3, 0.0, -0.1, 0.0]), 1e6, 1.1e6)
    before = weights_at(policy, panel, t, state)
    np.testing.assert_array_equal(before, weights_at(policy, perturbed_after(panel, t, seed), t, state))
    assert np.abs(before).sum() <= 1.0 + 1e-9
