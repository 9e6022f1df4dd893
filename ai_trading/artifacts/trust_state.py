"""Rollback protection: the last accepted version of each model, remembered on disk.

The state is one JSON file ``{name: {"version": int, "manifest_sha256": hex}}``. Every
check-and-update holds an exclusive ``flock`` on a sibling lock file and replaces the
state atomically (fsynced temporary file + rename), so concurrent loaders in several
processes never lose an update and a crash never leaves a torn file. An unreadable state
file fails closed.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ai_trading.artifacts.atomic import write_atomic
from ai_trading.errors import RollbackError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AcceptedVersion:
    """The newest manifest accepted for a model name."""

    version: int
    manifest_sha256: str


class TrustState:
    """Per-model high-water marks of accepted versions.

    :param path: the JSON state file; its directory is created on first use
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self) -> dict[str, AcceptedVersion]:
        try:
            document = json.loads(self.path.read_bytes())
            return {
                name: AcceptedVersion(int(entry["version"]), str(entry["manifest_sha256"]))
                for name, entry in document.items()
            }
        except FileNotFoundError:
            return {}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise RollbackError(
                f"trust state {self.path} is unreadable ({exc}); restore it from a backup: "
                "without it an older model version could be replayed"
            ) from exc

    def last_accepted(self, name: str) -> AcceptedVersion | None:
        with self._locked():
            return self._read().get(name)

    def accept(self, name: str, version: int, manifest_sha256: str) -> None:
        """Record ``version`` of ``name``, or raise :class:`RollbackError` if it goes backwards.

        The same version is accepted again only with the identical manifest: a version
        number, once accepted, names one build.
        """
        with self._locked():
            state = self._read()
            last = state.get(name)
            if last is not None and version < last.version:
                raise RollbackError(
                    f"model {name!r} version {version} is older than the last accepted version {last.version}: "
                    "refusing a rollback (sign the wanted model again with a higher version to roll back on purpose)"
                )
            if last is not None and version == last.version:
                if manifest_sha256 != last.manifest_sha256:
                    raise RollbackError(
                        f"model {name!r} version {version} was accepted before with manifest sha256 "
                        f"{last.manifest_sha256}, this one is {manifest_sha256}: a new build needs a new version"
                    )
                return
            state[name] = AcceptedVersion(version, manifest_sha256)
            document = {key: {"version": v.version, "manifest_sha256": v.manifest_sha256} for key, v in state.items()}
            write_atomic(self.path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8"), 0o600)
        logger.info("ARTIFACT_VERSION_ACCEPTED", extra={"artifact": name, "version": version})
