"""Governance of RL policies: the multi-seed promotion gate."""

from ai_trading.rl.governance import GovernanceReport, PromotionCriteria, Rejection, SeedRun, evaluate, load_runs

__all__ = ["GovernanceReport", "PromotionCriteria", "Rejection", "SeedRun", "evaluate", "load_runs"]
