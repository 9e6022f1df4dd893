"""Fixtures: keys, a trust with its own state file, and a signed model directory."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ai_trading.artifacts import Ed25519Signer, HmacKey, ManifestFields, Trust, TrustState, sign_artifact_dir

SCHEMA_HASH = hashlib.sha256(b"schema").hexdigest()
DATASET = hashlib.sha256(b"dataset").hexdigest()
MODEL_FILES = {"model.bin": b"\x00weights\x01" * 50, "config/policy.json": b'{"layers": [64, 64]}'}


def manifest_fields(name: str = "momentum-ppo", version: int = 1, **changes: object) -> ManifestFields:
    values: dict[str, object] = {
        "name": name,
        "version": version,
        "kind": "rl",
        "algorithm": "ppo",
        "feature_spec_name": "default",
        "feature_spec_version": 1,
        "feature_schema_hash": SCHEMA_HASH,
        "dataset_fingerprint": DATASET,
        "training_config": {"learning_rate": 0.0003, "seeds": [1, 2, 3]},
        "metrics": {"sharpe": 1.25, "max_drawdown": -0.12},
    }
    values.update(changes)
    return ManifestFields(**values)  # type: ignore[arg-type]


def write_model(directory: Path, files: dict[str, bytes] = MODEL_FILES) -> Path:
    for name, data in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return directory


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer.generate()


@pytest.fixture
def hmac_key() -> HmacKey:
    return HmacKey.generate()


@pytest.fixture
def trust(tmp_path: Path, signer: Ed25519Signer, hmac_key: HmacKey) -> Trust:
    keys = {signer.key_id: signer.verifier(), hmac_key.key_id: hmac_key}
    return Trust(keys=keys, state=TrustState(tmp_path / "state" / "trust.json"))


@pytest.fixture
def signed_model(tmp_path: Path, signer: Ed25519Signer) -> Path:
    directory = write_model(tmp_path / "model")
    sign_artifact_dir(directory, manifest_fields(), signer)
    return directory
