"""The manifest of an artifact directory: what the model is, what it was trained on, and
the SHA-256 and size of every file in it."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_trading.errors import ProvenanceError

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
MANIFEST_SCHEMA = "ai-trading/manifest/v1"
ARTIFACT_KINDS = ("ml", "rl", "eval")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _fail(rule: str) -> ProvenanceError:
    return ProvenanceError(f"manifest: {rule}")


def _check_json(name: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _fail(f"{name} must be plain JSON without NaN/inf ({exc})") from exc


@dataclass(frozen=True)
class ManifestFields:
    """What the producer of an artifact states about it (files and signer are added when signing).

    :param name: model name, ``[A-Za-z0-9._-]``; rollback protection is per name
    :param version: integer >= 1, strictly increasing per name across releases
    :param kind: ``ml``, ``rl`` or ``eval``
    :param algorithm: e.g. ``ppo``, ``lightgbm``, ``walkforward``
    :param feature_spec_name: the :class:`~ai_trading.features.FeatureSpec` name
    :param feature_spec_version: its version
    :param feature_schema_hash: ``FeatureSet.feature_schema_hash`` of the training features
    :param dataset_fingerprint: ``FeatureSet.dataset_fingerprint`` of the training data
    :param training_config: the configuration the model was trained with (plain JSON)
    :param metrics: named finite numbers measured at training/evaluation completion
    """

    name: str
    version: int
    kind: str
    algorithm: str
    feature_spec_name: str
    feature_spec_version: int
    feature_schema_hash: str
    dataset_fingerprint: str
    training_config: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise _fail(f"name must match {_NAME.pattern}, got {self.name!r}")
        for key in ("version", "feature_spec_version"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _fail(f"{key} must be an integer >= 1, got {value!r}")
        if self.kind not in ARTIFACT_KINDS:
            raise _fail(f"kind must be one of {ARTIFACT_KINDS}, got {self.kind!r}")
        for key in ("algorithm", "feature_spec_name"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise _fail(f"{key} must be a non-empty string")
        for key in ("feature_schema_hash", "dataset_fingerprint"):
            if not isinstance(getattr(self, key), str) or not _SHA256.match(getattr(self, key)):
                raise _fail(f"{key} must be 64 lowercase hex digits, got {getattr(self, key)!r}")
        if not isinstance(self.training_config, Mapping):
            raise _fail("training_config must be an object")
        _check_json("training_config", dict(self.training_config))
        if not isinstance(self.metrics, Mapping):
            raise _fail("metrics must be an object")
        for key, value in self.metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _fail(f"metric {key!r} must be a finite number, got {value!r}")


@dataclass(frozen=True)
class FileEntry:
    """One file of the artifact. :param path: POSIX path relative to the directory"""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """A complete manifest: the producer's fields, creation time, signer and file list."""

    fields: ManifestFields
    created_at: str
    signer_key_id: str
    files: tuple[FileEntry, ...]

    def to_document(self) -> dict[str, Any]:
        return {
            "schema": MANIFEST_SCHEMA,
            **{key: getattr(self.fields, key) for key in _FIELD_NAMES},
            "training_config": dict(self.fields.training_config),
            "metrics": dict(self.fields.metrics),
            "created_at": self.created_at,
            "signer_key_id": self.signer_key_id,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files],
        }

    def to_bytes(self) -> bytes:
        """The bytes that get signed and written; readers never re-serialise them."""
        return (json.dumps(self.to_document(), indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse strictly: exact key set, no duplicate keys, types checked."""
        try:
            document = json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _fail(f"{MANIFEST_FILE} is not valid JSON ({exc})") from exc
        if not isinstance(document, dict):
            raise _fail("top level must be an object")
        expected = {"schema", "created_at", "signer_key_id", "files", "training_config", "metrics", *_FIELD_NAMES}
        if set(document) != expected:
            raise _fail(f"keys differ from the schema: missing {sorted(expected - set(document))}, "
                        f"unknown {sorted(set(document) - expected)}")
        if document["schema"] != MANIFEST_SCHEMA:
            raise _fail(f"schema is {document['schema']!r}, this version reads {MANIFEST_SCHEMA!r}")
        fields = ManifestFields(**{key: document[key] for key in (*_FIELD_NAMES, "training_config", "metrics")})
        files = document["files"]
        if not isinstance(files, list) or not all(isinstance(f, dict) and set(f) == {"path", "sha256", "size"} for f in files):
            raise _fail("files must be a list of {path, sha256, size}")
        entries = tuple(FileEntry(str(f["path"]), str(f["sha256"]), f["size"]) for f in files)
        if not all(isinstance(e.size, int) and _SHA256.match(e.sha256) for e in entries):
            raise _fail("every file needs a 64-hex sha256 and an integer size")
        if len({e.path for e in entries}) != len(entries):
            raise _fail("a file is listed twice")
        for key in ("created_at", "signer_key_id"):
            if not isinstance(document[key], str):
                raise _fail(f"{key} must be a string")
        return cls(fields, document["created_at"], document["signer_key_id"], entries)


_FIELD_NAMES = (
    "name",
    "version",
    "kind",
    "algorithm",
    "feature_spec_name",
    "feature_spec_version",
    "feature_schema_hash",
    "dataset_fingerprint",
)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate keys {sorted({k for k in keys if keys.count(k) > 1})}")
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def read_tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` except the manifest and its signature, read once.

    Refuses symlinks and special files anywhere; files are opened with ``O_NOFOLLOW`` so
    a file swapped for a symlink after the scan is refused too.
    """
    contents: dict[str, bytes] = {}

    def walk(folder: Path, prefix: str) -> None:
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                relative = f"{prefix}{entry.name}"
                if entry.is_symlink():
                    raise ProvenanceError(f"{relative} is a symlink: an artifact directory may not contain symlinks")
                if entry.is_dir(follow_symlinks=False):
                    walk(Path(entry.path), f"{relative}/")
                elif not entry.is_file(follow_symlinks=False):
                    raise ProvenanceError(f"{relative} is not a regular file")
                elif relative not in (MANIFEST_FILE, SIGNATURE_FILE):
                    contents[relative] = read_regular_file(Path(entry.path), relative)

    walk(directory, "")
    return contents


def read_regular_file(path: Path, shown: str) -> bytes:
    """Read a regular file without following a symlink at its last component."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError as exc:
        raise ProvenanceError(f"{shown} is missing") from exc
    except OSError as exc:  # ELOOP: the path is a symlink
        raise ProvenanceError(f"{shown} cannot be opened as a regular file ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ProvenanceError(f"{shown} is not a regular file")
        return handle.read()


def file_entries(contents: Mapping[str, bytes]) -> tuple[FileEntry, ...]:
    return tuple(
        FileEntry(path, hashlib.sha256(data).hexdigest(), len(data)) for path, data in sorted(contents.items())
    )


def compare_files(listed: tuple[FileEntry, ...], present: tuple[FileEntry, ...]) -> None:
    """Raise :class:`ProvenanceError` naming every missing, extra or changed file."""
    want = {e.path: e for e in listed}
    have = {e.path: e for e in present}
    problems = [f"{p} is listed but missing" for p in sorted(want.keys() - have.keys())]
    problems += [f"{p} is present but not signed" for p in sorted(have.keys() - want.keys())]
    for path in sorted(want.keys() & have.keys()):
        if want[path].size != have[path].size:
            problems.append(f"{path} has {have[path].size} bytes, manifest says {want[path].size}")
        elif want[path].sha256 != have[path].sha256:
            problems.append(f"{path} has sha256 {have[path].sha256}, manifest says {want[path].sha256}")
    if problems:
        raise ProvenanceError("artifact files do not match the signed manifest: " + "; ".join(problems))
