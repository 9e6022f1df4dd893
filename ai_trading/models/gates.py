"""The promotion gates the model registry is handed, one per model kind.

:class:`RLRunGate` verifies a multi-seed training run and re-evaluates the multi-seed
gate of :mod:`ai_trading.rl.governance` on the seeds' signed results. :class:`MLGate`
verifies one ``ml`` artifact (``ai-trading ml train``) and checks the signed walk-forward
and CPCV numbers in its manifest against :class:`~ai_trading.config.MLPromotionCriteria`.
Both record nothing: the registry records versions only once it commits a promotion.
"""

from __future__ import annotations

import math
from pathlib import Path

from ai_trading.artifacts import Trust
from ai_trading.artifacts.admission import Admission, PromotionGate, Rejection
from ai_trading.artifacts.loading import verify_artifact
from ai_trading.artifacts.manifest import MANIFEST_FILE
from ai_trading.config import AppConfig, MLPromotionCriteria, PromotionCriteria
from ai_trading.errors import ProvenanceError
from ai_trading.rl.governance import evaluate
from ai_trading.rl.seed_artifact import read_run

ML_KIND = "ml"


class RLRunGate:
    """The multi-seed gate over a run directory of ``ai-trading train``.

    :param criteria: the ``[governance]`` thresholds
    :param seed: the seed to register (default: the best validation Sharpe)
    """

    def __init__(self, criteria: PromotionCriteria, seed: int | None = None) -> None:
        self.criteria, self.seed = criteria, seed

    def admit(self, source: Path, trust: Trust, expected_feature_schema_hash: str) -> Admission:
        run = read_run(source, trust, expected_feature_schema_hash)
        report = evaluate(run.runs, self.criteria)
        rejections = tuple(Rejection(r.code, r.metric, r.value, r.threshold) for r in report.rejections)
        if rejections:
            seed, chosen = min(run.artifacts), run.artifacts[min(run.artifacts)]
        else:
            seed, chosen = run.select(self.seed)
        members = tuple(run.artifacts[s] for s in sorted(run.artifacts))
        return Admission(run.model_name, "rl", chosen, f"seed {seed}", members, rejections, dict(report.metrics))


class MLGate:
    """The walk-forward gate over one signed ``ml`` artifact.

    :param criteria: the ``[ml_governance]`` thresholds
    """

    def __init__(self, criteria: MLPromotionCriteria) -> None:
        self.criteria = criteria

    def admit(self, source: Path, trust: Trust, expected_feature_schema_hash: str) -> Admission:
        artifact = verify_artifact(source, trust, expected_feature_schema_hash)
        fields = artifact.manifest.fields
        if fields.kind != ML_KIND:
            raise ProvenanceError(f"{source} is a {fields.kind!r} artifact; the ML gate admits kind {ML_KIND!r} (written by `ai-trading ml train`)")
        metrics = dict(fields.metrics)
        c = self.criteria
        rules = (  # code, metric, threshold, passes(value)
            ("LOW_DEFLATED_SHARPE", "deflated_sharpe_ratio", c.min_deflated_sharpe, lambda v: v >= c.min_deflated_sharpe),
            ("HIGH_PBO", "pbo", c.max_pbo, lambda v: v <= c.max_pbo),
            ("LOW_NET_SHARPE", "net_sharpe", c.min_net_sharpe, lambda v: v >= c.min_net_sharpe),
            ("DEEP_DRAWDOWN", "max_drawdown", c.max_drawdown, lambda v: v <= c.max_drawdown),
            ("LOW_TURNOVER", "turnover", c.min_turnover, lambda v: v >= c.min_turnover),
            ("HIGH_TURNOVER", "turnover", c.max_turnover, lambda v: v <= c.max_turnover),
            ("LOW_CPCV_SHARPE", "cpcv_sharpe_mean", c.min_cpcv_sharpe_mean, lambda v: v >= c.min_cpcv_sharpe_mean),
        )
        rejections = []
        for code, metric, threshold, passes in rules:
            value = float(metrics.get(metric, math.nan))  # a metric the evaluation could not measure fails
            if not (math.isfinite(value) and passes(value)):
                rejections.append(Rejection(code, metric, value, float(threshold)))
        return Admission(fields.name, ML_KIND, artifact, "the artifact", (artifact,), tuple(rejections), metrics)


def gate_for(source: Path, config: AppConfig, seed: int | None = None) -> PromotionGate:
    """The gate of ``source``'s kind: one signed artifact directory is an ML model, a
    directory of seed artifacts an RL run (each gate then verifies the kind it expects)."""
    if (Path(source) / MANIFEST_FILE).exists():
        if seed is not None:
            raise ProvenanceError(f"{source} is a single artifact, not a training run: --seed applies to RL runs only")
        return MLGate(config.ml_governance)
    return RLRunGate(config.governance, seed)
