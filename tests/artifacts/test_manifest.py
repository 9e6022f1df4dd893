"""Manifest fields are validated before anything is written; parsing is strict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ai_trading.artifacts import Ed25519Signer, Manifest, ManifestFields, sign_artifact_dir
from ai_trading.artifacts.manifest import MANIFEST_FILE
from ai_trading.errors import ProvenanceError
from ai_trading.features import FeatureBuilder
from tests.artifacts.conftest import manifest_fields, write_model
from tests.features.feature_reference import random_panel

BAD_FIELDS = [
    ({"name": "../escape"}, "name must match"),
    ({"version": 0}, "version must be an integer >= 1"),
    ({"version": True}, "version must be an integer >= 1"),
    ({"kind": "live"}, "kind must be one of"),
    ({"feature_schema_hash": "abc"}, "feature_schema_hash must be 64 lowercase hex"),
    ({"metrics": {"sharpe": float("nan")}}, "metric 'sharpe' must be a finite number"),
    ({"training_config": {"obj": object()}}, "training_config must be plain JSON"),
]


@pytest.mark.parametrize(("change", "message"), BAD_FIELDS)
def test_bad_fields_are_refused_before_writing(change: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ProvenanceError, match=message):
        manifest_fields(**change)


def test_manifest_bytes_round_trip(signed_model: Path) -> None:
    data = (signed_model / MANIFEST_FILE).read_bytes()
    manifest = Manifest.from_bytes(data)
    assert manifest.to_bytes() == data
    assert [f.path for f in manifest.files] == ["config/policy.json", "model.bin"]


STRICT_PARSE_CASES = [
    (lambda d: {**d, "extra": 1}, "unknown \\['extra'\\]"),
    (lambda d: {k: v for k, v in d.items() if k != "metrics"}, "missing \\['metrics'\\]"),
    (lambda d: {**d, "schema": "other/v9"}, "schema is 'other/v9'"),
]


@pytest.mark.parametrize(("mutate", "message"), STRICT_PARSE_CASES)
def test_parsing_is_strict(signed_model: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    document = json.loads((signed_model / MANIFEST_FILE).read_bytes())
    with pytest.raises(ProvenanceError, match=message):
        Manifest.from_bytes(json.dumps(mutate(document)).encode())


def test_duplicate_keys_are_refused(signed_model: Path) -> None:
    text = (signed_model / MANIFEST_FILE).read_text().replace('"version": 1', '"version": 1, "version": 2')
    with pytest.raises(ProvenanceError, match="duplicate keys"):
        Manifest.from_bytes(text.encode())


def test_feature_set_provenance_fills_the_manifest(tmp_path: Path) -> None:
    features = FeatureBuilder().build(random_panel(np.random.default_rng(0), 30, 2))
    fields = ManifestFields(name="m", version=1, kind="ml", algorithm="ridge", **features.provenance())  # type: ignore[arg-type]
    manifest = sign_artifact_dir(write_model(tmp_path / "m"), fields, Ed25519Signer.generate())
    assert manifest.fields.feature_schema_hash == FeatureBuilder().feature_schema_hash
    assert manifest.fields.dataset_fingerprint == features.dataset_fingerprint
