"""MinHash signatures of weighted feature bags: one-permutation hashing, 8 bits a bin.

The estimate of two bags' weighted Jaccard similarity (Σ min weights / Σ max
weights) is the fraction of bins whose minimum agrees. A feature of weight *w*
is *w* elements (``feature#0 .. feature#w-1``), so weights count the way the
Jaccard formula counts them.

* **One permutation** (Li, Owen & Zhang 2012): each element hashes once; its
  top bits pick one of :data:`BINS` bins and the rest competes for that bin's
  minimum. Empty bins borrow the next non-empty bin's value, salted by the
  distance (rotation densification, Shrivastava & Li 2014), so short texts still
  fill every bin.
* **8 bits a bin** (b-bit MinHash, Li & König 2010): only the low byte of each
  minimum is kept, so a signature is :data:`BINS` bytes. Unequal minima agree by
  chance 1 time in 256; :func:`estimate` corrects for it.

Example:
    >>> a = signature([("w:storm", 4), ("w:ireland", 4), ("w:power", 4)])
    >>> len(a), estimate(a, a)
    (32, 1.0)
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterable

__all__ = [
    "BINS",
    "differing_bins",
    "estimate",
    "estimate_from",
    "most_differing",
    "signature",
]

BINS = 32
_BIN_SHIFT = 64 - (BINS.bit_length() - 1)
_M64 = (1 << 64) - 1
_EMPTY = 1 << 64
_CACHE_LIMIT = 200_000
# feature -> its elements for the largest weight seen (a smaller weight takes a prefix),
# each packed as bin << 59 | value. Arrays are not tracked by the garbage collector, so
# neither is this dict: a big cache costs no collector pauses.
_cache: dict[str, array[int]] = {}


def _mix(z: int) -> int:
    """splitmix64's finaliser: a cheap, well-spread 64-bit permutation."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _elements(feature: str, weight: int) -> array[int]:
    """A feature's ``weight`` elements, each ``bin << 59 | value`` (cached)."""
    cached = _cache.get(feature)
    if cached is None or len(cached) < weight:
        digest = hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        base = int.from_bytes(digest, "big")
        cached = array("Q", (_mix(base + j) for j in range(weight)))
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[feature] = cached
    return cached if len(cached) == weight else cached[:weight]


def signature(weighted: Iterable[tuple[str, int]]) -> bytes:
    """The :data:`BINS`-byte signature of ``(feature, weight)`` pairs (weights ≥ 1)."""
    # an element's top bits are its bin, so within a bin comparing elements compares values
    mins = [_EMPTY] * BINS
    cache = _cache
    for feature, weight in weighted:
        elements = cache.get(feature)
        if elements is None or len(elements) != weight:
            elements = _elements(feature, max(1, weight))
        for element in elements:
            b = element >> _BIN_SHIFT
            if element < mins[b]:
                mins[b] = element
    out = bytearray(BINS)
    for i in range(BINS):
        value = mins[i]
        steps = 0
        j = i
        while value == _EMPTY and steps < BINS:
            j = (j + 1) % BINS
            steps += 1
            value = mins[j]
        if value == _EMPTY:
            return bytes(BINS)  # no features at all
        out[i] = (value + steps * 0x9E37) & 0xFF if steps else value & 0xFF
    return bytes(out)


_ONES = int.from_bytes(b"\x01" * BINS, "big")
_CHANCE = 1 / 256


def differing_bins(sketch: bytes | bytearray) -> Callable[[bytes | bytearray], int]:
    """A function counting the bins in which a signature differs from ``sketch``.

    One XOR of the two as integers, then each byte folded onto its low bit.
    """
    mine = int.from_bytes(sketch, "big")

    def differ(other: bytes | bytearray) -> int:
        x = mine ^ int.from_bytes(other, "big")
        x |= x >> 4
        x |= x >> 2
        x |= x >> 1
        return (x & _ONES).bit_count()

    return differ


def estimate_from(differing: int) -> float:
    """The similarity estimate when ``differing`` of the :data:`BINS` bins differ."""
    return max(0.0, ((BINS - differing) / BINS - _CHANCE) / (1 - _CHANCE))


def most_differing(threshold: float) -> int:
    """The most differing bins an estimate of at least ``threshold`` allows."""
    return max(n for n in range(BINS + 1) if n == 0 or estimate_from(n) >= threshold)


def estimate(a: bytes | bytearray, b: bytes | bytearray) -> float:
    """Estimated weighted Jaccard similarity of two signatures, between 0 and 1.

    >>> estimate(bytes(32), bytes([1]) * 32)
    0.0
    """
    return estimate_from(differing_bins(a)(b))
