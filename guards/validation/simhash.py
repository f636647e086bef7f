"""64-bit SimHash over weighted features, and the distances between sketches.

Charikar's SimHash: every feature hashes to 64 bits; bit *i* of the sketch is 1
when the features whose hash has bit *i* set outweigh those where it is clear.
Texts whose feature bags point the same way get sketches a few bits apart, so
"near-duplicate" becomes "Hamming distance ≤ max_distance".

Summing 64 signed counters per feature is the slow part in pure Python, so the
counters are bit-sliced: a feature's hash is *spread* into one big integer with
a 32-bit field per bit (byte-wise through a 256-entry table, and cached per
feature), the weighted spreads are added as plain integers, and the 64 fields are
read out once per text.

Example:
    >>> a = simhash([("w:storm", 4), ("w:ireland", 4), ("w:power", 4)])
    >>> b = simhash([("w:storm", 4), ("w:ireland", 4), ("w:power", 4)])
    >>> hamming(a, b), similarity(hamming(a, b))
    (0, 1.0)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["BITS", "hamming", "simhash", "similarity"]

BITS = 64
_FIELD = 32
_FIELD_MASK = (1 << _FIELD) - 1
_BYTE_SPREAD = [
    sum(((byte >> bit) & 1) << (_FIELD * bit) for bit in range(8)) for byte in range(256)
]
_CACHE_LIMIT = 200_000
_cache: dict[str, int] = {}


def _spread(feature: str) -> int:
    spread = _cache.get(feature)
    if spread is None:
        digest = hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        spread = 0
        for i, byte in enumerate(digest):  # big-endian: byte i holds bits 56-8i .. 63-8i
            spread |= _BYTE_SPREAD[byte] << (_FIELD * 8 * (7 - i))
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[feature] = spread
    return spread


def simhash(weighted: Iterable[tuple[str, int]]) -> int:
    """The unsigned 64-bit SimHash of ``(feature, weight)`` pairs (0 for none)."""
    acc = 0
    total = 0
    for feature, weight in weighted:
        acc += _spread(feature) * weight
        total += weight
    if total >= 1 << (_FIELD - 1):
        raise ValueError("feature weights too large for the sketch")
    sketch = 0
    for bit in range(BITS):
        if ((acc >> (_FIELD * bit)) & _FIELD_MASK) * 2 > total:
            sketch |= 1 << bit
    return sketch


def hamming(a: int, b: int) -> int:
    """The number of bits in which two sketches differ."""
    return (a ^ b).bit_count()


def similarity(distance: int) -> float:
    """A Hamming distance as a similarity between 0 and 1 (``1 - d/64``), rounded to 3 places."""
    return round(1.0 - distance / BITS, 3)
