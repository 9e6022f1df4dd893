"""Numba's on-disk cache for our kernels, stamped with every kernel source file.

Numba stamps a cached function with its own file only. Our kernels inline helpers from
sibling modules (``rng``, ``costs``, ``vecmath``, ``layout``, ...), so an edit, a
``git pull`` into an editable install or an upgrade that changes only a helper would keep
serving machine code compiled from the old helper, silently. Kernels here get Numba's
usual cache location and stamp, joined with a digest of all of ``kernels/*.py``: a change
to any of them recompiles every kernel once.

This plugs into ``numba.core.caching``'s list of cache locators, which is not a public
API; the tests check that kernels do get this locator.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from numba.core.caching import CacheImpl, _CacheLocator

KERNELS_DIR = Path(__file__).resolve().parent


def kernel_sources_digest() -> str:
    """SHA-256 over the names and contents of the kernel modules, in name order."""
    digest = hashlib.sha256()
    for path in sorted(KERNELS_DIR.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class KernelSourcesLocator(_CacheLocator):
    """The locator Numba would pick for a kernel, with the kernel sources' digest added
    to its stamp. Functions outside ``kernels/`` are left to Numba's own locators."""

    digest = kernel_sources_digest()

    def __init__(self, inner: _CacheLocator) -> None:
        self._inner = inner

    def get_cache_path(self) -> str:
        return self._inner.get_cache_path()

    def get_source_stamp(self) -> Any:
        return (self._inner.get_source_stamp(), self.digest)

    def get_disambiguator(self) -> str:
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> KernelSourcesLocator | None:
        if Path(py_file).resolve().parent != KERNELS_DIR:
            return None
        for locator_class in CacheImpl._locator_classes:
            if locator_class is cls:
                continue
            inner = locator_class.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner)
        return None


def install() -> None:
    """Put :class:`KernelSourcesLocator` first, once; kernels decorated afterwards use it."""
    if KernelSourcesLocator not in CacheImpl._locator_classes:
        CacheImpl._locator_classes.insert(0, KernelSourcesLocator)
