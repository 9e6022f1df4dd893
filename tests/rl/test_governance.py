"""Promotion gate: every rule rejects on its own, statistics against plain references, CLI."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ai_trading.cli import main
from ai_trading.config import PromotionCriteria
from ai_trading.errors import ConfigError, EvaluationError
from ai_trading.evaluation.metrics import deflated_sharpe_ratio, sharpe_ratio
from ai_trading.rl.governance import (
    SeedRun,
    bootstrap_mean_interval,
    evaluate,
    interquartile_mean,
    load_runs,
)

# Loose enough that the "good" runs below pass every rule.
DAILY_PERIODS = 252.0  # the built-in data is daily
CRITERIA = PromotionCriteria(min_seeds=5, min_mean_sharpe=1.0, max_sharpe_std=1.5, max_drawdown=0.3,
                             min_turnover=1.0, max_turnover=20.0, min_deflated_sharpe=0.5)  # fmt: skip
# (criteria change, expected rejection code): each breaks exactly one rule for the good runs.
SINGLE_RULES = [
    ({"min_seeds": 12}, "TOO_FEW_SEEDS"),
    ({"min_mean_sharpe": 50.0}, "MEAN_SHARPE_LOW"),
    ({"max_sharpe_std": 1e-6}, "SHARPE_DISPERSION_HIGH"),
    ({"max_drawdown": 1e-4}, "DRAWDOWN_TOO_DEEP"),
    ({"min_turnover": 15.0}, "TURNOVER_TOO_LOW"),
    ({"max_turnover": 2.0}, "TURNOVER_TOO_HIGH"),
    ({"min_deflated_sharpe": 0.999999}, "DEFLATED_SHARPE_LOW"),
]
BAD_CRITERIA = [{"min_seeds": 4}, {"confidence": 1.0}, {"bootstrap_samples": 10}, {"min_turnover": 60.0}]


def _runs(n_seeds: int, drift: float, seed: int = 0) -> list[SeedRun]:
    rng = np.random.default_rng(seed)
    return [SeedRun(s, rng.normal(drift, 0.01, 500), float(rng.uniform(3, 8)), DAILY_PERIODS) for s in range(n_seeds)]


def test_good_runs_pass_with_every_metric_reported() -> None:
    runs = _runs(10, 0.002)
    report = evaluate(runs, CRITERIA)
    assert report.passed and report.rejections == []
    sharpes = np.array([sharpe_ratio(r.returns) for r in runs])
    assert report.metrics["mean_sharpe"] == pytest.approx(sharpes.mean())
    assert report.metrics["sharpe_std"] == pytest.approx(sharpes.std(ddof=1))
    assert report.metrics["n_seeds"] == 10
    assert report.metrics["sharpe_ci_low"] < report.metrics["mean_sharpe"] < report.metrics["sharpe_ci_high"]
    assert 0.0 <= report.metrics["deflated_sharpe_best"] <= 1.0
    assert len(report.per_seed) == 10


@pytest.mark.parametrize(("change", "code"), SINGLE_RULES)
def test_each_rule_rejects_with_its_code(change: dict[str, float], code: str) -> None:
    report = evaluate(_runs(10, 0.002), replace(CRITERIA, **change))
    assert not report.passed
    assert [r.code for r in report.rejections] == [code]


def test_losing_runs_are_rejected_for_return_ci_and_iqm() -> None:
    report = evaluate(_runs(10, -0.002), CRITERIA)
    codes = {r.code for r in report.rejections}
    assert {"NET_RETURN_NOT_POSITIVE", "SHARPE_CI_INCLUDES_ZERO", "IQM_SHARPE_NOT_POSITIVE", "MEAN_SHARPE_LOW"} <= codes


def test_one_lucky_seed_does_not_pass() -> None:
    """Nine skill-less seeds and one great one: the mean may look fine, the CI and IQM do not."""
    runs = _runs(9, 0.0, seed=0) + [SeedRun(99, np.random.default_rng(5).normal(0.02, 0.01, 500), 5.0, DAILY_PERIODS)]
    report = evaluate(runs, replace(CRITERIA, min_mean_sharpe=1.0, max_sharpe_std=100.0, max_drawdown=1.0))
    assert report.metrics["mean_sharpe"] > 1.0
    assert {r.code for r in report.rejections} == {"SHARPE_CI_INCLUDES_ZERO", "IQM_SHARPE_NOT_POSITIVE"}


def test_interquartile_mean_and_bootstrap_against_references() -> None:
    values = np.random.default_rng(1).normal(size=23)
    ordered = np.sort(values)
    assert interquartile_mean(values) == pytest.approx(ordered[5:18].mean())
    low, high = bootstrap_mean_interval(values, 4000, 0.9, seed=2)
    rng = np.random.default_rng(2)
    means = [values[rng.integers(0, 23, 23)].mean() for _ in range(4000)]
    np.testing.assert_allclose((low, high), np.quantile(means, [0.05, 0.95]), rtol=1e-12)
    assert bootstrap_mean_interval(values, 4000, 0.9, seed=2) == (low, high)


@pytest.mark.parametrize("change", BAD_CRITERIA)
def test_bad_criteria_are_refused(change: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="governance"):
        evaluate(_runs(10, 0.001), replace(PromotionCriteria(), **change))


def test_repeated_seed_is_refused() -> None:
    runs = _runs(6, 0.001)
    with pytest.raises(EvaluationError, match="repeat a seed"):
        evaluate([*runs, runs[0]], CRITERIA)


def _write_run_dir(root: Path, runs: list[SeedRun]) -> Path:
    for run in runs:
        (root / f"seed_{run.seed}").mkdir(parents=True)
        (root / f"seed_{run.seed}" / "evaluation.json").write_text(json.dumps(run.to_dict()))
    return root


def test_govern_cli_prints_and_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _write_run_dir(tmp_path / "run", _runs(6, 0.002))
    config = tmp_path / "gov.toml"
    config.write_text("[governance]\nmin_seeds = 5\nmin_mean_sharpe = 1.0\nmin_deflated_sharpe = 0.5\n")
    assert main(["govern", str(run_dir), "--config", str(config), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((run_dir / "governance_report.json").read_text())
    assert printed == written and printed["passed"] is True
    assert [r.seed for r in load_runs(run_dir)] == list(range(6))
    assert [c["code"] for c in printed["checks"]][0] == "TOO_FEW_SEEDS" and all(c["passed"] for c in printed["checks"])

    config.write_text("[governance]\nmin_seeds = 7\n")
    assert main(["govern", str(run_dir), "--config", str(config), "--json"]) == 1
    rejected = json.loads(capsys.readouterr().out)
    assert "TOO_FEW_SEEDS" in [r["code"] for r in rejected["rejections"]]


def test_govern_cli_on_an_empty_directory_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["govern", str(tmp_path)]) == 2
    assert "evaluation.json" in capsys.readouterr().err


def test_govern_json_counts_are_integers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _write_run_dir(tmp_path / "run", _runs(6, 0.002))
    main(["govern", str(run_dir), "--json"])
    printed = capsys.readouterr().out
    report = json.loads(printed)
    assert '"n_seeds": 6,' in printed and '"seed": 0,' in printed
    assert type(report["metrics"]["n_seeds"]) is int
    assert [s["seed"] for s in report["per_seed"]] == list(range(6))
    assert all(type(s["seed"]) is int for s in report["per_seed"])


def test_govern_prints_tables_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One row per seed with its metrics, one row per rule with value, threshold and
    outcome, the verdict; the JSON report is written all the same."""
    runs = _runs(4, 0.002)
    run_dir = _write_run_dir(tmp_path / "run", runs)
    assert main(["govern", str(run_dir)]) == 1
    lines = capsys.readouterr().out.splitlines()
    report = evaluate(runs)
    assert lines[1].split() == ["seed", "Sharpe", "net", "return", "max", "drawdown", "turnover", "DSR"]
    for line, seed in zip(lines[2:6], report.per_seed, strict=True):
        cells = line.split()
        assert int(cells[0]) == seed["seed"]
        assert float(cells[1]) == pytest.approx(seed["sharpe"], abs=0.005)
        assert float(cells[2].rstrip("%")) == pytest.approx(100 * seed["net_return"], abs=0.005)
        assert float(cells[5]) == pytest.approx(seed["deflated_sharpe"], abs=5e-4)
    rules = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0].isupper()}
    assert rules["TOO_FEW_SEEDS"] == ["TOO_FEW_SEEDS", "n_seeds", "4", ">=", "5", "FAIL"]
    assert rules["MEAN_SHARPE_LOW"][-1] == "pass" and len(rules) == len(report.checks) + 1  # + the verdict
    assert lines[-2] == "REJECTED: 1 of 10 rules fail (TOO_FEW_SEEDS)"
    assert json.loads((run_dir / "governance_report.json").read_text())["passed"] is False


