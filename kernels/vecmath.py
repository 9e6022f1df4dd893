"""Branch-free ``log``, ``exp`` and quarter-turn ``sincos`` that LLVM can vectorise.

LLVM turns ``np.log``/``np.exp``/``np.cos`` into calls to the scalar C library, and a
loop with such a call stays scalar (the vectorised math library numba can use, SVML, is
not in the pip builds of llvmlite). These versions are plain arithmetic and bit
operations, so a loop over symbols that uses them compiles to AVX2/AVX-512 code. Each is
accurate to a few units in the last place of its type over the domain it documents
(tested against NumPy); the polynomials are minimax fits (Remez exchange, weighted for
relative error) on arguments reduced far enough that the fit's own error is below the
type's rounding: ``log`` and ``exp`` in float64, ``log`` and ``sincos`` in float32 for
the random draws (:mod:`kernels.rng` says why those are float32).

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
_EXPONENT_BIAS = 1023
_MANTISSA_MASK = (1 << 52) - 1
_ONE_BITS = _EXPONENT_BIAS << 52  # the bits of the float64 1.0
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

# Float32: fits with the constant term held at exactly 1, coefficients rounded to float32.
_F32 = np.float32
_ONE32 = _F32(1.0)
_SQRT2_32 = _F32(math.sqrt(2.0))
_SQRT_HALF_32 = _F32(math.sqrt(0.5))
_LN2_32 = _F32(_LN2)  # 2.7e-9 relative off ln 2: far below a float32 ulp of exponent * ln 2
_QUARTER_TURN_32 = _F32(math.pi / 2.0)
_FLOAT32_BIAS = 127
_FLOAT32_MANTISSA_MASK = (1 << 23) - 1
_ONE_BITS_32 = _FLOAT32_BIAS << 23  # the bits of the float32 1.0
# atanh(s) / s = 1 + z * (...), z = s**2 in [0, ((sqrt 2 - 1) / (sqrt 2 + 1))**2]: 8.2e-10.
_LOG_SERIES_32 = (_ONE32, _F32(0.3333338797092438), _F32(0.19988787174224854), _F32(0.14935468137264252))
# sin(r) / r and cos(r) = 1 + v * (...), v = -r**2, |r| <= pi / 4: 8.3e-9 and 1.9e-9.
_SIN_SERIES_32 = (_ONE32, _F32(0.16666655242443085), _F32(0.00833216030150652), _F32(0.00019515282474458218))
_COS_SERIES_32 = (
    _ONE32, _F32(0.5), _F32(0.04166662320494652), _F32(0.0013886683154851198), _F32(2.4379880414926447e-05),
)  # fmt: skip


@njit(cache=True, nogil=True, inline="always")
def log_positive(x: float) -> float:
    """Natural log of a positive, finite, normal ``x`` (no NaN, zero or subnormal handling).

    ``x = 2**e * m`` with ``m`` in ``[sqrt(1/2), sqrt(2))``; ``log m = 2 atanh(s)`` with
    ``s = (m - 1) / (m + 1)``, ``|s| < 0.172``, and ``atanh(s) / s`` to ``s**14``.
    """
    bits = np.float64(x).view(np.int64)
    exponent = (bits >> 52) - _EXPONENT_BIAS
    mantissa = np.int64((bits & _MANTISSA_MASK) | _ONE_BITS).view(np.float64)
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
def log_positive32(x: np.float32) -> np.float32:
    """:func:`log_positive` in float32, for a positive, finite, normal float32 ``x``:
    ``atanh(s) / s`` to ``s**6``."""
    bits = np.float32(x).view(np.int32)
    exponent = (bits >> 23) - _FLOAT32_BIAS
    mantissa = np.int32((bits & _FLOAT32_MANTISSA_MASK) | _ONE_BITS_32).view(np.float32)
    high = mantissa > _SQRT2_32
    mantissa = mantissa * _F32(0.5) if high else mantissa
    exponent = exponent + 1 if high else exponent
    s = (mantissa - _ONE32) / (mantissa + _ONE32)
    z = s * s
    c = _LOG_SERIES_32
    series = (c[0] + z * c[1]) + (z * z) * (c[2] + z * c[3])
    return np.float32(exponent) * _LN2_32 + _F32(2.0) * s * series


@njit(cache=True, nogil=True, inline="always")
def cos_sin_quarter_turn32(f: np.float32) -> tuple[np.float32, np.float32]:
    """``cos`` and ``sin`` of the angle ``f * pi / 2`` for a float32 ``f`` in ``[0, 1]``.

    The angle is ``pi / 4 + r`` with ``|r| <= pi / 4``: ``sin r`` and ``cos r`` to ``r**7``
    and ``r**8``, then rotated by ``pi / 4``.
    """
    r = (f - _F32(0.5)) * _QUARTER_TURN_32
    v = -(r * r)
    v2 = v * v
    a = _SIN_SERIES_32
    sin_r = r * a[0] + (r * v) * ((a[1] + v * a[2]) + v2 * a[3])
    b = _COS_SERIES_32
    cos_r = b[0] + v * ((b[1] + v * b[2]) + v2 * (b[3] + v * b[4]))
    return (cos_r - sin_r) * _SQRT_HALF_32, (cos_r + sin_r) * _SQRT_HALF_32
