"""A stable-baselines3 policy from a signed training-run seed artifact, as a :class:`Policy`.

It observes exactly what :class:`~ai_trading.rl_trading.env.PortfolioEnv` observes
(:func:`~ai_trading.rl_trading.env.portfolio_observation` runs the environment's own
kernel on the book it is handed) and maps its deterministic action to weights with the
environment's own rule (:func:`kernels.rl_env.clip_targets`). Needs the ``rl`` extra.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ai_trading.artifacts import VerifiedArtifact
from ai_trading.errors import ProvenanceError
from ai_trading.features import FeatureSpec
from ai_trading.models.policy import MarketWindow, Policy, PortfolioState
from ai_trading.types import FloatArray

try:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from ai_trading.rl.seed_artifact import MODEL_FILE
    from ai_trading.rl_trading.env import portfolio_observation
    from ai_trading.rl_trading.train import ALGORITHMS
    from kernels.rl_env import clip_targets
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"loading an RL policy needs the rl extra: pip install 'ai-trading[rl]' ({exc})") from exc


class SB3Policy(Policy):
    """A trained SB3 algorithm deciding target weights from the environment's observation.

    :param name: the registered artifact name (``<model>.seed<seed>``)
    :param model: the loaded algorithm
    :param universe: the symbols it was trained on, in action order
    :param feature_spec: the spec its observations' features come from
    :param leverage_limit: the training environment's gross leverage limit
    """

    kind = "rl"

    def __init__(self, name: str, model: BaseAlgorithm, universe: tuple[str, ...], feature_spec: FeatureSpec, leverage_limit: float) -> None:
        n_actions = int(np.prod(model.action_space.shape or (0,)))
        if n_actions != len(universe):
            raise ProvenanceError(f"policy {name!r} acts on {n_actions} assets but records {len(universe)} symbols")
        self.name, self.model, self.universe, self.feature_spec = name, model, tuple(universe), feature_spec
        self.lookback = feature_spec.lookback
        self.leverage_limit = float(leverage_limit)

    @classmethod
    def from_artifact(cls, artifact: VerifiedArtifact, feature_spec: FeatureSpec) -> SB3Policy:
        """Deserialise the verified ``model.zip`` of a seed artifact (kind ``rl``)."""
        fields = artifact.manifest.fields
        config: dict[str, Any] = dict(fields.training_config)
        try:
            algorithm = ALGORITHMS[fields.algorithm]
            symbols = tuple(str(s) for s in config["symbols"])
            leverage_limit = float(config["rl_env"]["leverage_limit"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ProvenanceError(f"{artifact.path}: not a seed artifact written by `ai-trading train` ({exc!r})") from exc
        model = algorithm.load(artifact.open(MODEL_FILE), device="cpu")
        return cls(fields.name, model, symbols, feature_spec, leverage_limit)

    def observation(self, window: MarketWindow, portfolio: PortfolioState) -> np.ndarray:
        """What the environment would observe at the window's last bar holding ``portfolio``."""
        return portfolio_observation(
            window.features.values[-1], portfolio.positions, window.last_close, portfolio.cash, portfolio.equity,
            portfolio.peak_equity, self.leverage_limit,
        )  # fmt: skip

    def decide(self, window: MarketWindow, portfolio: PortfolioState) -> FloatArray:
        if portfolio.equity <= 0:
            return np.zeros(len(self.universe))
        action, _ = self.model.predict(self.observation(window, portfolio), deterministic=True)
        weights = np.empty(len(self.universe))
        clip_targets(np.asarray(action, dtype=np.float32).reshape(-1), self.leverage_limit, weights)
        return weights
