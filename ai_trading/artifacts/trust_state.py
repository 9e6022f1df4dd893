"""Rollback protection: the last accepted version of each model, remembered on disk.

The state is one JSON file ``{name: {"version": int, "manifest_sha256": hex}}``, kept as a
:class:`~ai_trading.artifacts.state_file.JsonStateFile`: every check-and-update holds an
exclusive ``flock`` and replaces the file atomically, so concurrent loaders in several
processes never lose an update and a crash never leaves a torn file. An unreadable state
file fails closed.

The one way back to an older version is :meth:`TrustState.authorize_rollback`, which the
model registry's rollback calls for the exact manifest it restores; it is logged, and the
registry writes it to its audit log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ai_trading.artifacts.state_file import JsonStateFile
from ai_trading.errors import RollbackError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AcceptedVersion:
    """The newest manifest accepted for a model name."""

    version: int
    manifest_sha256: str


def _refuse_backwards(name: str, last: AcceptedVersion | None, version: int, manifest_sha256: str) -> None:
    """Raise :class:`RollbackError` if accepting (version, manifest) after ``last`` goes backwards.

    The same version is accepted again only with the identical manifest: a version
    number, once accepted, names one build.
    """
    if last is None:
        return
    if version < last.version:
        raise RollbackError(
            f"model {name!r} version {version} is older than the last accepted version {last.version}: "
            "refusing a rollback (use `ai-trading registry rollback` for a registered model, or sign the "
            "wanted model again with a higher version)"
        )
    if version == last.version and manifest_sha256 != last.manifest_sha256:
        raise RollbackError(
            f"model {name!r} version {version} was accepted before with manifest sha256 "
            f"{last.manifest_sha256}, this one is {manifest_sha256}: a new build needs a new version"
        )


class TrustState:
    """Per-model high-water marks of accepted versions.

    :param path: the JSON state file; its directory is created on first use
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = JsonStateFile(self.path, 0o600)

    def _read(self) -> dict[str, AcceptedVersion]:
        try:
            document = self._file.read()
            if document is None:
                return {}
            return {
                name: AcceptedVersion(int(entry["version"]), str(entry["manifest_sha256"]))
                for name, entry in document.items()
            }
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise RollbackError(
                f"trust state {self.path} is unreadable ({exc}); restore it from a backup: "
                "without it an older model version could be replayed"
            ) from exc

    def _write(self, state: dict[str, AcceptedVersion]) -> None:
        self._file.write({key: {"version": v.version, "manifest_sha256": v.manifest_sha256} for key, v in state.items()})

    def last_accepted(self, name: str) -> AcceptedVersion | None:
        with self._file.locked():
            return self._read().get(name)

    def check(self, name: str, version: int, manifest_sha256: str) -> None:
        """Raise :class:`RollbackError` exactly when :meth:`accept` would, recording nothing:
        for callers that must decide before they commit to anything."""
        with self._file.locked():
            _refuse_backwards(name, self._read().get(name), version, manifest_sha256)

    def accept(self, name: str, version: int, manifest_sha256: str) -> None:
        """Record ``version`` of ``name``, or raise :class:`RollbackError` if it goes backwards.

        The same version is accepted again only with the identical manifest: a version
        number, once accepted, names one build.
        """
        with self._file.locked():
            state = self._read()
            last = state.get(name)
            _refuse_backwards(name, last, version, manifest_sha256)
            if last is not None and version == last.version:
                return
            state[name] = AcceptedVersion(version, manifest_sha256)
            self._write(state)
        logger.info("ARTIFACT_VERSION_ACCEPTED", extra={"artifact": name, "version": version})

    def authorize_rollback(self, name: str, version: int, manifest_sha256: str) -> AcceptedVersion | None:
        """Pin the mark of ``name`` to exactly this manifest, even below the last accepted version.

        Only the model registry's rollback calls this, for a stored copy it has just
        verified against its pinned manifest digest; afterwards that manifest (and nothing
        older, nor another build of the same version) loads. Returns the mark it replaced.
        """
        with self._file.locked():
            state = self._read()
            replaced = state.get(name)
            state[name] = AcceptedVersion(version, manifest_sha256)
            self._write(state)
        logger.warning(
            "ARTIFACT_ROLLBACK_AUTHORIZED",
            extra={
                "artifact": name,
                "version": version,
                "manifest_sha256": manifest_sha256,
                "replaced_version": None if replaced is None else replaced.version,
            },
        )
        return replaced
