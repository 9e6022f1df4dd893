"""Branch-free ``log``, ``exp`` and quarter-turn ``sincos`` that LLVM can vectorise.

LLVM turns ``np.log``/``np.exp``/``np.cos`` into calls to the scalar C library, and a
loop with such a call stays scalar (the vectorised math library numba can use, SVML, is
not in the pip builds of llvmlite). These versions are plain arithmetic and bit
operations, so a loop over symbols that uses them compiles to AVX2/AVX-512 code. Each is
accurate to a few units in the last place over the domain it documents (tested against
NumPy); the polynomials are minimax fits (Remez exchange in 40-digit arithmetic, weighted
for relative error) on arguments reduced far enough that the fit's own error is below
1e-16 relative: one or two terms fewer than Taylor series of the same accuracy, which
made the portfolio kernel, whose draws use all three functions, 3-5% faster.

The polynomials are evaluated by Estrin's scheme (pairs of terms combined by powers
``x**2, x**4, x**8``) rather than Horner's: the same coefficients, but a dependency chain
of three or four multiply-adds instead of one per term. The kernels that use these
functions are latency-bound, so the shorter chain is what sets their speed.
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

# Minimax coefficients, lowest power first. The fits' constant terms (and exp's linear
# term) round to exactly 1 in float64, so multiplying by them costs nothing once compiled.
# atanh(s) / s as a polynomial in z = s**2, z in [0, ((sqrt 2 - 1) / (sqrt 2 + 1))**2]: 1.1e-18.
_LOG_SERIES = (
    1.0, 0.33333333333333826, 0.1999999999964944, 0.14285714380673384,
    0.11111098494120161, 0.09091817547251331, 0.07656221876505609, 0.07405264921553491,
)  # fmt: skip
# exp(r), |r| <= 1.001 ln(2) / 2: 3.1e-18.
_EXP_SERIES = (
    1.0, 1.0, 0.5000000000000018, 0.16666666666666163, 0.04166666666649138, 0.008333333333561083,
    0.0013888888951597029, 0.0001984126943022234, 2.480148611939914e-05, 2.7557623747054713e-06,
    2.763244281359727e-07, 2.4994188475174722e-08,
)  # fmt: skip
# sin(r) / r and cos(r) as polynomials in v = -r**2, |r| <= pi / 4: 3.3e-18 and 6.1e-17.
_SIN_SERIES = (
    1.0, 0.16666666666666616, 0.008333333333320002, 0.0001984126982840213, 2.755731329901509e-06,
    2.5050705846384202e-08, 1.5894136372244074e-10,
)  # fmt: skip
_COS_SERIES = (
    1.0, 0.4999999999999941, 0.04166666666648785, 0.0013888888870591692, 2.48015786493504e-05,
    2.7555242408902386e-07, 2.0630636399186515e-09,
)  # fmt: skip


@njit(cache=True, nogil=True, inline="always")
def log_positive(x: float) -> float:
    """Natural log of a positive, finite, normal ``x`` (no NaN, zero or subnormal handling).

    ``x = 2**e * m`` with ``m`` in ``[sqrt(1/2), sqrt(2))``; ``log m = 2 atanh(s)`` with
    ``s = (m - 1) / (m + 1)``, ``|s| < 0.172``, and ``atanh(s) / s`` to ``s**14``.
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
    c = _LOG_SERIES
    low = (c[0] + z * c[1]) + z2 * (c[2] + z * c[3])
    high = (c[4] + z * c[5]) + z2 * (c[6] + z * c[7])
    series = low + (z2 * z2) * high
    return exponent * _LN2 + 2.0 * s * series


@njit(cache=True, nogil=True, inline="always")
def exp_clamped(x: float) -> float:
    """``exp(x)`` for finite ``x``, with ``x`` clamped to ``[-700, 700]``.

    ``x = n ln 2 + r`` with ``|r| <= ln(2) / 2`` (Cody-Waite: ``ln 2`` in two parts);
    ``exp(r)`` to ``r**11``; ``2**n`` built from its exponent bits.
    """
    x = min(max(x, -_EXP_LIMIT), _EXP_LIMIT)
    n = np.floor(x * _LOG2E + 0.5)
    r = x - n * _LN2_HI - n * _LN2_LO
    r2 = r * r
    r4 = r2 * r2
    c = _EXP_SERIES
    low = (c[0] + r * c[1]) + r2 * (c[2] + r * c[3])
    mid = (c[4] + r * c[5]) + r2 * (c[6] + r * c[7])
    high = (c[8] + r * c[9]) + r2 * (c[10] + r * c[11])
    series = (low + r4 * mid) + (r4 * r4) * high
    # 2**n from its exponent bits, without a float-to-integer conversion (AVX2 has none for
    # 64-bit lanes, and a loop that needs one stays scalar): n + 2**52 + bias is an integer
    # in [2**52, 2**53), whose low mantissa bits are n + bias; a shift by 52 keeps just them.
    biased = np.float64(n + _TWO_POW_52_PLUS_BIAS).view(np.int64)
    return series * np.int64(biased << 52).view(np.float64)


@njit(cache=True, nogil=True, inline="always")
def cos_sin_quarter_turn(f: float) -> tuple[float, float]:
    """``cos`` and ``sin`` of the angle ``f * pi / 2`` for ``f`` in ``[0, 1]``.

    The angle is ``pi / 4 + r`` with ``|r| <= pi / 4``: ``sin r`` and ``cos r`` to ``r**13``
    and ``r**12``, then rotated by ``pi / 4``.
    """
    r = (f - 0.5) * _QUARTER_TURN
    v = -(r * r)
    v2 = v * v
    v4 = v2 * v2
    a = _SIN_SERIES
    sin_r = r * a[0] + (r * v) * (((a[1] + v * a[2]) + v2 * (a[3] + v * a[4])) + v4 * (a[5] + v * a[6]))
    b = _COS_SERIES
    cos_r = b[0] + v * (((b[1] + v * b[2]) + v2 * (b[3] + v * b[4])) + v4 * (b[5] + v * b[6]))
    return (cos_r - sin_r) * _SQRT_HALF, (cos_r + sin_r) * _SQRT_HALF
