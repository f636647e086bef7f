"""Sketchers: how features become a fixed-width sketch, cut into *bands* for the index
(:class:`guards.validation.index.StreamIndex`), and how two sketches are scored.

* :class:`MinHashSketcher` (the default): a 32-byte MinHash signature, banded
  LSH-style into 8 bands of 4 bins. Two items become candidates when one band
  agrees, which for similarity 0.7 happens with probability ≈ 0.89 per pair and
  ≈ 0.998 at 0.85, while unrelated items (similarity ≈ 0.01-0.1) almost never
  agree. A band is 32 bits, mixed: 16 pick the bucket and 16 are kept per item
  as a *tag*, so a chain step is one integer compare. The estimate only picks
  candidates (from :data:`CANDIDATE_MARGIN` under the threshold): a candidate is a match
  when the exact similarity of the two feature bags reaches the threshold
  (:mod:`guards.validation.bags`; ``rechecked``).
* :class:`SimHashSketcher`: a 64-bit SimHash in 4 blocks of 16 bits. Two sketches
  within Hamming distance *d* have a block differing in at most ``d // 4`` bits
  (pigeonhole), so a lookup probes, in each block's table, every value within that
  radius: one probe per block up to *d* = 3, 17 up to 7. Exact: every sketch
  within *d* is found.

Example:
    >>> sk = SimHashSketcher(max_distance=3)
    >>> s = sk.sketch([("w:storm", 4), ("w:ireland", 4)])
    >>> sk.scorer(s)(s), len(sk.keys(s)) == sk.bands
    (1.0, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Protocol

from guards.validation import minhash, simhash

__all__ = [
    "CANDIDATE_MARGIN",
    "LEGACY_MINHASH",
    "MinHashSketcher",
    "Scorer",
    "SimHashSketcher",
    "Sketcher",
]

_MIX32 = 0x9E3779B1  # odd: multiplying by it permutes 32-bit values
Scorer = Callable[[bytes | bytearray], float | None]


class Sketcher(Protocol):
    """How to sketch features, band a sketch, and score two sketches."""

    #: stored with every row; rows of another kind are not loaded into this index
    kind: str
    #: an older kind whose rows a new item is also checked against (sketched the old way)
    legacy_kind: str | None
    width: int
    bands: int
    #: whether two sketches in one bucket may differ in the band (then tags tell them apart)
    tagged: bool
    #: whether the features weigh a capitalised word as a name (see ``features``)
    names: bool
    #: whether :meth:`scorer` only estimates, so a candidate is decided on the items'
    #: feature bags (:mod:`guards.validation.bags`) against :attr:`threshold`
    rechecked: bool
    threshold: float
    #: the least score that decides without the re-check (a row remembered without a bag)
    decisive: float

    def sketch(self, weighted: Sequence[tuple[str, int]]) -> bytes: ...

    def keys(self, sketch: bytes) -> list[tuple[int, int]]:
        """Per band, the sketch's own ``(bucket, tag)`` (tag 0 when untagged)."""
        ...

    def probes(self, sketch: bytes) -> list[tuple[Sequence[int], int]]:
        """Per band, the buckets to look up and the tag a candidate must carry."""
        ...

    def scorer(self, sketch: bytes) -> Scorer:
        """A function giving a stored sketch's similarity to ``sketch`` (in [0, 1]) when it
        is a near-duplicate (when ``rechecked``: may be one, an estimate), else None."""
        ...


#: the kind of MinHash rows written before links were read without scheme, ``www.`` or
#: trailing ``/`` and markup as shown (2026-11-27): a new item is also checked against
#: them, sketched both ways, until they leave the window
#: (:meth:`~guards.validation.streams.StreamIndexes.legacy_live`)
LEGACY_MINHASH = f"minhash{minhash.BINS}"
#: how far under the threshold a MinHash estimate still makes a candidate: two standard
#: errors of a 32-bin estimate near 0.7, so a pair over the threshold is seldom missed
CANDIDATE_MARGIN = 0.15


