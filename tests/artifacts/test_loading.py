"""load_verified: the happy path, and every attack rejected with the right error."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ai_trading.artifacts import Ed25519Signer, HmacKey, Trust, load_verified, sign_artifact_dir
from ai_trading.artifacts.manifest import MANIFEST_FILE, SIGNATURE_FILE
from ai_trading.artifacts.signing import Envelope, sign_bytes
from ai_trading.errors import (
    DatasetFingerprintMismatch,
    FeatureSchemaMismatch,
    ProvenanceError,
    RollbackError,
    SignatureError,
)
from tests.artifacts.conftest import DATASET, MODEL_FILES, SCHEMA_HASH, manifest_fields, write_model


def _load(directory: Path, trust: Trust, **kwargs: str) -> object:
    return load_verified(directory, trust, SCHEMA_HASH, **kwargs)


def _rewrite_envelope(directory: Path, **changes: object) -> None:
    envelope = Envelope.from_bytes((directory / SIGNATURE_FILE).read_bytes())
    fields = {"payload_type": envelope.payload_type, "key_id": envelope.key_id,
              "algorithm": envelope.algorithm, "signature": envelope.signature, **changes}
    (directory / SIGNATURE_FILE).write_bytes(Envelope(**fields).to_bytes())  # type: ignore[arg-type]


@pytest.mark.parametrize("key_name", ["signer", "hmac_key"])
def test_signed_directory_loads_with_its_exact_bytes(
    tmp_path: Path, trust: Trust, key_name: str, request: pytest.FixtureRequest
) -> None:
    key = request.getfixturevalue(key_name)
    directory = write_model(tmp_path / key_name)
    sign_artifact_dir(directory, manifest_fields(), key)
    artifact = load_verified(directory, trust, SCHEMA_HASH, expected_dataset_fingerprint=DATASET,
                             expected_name="momentum-ppo")
    assert dict(artifact.files) == MODEL_FILES
    assert artifact.open("model.bin").read() == MODEL_FILES["model.bin"]
    assert artifact.key_id == key.key_id == artifact.manifest.signer_key_id
    assert artifact.manifest.fields.metrics == {"sharpe": 1.25, "max_drawdown": -0.12}
    assert trust.state.last_accepted("momentum-ppo").version == 1  # type: ignore[union-attr]
    load_verified(directory, trust, SCHEMA_HASH)  # loading the same version again is fine


def test_tampered_file(signed_model: Path, trust: Trust) -> None:
    (signed_model / "model.bin").write_bytes(b"\x00weightz\x01" * 50)
    with pytest.raises(ProvenanceError, match=r"model.bin has sha256 [0-9a-f]{64}, manifest says"):
        _load(signed_model, trust)


def test_added_file(signed_model: Path, trust: Trust) -> None:
    (signed_model / "config" / "backdoor.py").write_text("import os")
    with pytest.raises(ProvenanceError, match=r"config/backdoor.py is present but not signed"):
        _load(signed_model, trust)


def test_removed_file(signed_model: Path, trust: Trust) -> None:
    (signed_model / "config" / "policy.json").unlink()
    with pytest.raises(ProvenanceError, match=r"config/policy.json is listed but missing"):
        _load(signed_model, trust)


def test_renamed_file(signed_model: Path, trust: Trust) -> None:
    (signed_model / "model.bin").rename(signed_model / "model.old")
    with pytest.raises(ProvenanceError, match=r"model.bin is listed but missing; model.old is present but not signed"):
        _load(signed_model, trust)


SYMLINK_ATTACKS = ["file", "directory", "manifest"]


@pytest.mark.parametrize("target", SYMLINK_ATTACKS)
def test_symlink(signed_model: Path, trust: Trust, tmp_path: Path, target: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    if target == "file":
        (outside / "model.bin").write_bytes(MODEL_FILES["model.bin"])
        (signed_model / "model.bin").unlink()
        os.symlink(outside / "model.bin", signed_model / "model.bin")
        match = "model.bin is a symlink"
    elif target == "directory":
        shutil.move(signed_model / "config", outside / "config")
        os.symlink(outside / "config", signed_model / "config")
        match = "config is a symlink"
    else:
        shutil.move(signed_model / MANIFEST_FILE, outside / MANIFEST_FILE)
        os.symlink(outside / MANIFEST_FILE, signed_model / MANIFEST_FILE)
        match = "manifest.json cannot be opened as a regular file"
    with pytest.raises(ProvenanceError, match=match):
        _load(signed_model, trust)


def test_manifest_swapped_in_from_another_model(
    signed_model: Path, trust: Trust, signer: Ed25519Signer, tmp_path: Path
) -> None:
    other = write_model(tmp_path / "other", {"model.bin": b"other weights", "config/policy.json": b"{}"})
    sign_artifact_dir(other, manifest_fields(name="other-model"), signer)
    for name in (MANIFEST_FILE, SIGNATURE_FILE):
        shutil.copyfile(other / name, signed_model / name)
    with pytest.raises(ProvenanceError, match="do not match the signed manifest"):
        _load(signed_model, trust)
    # Even with identical files, a caller naming the model it wants gets only that model.
    with pytest.raises(ProvenanceError, match="artifact is model 'other-model' version 1, expected 'momentum-ppo'"):
        _load(other, trust, expected_name="momentum-ppo")


def test_older_validly_signed_manifest_is_replayed(tmp_path: Path, trust: Trust, signer: Ed25519Signer) -> None:
    old = write_model(tmp_path / "v1")
    sign_artifact_dir(old, manifest_fields(version=1), signer)
    new = write_model(tmp_path / "v2", {"model.bin": b"better weights"})
    sign_artifact_dir(new, manifest_fields(version=2), signer)
    _load(new, trust)
    with pytest.raises(RollbackError, match="version 1 is older than the last accepted version 2"):
        _load(old, trust)


def test_same_version_with_another_manifest_is_refused(tmp_path: Path, trust: Trust, signer: Ed25519Signer) -> None:
    first = write_model(tmp_path / "a")
    sign_artifact_dir(first, manifest_fields(version=3), signer)
    second = write_model(tmp_path / "b", {"model.bin": b"different"})
    sign_artifact_dir(second, manifest_fields(version=3), signer)
    _load(first, trust)
    with pytest.raises(RollbackError, match="version 3 was accepted before with manifest sha256"):
        _load(second, trust)


def test_rollback_state_survives_a_new_trust_object(tmp_path: Path, trust: Trust, signer: Ed25519Signer) -> None:
    old = write_model(tmp_path / "v1")
    sign_artifact_dir(old, manifest_fields(version=1), signer)
    new = write_model(tmp_path / "v5", {"model.bin": b"v5"})
    sign_artifact_dir(new, manifest_fields(version=5), signer)
    _load(new, trust)
    reopened = Trust(keys=dict(trust.keys), state=type(trust.state)(trust.state.path))
    with pytest.raises(RollbackError):
        _load(old, reopened)


def test_wrong_key(tmp_path: Path, trust: Trust) -> None:
    stranger = Ed25519Signer.generate()
    directory = write_model(tmp_path / "m")
    sign_artifact_dir(directory, manifest_fields(), stranger)
    with pytest.raises(SignatureError, match=f"signed by key '{stranger.key_id}', which is not trusted"):
        _load(directory, trust)


def test_signature_by_another_key_under_a_trusted_key_id(signed_model: Path, trust: Trust, signer: Ed25519Signer) -> None:
    stranger = Ed25519Signer.generate()
    payload = (signed_model / MANIFEST_FILE).read_bytes()
    forged = sign_bytes(payload, stranger).signature
    _rewrite_envelope(signed_model, signature=forged)
    with pytest.raises(SignatureError, match=f"signature by {signer.key_id} does not match"):
        _load(signed_model, trust)


def test_hmac_key_presented_for_an_ed25519_manifest(signed_model: Path, trust: Trust, signer: Ed25519Signer) -> None:
    """The classic algorithm confusion: HMAC keyed with the (public) Ed25519 key bytes."""
    public_raw = signer.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    forged = sign_bytes((signed_model / MANIFEST_FILE).read_bytes(), HmacKey(public_raw))
    _rewrite_envelope(signed_model, algorithm="hmac-sha256", signature=forged.signature)
    with pytest.raises(SignatureError, match="claims algorithm 'hmac-sha256' but trusted key .* is 'ed25519'"):
        _load(signed_model, trust)
    _rewrite_envelope(signed_model, algorithm="ed25519")
    with pytest.raises(SignatureError, match="does not match"):
        _load(signed_model, trust)


def test_payload_type_swapped(signed_model: Path, trust: Trust, signer: Ed25519Signer) -> None:
    _rewrite_envelope(signed_model, payload_type="application/vnd.ai-trading.eval+json")
    with pytest.raises(SignatureError, match="payload type 'application/vnd.ai-trading.eval\\+json'"):
        _load(signed_model, trust)


def test_signature_over_another_payload_type_does_not_verify(signed_model: Path, trust: Trust, signer: Ed25519Signer) -> None:
    """A signature the same key made for another type of payload cannot be reused."""
    other = sign_bytes((signed_model / MANIFEST_FILE).read_bytes(), signer, payload_type="application/other")
    _rewrite_envelope(signed_model, signature=other.signature)
    with pytest.raises(SignatureError, match="does not match"):
        _load(signed_model, trust)


JSON_REWRITES = {
    "re-ordered": lambda doc: json.dumps(dict(reversed(list(doc.items()))), indent=2),
    "re-spaced": lambda doc: json.dumps(doc, indent=4, sort_keys=True) + "\n",
    "compact": lambda doc: json.dumps(doc, sort_keys=True, separators=(",", ":")),
}


@pytest.mark.parametrize("rewrite", JSON_REWRITES.values(), ids=JSON_REWRITES.keys())
def test_json_reordered_or_respaced(signed_model: Path, trust: Trust, rewrite) -> None:  # type: ignore[no-untyped-def]
    path = signed_model / MANIFEST_FILE
    document = json.loads(path.read_bytes())
    rewritten = rewrite(document).encode()
    assert json.loads(rewritten) == document and rewritten != path.read_bytes()
    path.write_bytes(rewritten)
    with pytest.raises(SignatureError, match="does not match the bytes of manifest.json"):
        _load(signed_model, trust)


def test_edited_manifest_value(signed_model: Path, trust: Trust) -> None:
    path = signed_model / MANIFEST_FILE
    path.write_bytes(path.read_bytes().replace(b'"version": 1', b'"version": 9'))
    with pytest.raises(SignatureError, match="does not match"):
        _load(signed_model, trust)


def test_feature_hash_mismatch(signed_model: Path, trust: Trust) -> None:
    current = "f" * 64
    with pytest.raises(FeatureSchemaMismatch, match=f"schema hash {SCHEMA_HASH}, but the current builder's schema hash is {current}"):
        load_verified(signed_model, trust, current)


def test_dataset_fingerprint_mismatch_when_required(signed_model: Path, trust: Trust) -> None:
    required = "e" * 64
    with pytest.raises(DatasetFingerprintMismatch, match=f"built on dataset {DATASET}, the caller requires dataset {required}"):
        _load(signed_model, trust, expected_dataset_fingerprint=required)
    _load(signed_model, trust)  # a caller that does not require the same data accepts it


def test_unsigned_directory(tmp_path: Path, trust: Trust) -> None:
    with pytest.raises(SignatureError, match="manifest.sig is missing"):
        _load(write_model(tmp_path / "raw"), trust)


def test_malformed_envelope(signed_model: Path, trust: Trust) -> None:
    (signed_model / SIGNATURE_FILE).write_text('{"payloadType": 1}')
    with pytest.raises(SignatureError, match="manifest.sig is malformed"):
        _load(signed_model, trust)


def test_failed_load_records_nothing(tmp_path: Path, trust: Trust, signer: Ed25519Signer) -> None:
    """A load that fails any check leaves the rollback state untouched."""
    tampered = write_model(tmp_path / "tampered")
    sign_artifact_dir(tampered, manifest_fields(version=7), signer)
    (tampered / "model.bin").write_bytes(b"tampered")
    with pytest.raises(ProvenanceError):
        _load(tampered, trust)
    other_features = write_model(tmp_path / "other-features")
    sign_artifact_dir(other_features, manifest_fields(version=8), signer)
    with pytest.raises(FeatureSchemaMismatch):
        load_verified(other_features, trust, "0" * 64)
    assert trust.state.last_accepted("momentum-ppo") is None
