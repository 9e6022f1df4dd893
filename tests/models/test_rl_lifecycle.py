"""An RL policy through the CLI: `train` -> `ml predict` and `walkforward --model` on a
seed's signed artifact, the SB3 policy loaded through the verified path; a run the gate
rejects is not registered. The run names no symbols, so the loader relies on the action
order the seeds record. (Promotion of a run that passes is tested in tests/artifacts.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_trading.cli import main
from ai_trading.features import FeatureBuilder

pytestmark = pytest.mark.rl
pytest.importorskip("stable_baselines3")

N_SYMBOLS = 4
LENIENT = """[rl_env]
episode_length = 20
[rl_train]
seeds = 5
timesteps = 64
n_envs = 2
checkpoints = 1
workers = 1
train_end = "2016-03-01"
validation_end = "2016-12-01"
model_name = "rl-tiny"
[evaluation]
folds = 2
"""


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rl-life")
    env = {
        "AI_TRADING_ARTIFACTS__SIGNING_KEY_PATH": str(root / "keys" / "signing.key"),
        "AI_TRADING_ARTIFACTS__TRUSTED_KEYS_DIR": str(root / "keys" / "trusted"),
        "AI_TRADING_ARTIFACTS__TRUST_STATE_PATH": str(root / "trust.json"),
        "AI_TRADING_ARTIFACTS__REGISTRY_DIR": str(root / "registry"),
        "AI_TRADING_DATA__DB_PATH": str(root / "bars.duckdb"),
        "AI_TRADING_CONFIG": str(root / "config.toml"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        for name in ("AI_TRADING_SIGNING_KEY", "AI_TRADING_TRUSTED_KEY"):
            mp.delenv(name, raising=False)
        (root / "config.toml").write_text(LENIENT)
        assert main(["keys", "generate"]) == 0
        assert main(["data", "generate", "--symbols", str(N_SYMBOLS), "--bars", "700"]) == 0
        assert main(["train", "--out", str(root / "run")]) == 0
    return {"run": str(root / "run"), **env}


@pytest.fixture
def env(promoted: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in promoted.items():
        if name.startswith("AI_TRADING_"):
            monkeypatch.setenv(name, str(value))
    for name in ("AI_TRADING_SIGNING_KEY", "AI_TRADING_TRUSTED_KEY"):
        monkeypatch.delenv(name, raising=False)
    return promoted


def test_a_seed_policy_predicts_and_walks_forward(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    seed = str(Path(env["run"]) / "seed_2")
    capsys.readouterr()
    assert main(["ml", "predict", "--model", seed, "--date", "2017-03-01", "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert predicted["kind"] == "rl" and sorted(predicted["weights"]) == [f"SYN{k:02d}" for k in range(N_SYMBOLS)]
    assert predicted["feature_schema_hash"] == FeatureBuilder().feature_schema_hash
    assert sum(abs(w) for w in predicted["weights"].values()) <= 1.0 + 1e-6
    assert main(["walkforward", "--model", seed, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["policy"]["kind"] == "rl" and len(report["folds"]) == 2
    assert report["data"]["symbols"] == [f"SYN{k:02d}" for k in range(N_SYMBOLS)]


def test_a_tampered_policy_stops_predict_before_any_number(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    stored = Path(env["run"]) / "seed_3" / "model.zip"
    original = stored.read_bytes()
    try:
        stored.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        capsys.readouterr()
        assert main(["ml", "predict", "--model", str(stored.parent), "--date", "2017-03-01", "--json"]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and "model.zip" in captured.err
    finally:
        stored.write_bytes(original)


def test_a_run_the_gate_rejects_is_not_registered(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """64 timesteps learn nothing: the default gate must refuse the run, and promotion with it."""
    assert main(["govern", env["run"]]) == 1
    assert "REJECTED" in capsys.readouterr().out
    assert main(["registry", "promote", env["run"]]) == 2
    assert "fails the promotion gate" in capsys.readouterr().err
    assert main(["ml", "predict", "--model", "rl-tiny", "--date", "2017-03-01"]) == 2
    assert "rl-tiny" in capsys.readouterr().err