class MinHashSketcher:
    """MinHash signatures (:mod:`guards.validation.minhash`), 8 bands × 4 bins."""

    kind = f"minhash{minhash.BINS}-links"
    legacy_kind: str | None = LEGACY_MINHASH
    width = minhash.BINS
    bands = 8
    tagged = True
    names = True
    rechecked = True

    def __init__(self, *, threshold: float) -> None:
        self.threshold = threshold
        # the most differing bins of a candidate
        self._most_differing = minhash.most_differing(max(0.0, threshold - CANDIDATE_MARGIN))
        self.decisive = round(minhash.estimate_from(minhash.most_differing(threshold)), 3)
        self._shifts = [32 * (self.bands - 1 - band) for band in range(self.bands)]

    def sketch(self, weighted: Sequence[tuple[str, int]]) -> bytes:
        return minhash.signature(weighted)

    def keys(self, sketch: bytes) -> list[tuple[int, int]]:
        # an odd multiplier is a bijection mod 2**32: the mixed band's high half picks the
        # bucket (so all four bins count), the low half is the tag, and together they are
        # the band itself
        value = int.from_bytes(sketch, "big")
        keys = []
        for s in self._shifts:
            mixed = (((value >> s) & 0xFFFFFFFF) * _MIX32) & 0xFFFFFFFF
            keys.append((mixed >> 16, mixed & 0xFFFF))
        return keys

    def probes(self, sketch: bytes) -> list[tuple[Sequence[int], int]]:
        return [((bucket,), tag) for bucket, tag in self.keys(sketch)]

    def scorer(self, sketch: bytes) -> Scorer:
        differ = minhash.differing_bins(sketch)
        most = self._most_differing

        def score(stored: bytes | bytearray) -> float | None:
            n = differ(stored)
            return round(minhash.estimate_from(n), 3) if n <= most else None

        return score


def _flips(radius: int) -> tuple[int, ...]:
    """Every 16-bit mask with at most ``radius`` bits set."""
    masks = [0]
    for r in range(1, radius + 1):
        masks.extend(sum(1 << i for i in bits) for bits in combinations(range(16), r))
    return tuple(masks)


class SimHashSketcher:
    """64-bit SimHash (:mod:`guards.validation.simhash`) in 4 blocks of 16 bits."""

    # "-nocase": sketched without name weights since 2026-11-27, so a text in capitals
    # is near its sentence-case original; sketches made before are not compared
    kind = "simhash64-nocase"
    legacy_kind: str | None = None  # older SimHash rows are not compared (README: Limits)
    width = 8
    bands = 4
    tagged = False  # the bucket is the whole block
    # A capital's name weight moves a 64-bit sketch by more bits than max_distance when
    # the text is re-posted in capitals (the weights depend on case); MinHash, which
    # scores overlap, keeps them and the precision they buy.
    names = False
    rechecked = False  # the distance decides (README: Limits)

    def __init__(self, *, max_distance: int) -> None:
        self.max_distance = max_distance
        self.threshold = self.decisive = simhash.similarity(max_distance)
        self._flips = _flips(max_distance // self.bands)

    def sketch(self, weighted: Sequence[tuple[str, int]]) -> bytes:
        return simhash.simhash(weighted).to_bytes(8, "big")

    def keys(self, sketch: bytes) -> list[tuple[int, int]]:
        return [((sketch[2 * b] << 8) | sketch[2 * b + 1], 0) for b in range(self.bands)]

    def probes(self, sketch: bytes) -> list[tuple[Sequence[int], int]]:
        flips = self._flips
        return [([block ^ m for m in flips], 0) for block, _ in self.keys(sketch)]

    def scorer(self, sketch: bytes) -> Scorer:
        value = int.from_bytes(sketch, "big")
        limit = self.max_distance

        def score(stored: bytes | bytearray) -> float | None:
            distance = (value ^ int.from_bytes(stored, "big")).bit_count()
            return simhash.similarity(distance) if distance <= limit else None

        return score
