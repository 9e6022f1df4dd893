"""The intrinsics of vectorised kernel loops: branch-free choice, fused multiply-adds and prefetches."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from kernels.vector_loop import choose, multiply_add, multiply_add_lanes, prefetch

# Finite and far from overflow, so that a * b + c is a finite float64.
FACTORS = st.floats(min_value=-1e100, max_value=1e100, allow_nan=False)


def rounded_once(a: float, b: float, c: float) -> float:
    """``a * b + c`` computed exactly, then rounded to the nearest float64."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


@njit
def _choose(condition: bool, value: float, otherwise: float) -> float:
    return choose(condition, value, otherwise)


@settings(deadline=None)  # the first example compiles
@given(st.booleans(), st.floats(), st.floats())
def test_choose_picks_by_the_condition(condition: bool, value: float, otherwise: float) -> None:
    got = _choose(condition, value, otherwise)
    expected = value if condition else otherwise
    assert got == expected or (math.isnan(got) and math.isnan(expected))


@njit
def _multiply_add(a: float, b: float, c: float) -> float:
    return multiply_add(a, b, c)


@settings(deadline=None)
@given(FACTORS, FACTORS, FACTORS)
def test_multiply_add_rounds_once(a: float, b: float, c: float) -> None:
    assert _multiply_add(a, b, c) == rounded_once(a, b, c)


@njit
def _lanes_of_eight(array: np.ndarray, offset: int, factor: float, addends: np.ndarray) -> None:
    values = (addends[0], addends[1], addends[2], addends[3], addends[4], addends[5], addends[6], addends[7])
    multiply_add_lanes(array, offset, factor, values)


@njit
def _lanes_of_three(array: np.ndarray, offset: int, factor: float, addends: np.ndarray) -> None:
    multiply_add_lanes(array, offset, factor, (addends[0], addends[1], addends[2]))


@settings(deadline=None)
@given(
    st.sampled_from([8, 3]),
    st.integers(0, 20),
    st.lists(FACTORS, min_size=31, max_size=31),
    FACTORS,
    st.lists(FACTORS, min_size=8, max_size=8),
)
def test_multiply_add_lanes_updates_exactly_its_run(lanes: int, offset: int, initial: list[float], factor: float, addends: list[float]) -> None:
    kernel = _lanes_of_eight if lanes == 8 else _lanes_of_three
    array = np.array(initial)
    kernel(array, offset, factor, np.array(addends))
    run = range(offset, offset + lanes)
    for i, value in enumerate(array):
        expected = rounded_once(initial[i], factor, addends[i - offset]) if i in run else initial[i]
        assert value == expected, f"element {i}"


@njit
def _sum_prefetching(values: np.ndarray, ahead: int) -> float:
    total = 0.0
    for k in range(values.shape[0]):
        prefetch(values, k + ahead)
        total += values[k]
    return total


@settings(deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), max_size=300), st.integers(0, 1 << 20))
def test_prefetch_changes_nothing_even_far_past_the_end(values: list[float], ahead: int) -> None:
    array = np.array(values, dtype=np.float64)
    before = array.copy()
    assert _sum_prefetching(array, ahead) == sum(values, 0.0)  # the same left-to-right sum
    np.testing.assert_array_equal(array, before)
