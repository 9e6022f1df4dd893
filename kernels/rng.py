"""Counter-based random numbers keyed by (seed, order id, bar, stream).

A draw is a pure function of its key, so a seeded simulation gives bit-identical results
however orders are batched, ordered or split across threads. The mixer is SplitMix64
(Steele, Lea and Flood 2014), whose finaliser is a strong 64-bit bijection.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

STREAM_LATENCY = 0
STREAM_SLIPPAGE = 1

_GOLDEN = uint64(0x9E3779B97F4A7C15)
_MIX1 = uint64(0xBF58476D1CE4E5B9)
_MIX2 = uint64(0x94D049BB133111EB)
_TWO_POW_MINUS_53 = 1.0 / 9007199254740992.0


@njit(cache=True, nogil=True, inline="always")
def splitmix64(x: np.uint64) -> np.uint64:
    """SplitMix64 finaliser of ``x + golden ratio``: a bijection on 64-bit integers."""
    z = uint64(x) + _GOLDEN
    z = (z ^ (z >> uint64(30))) * _MIX1
    z = (z ^ (z >> uint64(27))) * _MIX2
    return z ^ (z >> uint64(31))


@njit(cache=True, nogil=True, inline="always")
def key_hash(seed: np.uint64, order_id: int, bar: int, stream: int) -> np.uint64:
    """64 random bits for one (seed, order id, bar, stream) key."""
    h = splitmix64(uint64(seed) ^ uint64(stream))
    h = splitmix64(h ^ uint64(order_id))
    return splitmix64(h ^ uint64(bar))


@njit(cache=True, nogil=True, inline="always")
def uniform(seed: np.uint64, order_id: int, bar: int, stream: int) -> float:
    """Uniform draw in the open interval (0, 1) from the top 53 bits of the key hash."""
    h = key_hash(seed, order_id, bar, stream)
    return (float(h >> uint64(11)) + 0.5) * _TWO_POW_MINUS_53


@njit(cache=True, nogil=True, inline="always")
def standard_normal(seed: np.uint64, order_id: int, bar: int, stream: int) -> float:
    """Standard normal draw by Box-Muller from two independent uniforms of one key."""
    u1 = uniform(seed, order_id, bar, 2 * stream)
    u2 = uniform(seed, order_id, bar, 2 * stream + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