def test_each_check_agrees_with_its_comparison_and_the_rejections() -> None:
    report = evaluate(_runs(10, 0.002), replace(CRITERIA, min_seeds=12, max_turnover=2.0))
    ops = {">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}
    for check in report.checks:
        assert check.value == report.metrics[check.metric]
        assert check.passed == ops[check.comparison](check.value, check.threshold)
    assert [c.code for c in report.checks if not c.passed] == [r.code for r in report.rejections]
    assert [r.code for r in report.rejections] == ["TOO_FEW_SEEDS", "TURNOVER_TOO_HIGH"]


def test_the_default_gate_accepts_the_default_and_the_readme_seed_count() -> None:
    """The README's `train --seeds N` example and the default `[rl_train] seeds` both meet
    the default gate's seed count, so a run made as documented can be promoted."""
    from ai_trading.config import RLTrainConfig

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    examples = [int(n) for n in re.findall(r"ai-trading train [^\n]*--seeds (\d+)", readme)]
    assert examples, "the README shows no `ai-trading train --seeds N` example"
    for n_seeds in [*examples, RLTrainConfig().seeds]:
        report = evaluate(_runs(n_seeds, 0.002))
        assert "TOO_FEW_SEEDS" not in [r.code for r in report.rejections]
    assert PromotionCriteria().min_seeds == 5
    assert "TOO_FEW_SEEDS" in [r.code for r in evaluate(_runs(4, 0.002)).rejections]


def test_per_seed_deflated_sharpe_against_the_metric() -> None:
    runs = _runs(6, 0.001)
    report = evaluate(runs, CRITERIA)
    sharpes = np.array([sharpe_ratio(r.returns) for r in runs])
    for run, seed in zip(runs, report.per_seed, strict=True):
        assert seed["deflated_sharpe"] == pytest.approx(deflated_sharpe_ratio(run.returns, 6, sharpes.var(ddof=1)))
    assert report.metrics["deflated_sharpe_best"] == report.per_seed[int(np.argmax(sharpes))]["deflated_sharpe"]
