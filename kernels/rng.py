"""Counter-based random numbers keyed by (seed, order id, bar, stream).

A draw is a pure function of its key, so a seeded simulation gives bit-identical results
however orders are batched, ordered or split across threads. The mixer is SplitMix64
(Steele, Lea and Flood 2014), whose finaliser is a strong 64-bit bijection.

Execution draws (stream ``STREAM_EXECUTION``) come in pairs per (order, bar): the first
normal of the bar after the decision sets the order's latency, the second of each bar
the slippage noise of its fill there. One hash and one Box-Muller transform serve both.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from kernels.vecmath import ONE_BITS, cos_sin_quarter_turn, log_positive

STREAM_EXECUTION = 0

_GOLDEN = uint64(0x9E3779B97F4A7C15)
_MIX1 = uint64(0xBF58476D1CE4E5B9)
_MIX2 = uint64(0x94D049BB133111EB)
_TWO_POW_MINUS_53 = 1.0 / 9007199254740992.0
_ONE_BITS = uint64(ONE_BITS)


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
def open_unit(bits: np.uint64, n_bits: int) -> float:
    """``(bits + 0.5) / 2**n_bits`` for ``bits < 2**n_bits``, ``n_bits <= 51``: a point of
    the open interval (0, 1).

    Computed exactly by placing the bits at the top of the mantissa of a float64 in
    [1, 2) rather than by converting an integer: AVX2 has no conversion from unsigned or
    64-bit integer lanes, and a loop that needs one converts lane by lane.
    """
    one_plus = np.uint64((bits << uint64(52 - n_bits)) | _ONE_BITS).view(np.float64)
    return (one_plus - 1.0) + 0.5 ** (n_bits + 1)


@njit(cache=True, nogil=True, inline="always")
def normal_pair(seed: np.uint64, order_id: int, bar: int, stream: int) -> tuple[float, float]:
    """Two independent standard normal draws for one key: :func:`normal_pair_at` of the
    order's key."""
    return normal_pair_at(order_key(seed, order_id, stream), bar)


@njit(cache=True, nogil=True, inline="always")
def normal_pair_at(key: np.uint64, bar: int) -> tuple[float, float]:
    """Two independent standard normal draws for an order (its :func:`order_key`) in one
    bar, by Box and Muller (1958).

    The key hash's high 32 bits give the radius ``sqrt(-2 log u)``, ``u`` in (0, 1); of
    its low 32 bits, 30 give an angle in the first quadrant and two the signs of the
    pair, which makes the angle uniform on the circle. Branch-free, so loops over symbols
    vectorise. The 32-bit ``u`` bounds ``|z|`` by 6.7.

    Its three stages are functions of their own: a loop over many keys runs each stage
    in a loop of its own, whose fewer live constants fit the registers of an AVX2 CPU.
    """
    u, fraction, signs = box_muller_uniforms(key, bar)
    return box_muller_pair(box_muller_radius(u), fraction, signs)


@njit(cache=True, nogil=True, inline="always")
def box_muller_uniforms(key: np.uint64, bar: int) -> tuple[float, float, float]:
    """Stage 1 of :func:`normal_pair_at`: the radius uniform ``u``, the angle's fraction
    of a quarter turn, and the two sign bits, carried as the float64 ``1 + bits * 2**-52``
    so that all three can wait in float64 arrays for the next stage."""
    h = splitmix64(key ^ uint64(bar))
    low = h & uint64(0xFFFFFFFF)
    signs = np.uint64((low & uint64(3)) | _ONE_BITS).view(np.float64)
    return open_unit(h >> uint64(32), 32), open_unit(low >> uint64(2), 30), signs


@njit(cache=True, nogil=True, inline="always")
def box_muller_radius(u: float) -> float:
    """Stage 2 of :func:`normal_pair_at`: ``sqrt(-2 log u)``."""
    return np.sqrt(-2.0 * log_positive(u))


@njit(cache=True, nogil=True, inline="always")
def box_muller_pair(radius: float, fraction: float, signs: float) -> tuple[float, float]:
    """Stage 3 of :func:`normal_pair_at`: the pair at ``radius`` and the angle of
    ``fraction`` of a quarter turn, signed by ``signs`` (from :func:`box_muller_uniforms`)."""
    bits = np.float64(signs).view(np.uint64)
    cos_angle, sin_angle = cos_sin_quarter_turn(fraction)
    first = -radius * cos_angle if bits & uint64(1) else radius * cos_angle
    second = -radius * sin_angle if bits & uint64(2) else radius * sin_angle
    return first, second
