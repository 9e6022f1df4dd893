"""Purged / embargoed splits checked against a slow pairwise reference and their invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.errors import EvaluationError
from ai_trading.evaluation.purged_cv import (
    CombinatorialPurgedCV,
    LabelIntervals,
    PurgedKFold,
    WalkForward,
    embargo_count,
    purged_train_mask,
)

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def label_intervals(draw: st.DrawFn, min_size: int = 6, max_size: int = 50) -> LabelIntervals:
    """Sorted starts with repeated times allowed and labels of varying length."""
    n = draw(st.integers(min_size, max_size))
    gaps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    horizons = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    start = np.cumsum(gaps).astype(np.int64)
    return LabelIntervals(start=start, end=start + np.asarray(horizons, dtype=np.int64))


def _overlaps(iv: LabelIntervals, i: int, j: int) -> bool:
    return bool(iv.start[i] <= iv.end[j] and iv.start[j] <= iv.end[i])


def _runs(test: set[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i in sorted(test):
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _first_clean_after(iv: LabelIntervals, run: list[int], purge: int) -> int:
    """The first sample after ``run`` that overlaps none of its labels, plus the margin."""
    j = run[-1] + 1
    while j < len(iv) and any(_overlaps(iv, j, t) for t in run):
        j += 1
    return j + purge


def reference_train(iv: LabelIntervals, test: np.ndarray, purge: int, embargo: int) -> list[int]:
    """Pairwise, sample by sample: the definition in the module docstring, written plainly:
    overlapping samples go, and so do ``purge`` more on each side of the overlapping region."""
    n = len(iv)
    dropped = set(int(t) for t in test)
    for run in _runs(dropped.copy()):
        overlapping = [i for i in range(n) if any(_overlaps(iv, i, t) for t in run)]
        first_overlap = min(overlapping)
        for i in range(n):
            if i in overlapping or first_overlap - purge <= i < run[0]:
                dropped.add(i)
        first = _first_clean_after(iv, run, purge)
        dropped.update(range(run[-1] + 1, min(first, n)))
        dropped.update(range(first, min(first + embargo, n)))
    return [i for i in range(n) if i not in dropped]


def assert_no_leak(iv: LabelIntervals, train: np.ndarray, test: np.ndarray) -> None:
    assert not set(train.tolist()) & set(test.tolist())
    for i in train:
        for j in test:
            assert not _overlaps(iv, int(i), int(j)), f"train {i} overlaps test {j}"


def assert_embargo(iv: LabelIntervals, train: np.ndarray, test: np.ndarray, purge: int, embargo: int) -> None:
    train_set = set(train.tolist())
    for run in _runs(set(test.tolist())):
        first = _first_clean_after(iv, run, purge)
        assert not train_set & set(range(first, first + embargo)), f"embargo after {run[-1]} broken"


@SETTINGS
@given(iv=label_intervals(), n_splits=st.integers(2, 6), purge=st.integers(0, 3), embargo=st.integers(0, 4))
def test_purged_kfold_matches_reference_and_never_leaks(iv: LabelIntervals, n_splits: int, purge: int, embargo: int) -> None:
    cv = PurgedKFold(n_splits, embargo=embargo, purge=purge)
    tests = []
    try:
        for train, test in cv.split(iv):
            assert train.tolist() == reference_train(iv, test, purge, embargo)
            assert_no_leak(iv, train, test)
            assert_embargo(iv, train, test, purge, embargo)
            tests.append(test)
    except EvaluationError as exc:
        assert "no training samples" in str(exc)
        return
    assert len(tests) == cv.get_n_splits()
    assert np.array_equal(np.concatenate(tests), np.arange(len(iv)))


@SETTINGS
@given(
    iv=label_intervals(min_size=8, max_size=40),
    n_folds=st.integers(2, 6),
    data=st.data(),
    purge=st.integers(0, 2),
    embargo=st.integers(0, 3),
)
def test_cpcv_matches_reference_and_counts(iv: LabelIntervals, n_folds: int, data: st.DataObject, purge: int, embargo: int) -> None:
    k = data.draw(st.integers(1, n_folds - 1))
    cv = CombinatorialPurgedCV(n_folds, k, purge=purge, embargo=embargo)
    assert cv.n_splits == math.comb(n_folds, k)
    assert cv.n_paths * n_folds == k * cv.n_splits
    try:
        splits = list(cv.split(iv))
    except EvaluationError as exc:
        assert "no training samples" in str(exc)
        return
    assert len(splits) == cv.n_splits
    per_group = cv.test_group_indices(len(iv))
    for (train, test), group_tests in zip(splits, per_group, strict=True):
        assert len(group_tests) == k
        assert np.array_equal(np.concatenate(group_tests), test)
        assert train.tolist() == reference_train(iv, test, purge, embargo)
        assert_no_leak(iv, train, test)
        assert_embargo(iv, train, test, purge, embargo)


@SETTINGS
@given(n=st.integers(4, 40), n_folds=st.integers(2, 7), data=st.data())
def test_cpcv_paths_cover_each_sample_exactly_once(n: int, n_folds: int, data: st.DataObject) -> None:
    n_folds = min(n_folds, n)
    k = data.draw(st.integers(1, n_folds - 1))
    cv = CombinatorialPurgedCV(n_folds, k)
    splits = list(cv.split(LabelIntervals.from_horizon(n, 0)))
    paths = cv.assemble_paths([test.astype(np.float64) for _, test in splits], n)
    assert paths.shape == (cv.n_paths, n)
    assert np.array_equal(paths, np.broadcast_to(np.arange(n, dtype=np.float64), paths.shape))
    table = cv.path_splits()
    for p in range(cv.n_paths):
        for g in range(n_folds):
            assert g in cv.test_folds[table[p, g]]
    # each split's groups are used by exactly one path each: no output is used twice
    used = sorted((int(table[p, g]), g) for p in range(cv.n_paths) for g in range(n_folds))
    assert used == sorted((s, g) for s, folds in enumerate(cv.test_folds) for g in folds)


def test_cpcv_assemble_paths_keeps_trailing_axes_and_split_provenance() -> None:
    cv = CombinatorialPurgedCV(4, 2)
    n = 10
    outputs = [np.stack([test, np.full(test.size, s)], axis=1) for s, (_, test) in enumerate(cv.split(LabelIntervals.from_horizon(n, 1)))]
    paths = cv.assemble_paths(outputs, n)
    groups = cv.groups(n)
    table = cv.path_splits()
    assert paths.shape == (cv.n_paths, n, 2)
    for p in range(cv.n_paths):
        for g, (lo, hi) in enumerate(groups):
            assert np.all(paths[p, lo:hi, 1] == table[p, g])
        assert np.array_equal(paths[p, :, 0], np.arange(n))


def test_purge_widens_the_label_overlap_by_its_margin() -> None:
    """Issue 20: ``purge`` means samples beyond the label overlap (h + p purged on each
    side), as documented, not a margin counted from the block (max(h, p)), which would
    purge nothing more for any margin up to the horizon."""
    iv = LabelIntervals.from_horizon(40, 3)
    test_block = (20, 25)
    for purge in (0, 1, 3, 5):
        keep = purged_train_mask(iv, [test_block], purge=purge)
        before, after = np.flatnonzero(keep[:20]), np.flatnonzero(keep[25:]) + 25
        assert before.max() == 20 - 3 - purge - 1, f"purge={purge}"
        assert after.min() == 25 - 1 + 3 + 1 + purge, f"purge={purge}"


def test_purged_kfold_hand_example() -> None:
    # labels [i, i+2]; fold 2 tests [4, 6) whose span is [4, 7]: samples 2..7 overlap, 8 is embargoed
    folds = list(PurgedKFold(5, embargo=1).split(LabelIntervals.from_horizon(10, 2)))
    train, test = folds[2]
    assert test.tolist() == [4, 5]
    assert train.tolist() == [0, 1, 9]


def test_cpcv_purges_each_test_block_on_its_own() -> None:
    # groups of 4 with 1-sample labels; testing groups 0 and 2 keeps the middle of group 1
    cv = CombinatorialPurgedCV(4, 2, embargo=1)
    train, test = list(cv.split(LabelIntervals.from_horizon(16, 1)))[1]
    assert cv.test_folds[1] == (0, 2)
    assert test.tolist() == [0, 1, 2, 3, 8, 9, 10, 11]
    assert train.tolist() == [6, 14, 15]  # 4 overlaps, 5 embargoed, 7 overlaps group 2, 12 overlaps, 13 embargoed


def test_embargo_fraction_rounds_up() -> None:
    assert embargo_count(0.01, 250) == 3
    assert embargo_count(0.0, 250) == 0
    assert embargo_count(4, 250) == 4
    iv = LabelIntervals.from_horizon(100, 0)
    by_fraction = [t.tolist() for t, _ in PurgedKFold(4, embargo=0.05).split(iv)]
    by_count = [t.tolist() for t, _ in PurgedKFold(4, embargo=5).split(iv)]
    assert by_fraction == by_count


def test_datetime_labels_equal_their_int64_nanoseconds() -> None:
    ts = np.datetime64("2024-01-01T00:00", "ns") + np.arange(30) * np.timedelta64(1, "D")
    as_dates = LabelIntervals(start=ts, end=ts + np.timedelta64(3, "D"))
    as_ints = LabelIntervals(start=ts.view(np.int64), end=(ts + np.timedelta64(3, "D")).view(np.int64))
    cv = PurgedKFold(3, embargo=2)
    for (a, _), (b, _) in zip(cv.split(as_dates), cv.split(as_ints), strict=True):
        assert np.array_equal(a, b)


@SETTINGS
@given(
    iv=label_intervals(min_size=10, max_size=60),
    n_splits=st.integers(1, 5),
    test_size=st.integers(1, 6),
    train_size=st.none() | st.integers(1, 20),
    purge=st.integers(0, 3),
)
def test_walk_forward_trains_on_the_past_only(
    iv: LabelIntervals, n_splits: int, test_size: int, train_size: int | None, purge: int
) -> None:
    cv = WalkForward(n_splits, test_size=test_size, train_size=train_size, purge=purge)
    try:
        folds = list(cv.split(iv))
    except EvaluationError as exc:
        assert "no training samples" in str(exc) or "cannot hold" in str(exc)
        return
    assert len(folds) == n_splits
    tests = np.concatenate([test for _, test in folds])
    assert np.array_equal(tests, np.arange(len(iv) - n_splits * test_size, len(iv)))
    previous: set[int] = set()
    for train, test in folds:
        assert train.max() < test.min()
        assert_no_leak(iv, train, test)
        expected = [i for i in reference_train(iv, test, purge, 0) if i < test.min()]
        if train_size is not None:
            assert train.size <= train_size
            expected = expected[-train_size:]
        else:
            assert previous <= set(train.tolist())  # an expanding window only grows
        assert train.tolist() == expected
        previous = set(train.tolist())


def test_walk_forward_default_test_size() -> None:
    assert WalkForward(4).test_blocks(50) == [(10, 20), (20, 30), (30, 40), (40, 50)]


def test_splits_are_deterministic() -> None:
    iv = LabelIntervals.from_horizon(57, 3)
    for cv in (PurgedKFold(5, embargo=0.02), CombinatorialPurgedCV(6, 2, purge=1, embargo=2), WalkForward(3, train_size=20)):
        first = [(a.tolist(), b.tolist()) for a, b in cv.split(iv)]
        second = [(a.tolist(), b.tolist()) for a, b in cv.split(iv)]
        assert first == second


BAD_CONSTRUCTIONS = [
    (lambda: PurgedKFold(1), "n_splits"),
    (lambda: PurgedKFold(3, embargo=1.5), "embargo"),
    (lambda: PurgedKFold(3, embargo=-1), "embargo"),
    (lambda: PurgedKFold(3, purge=-2), "purge"),
    (lambda: CombinatorialPurgedCV(4, 4), "n_test_folds"),
    (lambda: CombinatorialPurgedCV(4, 0), "n_test_folds"),
    (lambda: CombinatorialPurgedCV(1, 1), "n_folds"),
    (lambda: WalkForward(0), "n_splits"),
    (lambda: WalkForward(2, train_size=0), "train_size"),
    (lambda: LabelIntervals(start=[0, 2, 1], end=[3, 3, 3]), "non-decreasing"),
    (lambda: LabelIntervals(start=[0, 1, 2], end=[3, 0, 3]), "end precedes"),
    (lambda: LabelIntervals(start=[0.0, np.nan], end=[1.0, 2.0]), "NaN"),
    (lambda: LabelIntervals(start=[0, 1], end=[1, 2, 3]), "one interval per sample"),
    (lambda: LabelIntervals(start=["a", "b"], end=["c", "d"]), "1-D array of numbers"),
]


@pytest.mark.parametrize(("build", "needle"), BAD_CONSTRUCTIONS)
def test_bad_arguments_raise_evaluation_error(build, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EvaluationError, match=needle):
        build()


def test_too_few_samples_and_bad_outputs_raise() -> None:
    with pytest.raises(EvaluationError, match="cannot fill"):
        list(PurgedKFold(5).split(LabelIntervals.from_horizon(3, 0)))
    with pytest.raises(EvaluationError, match="no training samples"):
        list(PurgedKFold(2).split(LabelIntervals.from_horizon(10, 9)))
    with pytest.raises(EvaluationError, match="cannot hold"):
        list(WalkForward(5, test_size=2).split(LabelIntervals.from_horizon(10, 0)))
    cv = CombinatorialPurgedCV(3, 1)
    with pytest.raises(EvaluationError, match="expected 3 split outputs"):
        cv.assemble_paths([np.zeros(3)], 9)
    with pytest.raises(EvaluationError, match="split 1 output has shape"):
        cv.assemble_paths([np.zeros(3), np.zeros(4), np.zeros(3)], 9)
    assert isinstance(EvaluationError("x"), ValueError)
