"""Writing an evaluation: JSON report, equity and drawdown plot, fitted model, signed manifest.

Everything is written into a temporary sibling directory, signed there, and renamed into
place, so an interrupted run leaves no half-written or unsigned evaluation behind.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ai_trading.artifacts import ManifestFields, Signer, sign_artifact_dir
from ai_trading.errors import EvaluationError
from ai_trading.evaluation.walkforward import WalkForwardReport
from ai_trading.models.ridge import RidgeModel

REPORT_FILE = "report.json"
PLOT_FILE = "equity.png"
MODEL_FILE = "ridge_model.json"
ALGORITHM = "walkforward-ridge"


def plot_equity(report: WalkForwardReport, path: Path) -> None:
    """Net and gross equity over the out-of-sample span, and the net drawdown below it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    span = slice(report.first_bar, None)
    when = report.features.ts[span].astype("datetime64[ns]")
    net = report.result.equity[span]
    drawdown = net / np.maximum.accumulate(net) - 1.0
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=[3, 1])
    top.plot(when, report.result.gross_equity[span], label="gross (costs handed back)", linewidth=1)
    top.plot(when, net, label="net (simulated fills)", linewidth=1)
    for fold in report.folds[1:]:
        top.axvline(report.features.ts[fold.test_lo].astype("datetime64[ns]"), color="grey", linewidth=0.5)
    top.set_ylabel("equity")
    top.legend(loc="upper left")
    bottom.fill_between(when, drawdown, 0.0, color="tab:red", alpha=0.4)
    bottom.set_ylabel("drawdown")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _headline_metrics(report: WalkForwardReport) -> dict[str, float]:
    if report.aggregate is None:
        return {}
    values = {
        "net_sharpe": report.aggregate.net.sharpe_ratio,
        "gross_sharpe": report.aggregate.gross.sharpe_ratio,
        "net_total_return": report.aggregate.net.total_return,
        "max_drawdown": report.aggregate.net.max_drawdown,
        "cost_bps": report.aggregate.cost_bps,
        "turnover": report.aggregate.turnover,
        "psr": report.aggregate.net.probabilistic_sharpe_ratio,
        "periods_per_year": report.periods_per_year,
    }
    return {name: float(v) for name, v in values.items() if math.isfinite(v)}


def write_signed_report(report: WalkForwardReport, model: RidgeModel, out: Path, signer: Signer, fields: ManifestFields) -> list[Path]:
    """Write the report, its plot and ``model`` into ``out`` (new or empty) and sign it
    with ``fields``; staged in a sibling directory and renamed, so nothing unsigned is
    ever left at ``out``."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EvaluationError(f"{out} exists and is not an empty directory: choose a new --out directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        (staging / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        plot_equity(report, staging / PLOT_FILE)
        (staging / MODEL_FILE).write_bytes(model.to_bytes())
        sign_artifact_dir(staging, fields, signer)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return [out / REPORT_FILE, out / PLOT_FILE, out / MODEL_FILE, out / "manifest.json", out / "manifest.sig"]


def write_evaluation(report: WalkForwardReport, out: Path, signer: Signer, name: str = "walkforward") -> list[Path]:
    """Write the report, plot and final model into ``out`` (new or empty) and sign it as an
    ``eval`` artifact recording the feature schema hash and the dataset fingerprint."""
    fields = ManifestFields(
        name=name,
        version=int(datetime.now(UTC).timestamp()),
        kind="eval",
        algorithm=ALGORITHM,
        **report.features.provenance(),  # type: ignore[arg-type]
        training_config=report.to_dict()["settings"],
        metrics=_headline_metrics(report),
    )
    return write_signed_report(report, report.final_model, out, signer, fields)
