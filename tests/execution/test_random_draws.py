"""The vectorisable math and the counter-based normal draws the fill kernels use."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit, uint64

from ai_trading.config import ExecutionConfig
from ai_trading.execution.parameters import execution_params
from kernels.costs import participation_power
from kernels.layout import N_SYMBOL_COEFS
from kernels.portfolio import N_ARRIVAL, N_DRAW, fill_arrival_block, symbol_order_keys
from kernels.rng import STREAM_EXECUTION, box_muller_radius, normal_pair, open_unit32
from kernels.vecmath import cos_sin_quarter_turn32, exp_clamped, log_positive, log_positive32
from tests.execution import reference

ULP = 2.0**-52
ULP32 = 2.0**-23


@njit
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
@given(st.floats(min_value=2.0**-126, max_value=float(np.finfo(np.float32).max), width=32))
def test_float32_log_matches_the_c_library(x: float) -> None:
    assert abs(float(log_positive32(np.float32(x))) - math.log(x)) <= 4 * ULP32 * abs(math.log(x))


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0.0, max_value=1.0, width=32))
def test_float32_quarter_turn_matches_the_c_library(f: float) -> None:
    cos_angle, sin_angle = cos_sin_quarter_turn32(np.float32(f))
    angle = f * math.pi / 2
    assert abs(float(cos_angle) - math.cos(angle)) <= 2 * ULP32
    assert abs(float(sin_angle) - math.sin(angle)) <= 2 * ULP32


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-12, max_value=1.0), st.sampled_from([0.0, 0.3, 0.5, 0.6, 1.0]))
def test_participation_power_matches_pow(participation: float, beta: float) -> None:
    # exp(beta * log p): the rounding of the log, |beta log p| ulp, is amplified by exp.
    tolerance = 4 * ULP * (2.0 + abs(beta * math.log(participation)))
    assert abs(participation_power(participation, beta) - participation**beta) <= tolerance * participation**beta
    assert participation_power(0.0, beta) == 0.0**beta


@njit
def _open_unit32(bits: np.uint64) -> np.float32:
    return open_unit32(bits)


@settings(deadline=None)  # the first example compiles
@given(st.integers(0, 2**30 - 1))
def test_open_unit_is_the_float32_nearest_the_midpoint_of_its_bits(bits: int) -> None:
    u = _open_unit32(np.uint64(bits))
    assert u == np.float32((bits + 0.5) / 2.0**30)
    assert 0.0 < u <= 1.0


@njit
def _radius(bits: np.uint64) -> np.float32:
    return box_muller_radius(open_unit32(bits))


def test_the_extreme_uniforms_give_the_extreme_radii() -> None:
    # u = 2**-31 is the smallest uniform; the largest rounds to 1 in float32, radius 0.
    assert float(_radius(np.uint64(0))) == pytest.approx(math.sqrt(62 * math.log(2)), rel=4 * ULP32)
    assert _radius(np.uint64(2**30 - 1)) == 0.0


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(0, 2**40), st.integers(0, 2**31))
def test_normal_pair_is_the_exact_transform_to_float32_precision(seed: int, order: int, bar: int) -> None:
    got = normal_pair(np.uint64(seed), order, bar, STREAM_EXECUTION)
    expected = reference.exact_normal_pair(seed, order, bar)
    radius = math.hypot(*expected)
    assert all(float(np.float32(z)) == z for z in got)  # float32 values
    np.testing.assert_allclose(np.float64(got), expected, rtol=0, atol=4 * ULP32 * max(radius, 1.0))


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


@pytest.mark.parametrize("n_symbols", [1, 7, 16, 37])
def test_the_portfolio_kernel_draws_what_the_reference_takes(n_symbols: int) -> None:
    """Bit for bit, in the vector body and the scalar remainder of its loops alike, so
    that the portfolio references check the kernel to float64 precision."""
    n_bars = 60
    close = np.full((n_bars + 1, n_symbols), 100.0)
    keys = np.empty(n_symbols, np.uint64)
    symbol_order_keys(np.uint64(2026), keys)
    draws = np.empty((N_DRAW, n_bars, n_symbols), np.float32)
    arrival = np.empty((N_ARRIVAL, n_bars, n_symbols))
    params = execution_params(ExecutionConfig(), 60.0)
    fill_arrival_block(
        0, n_bars, close, close, close, np.ones_like(close, bool), np.full((1, n_symbols), np.nan),
        np.full_like(close, 20.0), np.zeros((N_SYMBOL_COEFS, n_symbols)), params, keys, arrival, draws,
    )  # fmt: skip
    expected = [[reference.normal_pair(2026, s, t + 1, vector_loop=True) for s in range(n_symbols)] for t in range(n_bars)]
    np.testing.assert_array_equal(np.moveaxis(draws, 0, -1), np.array(expected))
