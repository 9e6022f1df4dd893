"""Portfolio RL environments that pay every cost the execution simulator knows.

:class:`PortfolioEnv` is one gymnasium environment; :class:`VecPortfolioEnv` is a
stable-baselines3 ``VecEnv`` stepping N of them in one Numba call. Both run the same
kernel (:mod:`kernels.rl_env`, on :func:`kernels.portfolio.portfolio_step`), so an
environment's trajectory does not depend on how many are stepped together. Dynamics,
reward and observation layout are documented in :mod:`kernels.rl_env`.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded
from numpy.typing import NDArray
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from ai_trading.errors import OrderValidationError
from ai_trading.rl_trading.market import EnvMarket, EnvState
from ai_trading.types import FloatArray
from kernels.rl_env import E_LEVERAGE_LIMIT, N_ENV_PARAMS, N_PORTFOLIO_OBS, reset_envs, step_envs, write_observation


def portfolio_observation(
    features: NDArray[np.float32], positions: FloatArray, marks: FloatArray, cash: float, equity: float,
    peak_equity: float, leverage_limit: float,
) -> NDArray[np.float32]:  # fmt: skip
    """The observation an environment gives at a bar, for a book held outside one.

    It runs the environments' own kernel (:func:`kernels.rl_env.write_observation`, which
    :meth:`PortfolioEnv.step` and :meth:`VecPortfolioEnv.step_wait` call inside their
    step), so a live policy and the environment it was trained in cannot disagree on it.

    :param features: the decision bar's features ``[S, F]`` (or flattened ``[S * F]``)
    :param positions: shares per symbol ``[S]``
    :param marks: each symbol's last close ``[S]`` (NaN while it has none)
    """
    row = np.ascontiguousarray(features, dtype=np.float32).reshape(1, -1)
    n_symbols = np.shape(positions)[0]
    out = np.zeros((row.shape[1] + n_symbols + N_PORTFOLIO_OBS,), dtype=np.float32)
    env_params = np.zeros(N_ENV_PARAMS)
    env_params[E_LEVERAGE_LIMIT] = leverage_limit
    write_observation(
        0, row, np.ascontiguousarray(positions, dtype=np.float64).reshape(1, -1), np.array([[cash]], dtype=np.float64),
        np.ascontiguousarray(marks, dtype=np.float64).reshape(1, -1), np.array([equity], dtype=np.float64),
        np.array([peak_equity], dtype=np.float64), np.zeros(1, dtype=np.int64), env_params, out,
    )  # fmt: skip
    return out


def _spaces(market: EnvMarket) -> tuple[spaces.Box, spaces.Box]:
    observation = spaces.Box(-np.inf, np.inf, shape=(market.obs_dim,), dtype=np.float32)
    action = spaces.Box(-1.0, 1.0, shape=(market.n_symbols,), dtype=np.float32)
    return observation, action


def _actions(actions: Any, n_envs: int, n_symbols: int) -> np.ndarray:
    array = np.ascontiguousarray(actions, dtype=np.float32).reshape(-1)
    if array.size != n_envs * n_symbols:
        raise OrderValidationError(f"actions have {array.size} values, expected {n_envs} envs x {n_symbols} assets")
    return array.reshape(n_envs, n_symbols)


class _Batch:
    """N environments' state and output buffers, stepped by the kernels."""

    def __init__(self, market: EnvMarket, n_envs: int) -> None:
        self.market = market
        self.state = EnvState.allocate(n_envs, market.n_symbols)
        self.obs = np.zeros((n_envs, market.obs_dim), dtype=np.float32)
        self.terminal_obs = np.zeros_like(self.obs)
        self.rewards = np.zeros(n_envs)
        self.terminated = np.zeros(n_envs, dtype=np.bool_)
        self.truncated = np.zeros(n_envs, dtype=np.bool_)

    def reset(self, which: np.ndarray) -> None:
        m, s = self.market, self.state
        reset_envs(
            which, m.features, m.close, m.valid, s.positions, s.cash, s.marks, s.equity, s.peak, s.bar,
            s.steps, s.episode, s.seeds, m.env_params, self.obs,
        )  # fmt: skip

    def step(self, actions: np.ndarray, autoreset: bool) -> None:
        m, s = self.market, self.state
        step_envs(
            actions, m.features, m.open, m.close, m.volume, m.valid, m.spread_bps, m.sigma_bps, m.coefs,
            m.params, m.env_params, s.positions, s.cash, s.marks, s.equity, s.peak, s.bar, s.steps,
            s.episode, s.seeds, autoreset, self.obs, self.rewards, self.terminated, self.truncated,
            self.terminal_obs,
        )  # fmt: skip

    def info(self, i: int) -> dict[str, Any]:
        """Portfolio facts of env ``i`` after its last step or reset."""
        s = self.state
        return {"equity": float(s.equity[i]), "bar": int(s.bar[i]), "episode": int(s.episode[i])}


class PortfolioEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """One multi-asset portfolio environment over an :class:`EnvMarket`.

    Action: target fraction of the gross leverage limit per asset, ``Box(-1, 1, (S,))``.
    Observation: the features at the decision bar and the portfolio state, one float32
    vector. ``reset(seed=s)`` restarts the episode sequence of seed ``s``.

    :param market: the prepared panel, features, costs and environment parameters
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, market: EnvMarket) -> None:
        self.market = market
        self.render_mode = None
        self.observation_space, self.action_space = _spaces(market)
        self._batch = _Batch(market, 1)
        self._one = np.ones(1, dtype=np.bool_)
        self._needs_reset = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._batch.state.reseed(0, seed, self.np_random)
        self._batch.reset(self._one)
        self._needs_reset = False
        return self._batch.obs[0].copy(), self._batch.info(0)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise ResetNeeded("call reset() before step(): the episode has ended or not started")
        batch = self._batch
        batch.step(_actions(action, 1, self.market.n_symbols), autoreset=False)
        terminated, truncated = bool(batch.terminated[0]), bool(batch.truncated[0])
        self._needs_reset = terminated or truncated
        return batch.obs[0].copy(), float(batch.rewards[0]), terminated, truncated, batch.info(0)


class EnvView:
    """Env ``index`` of a :class:`VecPortfolioEnv`, as ``get_attr``/``env_method`` see it."""

    def __init__(self, vec: VecPortfolioEnv, index: int) -> None:
        self._vec = vec
        self._index = index
        self.render_mode = None
        self.observation_space = vec.observation_space
        self.action_space = vec.action_space
        self.market = vec.market

    @property
    def equity(self) -> float:
        return float(self._vec.batch.state.equity[self._index])

    @property
    def positions(self) -> np.ndarray:
        return self._vec.batch.state.positions[self._index].copy()

    @property
    def bar(self) -> int:
        return int(self._vec.batch.state.bar[self._index])

    @property
    def episode(self) -> int:
        return int(self._vec.batch.state.episode[self._index])

    @property
    def env_seed(self) -> int:
        return int(self._vec.batch.state.seeds[self._index])

    def portfolio(self) -> dict[str, Any]:
        return self._vec.batch.info(self._index)


class VecPortfolioEnv(VecEnv):
    """N :class:`PortfolioEnv` s stepped in one Numba call, with SB3's VecEnv semantics.

    An env whose episode ends is reset at once: its ``obs`` row is the new episode's first
    observation, ``infos[i]["terminal_observation"]`` holds the last one, and
    ``infos[i]["TimeLimit.truncated"]`` says the episode was cut by time, not terminated.
    ``seed(s)`` gives env ``i`` seed ``s + i`` from the next ``reset()``, so env ``i``
    follows exactly the trajectory of a ``PortfolioEnv`` reset with ``seed=s + i``.

    :param market: the prepared panel, features, costs and environment parameters
    :param n_envs: number of environments
    """

    def __init__(self, market: EnvMarket, n_envs: int) -> None:
        if n_envs < 1:
            raise OrderValidationError(f"n_envs must be >= 1, got {n_envs}")
        self.market = market
        self.batch = _Batch(market, n_envs)
        self._rng = np.random.default_rng()
        self._all = np.ones(n_envs, dtype=np.bool_)
        self._actions: np.ndarray | None = None
        observation_space, action_space = _spaces(market)
        super().__init__(n_envs, observation_space, action_space)

    def reset(self) -> VecEnvObs:
        for i, seed in enumerate(self._seeds):
            self.batch.state.reseed(i, seed, self._rng)
        self.batch.reset(self._all)
        self.reset_infos = [self.batch.info(i) for i in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return self.batch.obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = _actions(actions, self.num_envs, self.market.n_symbols)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise ResetNeeded("step_async() must come before step_wait()")
        if not self.batch.state.seeded.all():
            raise ResetNeeded("call reset() before stepping a VecPortfolioEnv")
        batch = self.batch
        batch.step(self._actions, autoreset=True)
        self._actions = None
        dones = batch.terminated | batch.truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = batch.terminal_obs[i].copy()
            infos[i]["TimeLimit.truncated"] = bool(batch.truncated[i])
        return batch.obs.copy(), batch.rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        """Nothing to release: the environments live in this process's arrays."""

    def _views(self, indices: VecEnvIndices) -> list[EnvView]:
        return [EnvView(self, i) for i in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(view, attr_name) for view in self._views(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Environments share one read-only market; there is nothing per env to set."""
        raise AttributeError(
            f"cannot set {attr_name!r}: VecPortfolioEnv environments share one market; build a new "
            "EnvMarket with the changed configuration instead"
        )

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list[Any]:
        return [getattr(view, method_name)(*method_args, **method_kwargs) for view in self._views(indices)]

    def env_is_wrapped(self, wrapper_class: type[gymnasium.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
