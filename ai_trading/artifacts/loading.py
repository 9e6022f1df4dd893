"""The one way to load a model: verify everything, then hand out the verified bytes.

:func:`load_verified` checks, in order: a trusted key, the algorithm of that key, a valid
signature over the exact manifest bytes and payload type, every file present with its
signed size and digest and no other file, no symlink, the feature schema hash (and the
dataset fingerprint when the caller requires one), and finally that the version is not
older than the last one accepted. Only then does it record the version and return the
file contents it hashed, so a loader deserialises exactly the bytes that were verified
and nothing is loaded from a directory that fails any check. A caller holding a pinned
manifest digest (the model registry) passes it, and any other build is refused.
:func:`verify_artifact` runs the same checks without rollback protection and records
nothing, for admission decisions.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ai_trading.artifacts.keys import Verifier, load_trusted_keys
from ai_trading.artifacts.manifest import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    Manifest,
    compare_files,
    file_entries,
    read_regular_file,
    read_tree,
)
from ai_trading.artifacts.signing import PAYLOAD_TYPE, Envelope, pae
from ai_trading.artifacts.trust_state import TrustState
from ai_trading.config import ArtifactsConfig
from ai_trading.errors import DatasetFingerprintMismatch, FeatureSchemaMismatch, ProvenanceError, SignatureError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trust:
    """What a loader trusts: verification keys by id, and the rollback state.

    :param keys: trusted keys by key id
    :param state: the durable record of accepted versions
    """

    keys: Mapping[str, Verifier]
    state: TrustState

    @classmethod
    def from_config(cls, config: ArtifactsConfig, environ: Mapping[str, str] | None = None) -> Trust:
        keys = load_trusted_keys(config.trusted_keys_dir, config.trusted_key_env, environ)
        return cls(keys=keys, state=TrustState(config.trust_state_path))


@dataclass(frozen=True, eq=False)
class VerifiedArtifact:
    """A verified artifact directory and the exact bytes of its files.

    :param path: the directory
    :param manifest: the parsed, signed manifest
    :param manifest_sha256: SHA-256 of the signed manifest bytes
    :param key_id: the trusted key that signed it
    :param files: relative path -> contents, as hashed during verification
    """

    path: Path
    manifest: Manifest
    manifest_sha256: str
    key_id: str
    files: Mapping[str, bytes]

    def read(self, name: str) -> bytes:
        if name not in self.files:
            raise ProvenanceError(f"artifact {self.manifest.fields.name!r} has no file {name!r}; it has {sorted(self.files)}")
        return self.files[name]

    def open(self, name: str) -> io.BytesIO:
        """A binary stream over a verified file, for deserialisers that take file objects."""
        return io.BytesIO(self.read(name))


def _verify_signature(manifest_bytes: bytes, envelope: Envelope, trust: Trust) -> Verifier:
    if envelope.payload_type != PAYLOAD_TYPE:
        raise SignatureError(f"{SIGNATURE_FILE} has payload type {envelope.payload_type!r}, expected {PAYLOAD_TYPE!r}")
    key = trust.keys.get(envelope.key_id)
    if key is None:
        raise SignatureError(
            f"manifest is signed by key {envelope.key_id!r}, which is not trusted (trusted: {sorted(trust.keys) or 'none'})"
        )
    if envelope.algorithm != key.algorithm:
        raise SignatureError(
            f"{SIGNATURE_FILE} claims algorithm {envelope.algorithm!r} but trusted key {key.key_id} is "
            f"{key.algorithm!r}: the algorithm always comes from the trusted key"
        )
    if not key.verify(pae(envelope.payload_type, manifest_bytes), envelope.signature):
        raise SignatureError(
            f"signature by {key.key_id} does not match the bytes of {MANIFEST_FILE} "
            "(the manifest was changed, re-serialised, or signed by another key)"
        )
    return key


def _check_expectations(
    manifest: Manifest,
    expected_feature_schema_hash: str,
    expected_dataset_fingerprint: str | None,
    expected_name: str | None,
) -> None:
    fields = manifest.fields
    if expected_name is not None and fields.name != expected_name:
        raise ProvenanceError(f"artifact is model {fields.name!r} version {fields.version}, expected {expected_name!r}")
    if fields.feature_schema_hash != expected_feature_schema_hash:
        raise FeatureSchemaMismatch(
            f"model {fields.name!r} v{fields.version} was trained on feature spec {fields.feature_spec_name!r} "
            f"v{fields.feature_spec_version} with schema hash {fields.feature_schema_hash}, but the current "
            f"builder's schema hash is {expected_feature_schema_hash}: retrain on the current features"
        )
    if expected_dataset_fingerprint is not None and fields.dataset_fingerprint != expected_dataset_fingerprint:
        raise DatasetFingerprintMismatch(
            f"model {fields.name!r} v{fields.version} was built on dataset {fields.dataset_fingerprint}, "
            f"the caller requires dataset {expected_dataset_fingerprint}"
        )


def verify_artifact(
    directory: Path | str,
    trust: Trust,
    expected_feature_schema_hash: str,
    expected_dataset_fingerprint: str | None = None,
    expected_name: str | None = None,
    expected_manifest_sha256: str | None = None,
) -> VerifiedArtifact:
    """Every check of :func:`load_verified` except rollback protection, recording nothing.

    For admission decisions that must not move the rollback state before they succeed
    (the model registry verifies a whole training run, then decides); anything that
    trades loads through :func:`load_verified`.
    """
    directory = Path(directory)
    if directory.is_symlink() or not directory.is_dir():
        raise ProvenanceError(f"{directory} is not an artifact directory (missing, or a symlink)")
    if not os.path.lexists(directory / SIGNATURE_FILE):
        raise SignatureError(f"{directory} is not signed: {SIGNATURE_FILE} is missing; run `ai-trading manifest sign`")
    envelope = Envelope.from_bytes(read_regular_file(directory / SIGNATURE_FILE, SIGNATURE_FILE))
    manifest_bytes = read_regular_file(directory / MANIFEST_FILE, MANIFEST_FILE)
    key = _verify_signature(manifest_bytes, envelope, trust)
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    if expected_manifest_sha256 is not None and manifest_sha256 != expected_manifest_sha256:
        raise ProvenanceError(
            f"{directory}: manifest sha256 is {manifest_sha256}, the caller pinned {expected_manifest_sha256} "
            "(the directory holds another build than the one registered)"
        )
    manifest = Manifest.from_bytes(manifest_bytes)
    if manifest.signer_key_id != key.key_id:
        raise SignatureError(f"manifest names signer {manifest.signer_key_id!r} but was signed by {key.key_id!r}")
    files = read_tree(directory)
    compare_files(manifest.files, file_entries(files))
    _check_expectations(manifest, expected_feature_schema_hash, expected_dataset_fingerprint, expected_name)
    return VerifiedArtifact(directory, manifest, manifest_sha256, key.key_id, files)


def load_verified(
    directory: Path | str,
    trust: Trust,
    expected_feature_schema_hash: str,
    expected_dataset_fingerprint: str | None = None,
    expected_name: str | None = None,
    expected_manifest_sha256: str | None = None,
) -> VerifiedArtifact:
    """Verify ``directory`` completely and return its files; raise on the first failed check.

    :raises SignatureError: unsigned, untrusted key, algorithm switch, payload type or
        signature mismatch
    :raises ProvenanceError: missing/extra/changed file, symlink, malformed manifest,
        wrong model name, a manifest other than ``expected_manifest_sha256`` when given;
        :class:`FeatureSchemaMismatch` and :class:`DatasetFingerprintMismatch` for the two
        provenance hashes
    :raises RollbackError: a version older than the last accepted one of that model
    """
    artifact = verify_artifact(
        directory, trust, expected_feature_schema_hash, expected_dataset_fingerprint, expected_name,
        expected_manifest_sha256,
    )  # fmt: skip
    fields = artifact.manifest.fields
    trust.state.accept(fields.name, fields.version, artifact.manifest_sha256)
    logger.info("ARTIFACT_VERIFIED", extra={"artifact": fields.name, "version": fields.version, "key_id": artifact.key_id})
    return artifact
