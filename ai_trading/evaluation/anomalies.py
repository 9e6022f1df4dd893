"""Machine-readable red flags of an evaluation, for the alerting layer.

A backtest that looks too good usually leaks; one whose costs eat the gross P&L has no
edge after execution; NaN or non-positive equity means the run itself broke. Each flag is
an :class:`Anomaly` with a stable ``code`` an alert rule can match on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ai_trading.config import EvaluationConfig
from ai_trading.evaluation.metrics import CostAdjustedMetrics
from ai_trading.types import FloatArray

IMPLAUSIBLE_SHARPE = "IMPLAUSIBLE_SHARPE"
COSTS_EAT_GROSS_PNL = "COSTS_EAT_GROSS_PNL"
NAN_EQUITY = "NAN_EQUITY"
NONPOSITIVE_EQUITY = "NONPOSITIVE_EQUITY"


@dataclass(frozen=True)
class Anomaly:
    """One flag.

    :param code: one of the module's constants
    :param scope: ``aggregate`` or ``fold K``
    :param severity: ``critical`` (the run is broken) or ``warning`` (the result is suspect)
    :param value: the measured number (None when it is not a number)
    :param threshold: the configured limit it crossed (None for structural flags)
    """

    code: str
    scope: str
    severity: str
    message: str
    value: float | None
    threshold: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def equity_anomalies(scope: str, equity: FloatArray) -> list[Anomaly]:
    """NaN/inf or non-positive equity: metrics are undefined, so these stop the scope's metrics."""
    broken = ~np.isfinite(equity)
    if broken.any():
        bar = int(np.flatnonzero(broken)[0])
        return [Anomaly(NAN_EQUITY, scope, "critical", f"equity is NaN or inf from window bar {bar}", None, None)]
    gone = equity <= 0
    if gone.any():
        bar = int(np.flatnonzero(gone)[0])
        value = float(equity[bar])
        return [Anomaly(NONPOSITIVE_EQUITY, scope, "critical", f"equity reaches {value:.2f} at window bar {bar}", value, 0.0)]
    return []


def metric_anomalies(scope: str, metrics: CostAdjustedMetrics, config: EvaluationConfig) -> list[Anomaly]:
    """An implausibly high net Sharpe, or costs above ``max_cost_share`` of a positive gross P&L."""
    flags = []
    sharpe = metrics.net.sharpe_ratio
    if math.isfinite(sharpe) and sharpe > config.max_plausible_sharpe:
        flags.append(Anomaly(
            IMPLAUSIBLE_SHARPE, scope, "warning",
            f"net Sharpe {sharpe:.2f} exceeds {config.max_plausible_sharpe:g}: check for look-ahead or bad data",
            sharpe, config.max_plausible_sharpe,
        ))  # fmt: skip
    if metrics.gross_pnl > 0 and metrics.total_costs > config.max_cost_share * metrics.gross_pnl:
        share = metrics.total_costs / metrics.gross_pnl
        flags.append(Anomaly(
            COSTS_EAT_GROSS_PNL, scope, "warning",
            f"costs take {share:.0%} of the gross P&L (limit {config.max_cost_share:.0%}): the edge does not survive execution",
            share, config.max_cost_share,
        ))  # fmt: skip
    return flags
