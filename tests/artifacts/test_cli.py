"""`ai-trading keys generate`, `manifest sign`, `manifest verify` end to end."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from ai_trading.cli import main
from tests.artifacts.conftest import DATASET, MODEL_FILES, SCHEMA_HASH, write_model

ALGORITHMS = ["ed25519", "hmac-sha256"]


@pytest.fixture
def key_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AI_TRADING_ARTIFACTS__SIGNING_KEY_PATH", str(tmp_path / "keys" / "signing.key"))
    monkeypatch.setenv("AI_TRADING_ARTIFACTS__TRUSTED_KEYS_DIR", str(tmp_path / "keys" / "trusted"))
    monkeypatch.setenv("AI_TRADING_ARTIFACTS__TRUST_STATE_PATH", str(tmp_path / "state.json"))
    for name in ("AI_TRADING_SIGNING_KEY", "AI_TRADING_TRUSTED_KEY", "AI_TRADING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "keys"


def _sign_args(directory: Path, version: int = 1) -> list[str]:
    return [
        "manifest", "sign", str(directory), "--name", "cli-model", "--version", str(version), "--kind", "ml",
        "--algorithm", "ridge", "--feature-spec-name", "default", "--feature-spec-version", "1",
        "--feature-schema-hash", SCHEMA_HASH, "--dataset-fingerprint", DATASET,
    ]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_generate_sign_verify(
    key_dirs: Path, tmp_path: Path, algorithm: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "generate", "--algorithm", algorithm]) == 0
    private = key_dirs / "signing.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    trusted = list((key_dirs / "trusted").iterdir())
    assert len(trusted) == 1
    if algorithm == "hmac-sha256":
        assert stat.S_IMODE(trusted[0].stat().st_mode) == 0o600
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"sharpe": 0.8}))
    model = write_model(tmp_path / "model")
    assert main([*_sign_args(model), "--metrics", str(metrics)]) == 0
    assert main(["manifest", "verify", str(model), "--feature-schema-hash", SCHEMA_HASH,
                 "--dataset-fingerprint", DATASET, "--name", "cli-model"]) == 0
    assert f"verified {model}: cli-model v1" in capsys.readouterr().out
    (model / "model.bin").write_bytes(b"changed")
    assert main(["manifest", "verify", str(model), "--feature-schema-hash", SCHEMA_HASH]) == 2
    assert "model.bin has" in capsys.readouterr().err


def test_verify_defaults_to_the_current_feature_schema(key_dirs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["keys", "generate"])
    model = write_model(tmp_path / "model")
    main(_sign_args(model))
    assert main(["manifest", "verify", str(model)]) == 2
    assert "current builder's schema hash" in capsys.readouterr().err


def test_generate_never_overwrites_a_key(key_dirs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate"]) == 0
    before = (key_dirs / "signing.key").read_bytes()
    assert main(["keys", "generate"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (key_dirs / "signing.key").read_bytes() == before


def test_keys_from_the_environment(key_dirs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ai_trading.artifacts import HmacKey

    key = HmacKey.generate()
    monkeypatch.setenv("AI_TRADING_SIGNING_KEY", key.to_text().decode())
    monkeypatch.setenv("AI_TRADING_TRUSTED_KEY", key.to_text().decode())
    model = write_model(tmp_path / "model", MODEL_FILES)
    assert main(_sign_args(model)) == 0
    assert json.loads((model / "manifest.sig").read_bytes())["keyid"] == key.key_id
    assert main(["manifest", "verify", str(model), "--feature-schema-hash", SCHEMA_HASH]) == 0
    monkeypatch.delenv("AI_TRADING_TRUSTED_KEY")
    assert main(["manifest", "verify", str(model), "--feature-schema-hash", SCHEMA_HASH]) == 2


def test_sign_without_a_key_says_how_to_make_one(key_dirs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_sign_args(write_model(tmp_path / "model"))) == 2
    assert "run `ai-trading keys generate`" in capsys.readouterr().err


def test_keys_and_manifests_read_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AI_TRADING_SIGNING_KEY", "AI_TRADING_TRUSTED_KEY", "AI_TRADING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name in ("SIGNING_KEY_PATH", "TRUSTED_KEYS_DIR", "TRUST_STATE_PATH"):  # the environment would win over the file
        monkeypatch.delenv(f"AI_TRADING_ARTIFACTS__{name}", raising=False)
    keys = tmp_path / "keys"
    config = tmp_path / "config.toml"
    config.write_text(
        f"[artifacts]\nsigning_key_path = '{keys / 'signing.key'}'\ntrusted_keys_dir = '{keys / 'trusted'}'\n"
        f"trust_state_path = '{tmp_path / 'state.json'}'\n"
    )
    assert main(["keys", "generate", "--config", str(config)]) == 0
    assert (keys / "signing.key").is_file() and len(list((keys / "trusted").iterdir())) == 1
    model = write_model(tmp_path / "model")
    assert main([*_sign_args(model), "--config", str(config)]) == 0
    verify = ["manifest", "verify", str(model), "--feature-schema-hash", SCHEMA_HASH, "--config", str(config)]
    assert main(verify) == 0
    assert json.loads((tmp_path / "state.json").read_text())
