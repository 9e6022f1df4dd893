"""The benchmark convention: every case reports its own throughput, a baseline's
throughput measured in the same run, and their ratio, in ``benchmark.extra_info``.

Machines here are noisy, so the ratio against a baseline timed seconds apart in the same
process is the number to compare across runs. Under ``--benchmark-disable`` (as in
``make test``) each case runs once at a reduced size, so the suite never rots and stays fast.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest


def _best_seconds(func: Callable[[], Any], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


@dataclass
class Throughput:
    """Runs a benchmark case and its baseline and records the three numbers."""

    benchmark: Any

    @property
    def full_size(self) -> bool:
        """False under ``--benchmark-disable``: cases then shrink their inputs."""
        return not self.benchmark.disabled

    def measure(
        self,
        func: Callable[[], Any],
        items: int,
        baseline: Callable[[], Any],
        baseline_items: int,
        rounds: int = 5,
        baseline_rounds: int = 3,
    ) -> Any:
        """Benchmark ``func`` over ``items`` items against ``baseline`` over ``baseline_items``.

        The baseline may process fewer items (a pure-Python loop over 10M rows would take
        minutes); throughputs are per item, so the ratio stays fair.
        """
        result = self.benchmark.pedantic(func, rounds=rounds if self.full_size else 1, warmup_rounds=1 if self.full_size else 0)
        stats = getattr(self.benchmark, "stats", None)
        own_seconds = stats.stats.min if stats is not None else _best_seconds(func, 1)
        baseline_seconds = _best_seconds(baseline, baseline_rounds if self.full_size else 1)
        items_per_s = items / own_seconds
        baseline_items_per_s = baseline_items / baseline_seconds
        self.benchmark.extra_info.update(
            items=items,
            items_per_s=items_per_s,
            baseline_items=baseline_items,
            baseline_items_per_s=baseline_items_per_s,
            speedup=items_per_s / baseline_items_per_s,
        )
        return result


@pytest.fixture
def throughput(benchmark: Any) -> Throughput:
    return Throughput(benchmark)
