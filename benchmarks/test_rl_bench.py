"""Env-steps/s of VecPortfolioEnv (N envs in one Numba call) against SB3's DummyVecEnv
over N PortfolioEnvs, the standard way to batch gymnasium environments."""

from __future__ import annotations

import numpy as np
import pytest

from ai_trading.config import RLEnvConfig
from tests.rl_trading.helpers import make_market, random_panel

pytestmark = pytest.mark.rl

N_ENVS = [1, 64, 256]
N_ASSETS = 10


def _run(vec_env, actions: np.ndarray) -> float:
    total = 0.0
    for batch in actions:
        _, rewards, _, _ = vec_env.step(batch)
        total += float(rewards[0])
    return total


@pytest.mark.parametrize("n_envs", N_ENVS)
def test_vec_env_steps(throughput, n_envs: int) -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv

    from ai_trading.rl_trading.env import PortfolioEnv, VecPortfolioEnv

    full = throughput.full_size
    n_envs = n_envs if full else min(n_envs, 16)
    env_steps = 2_000_000 if full else 20_000
    baseline_env_steps = 50_000 if full else 2_000
    steps = max(min(env_steps // n_envs, 200_000), 50)
    baseline_steps = max(baseline_env_steps // n_envs, 20)
    market = make_market(random_panel(1_500, N_ASSETS, seed=5, daily_sigma=0.01), RLEnvConfig(episode_length=252))
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, n_envs, N_ASSETS)).astype(np.float32)

    vec = VecPortfolioEnv(market, n_envs)
    vec.seed(0)
    vec.reset()
    dummy = DummyVecEnv([lambda: PortfolioEnv(market) for _ in range(n_envs)])
    dummy.seed(0)
    dummy.reset()
    _run(vec, actions[:5])
    total = throughput.measure(
        lambda: _run(vec, actions),
        items=steps * n_envs,
        baseline=lambda: _run(dummy, actions[:baseline_steps]),
        baseline_items=baseline_steps * n_envs,
        rounds=3,
        baseline_rounds=2,
    )
    assert np.isfinite(total)
