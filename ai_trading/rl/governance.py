"""The multi-seed promotion gate: a policy is promoted only when it holds up across seeds.

One lucky seed proves nothing (Henderson et al. 2018, "Deep RL that matters"). The gate
looks at every seed's out-of-sample result through the simulator and checks the mean,
the spread and the robust centre (interquartile mean, Agarwal et al. 2021) of Sharpe
across seeds, a percentile-bootstrap confidence interval of the mean Sharpe, the Deflated
Sharpe Ratio of the best seed for the number of seeds tried (Bailey and López de Prado
2014), the worst drawdown, net return after costs and turnover.
"""

from __future__ import annotations

import json
import logging
import math
import operator
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ai_trading.artifacts.admission import Rejection
from ai_trading.config import PromotionCriteria
from ai_trading.errors import ConfigError, EvaluationError
from ai_trading.evaluation.metrics import deflated_sharpe_ratio, max_drawdown, sharpe_ratio
from ai_trading.types import FloatArray

__all__ = ["Check", "GovernanceReport", "PromotionCriteria", "Rejection", "SeedRun", "evaluate", "validate_criteria"]

logger = logging.getLogger(__name__)

ABSOLUTE_MIN_SEEDS = 5
EVALUATION_FILE = "evaluation.json"


@dataclass(frozen=True, eq=False)
class SeedRun:
    """One seed's out-of-sample result.

    :param seed: the training seed
    :param returns: net per-bar returns over the held-out test range, from the simulator
    :param turnover: annualised two-sided turnover over that range
    :param periods_per_year: bars a year of the range's frequency, which annualises both
    """

    seed: int
    returns: FloatArray
    turnover: float
    periods_per_year: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "returns": [float(r) for r in self.returns],
            "turnover": self.turnover,
            "periods_per_year": self.periods_per_year,
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any], where: str) -> SeedRun:
        try:
            return cls(
                int(document["seed"]),
                np.asarray(document["returns"], dtype=np.float64),
                float(document["turnover"]),
                float(document["periods_per_year"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EvaluationError(f"{where}: needs seed, returns[], turnover and periods_per_year ({exc})") from exc

    @classmethod
    def from_json(cls, data: bytes, where: str) -> SeedRun:
        """Parse the bytes of an ``evaluation.json``."""
        try:
            document = json.loads(data)
        except ValueError as exc:
            raise EvaluationError(f"{where}: cannot read JSON ({exc})") from exc
        if not isinstance(document, dict):
            raise EvaluationError(f"{where}: expected a JSON object")
        return cls.from_dict(document, where)


@dataclass(frozen=True)
class Check:
    """One rule as applied: ``value <comparison> threshold`` must hold (NaN never passes).

    :param code: the rejection code when it fails (``TOO_FEW_SEEDS``)
    :param comparison: ``>=``, ``>``, ``<=`` or ``<``
    """

    code: str
    metric: str
    value: float
    comparison: str
    threshold: float
    passed: bool


@dataclass(frozen=True)
class GovernanceReport:
    """The verdict: ``passed`` iff ``rejections`` is empty; every metric and every rule's
    outcome (``checks``, in the order the rules are listed) either way."""

    passed: bool
    metrics: dict[str, float]
    rejections: list[Rejection]
    per_seed: list[dict[str, float]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "metrics": self.metrics,
            "rejections": [asdict(r) for r in self.rejections],
            "checks": [asdict(c) for c in self.checks],
            "per_seed": self.per_seed,
        }

    def to_json(self) -> str:
        """JSON; undefined statistics (NaN) are written as null."""
        return json.dumps(_nan_to_none(self.to_dict()), indent=2, sort_keys=True, allow_nan=False)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def validate_criteria(criteria: PromotionCriteria) -> None:
    """Raise :class:`ConfigError` for criteria that could not mean what they say."""
    if criteria.min_seeds < ABSOLUTE_MIN_SEEDS:
        raise ConfigError(f"governance.min_seeds must be >= {ABSOLUTE_MIN_SEEDS}, got {criteria.min_seeds}")
    if not 0 < criteria.confidence < 1:
        raise ConfigError(f"governance.confidence must be in (0, 1), got {criteria.confidence!r}")
    if criteria.bootstrap_samples < 100:
        raise ConfigError(f"governance.bootstrap_samples must be >= 100, got {criteria.bootstrap_samples}")
    if not 0 <= criteria.min_turnover <= criteria.max_turnover:
        raise ConfigError("governance turnover bounds need 0 <= min_turnover <= max_turnover")
    if criteria.periods_per_year is not None and not criteria.periods_per_year > 0:
        raise ConfigError(f"governance.periods_per_year must be > 0 (or unset: from the data), got {criteria.periods_per_year!r}")


def run_periods_per_year(runs: Sequence[SeedRun], criteria: PromotionCriteria) -> float:
    """The annualisation of a run: the criteria's override, else the one its seeds' data had."""
    if criteria.periods_per_year is not None:
        return float(criteria.periods_per_year)
    found = {run.periods_per_year for run in runs}
    if len(found) != 1:
        raise EvaluationError(f"the seeds were evaluated on data of different frequencies (periods per year {sorted(found)})")
    return found.pop()


def interquartile_mean(values: FloatArray) -> float:
    """Mean of the middle half: drop ``floor(n / 4)`` values from each end of the sorted sample."""
    ordered = np.sort(values)
    cut = ordered.size // 4
    return float(ordered[cut : ordered.size - cut].mean())


def bootstrap_mean_interval(values: FloatArray, samples: int, confidence: float, seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (Efron 1979), resampling values with replacement."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(samples, values.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def evaluate(runs: Sequence[SeedRun], criteria: PromotionCriteria | None = None) -> GovernanceReport:
    """Judge a multi-seed run against ``criteria`` (the ``[governance]`` defaults when omitted)."""
    criteria = criteria if criteria is not None else PromotionCriteria()
    validate_criteria(criteria)
    if len({run.seed for run in runs}) != len(runs):
        raise EvaluationError("runs repeat a seed: each seed counts once")
    ppy = run_periods_per_year(runs, criteria) if runs else 0.0
    n = len(runs)
    sharpe = np.array([sharpe_ratio(run.returns, ppy) for run in runs])
    variance = float(sharpe.var(ddof=1)) if n > 1 else 0.0
    deflate = math.isfinite(variance)  # the deflation is undefined when a seed's Sharpe is
    per_seed = [
        {
            "seed": run.seed,
            "sharpe": float(seed_sharpe),
            "max_drawdown": -max_drawdown(run.returns),
            "net_return": float(np.prod(1.0 + run.returns) - 1.0),
            "turnover": float(run.turnover),
            # each seed's Sharpe deflated for the n seeds tried (Bailey and López de Prado 2014)
            "deflated_sharpe": deflated_sharpe_ratio(run.returns, n, variance, ppy) if deflate else math.nan,
        }
        for run, seed_sharpe in zip(runs, sharpe, strict=True)
    ]
    nan = math.nan
    metrics: dict[str, float] = {"n_seeds": n}
    if n:
        metrics["mean_sharpe"] = float(sharpe.mean())
        metrics["sharpe_std"] = float(sharpe.std(ddof=1)) if n > 1 else nan
        metrics["iqm_sharpe"] = interquartile_mean(sharpe) if np.isfinite(sharpe).all() else nan
        metrics["mean_net_return"] = float(np.mean([s["net_return"] for s in per_seed]))
        metrics["worst_max_drawdown"] = float(max(s["max_drawdown"] for s in per_seed))
        metrics["mean_turnover"] = float(np.mean([s["turnover"] for s in per_seed]))
        if np.isfinite(sharpe).all():
            low, high = bootstrap_mean_interval(sharpe, criteria.bootstrap_samples, criteria.confidence, criteria.bootstrap_seed)
            best = int(np.argmax(sharpe))
            metrics["deflated_sharpe_best"] = per_seed[best]["deflated_sharpe"]
        else:
            low = high = nan
            metrics["deflated_sharpe_best"] = nan
        metrics["sharpe_ci_low"], metrics["sharpe_ci_high"] = low, high
    checks = _checks(metrics, criteria)
    rejections = [Rejection(c.code, c.metric, c.value, c.threshold) for c in checks if not c.passed]
    report = GovernanceReport(passed=not rejections, metrics=metrics, rejections=rejections, per_seed=per_seed, checks=checks)
    logger.info("GOVERNANCE_EVALUATED", extra={"passed": report.passed, "n_seeds": n, "rejections": [r.code for r in rejections]})
    return report


COMPARISONS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def _checks(metrics: dict[str, float], c: PromotionCriteria) -> list[Check]:
    """Each rule as (code, metric, comparison, threshold); a metric not computed (no seeds)
    is NaN, and NaN never passes."""
    rules = [
        ("TOO_FEW_SEEDS", "n_seeds", ">=", float(c.min_seeds)),
        ("MEAN_SHARPE_LOW", "mean_sharpe", ">=", c.min_mean_sharpe),
        ("SHARPE_DISPERSION_HIGH", "sharpe_std", "<", c.max_sharpe_std),
        ("NET_RETURN_NOT_POSITIVE", "mean_net_return", ">", 0.0),
        ("DRAWDOWN_TOO_DEEP", "worst_max_drawdown", "<", c.max_drawdown),
        ("TURNOVER_TOO_LOW", "mean_turnover", ">=", c.min_turnover),
        ("TURNOVER_TOO_HIGH", "mean_turnover", "<=", c.max_turnover),
        ("SHARPE_CI_INCLUDES_ZERO", "sharpe_ci_low", ">", 0.0),
        ("IQM_SHARPE_NOT_POSITIVE", "iqm_sharpe", ">", 0.0),
        ("DEFLATED_SHARPE_LOW", "deflated_sharpe_best", ">=", c.min_deflated_sharpe),
    ]
    checks = []
    for code, metric, comparison, threshold in rules:
        value = metrics.get(metric, math.nan)
        checks.append(Check(code, metric, value, comparison, threshold, bool(COMPARISONS[comparison](value, threshold))))
    return checks


def load_runs(run_dir: Path) -> list[SeedRun]:
    """Every ``*/evaluation.json`` under ``run_dir`` (one directory per seed), sorted by path."""
    paths = sorted(Path(run_dir).glob(f"*/{EVALUATION_FILE}"))
    if not paths:
        raise EvaluationError(f"{run_dir} holds no */{EVALUATION_FILE}: point govern at a training run directory")
    runs = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise EvaluationError(f"{path}: cannot read JSON ({exc})") from exc
        runs.append(SeedRun.from_json(data, str(path)))
    return runs
