"""PortfolioEnv and VecPortfolioEnv: API conformance, batch equivalence, SB3 auto-reset,
causality, reward against the portfolio simulator, drawdown termination."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.config import ExecutionConfig, RLEnvConfig
from ai_trading.errors import ConfigError, OrderValidationError
from ai_trading.execution.portfolio import PortfolioSimulator
from kernels.rl_env import N_PORTFOLIO_OBS, O_DRAWDOWN, clip_targets
from tests.rl_trading.helpers import make_market, random_panel

pytestmark = pytest.mark.rl

gymnasium = pytest.importorskip("gymnasium")
from ai_trading.rl_trading.env import PortfolioEnv, VecPortfolioEnv  # noqa: E402

N_SYMBOLS = 4
SHORT_EPISODES = RLEnvConfig(episode_length=7, max_drawdown=0.5, drawdown_penalty=0.1, turnover_penalty=0.01, leverage_penalty=0.5)
BAD_CONFIGS = [
    {"episode_length": 0},
    {"leverage_limit": 0.0},
    {"max_drawdown": 1.5},
    {"turnover_penalty": -1.0},
    {"initial_cash": float("nan")},
]
VEC_SIZES = [1, 3, 8]


@pytest.fixture(scope="module")
def panel():
    return random_panel(120, N_SYMBOLS, seed=3)


@pytest.fixture(scope="module")
def market(panel):
    return make_market(panel, SHORT_EPISODES)


def _actions(n_steps: int, n_envs: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.3, 1.3, (n_steps, n_envs, N_SYMBOLS)).astype(np.float32)


def test_gymnasium_and_sb3_env_checkers_pass(market) -> None:
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(infinity|spec).*")
        check_env(PortfolioEnv(market), skip_render_check=True)
    sb3_check_env(PortfolioEnv(market), warn=False)


@pytest.mark.parametrize("n_envs", VEC_SIZES)
def test_vec_env_trajectories_equal_separate_envs(market, n_envs: int) -> None:
    """Across several auto-resets, env i of the batch is a PortfolioEnv seeded 11 + i."""
    vec = VecPortfolioEnv(market, n_envs)
    vec.seed(11)
    vec_obs = vec.reset()
    singles = [PortfolioEnv(market) for _ in range(n_envs)]
    single_obs = [env.reset(seed=11 + i)[0] for i, env in enumerate(singles)]
    np.testing.assert_array_equal(vec_obs, np.stack(single_obs))
    episodes_ended = 0
    for actions in _actions(30, n_envs):
        vec_obs, rewards, dones, infos = vec.step(actions)
        for i, env in enumerate(singles):
            obs, reward, terminated, truncated, _ = env.step(actions[i])
            assert dones[i] == (terminated or truncated)
            assert rewards[i] == np.float32(reward)
            if dones[i]:
                episodes_ended += 1
                np.testing.assert_array_equal(infos[i]["terminal_observation"], obs)
                assert infos[i]["TimeLimit.truncated"] == (truncated and not terminated)
                obs, _ = env.reset()
            else:
                assert "terminal_observation" not in infos[i]
            np.testing.assert_array_equal(vec_obs[i], obs)
    assert episodes_ended >= 4 * n_envs


def test_time_limit_truncation_and_auto_reset(market) -> None:
    vec = VecPortfolioEnv(market, 2)
    vec.seed(5)
    vec.reset()
    zero = np.zeros((2, N_SYMBOLS), dtype=np.float32)
    for _ in range(SHORT_EPISODES.episode_length - 1):
        _, _, dones, _ = vec.step(zero)
        assert not dones.any()
    obs, _, dones, infos = vec.step(zero)
    assert dones.all()
    assert all(info["TimeLimit.truncated"] for info in infos)
    assert vec.get_attr("episode") == [1, 1]
    fresh = PortfolioEnv(market)
    fresh.reset(seed=5)
    np.testing.assert_array_equal(obs[0], fresh.reset()[0])


def test_vec_env_runs_are_deterministic(market) -> None:
    def run() -> tuple[np.ndarray, np.ndarray]:
        vec = VecPortfolioEnv(market, 4)
        vec.seed(2)
        vec.reset()
        out = [vec.step(a)[:2] for a in _actions(25, 4, seed=9)]
        return np.stack([o for o, _ in out]), np.stack([r for _, r in out])

    first, second = run(), run()
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_get_attr_env_method_and_seed(market) -> None:
    vec = VecPortfolioEnv(market, 3)
    assert vec.seed(40) == [40, 41, 42]
    vec.reset()
    assert vec.get_attr("env_seed") == [40, 41, 42]
    assert vec.get_attr("render_mode") == [None] * 3
    assert vec.get_attr("equity", indices=[1]) == [SHORT_EPISODES.initial_cash]
    assert vec.env_method("portfolio", indices=2)[0]["episode"] == 0
    assert vec.env_is_wrapped(gymnasium.Wrapper) == [False] * 3
    with pytest.raises(AttributeError):
        vec.set_attr("equity", 1.0)


def test_observation_is_causal(panel) -> None:
    """Changing every bar after t leaves every observation up to bar t unchanged."""
    t_cut = 70
    changed = random_panel(120, N_SYMBOLS, seed=99)
    mixed = replace(
        panel,
        **{
            name: np.vstack([getattr(panel, name)[: t_cut + 1], getattr(changed, name)[t_cut + 1 :]])
            for name in ("open", "high", "low", "close", "volume", "valid", "spread_bps")
        },
    )
    config = RLEnvConfig(episode_length=200, max_drawdown=1.0)
    trajectories = []
    for source in (panel, mixed):
        env = PortfolioEnv(make_market(source, config, start_bar=0))
        obs, info = env.reset(seed=1)
        seen = {info["bar"]: obs}
        for action in _actions(200, 1, seed=4)[:, 0]:
            obs, _, terminated, truncated, info = env.step(action)
            seen[info["bar"]] = obs
            if terminated or truncated or info["bar"] >= t_cut:
                break
        trajectories.append(seen)
    first_bar = min(trajectories[0])
    assert first_bar < t_cut and max(trajectories[0]) == t_cut
    for bar in range(first_bar, t_cut + 1):
        np.testing.assert_array_equal(trajectories[0][bar], trajectories[1][bar])


def test_reward_is_net_log_equity_change_minus_penalties_on_the_simulator(panel) -> None:
    """The env's equity and reward equal those of PortfolioSimulator on the same weights."""
    config = RLEnvConfig(
        episode_length=30, leverage_limit=1.5, max_drawdown=1.0, drawdown_penalty=0.3,
        turnover_budget=0.05, turnover_penalty=0.02, leverage_penalty=0.7,
    )  # fmt: skip
    seed = 17
    execution = ExecutionConfig(seed=seed)
    env = PortfolioEnv(make_market(panel, config, execution))
    _, info = env.reset(seed=seed)
    start = info["bar"]
    actions = _actions(config.episode_length, 1, seed=8)[:, 0]
    targets = np.full(panel.close.shape, np.nan)
    rewards = []
    for k, action in enumerate(actions):
        clip_targets(action, config.leverage_limit, weights := np.empty(N_SYMBOLS))
        targets[start + k] = weights
        _, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        if terminated or truncated:
            break
    result = PortfolioSimulator(execution).run(targets, panel, initial_cash=config.initial_cash)
    equity = result.equity[start : start + len(rewards) + 1]
    assert equity[0] == config.initial_cash and result.cost[start + 1 :].sum() > 0
    peak = np.maximum.accumulate(equity)
    drawdown = 1 - equity[1:] / peak[1:]
    turnover = result.traded_notional[start + 1 : start + len(rewards) + 1] / equity[:-1]
    leverage = result.gross_exposure[start + 1 : start + len(rewards) + 1] / equity[1:]
    expected = (
        np.log(equity[1:] / equity[:-1])
        - config.drawdown_penalty * drawdown
        - config.turnover_penalty * np.maximum(turnover - config.turnover_budget, 0)
        - config.leverage_penalty * np.maximum(leverage - config.leverage_limit, 0)
    )
    np.testing.assert_allclose(rewards, expected, rtol=1e-9, atol=1e-12)


