"""Branch-free ``log``, ``exp`` and quarter-turn ``sincos`` that LLVM can vectorise.

LLVM turns ``np.log``/``np.exp``/``np.cos`` into calls to the scalar C library, and a
loop with such a call stays scalar (the vectorised math library numba can use, SVML, is
not in the pip builds of llvmlite). These versions are plain arithmetic and bit
operations, so a loop over symbols that uses them compiles to AVX2/AVX-512 code. Each is
accurate to a few units in the last place over the domain it documents (tested against
NumPy); the polynomials are truncated Taylor series, whose coefficients are exact
reciprocal factorials, on arguments reduced far enough that the first omitted term is
below 1e-16.

The polynomials are evaluated by Estrin's scheme (pairs of terms combined by powers
``x**2, x**4, x**8``) rather than Horner's: the same coefficients, but a dependency chain
of four multiply-adds instead of one per term. The kernels that use these functions are
latency-bound, so the shorter chain is what sets their speed.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_LN2 = math.log(2.0)
_LN2_HI = 0.6931471803691238  # ln 2 with its 21 low mantissa bits zero, so n * _LN2_HI is exact
_LN2_LO = 1.9082149292705877e-10  # ln 2 - _LN2_HI
_LOG2E = 1.0 / math.log(2.0)
_SQRT2 = math.sqrt(2.0)
_SQRT_HALF = math.sqrt(0.5)
_QUARTER_TURN = math.pi / 2.0
_EXPONENT_BIAS = 1023
_MANTISSA_MASK = (1 << 52) - 1
ONE_BITS = _EXPONENT_BIAS << 52  # the bits of the float64 1.0
_TWO_POW_52_PLUS_BIAS = float(2**52 + _EXPONENT_BIAS)
_EXP_LIMIT = 700.0  # exp(700) ~ 1e304: below overflow, and 2**n stays a normal number


@njit(cache=True, nogil=True, inline="always")
def log_positive(x: float) -> float:
    """Natural log of a positive, finite, normal ``x`` (no NaN, zero or subnormal handling).

    ``x = 2**e * m`` with ``m`` in ``[sqrt(1/2), sqrt(2))``; ``log m = 2 atanh(s)`` with
    ``s = (m - 1) / (m + 1)``, ``|s| < 0.172``, summed to ``s**19``.
    """
    bits = np.float64(x).view(np.int64)
    exponent = (bits >> 52) - _EXPONENT_BIAS
    mantissa = np.int64((bits & _MANTISSA_MASK) | ONE_BITS).view(np.float64)
    high = mantissa > _SQRT2
    mantissa = mantissa * 0.5 if high else mantissa
    exponent = exponent + 1 if high else exponent
    s = (mantissa - 1.0) / (mantissa + 1.0)
    z = s * s
    z2 = z * z
    z4 = z2 * z2
    low = (1.0 + z * (1.0 / 3.0)) + z2 * (1.0 / 5.0 + z * (1.0 / 7.0))
    high = (1.0 / 9.0 + z * (1.0 / 11.0)) + z2 * (1.0 / 13.0 + z * (1.0 / 15.0))
    series = (low + z4 * high) + z4 * z4 * (1.0 / 17.0 + z * (1.0 / 19.0))
    return exponent * _LN2 + 2.0 * s * series


@njit(cache=True, nogil=True, inline="always")
def exp_clamped(x: float) -> float:
    """``exp(x)`` for finite ``x``, with ``x`` clamped to ``[-700, 700]``.

    ``x = n ln 2 + r`` with ``|r| <= ln(2) / 2`` (Cody-Waite: ``ln 2`` in two parts);
    ``exp(r)`` summed to ``r**13 / 13!``; ``2**n`` built from its exponent bits.
    """
    x = min(max(x, -_EXP_LIMIT), _EXP_LIMIT)
    n = np.floor(x * _LOG2E + 0.5)
    r = x - n * _LN2_HI - n * _LN2_LO
    r2 = r * r
    r4 = r2 * r2
    low = (1.0 + r) + r2 * (1.0 / 2.0 + r * (1.0 / 6.0))
    mid = (1.0 / 24.0 + r * (1.0 / 120.0)) + r2 * (1.0 / 720.0 + r * (1.0 / 5040.0))
    high = (1.0 / 40320.0 + r * (1.0 / 362880.0)) + r2 * (1.0 / 3628800.0 + r * (1.0 / 39916800.0))
    top = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0)  # 1/12!, 1/13!
    series = (low + r4 * mid) + r4 * r4 * (high + r4 * top)
    # 2**n from its exponent bits, without a float-to-integer conversion (AVX2 has none for
    # 64-bit lanes, and a loop that needs one stays scalar): n + 2**52 + bias is an integer
    # in [2**52, 2**53), whose low mantissa bits are n + bias; a shift by 52 keeps just them.
    biased = np.float64(n + _TWO_POW_52_PLUS_BIAS).view(np.int64)
    return series * np.int64(biased << 52).view(np.float64)


@njit(cache=True, nogil=True, inline="always")
def cos_sin_quarter_turn(f: float) -> tuple[float, float]:
    """``cos`` and ``sin`` of the angle ``f * pi / 2`` for ``f`` in ``[0, 1]``.

    The angle is ``pi / 4 + r`` with ``|r| <= pi / 4``: ``sin r`` and ``cos r`` summed to
    ``r**15`` and ``r**16``, then rotated by ``pi / 4``.
    """
    r = (f - 0.5) * _QUARTER_TURN
    # In v = -r**2 both series have positive reciprocal-factorial coefficients, the same
    # constants exp_clamped uses: fewer distinct constants for a loop to keep in registers.
    v = -(r * r)
    v2 = v * v
    v4 = v2 * v2
    # sin r = r (1 + v/3! + ... + v**7/15!);  cos r = 1 + v/2! + ... + v**8/16!
    sin_low = (1.0 / 6.0 + v * (1.0 / 120.0)) + v2 * (1.0 / 5040.0 + v * (1.0 / 362880.0))
    sin_high = (1.0 / 39916800.0 + v * (1.0 / 6227020800.0)) + v2 * (1.0 / 1307674368000.0)
    sin_r = r + r * v * (sin_low + v4 * sin_high)
    cos_low = (1.0 / 2.0 + v * (1.0 / 24.0)) + v2 * (1.0 / 720.0 + v * (1.0 / 40320.0))
    cos_high = (1.0 / 3628800.0 + v * (1.0 / 479001600.0)) + v2 * (1.0 / 87178291200.0 + v * (1.0 / 20922789888000.0))
    cos_r = 1.0 + v * (cos_low + v4 * cos_high)
    return (cos_r - sin_r) * _SQRT_HALF, (cos_r + sin_r) * _SQRT_HALF
