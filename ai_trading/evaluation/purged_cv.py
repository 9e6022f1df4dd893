"""Leak-free splits of time-ordered samples whose labels span an interval.

A label such as "the return from bar t to bar t + h" depends on data up to t + h, so a
training sample whose label interval overlaps a test label shares information with the
test set. Every splitter here therefore follows López de Prado (Advances in Financial
Machine Learning, 2018, ch. 7 and 12):

* **purge**: a training sample is dropped when its closed label interval
  ``[start, end]`` overlaps the span ``[first test start, last test end]`` of any
  contiguous test block (each block on its own, so the training data between two test
  blocks survives). This step is always on. The ``purge`` parameter widens the purged
  region by that many samples on each side: before a block, from the first sample whose
  label overlaps it; after it, past the last one. For labels of ``h`` bars (``from_horizon``)
  ``h + purge`` samples go on each side, as if every label reached ``purge`` samples
  further than recorded. That is the margin López de Prado's purging needs when the
  recorded interval understates what a label depends on (a decision at bar t executed in
  bar t + 1 earns up to t + h + 1; serially correlated labels leak past their end); a
  margin counted from the block instead (``max(h, purge)``, skfolio's ``purged_size``)
  would change nothing until it exceeded ``h``.
* **embargo**: after each test block, the ``h`` samples that follow the first
  non-overlapping sample are dropped too, because their features look back into the test
  period. ``embargo`` is an ``int`` count of samples or a ``float`` fraction of the number
  of samples in ``[0, 1)``, rounded up (``h = ceil(embargo * n_samples)``).

Samples must be sorted by label start. All splitters yield ``(train_indices,
test_indices)`` as sorted int64 arrays.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ai_trading.errors import EvaluationError
from ai_trading.types import BoolArray, IntArray

Block = tuple[int, int]
"""A contiguous run of sample indices ``[lo, hi)``."""


@dataclass(frozen=True, eq=False)
class LabelIntervals:
    """The closed interval ``[start, end]`` of data each sample's label depends on.

    :param start: label start per sample (bar index, int64 ns timestamp, datetime64 or
        float), non-decreasing: samples are in time order
    :param end: label end per sample, same units, ``end >= start``
    """

    start: NDArray[Any]
    end: NDArray[Any]

    def __post_init__(self) -> None:
        start = _as_time_array("start", self.start)
        end = _as_time_array("end", self.end)
        if start.shape != end.shape:
            raise EvaluationError(f"label start has {start.size} samples but end has {end.size}: pass one interval per sample")
        if start.size > 1 and bool(np.any(np.diff(start) < 0)):
            row = int(np.flatnonzero(np.diff(start) < 0)[0]) + 1
            raise EvaluationError(f"label start must be non-decreasing (sample {row} starts before sample {row - 1}): sort samples by time")
        if bool(np.any(end < start)):
            row = int(np.flatnonzero(end < start)[0])
            raise EvaluationError(f"label end precedes its start at sample {row}: end must be >= start")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    def __len__(self) -> int:
        return int(self.start.size)

    @classmethod
    def from_horizon(cls, n_samples: int, horizon: int) -> Self:
        """Sample ``i`` labels the data of samples ``i .. i + horizon`` (e.g. forward returns)."""
        _check_int("n_samples", n_samples, 0)
        _check_int("horizon", horizon, 0)
        start = np.arange(n_samples, dtype=np.int64)
        return cls(start=start, end=start + horizon)


def _as_time_array(name: str, values: ArrayLike) -> NDArray[Any]:
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.datetime64):
        array = array.astype("datetime64[ns]").view(np.int64)
    if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise EvaluationError(f"label {name} must be a 1-D array of numbers or datetime64, got {array.dtype} with shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating) and not bool(np.all(np.isfinite(array))):
        raise EvaluationError(f"label {name} holds NaN or inf at sample {int(np.flatnonzero(~np.isfinite(array))[0])}")
    return np.ascontiguousarray(array)


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise EvaluationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def embargo_count(embargo: int | float, n_samples: int) -> int:
    """Samples embargoed after each test block: an int count, or ``ceil(fraction * n_samples)``."""
    if isinstance(embargo, (int, np.integer)) and not isinstance(embargo, bool):
        return _check_int("embargo", embargo, 0)
    if isinstance(embargo, (float, np.floating)) and 0.0 <= embargo < 1.0:
        return math.ceil(float(embargo) * n_samples)
    raise EvaluationError(f"embargo must be an int count >= 0 or a float fraction in [0, 1), got {embargo!r}")


def purged_train_mask(intervals: LabelIntervals, test_blocks: Sequence[Block], purge: int = 0, embargo: int = 0) -> BoolArray:
    """True for samples that may train a model tested on ``test_blocks`` (see module docstring).

    :param test_blocks: contiguous test runs ``[lo, hi)``; each is purged on its own
    :param purge: samples purged beyond the label overlap on both sides of each block
    :param embargo: samples dropped after each block, counted from the first sample that
        is neither overlapping nor within the purge margin
    """
    start, end = intervals.start, intervals.end
    n = len(intervals)
    keep = np.ones(n, dtype=np.bool_)
    for lo, hi in test_blocks:
        span_lo, span_hi = start[lo], end[lo:hi].max()
        overlaps = (start <= span_hi) & (end >= span_lo)
        keep &= ~overlaps
        first_overlap = int(np.argmax(overlaps))  # <= lo: sample lo overlaps its own span
        keep[max(first_overlap - purge, 0) : hi] = False
        first_clean = int(np.searchsorted(start, span_hi, side="right")) + purge
        keep[hi : first_clean + embargo] = False
    return keep


def fold_blocks(n_samples: int, n_folds: int) -> list[Block]:
    """Split ``range(n_samples)`` into ``n_folds`` contiguous blocks whose sizes differ by at most one."""
    if n_samples < n_folds:
        raise EvaluationError(f"{n_samples} samples cannot fill {n_folds} folds: use fewer folds or more data")
    sizes = np.full(n_folds, n_samples // n_folds)
    sizes[: n_samples % n_folds] += 1
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    return [(int(bounds[i]), int(bounds[i + 1])) for i in range(n_folds)]


def _merge_adjacent(blocks: Sequence[Block]) -> list[Block]:
    merged: list[Block] = []
    for lo, hi in sorted(blocks):
        if merged and merged[-1][1] == lo:
            merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _indices(blocks: Sequence[Block]) -> IntArray:
    return np.concatenate([np.arange(lo, hi, dtype=np.int64) for lo, hi in blocks])


def _train_indices(intervals: LabelIntervals, blocks: Sequence[Block], purge: int, embargo: int, split: int) -> IntArray:
    train = np.flatnonzero(purged_train_mask(intervals, _merge_adjacent(blocks), purge, embargo)).astype(np.int64)
    if train.size == 0:
        raise EvaluationError(
            f"split {split} has no training samples left after purging and embargo: "
            "use shorter labels, a smaller purge or embargo, or more data"
        )
    return train


class PurgedKFold:
    """K contiguous test folds; the training set is every other sample, purged and embargoed.

    :param n_splits: number of folds K (>= 2); fold sizes differ by at most one sample
    :param embargo: samples dropped after each test fold: int count or float fraction
        of the samples in ``[0, 1)``
    :param purge: samples purged beyond the label overlap on both sides of each test fold
    """

    def __init__(self, n_splits: int, embargo: int | float = 0, purge: int = 0) -> None:
        self.n_splits = _check_int("n_splits", n_splits, 2)
        embargo_count(embargo, 0)
        self.embargo = embargo
        self.purge = _check_int("purge", purge, 0)

    def get_n_splits(self) -> int:
        return self.n_splits

    def test_blocks(self, n_samples: int) -> list[Block]:
        """The test fold ``[lo, hi)`` of each split, in order."""
        return fold_blocks(n_samples, self.n_splits)

    def split(self, intervals: LabelIntervals) -> Iterator[tuple[IntArray, IntArray]]:
        n = len(intervals)
        embargo = embargo_count(self.embargo, n)
        for k, block in enumerate(self.test_blocks(n)):
            yield _train_indices(intervals, [block], self.purge, embargo, k), _indices([block])


class CombinatorialPurgedCV:
    """Combinatorial purged cross-validation (López de Prado 2018, ch. 12).

    The samples form ``N = n_folds`` contiguous groups; each split tests ``k = n_test_folds``
    of them and trains on the rest, purged and embargoed around every contiguous test
    block. There are ``C(N, k)`` splits; every group is tested in ``C(N-1, k-1)`` of them,
    which gives ``phi = (k / N) * C(N, k) = C(N-1, k-1)`` backtest paths: path ``j`` takes
    group ``g`` from the ``j``-th split (in split order) that tests ``g``, so each path
    covers every sample exactly once with an out-of-sample prediction.

    :param n_folds: number of groups N (>= 2)
    :param n_test_folds: groups tested per split k, ``1 <= k < N``
    :param purge: samples purged beyond the label overlap on both sides of each test block
    :param embargo: samples dropped after each test block: int count or float fraction
    """

    def __init__(self, n_folds: int, n_test_folds: int, purge: int = 0, embargo: int | float = 0) -> None:
        self.n_folds = _check_int("n_folds", n_folds, 2)
        self.n_test_folds = _check_int("n_test_folds", n_test_folds, 1)
        if self.n_test_folds >= self.n_folds:
            raise EvaluationError(f"n_test_folds must be below n_folds ({n_folds}), got {n_test_folds}: some groups must train")
        self.purge = _check_int("purge", purge, 0)
        embargo_count(embargo, 0)
        self.embargo = embargo
        self.test_folds: tuple[tuple[int, ...], ...] = tuple(combinations(range(self.n_folds), self.n_test_folds))
        """Groups tested by each split, in split order."""

    @property
    def n_splits(self) -> int:
        """``C(N, k)``."""
        return math.comb(self.n_folds, self.n_test_folds)

    @property
    def n_paths(self) -> int:
        """``phi = (k / N) * C(N, k) = C(N-1, k-1)``."""
        return math.comb(self.n_folds - 1, self.n_test_folds - 1)

    def get_n_splits(self) -> int:
        return self.n_splits

    def groups(self, n_samples: int) -> list[Block]:
        """The ``[lo, hi)`` sample range of each group."""
        return fold_blocks(n_samples, self.n_folds)

    def test_group_indices(self, n_samples: int) -> list[list[IntArray]]:
        """Per split, the test indices of each tested group (in ``test_folds`` order)."""
        groups = self.groups(n_samples)
        return [[_indices([groups[g]]) for g in folds] for folds in self.test_folds]

    def split(self, intervals: LabelIntervals) -> Iterator[tuple[IntArray, IntArray]]:
        n = len(intervals)
        groups = self.groups(n)
        embargo = embargo_count(self.embargo, n)
        for s, folds in enumerate(self.test_folds):
            blocks = [groups[g] for g in folds]
            yield _train_indices(intervals, blocks, self.purge, embargo, s), _indices(blocks)

    def path_splits(self) -> IntArray:
        """``[n_paths, n_folds]``: the split whose test output fills group ``g`` on path ``p``."""
        table = np.empty((self.n_paths, self.n_folds), dtype=np.int64)
        for g in range(self.n_folds):
            table[:, g] = [s for s, folds in enumerate(self.test_folds) if g in folds]
        return table

    def assemble_paths(self, split_outputs: Sequence[ArrayLike], n_samples: int) -> NDArray[np.float64]:
        """Stitch per-split out-of-sample outputs into the ``phi`` backtest paths.

        :param split_outputs: one array per split, in split order, whose first axis runs
            over that split's ``test_indices`` (predictions, returns, ...)
        :returns: ``[n_paths, n_samples, *trailing]`` float64
        """
        if len(split_outputs) != self.n_splits:
            raise EvaluationError(f"expected {self.n_splits} split outputs (one per split), got {len(split_outputs)}")
        groups = self.groups(n_samples)
        outputs = [np.asarray(out, dtype=np.float64) for out in split_outputs]
        trailing = outputs[0].shape[1:]
        for s, (folds, out) in enumerate(zip(self.test_folds, outputs, strict=True)):
            expected = (sum(groups[g][1] - groups[g][0] for g in folds), *trailing)
            if out.shape != expected:
                raise EvaluationError(f"split {s} output has shape {out.shape}, expected {expected} (one row per test sample)")
        paths = np.empty((self.n_paths, n_samples, *trailing), dtype=np.float64)
        for p, row in enumerate(self.path_splits()):
            for g, s in enumerate(row):
                offset = sum(groups[f][1] - groups[f][0] for f in self.test_folds[s] if f < g)
                lo, hi = groups[g]
                paths[p, lo:hi] = outputs[s][offset : offset + hi - lo]
        return paths


class WalkForward:
    """Walk-forward splits: test blocks move forward in time; training uses only the past.

    The last ``n_splits * test_size`` samples form ``n_splits`` consecutive test blocks.
    Expanding (``train_size=None``): each fold trains on every earlier sample that survives
    purging. Rolling: on the last ``train_size`` such samples. There is no embargo
    parameter: an embargo guards training samples that *follow* a test block, and walk-forward
    never trains on those; ``purge`` widens the gap before each test block.

    :param n_splits: number of folds (>= 1)
    :param test_size: samples per test block; None gives ``n_samples // (n_splits + 1)``
    :param train_size: rolling window length in samples; None for an expanding window
    :param purge: samples purged beyond the label overlap before each test block
    """

    def __init__(self, n_splits: int, test_size: int | None = None, train_size: int | None = None, purge: int = 0) -> None:
        self.n_splits = _check_int("n_splits", n_splits, 1)
        self.test_size = None if test_size is None else _check_int("test_size", test_size, 1)
        self.train_size = None if train_size is None else _check_int("train_size", train_size, 1)
        self.purge = _check_int("purge", purge, 0)

    def get_n_splits(self) -> int:
        return self.n_splits

    def test_blocks(self, n_samples: int) -> list[Block]:
        """The test block ``[lo, hi)`` of each fold, in time order."""
        test_size = self.test_size if self.test_size is not None else n_samples // (self.n_splits + 1)
        first = n_samples - self.n_splits * test_size
        if test_size < 1 or first < 1:
            raise EvaluationError(
                f"{n_samples} samples cannot hold {self.n_splits} test blocks of {test_size} samples "
                "plus a training window: use fewer splits, a smaller test_size or more data"
            )
        return [(first + k * test_size, first + (k + 1) * test_size) for k in range(self.n_splits)]

    def split(self, intervals: LabelIntervals) -> Iterator[tuple[IntArray, IntArray]]:
        for k, (lo, hi) in enumerate(self.test_blocks(len(intervals))):
            train = _train_indices(intervals, [(lo, hi)], self.purge, 0, k)
            train = train[train < lo]
            if self.train_size is not None:
                train = train[-self.train_size :]
            if train.size == 0:
                raise EvaluationError(f"fold {k} has no training samples before its test block: use fewer splits or shorter labels")
            yield train, _indices([(lo, hi)])