def test_drawdown_breach_terminates(panel) -> None:
    config = RLEnvConfig(episode_length=100, leverage_limit=3.0, max_drawdown=0.02)
    env = PortfolioEnv(make_market(panel, config))
    env.reset(seed=0)
    equity = [config.initial_cash]
    for action in _actions(100, 1, seed=1)[:, 0]:
        obs, _, terminated, truncated, info = env.step(action)
        equity.append(info["equity"])
        drawdown = 1 - equity[-1] / max(equity)
        assert obs[-N_PORTFOLIO_OBS + O_DRAWDOWN] == np.float32(drawdown)
        assert terminated == (drawdown >= config.max_drawdown)
        if terminated or truncated:
            break
    assert terminated
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step(action)


@given(action=st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=1, max_size=8), limit=st.floats(0.1, 5))
@settings(max_examples=200, deadline=None)
def test_clip_targets_matches_reference(action: list[float], limit: float) -> None:
    weights = np.clip(np.array(action), -1, 1) * limit
    gross = np.abs(weights).sum()
    expected = weights * (limit / gross) if gross > limit else weights
    out = np.empty(len(action))
    clip_targets(np.array(action, dtype=np.float32), limit, out)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-15)
    assert np.abs(out).sum() <= limit * (1 + 1e-12)


@pytest.mark.parametrize("change", BAD_CONFIGS)
def test_bad_env_config_is_refused(panel, change: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="rl_env"):
        make_market(panel, replace(RLEnvConfig(), **change))


def test_bar_range_without_room_is_refused(panel) -> None:
    with pytest.raises(ConfigError, match="warm-up"):
        make_market(panel, start_bar=0, end_bar=11)


def test_wrong_action_shape_is_refused(market) -> None:
    vec = VecPortfolioEnv(market, 2)
    vec.reset()
    with pytest.raises(OrderValidationError, match="2 envs x 4 assets"):
        vec.step(np.zeros((2, 3)))
