"""What the RL environment kernels read and write: the market bundle and the batch state.

Kept apart from :mod:`ai_trading.rl_trading.env` (which needs gymnasium) so that
evaluation code and tests can prepare and inspect environments with NumPy alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ai_trading.config import ExecutionConfig, RLEnvConfig
from ai_trading.errors import ConfigError, DataValidationError
from ai_trading.execution.parameters import (
    configured_coefs,
    execution_params,
    panel_spread_bps,
    panel_volatility_bps,
    validate_execution_config,
)
from ai_trading.execution.portfolio import check_latency_fits_bar
from ai_trading.features import FeatureSet
from ai_trading.types import BoolArray, FloatArray, IntArray, MarketPanel
from kernels.rl_env import (
    E_DRAWDOWN_PENALTY,
    E_EPISODE_LENGTH,
    E_FIRST_START,
    E_INITIAL_CASH,
    E_LAST_BAR,
    E_LEVERAGE_LIMIT,
    E_LEVERAGE_PENALTY,
    E_MAX_DRAWDOWN,
    E_TURNOVER_BUDGET,
    E_TURNOVER_PENALTY,
    N_ENV_PARAMS,
    N_PORTFOLIO_OBS,
)


def validate_env_config(config: RLEnvConfig) -> None:
    """Raise :class:`ConfigError` for a setting outside its meaningful range."""
    if config.episode_length < 1:
        raise ConfigError(f"rl_env.episode_length must be >= 1, got {config.episode_length!r}")
    for name in ("leverage_limit", "initial_cash"):
        value = getattr(config, name)
        if not (np.isfinite(value) and value > 0):
            raise ConfigError(f"rl_env.{name} must be a finite number > 0, got {value!r}")
    if not 0 < config.max_drawdown <= 1:
        raise ConfigError(f"rl_env.max_drawdown must be in (0, 1], got {config.max_drawdown!r}")
    for name in ("drawdown_penalty", "turnover_budget", "turnover_penalty", "leverage_penalty"):
        value = getattr(config, name)
        if not (np.isfinite(value) and value >= 0):
            raise ConfigError(f"rl_env.{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, eq=False)
class EnvMarket:
    """Read-only inputs shared by every environment over one panel and bar range.

    Build it with :meth:`build`; fields are the kernels' arrays (layouts in
    :mod:`kernels.rl_env` and :mod:`kernels.layout`).
    """

    features: NDArray[np.float32]
    open: FloatArray
    close: FloatArray
    volume: FloatArray
    valid: BoolArray
    spread_bps: FloatArray
    sigma_bps: FloatArray
    coefs: FloatArray
    params: FloatArray
    env_params: FloatArray
    symbols: tuple[str, ...]
    feature_names: tuple[str, ...]
    provenance: dict[str, str | int] = field(default_factory=dict)

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def obs_dim(self) -> int:
        """Features of every symbol, the position weights, then the portfolio state."""
        return self.features.shape[1] + self.n_symbols + N_PORTFOLIO_OBS

    @property
    def first_start(self) -> int:
        return int(self.env_params[E_FIRST_START])

    @property
    def last_bar(self) -> int:
        return int(self.env_params[E_LAST_BAR])

    @classmethod
    def build(
        cls,
        panel: MarketPanel,
        features: FeatureSet,
        env_config: RLEnvConfig,
        execution: ExecutionConfig,
        start_bar: int = 0,
        end_bar: int | None = None,
    ) -> EnvMarket:
        """Prepare ``panel`` bars ``[start_bar, end_bar)`` for the environment.

        Episodes start no earlier than the features' warm-up (``spec.lookback``) and
        never step past ``end_bar - 1``; features are computed over the whole panel, which
        is causal (the row at ``t`` reads bars up to ``t`` only).
        """
        validate_env_config(env_config)
        validate_execution_config(execution)
        check_latency_fits_bar(execution, panel.bar_seconds)
        if features.symbols != panel.symbols or not np.array_equal(features.ts, panel.ts):
            raise DataValidationError("FeatureSet", None, "features were built from another panel", "build them from this panel")
        end = panel.n_bars if end_bar is None else end_bar
        first = max(start_bar, features.spec.lookback)
        if not 0 <= start_bar < end <= panel.n_bars or end - 1 - first < 1:
            raise ConfigError(
                f"bar range [{start_bar}, {end}) of a {panel.n_bars}-bar panel leaves no step after the "
                f"{features.spec.lookback}-bar feature warm-up: widen the range"
            )
        env_params = np.zeros(N_ENV_PARAMS)
        env_params[E_EPISODE_LENGTH] = env_config.episode_length
        env_params[E_LEVERAGE_LIMIT] = env_config.leverage_limit
        env_params[E_INITIAL_CASH] = env_config.initial_cash
        env_params[E_MAX_DRAWDOWN] = env_config.max_drawdown
        env_params[E_DRAWDOWN_PENALTY] = env_config.drawdown_penalty
        env_params[E_TURNOVER_BUDGET] = env_config.turnover_budget
        env_params[E_TURNOVER_PENALTY] = env_config.turnover_penalty
        env_params[E_LEVERAGE_PENALTY] = env_config.leverage_penalty
        env_params[E_FIRST_START] = first
        env_params[E_LAST_BAR] = end - 1
        n_bars = panel.n_bars
        flat = np.ascontiguousarray(features.values.reshape(n_bars, -1), dtype=np.float32)
        return cls(
            features=flat,
            open=panel.open,
            close=panel.close,
            volume=panel.volume,
            valid=panel.valid,
            spread_bps=panel_spread_bps(panel),
            sigma_bps=panel_volatility_bps(panel, execution.vol_halflife_bars),
            coefs=configured_coefs(execution, panel.n_symbols),
            params=execution_params(execution, panel.bar_seconds),
            env_params=env_params,
            symbols=panel.symbols,
            feature_names=features.names,
            provenance=features.provenance(),
        )


@dataclass(frozen=True, eq=False)
class EnvState:
    """Mutable state of N environments (row ``i`` is env ``i``), updated in place by the kernels.

    :param seeds: per-env seed; keys start-bar draws and execution randomness
    :param episode: per-env episode counter since the last seeding
    :param seeded: whether env ``i`` has a seed yet (set by its first reset)
    """

    positions: FloatArray
    cash: FloatArray
    marks: FloatArray
    equity: FloatArray
    peak: FloatArray
    bar: IntArray
    steps: IntArray
    episode: IntArray
    seeds: NDArray[np.uint64]
    seeded: BoolArray

    @classmethod
    def allocate(cls, n_envs: int, n_symbols: int) -> EnvState:
        return cls(
            positions=np.zeros((n_envs, n_symbols)),
            cash=np.zeros((n_envs, 1)),
            marks=np.full((n_envs, n_symbols), np.nan),
            equity=np.zeros(n_envs),
            peak=np.zeros(n_envs),
            bar=np.zeros(n_envs, dtype=np.int64),
            steps=np.zeros(n_envs, dtype=np.int64),
            episode=np.zeros(n_envs, dtype=np.int64),
            seeds=np.zeros(n_envs, dtype=np.uint64),
            seeded=np.zeros(n_envs, dtype=np.bool_),
        )

    def reseed(self, i: int, seed: int | None, rng: np.random.Generator) -> None:
        """Gymnasium's reset rule: a given seed restarts env ``i``'s episode sequence from
        0; no seed continues it (drawing a seed from ``rng`` if none was ever set)."""
        if seed is not None:
            if not 0 <= seed < 2**64:
                raise ConfigError(f"env seed must be in [0, 2**64), got {seed!r}")
            self.seeds[i] = np.uint64(seed)
            self.episode[i] = 0
        elif not self.seeded[i]:
            self.seeds[i] = np.uint64(rng.integers(0, 2**63))
            self.episode[i] = 0
        else:
            self.episode[i] += 1
        self.seeded[i] = True
