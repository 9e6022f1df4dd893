"""ML training: fit the ridge signal on a range, evaluate it out of sample, sign it as ``ml``.

The evaluation is the walk-forward's (:func:`~ai_trading.evaluation.walkforward.evaluate_walkforward`):
per-fold refits predicting their purged test blocks, executed on the simulator, net and
gross metrics, the CPCV Sharpe distribution, and the PBO and Deflated Sharpe across the
``[ml_governance] pbo_alphas`` penalties. The deployed model is the same procedure fitted
on every labelled bar of the range. The artifact holds the model, the report and its plot;
the signed manifest carries the numbers the ML promotion gate reads.

``python -m ai_trading.models.train --name NAME --symbols ... --start ... --end ...``
(same as ``ai-trading ml train``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ai_trading.artifacts import ManifestFields, Signer
from ai_trading.config import AppConfig, default_data_dir
from ai_trading.errors import ConfigError
from ai_trading.evaluation.report import write_signed_report
from ai_trading.evaluation.walkforward import WalkForwardReport, evaluate_walkforward, prepare_inputs
from ai_trading.features import FeatureBuilder
from ai_trading.models.gates import ML_KIND
from ai_trading.models.ridge import RidgeModel
from ai_trading.types import MarketPanel

logger = logging.getLogger(__name__)

ALGORITHM = "ridge"


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A fitted ridge and its out-of-sample evaluation."""

    model: RidgeModel
    report: WalkForwardReport
    metrics: dict[str, float]


def pbo_alphas(config: AppConfig) -> tuple[float, ...]:
    try:
        alphas = tuple(float(a) for a in config.ml_governance.pbo_alphas.split(",") if a.strip())
    except ValueError as exc:
        raise ConfigError(f"ml_governance.pbo_alphas must be comma-separated numbers ({exc})") from exc
    if len(alphas) < 2:
        raise ConfigError(f"ml_governance.pbo_alphas needs at least two penalties for the PBO, got {alphas}")
    return alphas


def gate_metrics(report: WalkForwardReport) -> dict[str, float]:
    """The signed numbers the ML gate reads (non-finite ones left out: the gate fails them)."""
    document = report.to_dict()
    aggregate = report.aggregate
    values = {"pbo": math.nan if report.pbo is None else report.pbo, "cpcv_sharpe_mean": document["cpcv"]["sharpe_mean"]}
    if aggregate is not None:
        values |= {
            "net_sharpe": aggregate.net.sharpe_ratio,
            "gross_sharpe": aggregate.gross.sharpe_ratio,
            "net_total_return": aggregate.net.total_return,
            "max_drawdown": abs(aggregate.net.max_drawdown),
            "turnover": aggregate.turnover,
            "cost_bps": aggregate.cost_bps,
            "deflated_sharpe_ratio": math.nan if aggregate.deflated_sharpe_ratio is None else aggregate.deflated_sharpe_ratio,
        }
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


def train_ridge(panel: MarketPanel, config: AppConfig, builder: FeatureBuilder) -> TrainedModel:
    """Evaluate the ridge procedure out of sample, then fit it on the whole range."""
    report = evaluate_walkforward(panel, config, builder, None, pbo_alphas(config))
    inputs = prepare_inputs(panel, config, builder)
    model = RidgeModel.fit(inputs.stats, np.arange(panel.n_bars), config.evaluation.ridge_alpha, inputs.features.names, builder.feature_schema_hash)
    return TrainedModel(model, report, gate_metrics(report))


def default_out(name: str, version: int) -> Path:
    return default_data_dir() / "ml_models" / f"{name}-v{version}"


def write_ml_artifact(trained: TrainedModel, out: Path, signer: Signer, name: str, version: int, config: AppConfig) -> list[Path]:
    """Write model, report and plot into ``out`` (new or empty) and sign it as kind ``ml``."""
    document = trained.report.to_dict()
    fields = ManifestFields(
        name=name, version=version, kind=ML_KIND, algorithm=ALGORITHM, **trained.report.features.provenance(),  # type: ignore[arg-type]
        training_config={**document["settings"], "pbo_alphas": list(pbo_alphas(config)), "symbols": document["data"]["symbols"],
                         "start": document["data"]["start"], "end": document["data"]["end"]},
        metrics=trained.metrics,
    )  # fmt: skip
    written = write_signed_report(trained.report, trained.model, out, signer, fields)
    logger.info("ML_MODEL_WRITTEN", extra={"model": name, "version": version, "out": str(out)})
    return written


def new_version() -> int:
    """Seconds since the epoch: increasing across trainings of one name, as rollback protection needs."""
    return int(datetime.now(UTC).timestamp())


if __name__ == "__main__":
    import sys

    from ai_trading.commands.ml import main

    raise SystemExit(main(["train", *sys.argv[1:]]))
