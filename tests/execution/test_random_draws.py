"""The vectorisable math and the counter-based normal draws the fill kernels use."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit, uint64

from kernels.costs import participation_power
from kernels.rng import STREAM_EXECUTION, normal_pair, open_unit
from kernels.vecmath import cos_sin_quarter_turn, exp_clamped, log_positive
from tests.execution import reference

ULP = 2.0**-52


@njit(cache=True)
def _normal_pairs(seed: np.uint64, n_orders: int, n_bars: int, out: np.ndarray) -> None:
    for order in range(n_orders):
        for bar in range(n_bars):
            first, second = normal_pair(seed, order, bar, STREAM_EXECUTION)
            out[order * n_bars + bar, 0] = first
            out[order * n_bars + bar, 1] = second


def normal_pairs(seed: int, n_orders: int, n_bars: int) -> np.ndarray:
    out = np.empty((n_orders * n_bars, 2))
    _normal_pairs(np.uint64(seed), n_orders, n_bars, out)
    return out


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=2.0**-1022, max_value=1e300, allow_subnormal=False))
def test_log_matches_the_c_library(x: float) -> None:
    assert abs(log_positive(x) - math.log(x)) <= 4 * ULP * abs(math.log(x))


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-700.0, max_value=700.0))
def test_exp_matches_the_c_library(x: float) -> None:
    assert abs(exp_clamped(x) / math.exp(x) - 1.0) <= 4 * ULP


def test_exp_clamps_instead_of_overflowing() -> None:
    assert exp_clamped(1e4) == exp_clamped(700.0) and np.isfinite(exp_clamped(1e4))
    assert exp_clamped(-1e4) == exp_clamped(-700.0) > 0.0
    assert exp_clamped(0.0) == 1.0  # sigma 0: latency is exactly the median


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0.0, max_value=1.0))
def test_quarter_turn_matches_the_c_library(f: float) -> None:
    cos_angle, sin_angle = cos_sin_quarter_turn(f)
    angle = f * math.pi / 2
    assert abs(cos_angle - math.cos(angle)) <= 4 * ULP
    assert abs(sin_angle - math.sin(angle)) <= 4 * ULP


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-12, max_value=1.0), st.sampled_from([0.0, 0.3, 0.5, 0.6, 1.0]))
def test_participation_power_matches_pow(participation: float, beta: float) -> None:
    # exp(beta * log p): the rounding of the log, |beta log p| ulp, is amplified by exp.
    tolerance = 4 * ULP * (2.0 + abs(beta * math.log(participation)))
    assert abs(participation_power(participation, beta) - participation**beta) <= tolerance * participation**beta
    assert participation_power(0.0, beta) == 0.0**beta


@njit(cache=True)
def _open_unit(bits: np.uint64, n_bits: int) -> float:
    return open_unit(bits, n_bits)


@settings(deadline=None)  # the first example compiles
@given(st.sampled_from([30, 32]).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, 2**n - 1))))
def test_open_unit_is_the_exact_midpoint_of_its_bits(case: tuple[int, int]) -> None:
    n_bits, bits = case
    u = _open_unit(np.uint64(bits), n_bits)
    assert u == (bits + 0.5) / 2.0**n_bits  # exact: both sides need at most n_bits + 1 bits
    assert 0.0 < u < 1.0


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(0, 2**40), st.integers(0, 2**31))
def test_normal_pair_matches_the_reference(seed: int, order: int, bar: int) -> None:
    got = normal_pair(np.uint64(seed), order, bar, STREAM_EXECUTION)
    expected = reference.normal_pair(seed, order, bar)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-14)


def test_normal_pairs_are_standard_normal_and_independent() -> None:
    draws = normal_pairs(7, 400, 1000)
    n = draws.shape[0]
    for column in draws.T:
        assert abs(column.mean()) < 5 / math.sqrt(n)
        assert abs(column.std() - 1.0) < 5 * math.sqrt(0.5 / n)
        # Kolmogorov-Smirnov distance to the normal CDF, 99.9% critical value 1.95 / sqrt(n)
        ordered = np.sort(column)
        cdf = 0.5 * (1.0 + np.vectorize(math.erf)(ordered / math.sqrt(2.0)))
        steps = np.arange(1, n + 1) / n
        assert max(np.max(steps - cdf), np.max(cdf - (steps - 1 / n))) < 1.95 / math.sqrt(n)
        assert abs(np.mean(np.abs(column) > 3.0) - 0.0026998) < 5 * math.sqrt(0.0027 / n)  # the tails are there
    assert abs(np.corrcoef(draws.T)[0, 1]) < 5 / math.sqrt(n)
    assert abs(np.corrcoef(draws[:-1, 1], draws[1:, 1])[0, 1]) < 5 / math.sqrt(n)  # consecutive bars


def test_draws_are_a_pure_function_of_the_key() -> None:
    np.testing.assert_array_equal(normal_pairs(11, 20, 50), normal_pairs(11, 20, 50))
    assert not np.array_equal(normal_pairs(11, 20, 50), normal_pairs(12, 20, 50))
    assert normal_pair(np.uint64(5), 3, 9, STREAM_EXECUTION) == normal_pair(uint64(5), 3, 9, STREAM_EXECUTION)
