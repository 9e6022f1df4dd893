"""Reinforcement learning on the execution simulator: environments and training.

The environments need the ``rl`` extra (gymnasium, stable-baselines3); import them from
:mod:`ai_trading.rl_trading.env`. :mod:`ai_trading.rl_trading.market` needs NumPy only.
"""

from ai_trading.rl_trading.market import EnvMarket, EnvState, validate_env_config

__all__ = ["EnvMarket", "EnvState", "validate_env_config"]
