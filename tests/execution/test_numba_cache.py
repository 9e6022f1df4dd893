"""Cached kernels are recompiled when any kernel source changes, not only their own file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import kernels
from kernels.numba_cache import KernelSourcesLocator, kernel_sources_digest
from kernels.portfolio import symbol_order_keys

# symbol_order_keys lives in portfolio.py and inlines rng.order_key from rng.py.
RUN_KERNEL = """
import json, numpy as np
from kernels.portfolio import symbol_order_keys
keys = np.empty(3, dtype=np.uint64)
symbol_order_keys(np.uint64(7), keys)
stats = symbol_order_keys.stats
print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values()), "keys": [int(k) for k in keys]}))
"""


def run_kernel(root: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", RUN_KERNEL], cwd=root, env={"PYTHONPATH": str(root)}, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_kernels_are_cached_through_the_sources_locator() -> None:
    assert isinstance(symbol_order_keys._cache._impl.locator, KernelSourcesLocator)
    assert KernelSourcesLocator.digest == kernel_sources_digest()


def test_editing_an_inlined_helper_recompiles_the_kernels_that_use_it(tmp_path: Path) -> None:
    package = tmp_path / "kernels"
    shutil.copytree(Path(kernels.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    first = run_kernel(tmp_path)
    again = run_kernel(tmp_path)
    assert (first["misses"], again["hits"], again["misses"]) == (1, 1, 0)
    rng = package / "rng.py"
    # A changed helper: order keys computed with another stream constant.
    rng.write_text(rng.read_text().replace("uint64(seed) ^ uint64(stream)", "uint64(seed) ^ uint64(stream + 1)"))
    edited = run_kernel(tmp_path)
    assert (edited["hits"], edited["misses"]) == (0, 1)
    assert edited["keys"] != first["keys"]
