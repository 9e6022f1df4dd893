"""Evaluation: leak-free splits (purged k-fold, combinatorial purged CV, walk-forward)
and cost-adjusted performance metrics."""

from ai_trading.evaluation.purged_cv import (
    CombinatorialPurgedCV,
    LabelIntervals,
    PurgedKFold,
    WalkForward,
    embargo_count,
    fold_blocks,
    purged_train_mask,
)

__all__ = [
    "CombinatorialPurgedCV",
    "LabelIntervals",
    "PurgedKFold",
    "WalkForward",
    "embargo_count",
    "fold_blocks",
    "purged_train_mask",
]
