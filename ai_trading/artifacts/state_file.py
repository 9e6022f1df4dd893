"""Small JSON state files that several processes read, modify and write.

Every read-modify-write holds an exclusive ``flock`` on a sibling ``<name>.lock`` file, and
every write replaces the file atomically (fsynced temporary file + rename), so concurrent
writers in several processes never lose an update and a crash never leaves a torn file.
The rollback state (:mod:`~ai_trading.artifacts.trust_state`) and the model registry
(:mod:`~ai_trading.artifacts.registry`) both keep their state this way; each parses and
validates its own document and fails closed on one it cannot read.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ai_trading.artifacts.atomic import fsync_dir, write_atomic


class JsonStateFile:
    """One JSON document on disk, guarded by an exclusive lock.

    :param path: the JSON file; its directory is created on first use
    :param mode: permission bits of the state file and its lock file
    """

    def __init__(self, path: Path, mode: int = 0o600) -> None:
        self.path = Path(path)
        self.mode = mode

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock; read and write only inside it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, self.mode)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def read(self) -> Any | None:
        """The parsed document, or None when the file does not exist yet.

        :raises ValueError: the file is not valid UTF-8 JSON (the caller says what that means)
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return json.loads(data)

    def write(self, document: Any) -> None:
        """Replace the file with ``document`` (sorted keys, no NaN)."""
        text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"
        write_atomic(self.path, text.encode("utf-8"), self.mode)


def append_jsonl(path: Path, record: dict[str, Any], mode: int = 0o644) -> None:
    """Append ``record`` as one JSON line and fsync it: an append-only log that a crash
    can cut short at the end, never rewrite."""
    line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)
