"""Walk-forward evaluation: equity from the simulator, no look-ahead, determinism, report,
anomaly flags, CLI and provenance checks. Small panels keep it fast."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from ai_trading.artifacts import HmacKey, ManifestFields, Trust, TrustState, load_verified, sign_artifact_dir
from ai_trading.cli import main
from ai_trading.config import AppConfig, EvaluationConfig, ExecutionConfig
from ai_trading.data import generate_panel
from ai_trading.errors import FeatureSchemaMismatch
from ai_trading.evaluation.anomalies import (
    COSTS_EAT_GROSS_PNL,
    IMPLAUSIBLE_SHARPE,
    NAN_EQUITY,
    NONPOSITIVE_EQUITY,
    equity_anomalies,
    metric_anomalies,
)
from ai_trading.evaluation.metrics import cost_adjusted_metrics, sharpe_ratio
from ai_trading.evaluation.report import MODEL_FILE
from ai_trading.models.ridge import RidgeModel
from ai_trading.evaluation.walkforward import evaluate_walkforward, prepare_inputs, walk_forward_predictions
from ai_trading.features import FeatureBuilder
from ai_trading.types import MarketPanel

ZERO_COST = ExecutionConfig(
    spread_floor_bps=0.0, spread_vol_mult=0.0, tick_size=0.0, slippage_base_bps=0.0, slippage_vol_coef=0.0,
    impact_eta=0.0, slippage_noise_bps=0.0, fee_per_share=0.0, fee_min=0.0, use_data_spread=False,
)  # fmt: skip
CONFIG = AppConfig(evaluation=EvaluationConfig(folds=4, cpcv_groups=4, cpcv_test_groups=2, pbo_submatrices=4))
ALPHAS = (1.0, 10.0, 100.0)
CUT_BARS = (120, 200, 260)


@pytest.fixture(scope="module")
def panel() -> MarketPanel:
    return generate_panel(12, 300, seed=3)


@pytest.fixture(scope="module")
def report(panel: MarketPanel):  # noqa: ANN201
    return evaluate_walkforward(panel, CONFIG, alpha_grid=ALPHAS)


def test_costs_come_from_simulated_fills(panel: MarketPanel, report) -> None:  # noqa: ANN001
    aggregate = report.aggregate
    assert aggregate.total_costs > 0 and aggregate.traded_notional > 0
    assert aggregate.net_pnl < aggregate.gross_pnl
    assert math.isclose(aggregate.gross_pnl - aggregate.net_pnl, aggregate.total_costs, rel_tol=1e-9)
    free = evaluate_walkforward(panel, dataclasses.replace(CONFIG, execution=ZERO_COST))
    assert free.aggregate.total_costs == pytest.approx(0.0, abs=1e-6)
    assert free.aggregate.net.sharpe_ratio == pytest.approx(free.aggregate.gross.sharpe_ratio)
    assert free.aggregate.net_pnl > aggregate.net_pnl


def test_equity_is_flat_before_the_first_test_block(report) -> None:  # noqa: ANN001
    before = report.result.equity[: report.first_bar + 1]
    assert np.all(before == CONFIG.evaluation.initial_cash)
    assert np.all(report.result.traded_notional[: report.first_bar + 1] == 0)


def test_training_labels_never_reach_the_test_block(panel: MarketPanel) -> None:
    inputs = prepare_inputs(panel, CONFIG, FeatureBuilder())
    folds, _ = walk_forward_predictions(inputs, 10.0, None)
    assert len(folds) == CONFIG.evaluation.folds
    for train, lo, _hi, _model in folds:
        assert train.max() + CONFIG.evaluation.label_horizon < lo


@pytest.mark.parametrize("cut", CUT_BARS)
def test_predictions_use_only_the_past(panel: MarketPanel, cut: int) -> None:
    """Scrambling every bar after ``cut`` leaves all predictions at bars <= cut unchanged."""
    rng = np.random.default_rng(cut)
    scale = np.exp(rng.normal(0.0, 0.2, size=(panel.n_bars - cut - 1, panel.n_symbols)))
    changed = {
        name: np.concatenate([getattr(panel, name)[: cut + 1], getattr(panel, name)[cut + 1 :] * scale])
        for name in ("open", "high", "low", "close")
    }
    future = dataclasses.replace(panel, **changed)
    builder = FeatureBuilder()
    _, original = walk_forward_predictions(prepare_inputs(panel, CONFIG, builder), 10.0, None)
    _, scrambled = walk_forward_predictions(prepare_inputs(future, CONFIG, builder), 10.0, None)
    np.testing.assert_array_equal(original[: cut + 1], scrambled[: cut + 1])
    assert not np.allclose(np.nan_to_num(original[cut + 1 :]), np.nan_to_num(scrambled[cut + 1 :]))


def test_runs_are_deterministic(panel: MarketPanel, report) -> None:  # noqa: ANN001
    again = evaluate_walkforward(panel, CONFIG, alpha_grid=ALPHAS)
    assert json.dumps(again.to_dict()) == json.dumps(report.to_dict())
    np.testing.assert_array_equal(again.result.equity, report.result.equity)


def test_report_fields(report) -> None:  # noqa: ANN001
    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert document["provenance"]["feature_schema_hash"] == FeatureBuilder().feature_schema_hash
    assert len(document["folds"]) == CONFIG.evaluation.folds
    for scope in [document["aggregate"], *(fold["metrics"] for fold in document["folds"])]:
        for side in ("net", "gross"):
            assert {"sharpe_ratio", "sortino_ratio", "max_drawdown", "calmar_ratio", "probabilistic_sharpe_ratio"} <= set(scope[side])
        assert {"total_costs", "cost_bps", "turnover", "deflated_sharpe_ratio"} <= set(scope)
        assert scope["deflated_sharpe_ratio"] is not None
    assert document["cpcv"]["paths"] == math.comb(CONFIG.evaluation.cpcv_groups - 1, CONFIG.evaluation.cpcv_test_groups - 1)
    assert all(s is not None for s in document["cpcv"]["sharpe"])
    assert len(set(document["cpcv"]["sharpe"])) > 1
    assert document["grid"]["ridge_alpha"] == list(ALPHAS) and 0.0 <= document["grid"]["pbo"] <= 1.0
    net = document["aggregate"]["net"]["sharpe_ratio"]
    assert net == pytest.approx(document["grid"]["sharpe"][ALPHAS.index(CONFIG.evaluation.ridge_alpha)])


def test_anomalies_flag_broken_equity() -> None:
    assert [a.code for a in equity_anomalies("fold 0", np.array([1.0, np.nan, 2.0]))] == [NAN_EQUITY]
    flags = equity_anomalies("aggregate", np.array([100.0, 50.0, -3.0]))
    assert [a.code for a in flags] == [NONPOSITIVE_EQUITY] and flags[0].value == -3.0
    assert equity_anomalies("aggregate", np.array([100.0, 101.0])) == []


def test_anomalies_flag_implausible_sharpe_and_cost_drag() -> None:
    n = 250
    steady = 100.0 * np.cumprod(1.0 + 0.002 + 0.0005 * np.sin(np.arange(n)))
    zero = np.zeros(n)
    smooth = cost_adjusted_metrics(steady, zero, zero, steady, initial_equity=100.0)
    config = EvaluationConfig()
    assert [a.code for a in metric_anomalies("aggregate", smooth, config)] == [IMPLAUSIBLE_SHARPE]
    noise = np.random.default_rng(0).normal(0.0, 0.5, n)
    gross = 100.0 + np.cumsum(0.01 + noise - noise.mean())  # gross P&L exactly 2.5
    costs = np.full(n, 0.008)  # 2.0 in total: 80% of the gross P&L
    eaten = cost_adjusted_metrics(gross - np.cumsum(costs), costs, costs * 100, gross, initial_equity=100.0)
    flags = metric_anomalies("fold 1", eaten, config)
    assert [a.code for a in flags] == [COSTS_EAT_GROSS_PNL]
    assert flags[0].value == pytest.approx(eaten.total_costs / eaten.gross_pnl) and flags[0].value > config.max_cost_share


def test_loaded_model_with_another_feature_schema_is_refused(panel: MarketPanel) -> None:
    model = RidgeModel(np.zeros(13), FeatureBuilder().spec.names, 1.0, "0" * 64)
    with pytest.raises(FeatureSchemaMismatch, match="refit"):
        evaluate_walkforward(panel, CONFIG, model=model)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HmacKey:
    key = HmacKey.generate()
    monkeypatch.setenv("AI_TRADING_SIGNING_KEY", key.to_text().decode())
    monkeypatch.setenv("AI_TRADING_TRUSTED_KEY", key.to_text().decode())
    monkeypatch.setenv("AI_TRADING_ARTIFACTS__TRUSTED_KEYS_DIR", str(tmp_path / "trusted"))
    monkeypatch.setenv("AI_TRADING_ARTIFACTS__TRUST_STATE_PATH", str(tmp_path / "trust.json"))
    monkeypatch.setenv("AI_TRADING_DATA_DB", str(tmp_path / "bars.duckdb"))  # the configured store fills itself
    monkeypatch.setenv("AI_TRADING_DATA__SYNTHETIC_SYMBOLS", "8")
    monkeypatch.setenv("AI_TRADING_DATA__SYNTHETIC_DAILY_BARS", "320")
    monkeypatch.setenv("AI_TRADING_EVALUATION__CPCV_GROUPS", "4")
    return key


CLI_ARGS = ["--symbols", "SYN00,SYN01,SYN02,SYN03,SYN04,SYN05", "--start", "2010-01-01", "--end", "2030-01-01", "--folds", "3"]


def test_cli_writes_json_report_plot_and_signed_manifest(tmp_path: Path, cli_env: HmacKey, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval"
    code = main(["walkforward", *CLI_ARGS, "--out", str(out), "--json", "--seed", "5"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert len(document["folds"]) == 3 and document["settings"]["execution_seed"] == 5
    assert json.loads((out / "report.json").read_text())["aggregate"] == document["aggregate"]
    assert (out / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trust = Trust({cli_env.key_id: cli_env}, TrustState(tmp_path / "state.json"))
    artifact = load_verified(out, trust, FeatureBuilder().feature_schema_hash, document["provenance"]["dataset_fingerprint"])
    assert artifact.manifest.fields.kind == "eval"
    assert RidgeModel.from_bytes(artifact.read(MODEL_FILE), FeatureBuilder().feature_schema_hash).coef.size == 13
    # The signed model evaluates as is when loaded back.
    code = main(["walkforward", *CLI_ARGS, "--model", str(out), "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["settings"]["model"] == "loaded"


def test_cli_summary_is_rounded_for_reading(tmp_path: Path, cli_env: HmacKey, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["walkforward", *CLI_ARGS, "--alphas", "0.1,10"]) == 0
    lines = {line[:10].strip(): line[10:] for line in capsys.readouterr().out.splitlines()}
    ratio, percent, money = r"-?\d+\.\d\d", r"-?\d+\.\d\d%", r"-?\d{1,3}(,\d{3})*"
    assert re.fullmatch(f"Sharpe {ratio}, return {percent}, max drawdown {percent}", lines["net"])
    assert re.fullmatch(
        f"{money} = {ratio} bps of {money} traded notional: spread, slippage and impact {money} "
        f"\\(fill prices vs reference mids\\) \\+ fees {money}",
        lines["costs"],
    )
    assert re.fullmatch(f"{ratio}x equity a year \\(buys and sells\\), costs {percent} of equity a year", lines["turnover"])
    assert re.fullmatch(f"gross {money} - costs {money} = net {money}", lines["P&L"])
    assert lines["annual"] == "Sharpe, volatility, CAGR and turnover annualised with 252 periods a year"
    assert re.fullmatch(r"(\d\.\d{3}|n/a) / (\d\.\d{3}|n/a) \(probability the true Sharpe > 0; deflated for the ridge_alpha trials\)", lines["PSR/DSR"])
    assert re.fullmatch(f"Sharpe over \\d+ paths: mean {ratio}, std {ratio}, min {ratio}", lines["CPCV"])
    assert re.fullmatch(r"\d\.\d{3} over ridge_alpha 0\.1, 10", lines["PBO"])


def test_cli_refuses_a_model_signed_for_other_features(tmp_path: Path, cli_env: HmacKey, capsys: pytest.CaptureFixture[str]) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    other = "ab" * 32
    (model_dir / MODEL_FILE).write_bytes(RidgeModel(np.zeros(13), FeatureBuilder().spec.names, 1.0, other).to_bytes())
    fields = ManifestFields("ridge", 1, "ml", "ridge", "default", 1, other, "cd" * 32)
    sign_artifact_dir(model_dir, fields, cli_env)
    code = main(["walkforward", *CLI_ARGS, "--model", str(model_dir), "--json"])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "schema hash" in captured.err and other in captured.err


MINUTE_CONFIG = AppConfig(evaluation=EvaluationConfig(folds=2, cpcv_groups=3, cpcv_test_groups=1))


def test_minute_bars_are_annualised_by_the_minute() -> None:
    """Issue 20, finding 3: 1-minute bars were annualised with 252 periods a year. The
    report now takes 252 sessions x 390 minutes from the bars, and says so."""
    panel = generate_panel(6, 2 * 390, "1min", seed=2)
    report = evaluate_walkforward(panel, MINUTE_CONFIG)
    document = report.to_dict()
    assert document["periods_per_year"] == 252 * 390 and document["data"]["frequency"] == "1min"
    assert document["aggregate"]["periods_per_year"] == 252 * 390
    assert all(fold["metrics"]["periods_per_year"] == 252 * 390 for fold in document["folds"])
    window = report.result.equity[report.first_bar : report.folds[-1].test_hi + 1]
    net = report.aggregate.net.sharpe_ratio
    assert net == pytest.approx(sharpe_ratio(np.diff(window) / window[:-1], 252 * 390))
    assert net == pytest.approx(sharpe_ratio(np.diff(window) / window[:-1], 252) * math.sqrt(390))


def test_periods_per_year_overrides_the_bars_when_set() -> None:
    panel = generate_panel(6, 2 * 390, "1min", seed=2)
    config = dataclasses.replace(MINUTE_CONFIG, evaluation=dataclasses.replace(MINUTE_CONFIG.evaluation, periods_per_year=365.0 * 1440))
    assert evaluate_walkforward(panel, config).to_dict()["periods_per_year"] == 365.0 * 1440
    daily = evaluate_walkforward(generate_panel(6, 120, seed=2), MINUTE_CONFIG).to_dict()
    assert daily["periods_per_year"] == 252.0 and daily["data"]["frequency"] == "1d"


@pytest.mark.parametrize("folds", ["0", "-2"])
def test_cli_folds_below_one_is_a_user_facing_error(tmp_path: Path, cli_env: HmacKey, capsys: pytest.CaptureFixture[str], folds: str) -> None:
    """Issue 20, finding 6: ``--folds 0`` answered with the splitter's internal ``n_splits``."""
    assert main(["walkforward", *CLI_ARGS[:-2], "--folds", folds]) == 2
    err = capsys.readouterr().err
    assert "--folds" in err and ">= 1" in err and "n_splits" not in err


def test_cli_start_after_end_says_so(tmp_path: Path, cli_env: HmacKey, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["walkforward", "--start", "2020-01-01", "--end", "2019-01-01"]) == 2
    err = capsys.readouterr().err
    assert "start=2020-01-01 end=2019-01-01" in err and "after" in err and "no bars" not in err
