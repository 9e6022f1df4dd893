"""Deployable models: the :class:`Policy` interface and its kinds (ridge signal, SB3 policy,
momentum demo).

Loading a stored policy: :mod:`ai_trading.models.registry_loading`; the SB3 policy (``rl``
extra): :mod:`ai_trading.models.sb3`; ML training: :mod:`ai_trading.models.train`. They are
not imported here, so that evaluation can use the ridge without loading them.
"""

from ai_trading.models.demo import DEMO_POLICY_NAME, DemoPolicy
from ai_trading.models.policy import MarketWindow, Policy, PortfolioState, panel_rows
from ai_trading.models.ridge import RidgeModel, RidgePolicy

__all__ = [
    "DEMO_POLICY_NAME",
    "DemoPolicy",
    "MarketWindow",
    "Policy",
    "PortfolioState",
    "RidgeModel",
    "RidgePolicy",
    "panel_rows",
]
