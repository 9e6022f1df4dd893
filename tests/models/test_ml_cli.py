"""`ml train` -> `registry promote` -> `ml predict` and `walkforward --model`, and the
errors that stop them before any number is printed."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from ai_trading.artifacts import ManifestFields, Trust, sign_artifact_dir
from ai_trading.artifacts.keys import load_signing_key
from ai_trading.artifacts.admission import Rejection
from ai_trading.artifacts.registry import STATE_FILE
from ai_trading.cli import main
from ai_trading.config import MLPromotionCriteria, load_config
from ai_trading.features import FeatureBuilder
from ai_trading.models.gates import MLGate

SYMBOLS = "SYN00,SYN01,SYN02,SYN03,SYN04,SYN05"
LENIENT = """[ml_governance]
min_deflated_sharpe = 0.0
max_pbo = 1.0
min_net_sharpe = -100.0
max_drawdown = 1.0
min_turnover = 0.0
max_turnover = 1000.0
min_cpcv_sharpe_mean = -100.0
[evaluation]
cpcv_groups = 4
folds = 3
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ml")
    env = {
        "AI_TRADING_ARTIFACTS__SIGNING_KEY_PATH": str(root / "keys" / "signing.key"),
        "AI_TRADING_ARTIFACTS__TRUSTED_KEYS_DIR": str(root / "keys" / "trusted"),
        "AI_TRADING_ARTIFACTS__TRUST_STATE_PATH": str(root / "trust.json"),
        "AI_TRADING_ARTIFACTS__REGISTRY_DIR": str(root / "registry"),
        "AI_TRADING_DATA__DB_PATH": str(root / "bars.duckdb"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        for name in ("AI_TRADING_SIGNING_KEY", "AI_TRADING_TRUSTED_KEY", "AI_TRADING_CONFIG"):
            mp.delenv(name, raising=False)
        (root / "config.toml").write_text(LENIENT)
        assert main(["keys", "generate"]) == 0
        assert main(["data", "generate", "--symbols", "8", "--bars", "400"]) == 0
        config = ["--config", str(root / "config.toml")]
        assert main(["ml", "train", "--name", "ridge-a", "--symbols", SYMBOLS, "--out", str(root / "model"), *config]) == 0
    return {"root": root, "model": root / "model", "config": root / "config.toml"}


@pytest.fixture
def env(trained: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    root = trained["root"]
    monkeypatch.setenv("AI_TRADING_ARTIFACTS__SIGNING_KEY_PATH", str(root / "keys" / "signing.key"))
    monkeypatch.setenv("AI_TRADING_ARTIFACTS__TRUSTED_KEYS_DIR", str(root / "keys" / "trusted"))
    monkeypatch.setenv("AI_TRADING_ARTIFACTS__TRUST_STATE_PATH", str(root / "trust.json"))
    monkeypatch.setenv("AI_TRADING_ARTIFACTS__REGISTRY_DIR", str(root / "registry"))
    monkeypatch.setenv("AI_TRADING_DATA__DB_PATH", str(root / "bars.duckdb"))
    monkeypatch.setenv("AI_TRADING_CONFIG", str(trained["config"]))
    for name in ("AI_TRADING_SIGNING_KEY", "AI_TRADING_TRUSTED_KEY"):
        monkeypatch.delenv(name, raising=False)
    return trained


def test_train_promote_predict_and_walkforward_the_registered_model(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    manifest = json.loads((env["model"] / "manifest.json").read_text())
    assert manifest["kind"] == "ml" and {"net_sharpe", "pbo", "deflated_sharpe_ratio", "turnover"} <= set(manifest["metrics"])
    capsys.readouterr()
    assert main(["registry", "promote", str(env["model"])]) == 0
    assert "promoted ridge-a (ml)" in capsys.readouterr().out
    report = json.loads((env["model"] / "report.json").read_text())
    day = report["data"]["end"][:10]
    assert main(["ml", "predict", "--model", "ridge-a", "--date", day, "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert set(predicted["weights"]) == set(SYMBOLS.split(",")) and predicted["kind"] == "ml"
    assert predicted["feature_schema_hash"] == FeatureBuilder().feature_schema_hash and len(predicted["dataset_fingerprint"]) == 64
    assert 0 < sum(abs(w) for w in predicted["weights"].values()) <= 1.0 + 1e-9
    assert main(["walkforward", "--model", "ridge-a", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["settings"]["model"] == "loaded" and evaluated["data"]["symbols"] == SYMBOLS.split(",")
    assert main(["walkforward", "--model", "demo", "--symbols", SYMBOLS, "--json"]) == 0
    demo = json.loads(capsys.readouterr().out)
    assert demo["settings"]["policy"] == {"name": "demo", "kind": "demo"} and demo["aggregate"]["turnover"] > 0


def test_a_tampered_stored_copy_stops_predict_and_walkforward(env: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    registry = env["root"] / "registry"
    assert main(["registry", "promote", str(env["model"])]) == 0
    state = json.loads((registry / STATE_FILE).read_text())
    stored = registry / state["models"]["ridge-a"]["current"]["path"]
    backup = tmp_path / "backup"
    shutil.copytree(stored, backup)
    try:
        (stored / "ridge_model.json").chmod(0o644)
        (stored / "ridge_model.json").write_text((stored / "ridge_model.json").read_text().replace("0", "1", 1))
        for command in (["ml", "predict", "--model", "ridge-a", "--date", "2030-01-01"], ["walkforward", "--model", "ridge-a"]):
            capsys.readouterr()
            assert main(command) == 2
            out, err = capsys.readouterr()
            assert out == "" and "ridge_model.json" in err and "sha256" in err, err
    finally:
        shutil.rmtree(stored)
        shutil.copytree(backup, stored)


def test_a_registry_pin_mismatch_and_a_wrong_feature_hash_stop_predict(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    registry = env["root"] / "registry"
    main(["registry", "promote", str(env["model"])])
    path = registry / STATE_FILE
    original = path.read_text()
    state = json.loads(original)
    state["models"]["ridge-a"]["current"]["manifest_sha256"] = "f" * 64
    state["models"]["ridge-a"]["current"]["path"] = "store/ridge-a/" + "f" * 64
    shutil.copytree(registry / json.loads(original)["models"]["ridge-a"]["current"]["path"], registry / "store/ridge-a" / ("f" * 64))
    path.write_text(json.dumps(state))
    try:
        capsys.readouterr()
        assert main(["ml", "predict", "--model", "ridge-a", "--date", "2030-01-01"]) == 2
        out, err = capsys.readouterr()
        assert out == "" and "pinned" in err
    finally:
        path.write_text(original)
        shutil.rmtree(registry / "store/ridge-a" / ("f" * 64))


def test_a_model_signed_for_other_features_stops_predict_and_walkforward(env: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = load_config(env["config"])
    document = json.loads((env["model"] / "manifest.json").read_text())
    names = {f.name for f in dataclasses.fields(ManifestFields)}
    signed = ManifestFields(**{**{k: v for k, v in document.items() if k in names}, "feature_schema_hash": "0" * 64, "version": document["version"] + 1})
    other = tmp_path / "other"
    other.mkdir()
    for name in ("ridge_model.json", "report.json", "equity.png"):
        shutil.copy(env["model"] / name, other / name)
    sign_artifact_dir(other, signed, load_signing_key(config.artifacts.signing_key_path, config.artifacts.signing_key_env))
    for command in (["ml", "predict", "--model", str(other), "--date", "2030-01-01"], ["walkforward", "--model", str(other)]):
        capsys.readouterr()
        assert main(command) == 2
        out, err = capsys.readouterr()
        assert out == "" and "schema hash" in err and "retrain on the current features" in err, err


def test_the_ml_gate_accepts_and_names_each_rejection(env: dict[str, Path]) -> None:
    trust = Trust.from_config(load_config(env["config"]).artifacts)
    schema = FeatureBuilder().feature_schema_hash
    lenient = load_config(env["config"]).ml_governance
    assert MLGate(lenient).admit(env["model"], trust, schema).passed
    metrics = json.loads((env["model"] / "manifest.json").read_text())["metrics"]
    strict = {
        "LOW_DEFLATED_SHARPE": {"min_deflated_sharpe": metrics["deflated_sharpe_ratio"] + 0.01},
        "HIGH_PBO": {"max_pbo": metrics["pbo"] - 0.01},
        "LOW_NET_SHARPE": {"min_net_sharpe": metrics["net_sharpe"] + 0.01},
        "DEEP_DRAWDOWN": {"max_drawdown": metrics["max_drawdown"] - 0.001},
        "LOW_TURNOVER": {"min_turnover": metrics["turnover"] + 0.01},
        "HIGH_TURNOVER": {"max_turnover": metrics["turnover"] - 0.01},
        "LOW_CPCV_SHARPE": {"min_cpcv_sharpe_mean": metrics["cpcv_sharpe_mean"] + 0.01},
    }
    from dataclasses import replace

    for code, change in strict.items():
        admission = MLGate(replace(lenient, **change)).admit(env["model"], trust, schema)
        assert [r.code for r in admission.rejections] == [code]
        assert isinstance(admission.rejections[0], Rejection)
    assert MLPromotionCriteria().max_pbo == 0.5
