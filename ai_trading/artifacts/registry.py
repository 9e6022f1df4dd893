"""The model registry: the current and the previous model of each name, of every kind.

``promote`` admits a source (an RL training run, an ML artifact) only through the
:class:`~ai_trading.artifacts.admission.PromotionGate` its caller hands it: the gate
verifies every artifact of the source (trusted signature, every digest, no extra file,
the feature schema hash the caller expects) and judges the signed results; the registry
itself knows no model kind and imports no gate. The chosen
artifact is copied from the verified bytes into the registry's content-addressed store
``store/<name>/<manifest_sha256>/``, so later changes to the run directory cannot change
what is registered. ``rollback`` makes the previous model current again (a second
rollback undoes the first) and authorises exactly that manifest in the rollback state.
A model that was rolled back (demoted by a rollback, as the audit records) is never
promoted again unless the promotion is forced, so no automatic path can bring it back.
:meth:`ModelRegistry.load_current` is the one way to get a registered model: the stored
copy goes through :func:`~ai_trading.artifacts.loading.load_verified`, pinned to the
registered manifest digest.

On disk: ``registry.json`` (the state, replaced atomically under an exclusive lock held
for the whole of every operation), ``audit.jsonl`` (append-only, one line per promotion
or rollback, written before the state changes) and ``store/``. An unreadable state fails
closed, and nothing is written when a check fails.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ai_trading.artifacts.admission import Admission, PromotionGate
from ai_trading.artifacts.atomic import fsync_dir, write_atomic
from ai_trading.artifacts.loading import (
    Trust,
    VerifiedArtifact,
    load_verified,
    verify_artifact,
)
from ai_trading.artifacts.manifest import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    read_regular_file,
)
from ai_trading.artifacts.state_file import JsonStateFile, append_jsonl
from ai_trading.config import ArtifactsConfig
from ai_trading.errors import (
    PromotionRejected,
    ProvenanceError,
    RegistryError,
    SignatureError,
)

logger = logging.getLogger(__name__)

STATE_FILE = "registry.json"
AUDIT_FILE = "audit.jsonl"
STORE_DIR = "store"
STATE_SCHEMA = "ai-trading/registry/v1"
ACTIONS = ("promote", "rollback")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class RegistryEntry:
    """One registered model.

    :param name: the artifact's manifest name (``<model>.seed<seed>`` for a training run)
    :param version: its manifest version
    :param manifest_sha256: SHA-256 of its signed manifest: the pin every load checks
    :param feature_schema_hash: the feature schema it was trained on
    :param path: its stored copy, relative to the registry directory
    :param at: when it became current, ISO 8601 UTC
    :param action: how it became current, ``promote`` or ``rollback``
    :param source: the run directory it was promoted from
    """

    name: str
    version: int
    manifest_sha256: str
    feature_schema_hash: str
    path: str
    at: str
    action: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: Any) -> RegistryEntry:
        """Parse strictly; raise ValueError naming what is wrong."""
        keys = {f.name for f in fields(cls)}
        if not isinstance(document, dict) or set(document) != keys:
            raise ValueError(f"an entry needs exactly the keys {sorted(keys)}")
        entry = cls(**document)
        if type(entry.version) is not int or entry.version < 1:
            raise ValueError(f"version must be an integer >= 1, got {entry.version!r}")
        if not all(isinstance(getattr(entry, k), str) for k in keys - {"version"}):
            raise ValueError("every field but version must be a string")
        if not (_SHA256.match(entry.manifest_sha256) and _SHA256.match(entry.feature_schema_hash)):
            raise ValueError("manifest_sha256 and feature_schema_hash must be 64 lowercase hex digits")
        if entry.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {entry.action!r}")
        return entry


@dataclass(frozen=True)
class ModelSlots:
    """What the registry holds for one model name."""

    current: RegistryEntry
    previous: RegistryEntry | None

    def to_dict(self) -> dict[str, Any]:
        previous = None if self.previous is None else self.previous.to_dict()
        return {"current": self.current.to_dict(), "previous": previous}


@dataclass(frozen=True, eq=False)
class PromotionResult:
    """The outcome of :meth:`ModelRegistry.promote`.

    :param model: the registry name (an RL run's ``[rl_train] model_name``, an ML model's name)
    :param slots: current and previous after the promotion
    :param changed: False when the model was already current (nothing was written)
    :param dropped: the entry that fell out of the registry, if any
    :param admission: the promotion gate's verdict on the source
    """

    model: str
    slots: ModelSlots
    changed: bool
    dropped: RegistryEntry | None
    admission: Admission

    @property
    def choice(self) -> str:
        """Which artifact of the source was registered (``seed 2``)."""
        return self.admission.choice


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _store_path(model: str, manifest_sha256: str) -> str:
    return f"{STORE_DIR}/{model}/{manifest_sha256}"


def _parse_state(document: Any) -> dict[str, ModelSlots]:
    """The state document as slots per model; ValueError for anything unexpected."""
    if not isinstance(document, dict) or set(document) != {"schema", "models"}:
        raise ValueError("expected exactly the keys schema and models")
    if document["schema"] != STATE_SCHEMA:
        raise ValueError(f"schema is {document['schema']!r}, this version reads {STATE_SCHEMA!r}")
    if not isinstance(document["models"], dict):
        raise ValueError("models must be an object")
    state: dict[str, ModelSlots] = {}
    for model, slots in document["models"].items():
        if not model or "/" in model or model in (".", ".."):
            raise ValueError(f"model name {model!r} cannot name a store directory")
        if not isinstance(slots, dict) or set(slots) != {"current", "previous"}:
            raise ValueError(f"model {model!r} needs exactly current and previous")
        current = RegistryEntry.from_dict(slots["current"])
        previous = None if slots["previous"] is None else RegistryEntry.from_dict(slots["previous"])
        for entry in (current, previous):
            if entry is not None and entry.path != _store_path(model, entry.manifest_sha256):
                raise ValueError(f"model {model!r}: stored path {entry.path!r} is not its content address")
        state[model] = ModelSlots(current, previous)
    return state


class ModelRegistry:
    """Current and previous model per name, their stored copies and the audit log.

    :param directory: the registry directory (``[artifacts] registry_dir``); created on
        first use
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._state = JsonStateFile(self.directory / STATE_FILE, 0o644)

    @classmethod
    def from_config(cls, config: ArtifactsConfig) -> ModelRegistry:
        return cls(config.registry_dir)

    @property
    def audit_path(self) -> Path:
        return self.directory / AUDIT_FILE

    def _read(self) -> dict[str, ModelSlots]:
        try:
            document = self._state.read()
            return {} if document is None else _parse_state(document)
        except (OSError, ValueError, TypeError) as exc:
            raise RegistryError(
                f"registry state {self._state.path} is unreadable ({exc}): refusing to guess which model is "
                f"current; restore it from a backup (every change is listed in {self.audit_path})"
            ) from exc

    def _write(self, state: dict[str, ModelSlots]) -> None:
        self._state.write({"schema": STATE_SCHEMA, "models": {m: s.to_dict() for m, s in sorted(state.items())}})

    @staticmethod
    def _slots(state: dict[str, ModelSlots], model: str) -> ModelSlots:
        if model not in state:
            raise RegistryError(
                f"no model {model!r} in the registry (registered: {sorted(state) or 'none'}); promote a run first"
            )
        return state[model]

    def show(self) -> dict[str, ModelSlots]:
        """Every registered model's current and previous entry."""
        with self._state.locked():
            return self._read()

    def slots(self, model: str) -> ModelSlots:
        with self._state.locked():
            return self._slots(self._read(), model)

    def load_current(self, model: str, trust: Trust, expected_feature_schema_hash: str) -> VerifiedArtifact:
        """The current model of ``model``, loaded from its stored copy through
        :func:`load_verified` and pinned to the registered manifest digest.

        :raises RegistryError: unknown model or unreadable state
        :raises SignatureError, ProvenanceError, FeatureSchemaMismatch, RollbackError: as
            :func:`load_verified`; a stored copy changed in any way is refused
        """
        with self._state.locked():
            entry = self._slots(self._read(), model).current
            artifact = load_verified(
                self.directory / entry.path, trust, expected_feature_schema_hash,
                expected_name=entry.name, expected_manifest_sha256=entry.manifest_sha256,
            )  # fmt: skip
        logger.info("REGISTRY_MODEL_LOADED", extra={"model": model, "artifact": entry.name, "version": entry.version})
        return artifact

    def rolled_back(self, model: str) -> frozenset[str]:
        """Manifest digests of every model a rollback of ``model`` demoted, from the audit log.

        :raises RegistryError: the audit log is damaged before its last line (a last line
            cut short by a crash is ignored: its change was never made)
        """
        try:
            lines = self.audit_path.read_bytes().split(b"\n") if self.audit_path.exists() else []
        except OSError as exc:
            raise RegistryError(f"registry audit {self.audit_path} is unreadable: {exc.strerror}") from exc
        demoted: set[str] = set()
        for number, line in enumerate(lines[:-1], start=1):  # the part after the last newline is unfinished
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise RegistryError(f"registry audit {self.audit_path} line {number} is damaged ({exc}): restore it from a backup") from exc
            if record.get("action") == "rollback" and record.get("model") == model and record.get("previous"):
                demoted.add(str(record["previous"]["manifest_sha256"]))
        return frozenset(demoted)

    def promote(
        self, source: Path, trust: Trust, expected_feature_schema_hash: str, gate: PromotionGate, *, force: bool = False
    ) -> PromotionResult:
        """Register the artifact ``gate`` chooses from ``source`` as the current model of its name.

        The gate verifies and judges the source; only a passing source is registered. The
        old current becomes the previous, the older previous is dropped with its stored
        copy. Every member artifact's version is recorded in the rollback state, so no
        older build of any of them loads anymore.

        :raises PromotionRejected: the gate rejected the source (its reasons attached)
        :raises SignatureError, ProvenanceError, FeatureSchemaMismatch: verification failed,
            or the source is incomplete, mixed or of another kind than the gate's
        :raises RollbackError: the source is older than versions already accepted (use
            :meth:`rollback` to go back)
        :raises PromotionRejected: the chosen artifact was rolled back before (code
            ``ROLLED_BACK``) and ``force`` is not set
        """
        source = Path(source)
        with self._state.locked():
            state = self._read()
            admission = gate.admit(source, trust, expected_feature_schema_hash)
            if not admission.passed:
                codes = [r.code for r in admission.rejections]
                logger.warning("REGISTRY_PROMOTION_REJECTED", extra={"model": admission.model, "rejections": codes})
                reasons = "; ".join(f"{r.code} ({r.metric} = {r.value:.4g}, threshold {r.threshold:.4g})" for r in admission.rejections)
                raise PromotionRejected(
                    f"{source} ({admission.kind} model {admission.model!r}) fails the promotion gate: {reasons}; "
                    "nothing was registered",
                    [asdict(r) for r in admission.rejections],
                )
            artifact = admission.chosen
            old = state.get(admission.model)
            if old is not None and old.current.manifest_sha256 == artifact.manifest_sha256:
                logger.info("REGISTRY_ALREADY_CURRENT", extra={"model": admission.model, "artifact": old.current.name})
                return PromotionResult(admission.model, old, False, None, admission)
            was_rolled_back = artifact.manifest_sha256 in self.rolled_back(admission.model)
            if was_rolled_back and not force:
                logger.warning("REGISTRY_PROMOTION_REFUSED_ROLLED_BACK", extra={"model": admission.model, "artifact": artifact.manifest.fields.name})
                raise PromotionRejected(
                    f"{source}: {artifact.manifest.fields.name} v{artifact.manifest.fields.version} (manifest "
                    f"{artifact.manifest_sha256[:12]}) was rolled back from {admission.model!r} (see {self.audit_path}); "
                    "it is never promoted again automatically: pass --force to promote it deliberately",
                    [{"code": "ROLLED_BACK", "metric": "manifest_sha256", "value": artifact.manifest_sha256, "threshold": ""}],
                )
            for each in admission.members:
                trust.state.check(each.manifest.fields.name, each.manifest.fields.version, each.manifest_sha256)
            return self._commit_promotion(state, admission, trust, source, was_rolled_back)

    def _commit_promotion(
        self, state: dict[str, ModelSlots], admission: Admission, trust: Trust, source: Path, forced: bool
    ) -> PromotionResult:
        """Every check passed: store the copy, record the versions, audit, switch."""
        model, old, artifact = admission.model, state.get(admission.model), admission.chosen
        signed = artifact.manifest.fields
        entry = RegistryEntry(
            signed.name, signed.version, artifact.manifest_sha256, signed.feature_schema_hash,
            _store_path(model, artifact.manifest_sha256), _now(), "promote", str(source.resolve()),
        )  # fmt: skip
        slots = ModelSlots(entry, None if old is None else old.current)
        dropped = None if old is None else old.previous
        created = self._store(artifact, entry, trust)
        committed = False
        try:
            for each in admission.members:
                trust.state.accept(each.manifest.fields.name, each.manifest.fields.version, each.manifest_sha256)
            append_jsonl(self.audit_path, {
                "at": entry.at, "action": "promote", "model": model, "kind": admission.kind, "current": entry.to_dict(),
                "previous": None if slots.previous is None else slots.previous.to_dict(),
                "dropped": None if dropped is None else dropped.to_dict(), "source": entry.source,
                "choice": admission.choice, "forced_over_rollback": forced,
                "gate": {k: float(v) for k, v in admission.metrics.items() if math.isfinite(v)},
            })  # fmt: skip
            state[model] = slots
            self._write(state)
            committed = True
        finally:
            if created and not committed:
                shutil.rmtree(self.directory / entry.path)
        logger.info("REGISTRY_PROMOTED", extra={"model": model, "artifact": entry.name, "version": entry.version})
        kept = {e.manifest_sha256 for e in (slots.current, slots.previous) if e is not None}
        if dropped is not None and dropped.manifest_sha256 not in kept:
            self._delete_copy(dropped)
        return PromotionResult(model, slots, True, dropped, admission)

    def _store(self, artifact: VerifiedArtifact, entry: RegistryEntry, trust: Trust) -> bool:
        """Put the verified bytes at the entry's content address; True if newly created.

        The copy is written from the bytes verification hashed (plus the signed manifest
        and its envelope), verified again against the pin, then renamed into place.
        """
        target = self.directory / entry.path
        if target.exists():
            try:
                verify_artifact(target, trust, entry.feature_schema_hash, None, entry.name, entry.manifest_sha256)
            except (SignatureError, ProvenanceError) as exc:
                raise RegistryError(f"stored copy {target} is damaged ({exc}); delete it and promote again") from exc
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        incoming = Path(tempfile.mkdtemp(prefix=".incoming-", dir=target.parent))
        try:
            signed = {name: read_regular_file(artifact.path / name, name) for name in (MANIFEST_FILE, SIGNATURE_FILE)}
            for relative, data in {**artifact.files, **signed}.items():
                (incoming / relative).parent.mkdir(parents=True, exist_ok=True)
                write_atomic(incoming / relative, data, 0o444)
            verify_artifact(incoming, trust, entry.feature_schema_hash, None, entry.name, entry.manifest_sha256)
            os.rename(incoming, target)
            fsync_dir(target.parent)
        finally:
            if incoming.exists():
                shutil.rmtree(incoming)
        return True

    def _delete_copy(self, entry: RegistryEntry) -> None:
        """Best effort: a copy left behind takes space, never changes what is registered."""
        try:
            shutil.rmtree(self.directory / entry.path)
        except OSError as exc:
            logger.warning("REGISTRY_STORE_CLEANUP_FAILED", extra={"path": entry.path, "error": str(exc)})

    def rollback(
        self,
        model: str,
        trust: Trust,
        expected_feature_schema_hash: str,
        *,
        reason: str = "operator rollback",
        by: str = "operator",
        restore_rolled_back: bool = True,
    ) -> ModelSlots:
        """Make the previous model of ``model`` current again (the current becomes the
        previous, so a second rollback undoes the first) and authorise exactly its
        manifest in the rollback state. The audit records who (``by``) and why; the
        demoted model is refused by :meth:`promote` from then on unless forced; an
        automatic rollback passes ``restore_rolled_back=False``, so it never brings back a
        model a rollback demoted (an operator's second rollback may).

        :raises RegistryError: unknown model, no previous model, unreadable state, or
            (``restore_rolled_back=False``) a previous model that was rolled back
        :raises SignatureError, ProvenanceError, FeatureSchemaMismatch: the stored copy
            of the previous model fails verification (nothing is changed)
        """
        with self._state.locked():
            state = self._read()
            old = self._slots(state, model)
            if old.previous is None:
                raise RegistryError(
                    f"model {model!r} has no previous model to roll back to (current: {old.current.name} "
                    f"v{old.current.version}, promoted {old.current.at})"
                )
            target = old.previous
            if not restore_rolled_back and target.manifest_sha256 in self.rolled_back(model):
                raise RegistryError(
                    f"model {model!r}: the previous model {target.name} v{target.version} was rolled back before; "
                    "it is not restored automatically (an operator may: `ai-trading registry rollback`)"
                )
            verify_artifact(
                self.directory / target.path, trust, expected_feature_schema_hash, None, target.name,
                target.manifest_sha256,
            )  # fmt: skip
            restored = replace(target, at=_now(), action="rollback")
            slots = ModelSlots(restored, old.current)
            mark = trust.state.last_accepted(target.name)
            append_jsonl(self.audit_path, {
                "at": restored.at, "action": "rollback", "model": model, "current": restored.to_dict(),
                "previous": old.current.to_dict(), "dropped": None, "reason": reason, "by": by,
                "trust_pin": {"artifact": target.name, "version": target.version,
                              "manifest_sha256": target.manifest_sha256,
                              "replaced_version": None if mark is None else mark.version},
            })  # fmt: skip
            trust.state.authorize_rollback(target.name, target.version, target.manifest_sha256)
            state[model] = slots
            self._write(state)
        logger.warning("REGISTRY_ROLLED_BACK", extra={"model": model, "artifact": target.name, "version": target.version})
        return slots
