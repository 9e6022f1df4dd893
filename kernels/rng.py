"""Counter-based random numbers keyed by (seed, order id, bar, stream).

A draw is a pure function of its key, so a seeded simulation gives bit-identical results
however orders are batched, ordered or split across threads. The mixer is SplitMix64
(Steele, Lea and Flood 2014), whose finaliser is a strong 64-bit bijection.

Execution draws (stream ``STREAM_EXECUTION``) come in pairs per (order, bar): the first
normal of the bar after the decision sets the order's latency, the second of each bar
the slippage noise of its fill there. One hash and one Box-Muller transform serve both.

The normals are float32. The transform's inputs are 30-bit uniforms, and what the
normals move is a latency and a noise term of a few bps, so 24 bits of them is more than
any of it can show: a float32 ulp of a normal (at most 4.8e-7, for ``|z| < 6.5``) moves a
fill price by under 5e-11 of itself per bp of noise. Everything computed from the draws
(latency, prices, costs) is float64. In float32 a vector holds twice the lanes, and the
polynomials need half the terms, which made the fused portfolio simulation, whose
arrival loops are mostly this transform, 13% faster. A normal's last bit may depend on
the compile flags of the kernel the transform is inlined into: the portfolio kernel's
fast-math loops (kernels.vector_loop) round about one in twelve an ulp or so
differently from the order simulator.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, uint64

from kernels.vecmath import cos_sin_quarter_turn32, log_positive32

STREAM_EXECUTION = 0

_GOLDEN = uint64(0x9E3779B97F4A7C15)
_MIX1 = uint64(0xBF58476D1CE4E5B9)
_MIX2 = uint64(0x94D049BB133111EB)
_TWO_POW_MINUS_53 = 1.0 / 9007199254740992.0
_UNIFORM_BITS = 30  # of each of the radius and angle uniforms: their odd numerators fit an int32
_UNIFORM_MASK = uint64((1 << _UNIFORM_BITS) - 1)


@njit(cache=True, nogil=True, inline="always")
def splitmix64(x: np.uint64) -> np.uint64:
    """SplitMix64 finaliser of ``x + golden ratio``: a bijection on 64-bit integers."""
    z = uint64(x) + _GOLDEN
    z = (z ^ (z >> uint64(30))) * _MIX1
    z = (z ^ (z >> uint64(27))) * _MIX2
    return z ^ (z >> uint64(31))


@njit(cache=True, nogil=True, inline="always")
def order_key(seed: np.uint64, order_id: int, stream: int) -> np.uint64:
    """The part of a draw's key an order keeps for its whole life: the hash of (seed,
    stream, order id). Loops over many bars compute it once per order."""
    return splitmix64(splitmix64(uint64(seed) ^ uint64(stream)) ^ uint64(order_id))


@njit(cache=True, nogil=True, inline="always")
def key_hash(seed: np.uint64, order_id: int, bar: int, stream: int) -> np.uint64:
    """64 random bits for one (seed, order id, bar, stream) key."""
    return splitmix64(order_key(seed, order_id, stream) ^ uint64(bar))


@njit(cache=True, nogil=True, inline="always")
def uniform(seed: np.uint64, order_id: int, bar: int, stream: int) -> float:
    """Uniform draw in the open interval (0, 1) from the top 53 bits of the key hash."""
    h = key_hash(seed, order_id, bar, stream)
    return (float(h >> uint64(11)) + 0.5) * _TWO_POW_MINUS_53


@njit(cache=True, nogil=True, inline="always")
def open_unit32(bits: np.uint64) -> np.float32:
    """``(bits + 0.5) / 2**30`` rounded to float32, for ``bits < 2**30``: a point of (0, 1].

    The odd numerator ``2 bits + 1`` converts from int32 (which AVX2 lanes can; unsigned
    or 64-bit integers they cannot). Being odd it never lies on a rounding boundary, so
    each float32 value comes up exactly in proportion to the width of the interval that
    rounds to it, as it would from a continuous uniform.
    """
    return np.float32(np.int32(bits * uint64(2) + uint64(1))) * np.float32(0.5 ** (_UNIFORM_BITS + 1))


@njit(cache=True, nogil=True, inline="always")
def normal_pair(seed: np.uint64, order_id: int, bar: int, stream: int) -> tuple[np.float32, np.float32]:
    """Two independent standard normal draws for one key: :func:`normal_pair_at` of the
    order's key."""
    return normal_pair_at(order_key(seed, order_id, stream), bar)


@njit(cache=True, nogil=True, inline="always")
def normal_pair_at(key: np.uint64, bar: int) -> tuple[np.float32, np.float32]:
    """Two independent standard normal draws (float32) for an order (its
    :func:`order_key`) in one bar, by Box and Muller (1958).

    The key hash's high 30 bits give the radius ``sqrt(-2 log u)``, ``u`` in (0, 1]; of
    its low 32 bits, 30 give an angle in the first quadrant and two the signs of the
    pair, which makes the angle uniform on the circle. Branch-free, so loops over symbols
    vectorise. ``u >= 2**-31`` bounds ``|z|`` by 6.5.

    Its three stages are functions of their own: a loop over many keys runs each stage
    in a loop of its own, whose fewer live constants fit the registers of an AVX2 CPU.
    Between stages the two sign bits ride in the sign bits of the two uniforms, which
    are positive, so two float32 values carry all a stage passes on.
    """
    u, fraction = box_muller_uniforms(key, bar)
    return box_muller_pair(box_muller_radius(u), fraction)


@njit(cache=True, nogil=True, inline="always")
def with_sign_bit(x: np.float32, bit: np.uint64) -> np.float32:
    """``x`` (positive) negated when ``bit`` (0 or 1) is set."""
    return np.uint32(np.float32(x).view(np.uint32) | np.uint32(bit << uint64(31))).view(np.float32)


@njit(cache=True, nogil=True, inline="always")
def box_muller_uniforms(key: np.uint64, bar: int) -> tuple[np.float32, np.float32]:
    """Stage 1 of :func:`normal_pair_at`: the radius uniform ``u`` and the angle's
    fraction of a quarter turn, each negated when the sign bit of its normal is set."""
    h = splitmix64(key ^ uint64(bar))
    u = open_unit32(h >> uint64(64 - _UNIFORM_BITS))
    fraction = open_unit32((h >> uint64(2)) & _UNIFORM_MASK)
    return with_sign_bit(u, h & uint64(1)), with_sign_bit(fraction, (h >> uint64(1)) & uint64(1))


@njit(cache=True, nogil=True, inline="always")
def box_muller_radius(signed_u: np.float32) -> np.float32:
    """Stage 2 of :func:`normal_pair_at`: ``sqrt(-2 log |u|)`` with the sign of ``u``."""
    return np.float32(math.copysign(np.sqrt(np.float32(-2.0) * log_positive32(abs(signed_u))), signed_u))


@njit(cache=True, nogil=True, inline="always")
def box_muller_pair(signed_radius: np.float32, signed_fraction: np.float32) -> tuple[np.float32, np.float32]:
    """Stage 3 of :func:`normal_pair_at`: the pair at the radius and the angle of the
    fraction of a quarter turn, the first signed as the radius, the second as the fraction."""
    cos_angle, sin_angle = cos_sin_quarter_turn32(abs(signed_fraction))
    return signed_radius * cos_angle, np.float32(math.copysign(abs(signed_radius) * sin_angle, signed_fraction))
