"""Sketches and the in-memory index that finds near-duplicates sub-linearly.

A :class:`Sketcher` turns features into a fixed-width sketch and cuts it into
*bands*; :class:`StreamIndex` keeps one stream's sketches and, per band, chains of
the items that share a 16-bit bucket. A lookup walks only the chains its own
bands name, so it touches about ``bands × n / 65536`` items instead of ``n``.

* :class:`MinHashSketcher` (the default): a 32-byte MinHash signature, banded
  LSH-style into 8 bands of 4 bins. Two items become candidates when one band
  agrees, which for similarity 0.7 happens with probability ≈ 0.89 per pair and
  ≈ 0.998 at 0.85, while unrelated items (similarity ≈ 0.01-0.1) almost never
  agree. A band is 32 bits, mixed: 16 pick the bucket and 16 are kept per item
  as a *tag*, so a chain step is one integer compare. A candidate is a match when its
  estimated similarity reaches the threshold.
* :class:`SimHashSketcher`: a 64-bit SimHash in 4 blocks of 16 bits. Two sketches
  within Hamming distance *d* have a block differing in at most ``d // 4`` bits
  (pigeonhole), so a lookup probes, in each block's table, every value within that
  radius: one probe per block up to *d* = 3, 17 up to 7. Exact: every sketch
  within *d* is found.

Memory per remembered item: the sketch (32 or 8 bytes), its row id and time (16
bytes), and per band a chain link (4 bytes) and, for MinHash, a tag (2 bytes):
96 bytes an item with MinHash, 40 with SimHash. A band's bucket heads sit in a
dict while the stream is small and in a flat 256 KB array once it uses more than
8,192 buckets.

The index is a cache: SQLite holds every row, and an index is rebuilt from rows
after a restart. It counts the inserts not yet known to be committed
(:meth:`StreamIndex.commit` clears the count); the engine drops an index whose
inserts a rollback may have undone and reloads it from the rows.

Example:
    >>> sk = MinHashSketcher(threshold=0.7)
    >>> index = StreamIndex(sk)
    >>> s = sk.sketch([("w:storm", 4), ("w:ireland", 4)])
    >>> index.add(s, rowid=1, at=0.0)
    >>> index.best(s, not_before=0.0)
    (1, 0.0, 1.0)
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any, Protocol, TypeAlias

from guards.validation import minhash, simhash

__all__ = ["MinHashSketcher", "SimHashSketcher", "Sketcher", "StreamIndex"]

_BUCKETS = 1 << 16
# a band's heads live in a dict while few buckets are used, then in a flat array
_DENSE_AT = 8192
_MIX32 = 0x9E3779B1  # odd: multiplying by it permutes 32-bit values
Scorer = Callable[[bytes | bytearray], float | None]
Heads: TypeAlias = "dict[int, int] | array[int]"


class Sketcher(Protocol):
    """How to sketch features, band a sketch, and score two sketches."""

    #: stored with every row; rows of another kind are not loaded into this index
    kind: str
    width: int
    bands: int
    #: whether two sketches in one bucket may differ in the band (then tags tell them apart)
    tagged: bool

    def sketch(self, weighted: Sequence[tuple[str, int]]) -> bytes: ...

    def keys(self, sketch: bytes) -> list[tuple[int, int]]:
        """Per band, the sketch's own ``(bucket, tag)`` (tag 0 when untagged)."""
        ...

    def probes(self, sketch: bytes) -> list[tuple[Sequence[int], int]]:
        """Per band, the buckets to look up and the tag a candidate must carry."""
        ...

    def scorer(self, sketch: bytes) -> Scorer:
        """A function giving a stored sketch's similarity to ``sketch`` (in [0, 1]) when it
        is a near-duplicate, else None."""
        ...


class MinHashSketcher:
    """MinHash signatures (:mod:`guards.validation.minhash`), 8 bands × 4 bins."""

    kind = f"minhash{minhash.BINS}"
    width = minhash.BINS
    bands = 8
    tagged = True

    def __init__(self, *, threshold: float) -> None:
        self.threshold = threshold
        self._most_differing = minhash.most_differing(threshold)
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

    kind = "simhash64"
    width = 8
    bands = 4
    tagged = False  # the bucket is the whole block

    def __init__(self, *, max_distance: int) -> None:
        self.max_distance = max_distance
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


class StreamIndex:
    """One stream's remembered sketches, banded for sub-linear lookups."""

    def __init__(self, sketcher: Sketcher) -> None:
        self.sketcher = sketcher
        self._width = sketcher.width
        self._sketches = bytearray()
        self._rowids = array("q")
        self._ats = array("d")
        self._heads: list[Heads] = [{} for _ in range(sketcher.bands)]
        self._next: list[array[int]] = [array("i") for _ in range(sketcher.bands)]
        self._tags: list[array[int]] | None = (
            [array("H") for _ in range(sketcher.bands)] if sketcher.tagged else None
        )
        self._uncommitted = 0

    def __len__(self) -> int:
        return len(self._rowids)

    @property
    def uncommitted(self) -> int:
        """Inserts not yet confirmed by :meth:`commit`."""
        return self._uncommitted

    def add(self, sketch: bytes, *, rowid: int, at: float) -> None:
        """Remember one item (uncommitted until :meth:`commit`)."""
        if len(sketch) != self._width:
            raise ValueError(f"a {self.sketcher.kind} sketch is {self._width} bytes")
        slot = len(self._rowids)
        self._sketches += sketch
        self._rowids.append(rowid)
        self._ats.append(at)
        for band, (bucket, tag) in enumerate(self.sketcher.keys(sketch)):
            heads = self._heads[band]
            if isinstance(heads, dict):
                self._next[band].append(heads.get(bucket, -1))
                heads[bucket] = slot
                if len(heads) > _DENSE_AT:
                    self._heads[band] = _dense(heads)
            else:
                self._next[band].append(heads[bucket])
                heads[bucket] = slot
            if self._tags is not None:
                self._tags[band].append(tag)
        self._uncommitted += 1

    def commit(self) -> None:
        """The inserts so far are on disk: keep them."""
        self._uncommitted = 0

    def nbytes(self) -> int:
        """Bytes held by the index's buffers (dict heads counted at ~100 bytes an entry)."""
        arrays: list[array[Any]] = [self._rowids, self._ats, *self._next, *(self._tags or [])]
        total = len(self._sketches) + sum(len(a) * a.itemsize for a in arrays)
        for heads in self._heads:
            total += len(heads) * 100 if isinstance(heads, dict) else len(heads) * heads.itemsize
        return total

    def candidates(self, sketch: bytes) -> list[int]:
        """Slots sharing a band with ``sketch``, each once."""
        seen: set[int] = set()
        found: list[int] = []
        tags = self._tags
        for band, (buckets, tag) in enumerate(self.sketcher.probes(sketch)):
            heads, nxt = self._heads[band], self._next[band]
            band_tags = tags[band] if tags is not None else None
            for bucket in buckets:
                slot = heads.get(bucket, -1) if isinstance(heads, dict) else heads[bucket]
                while slot >= 0:
                    if (band_tags is None or band_tags[slot] == tag) and slot not in seen:
                        seen.add(slot)
                        found.append(slot)
                    slot = nxt[slot]
        return found

    def best(self, sketch: bytes, *, not_before: float) -> tuple[int, float, float] | None:
        """The most similar live item as ``(rowid, at, similarity)``, newest on a tie."""
        found: tuple[float, int, float] | None = None
        width, sketches, ats = self._width, self._sketches, self._ats
        score = self.sketcher.scorer(sketch)
        for slot in self.candidates(sketch):
            at = ats[slot]
            if at < not_before:
                continue
            similarity = score(sketches[slot * width : (slot + 1) * width])
            if similarity is None:
                continue
            rowid = self._rowids[slot]
            if found is None or (similarity, rowid) > (found[0], found[1]):
                found = (similarity, rowid, at)
        if found is None:
            return None
        return found[1], found[2], found[0]

    def expired(self, not_before: float) -> int:
        """How many remembered items are older than ``not_before``."""
        return sum(1 for at in self._ats if at < not_before)

    def compact(self, not_before: float) -> StreamIndex:
        """A fresh index holding only the committed items from ``not_before`` on."""
        if self._uncommitted:
            raise RuntimeError("compact a committed index only")
        fresh = StreamIndex(self.sketcher)
        width = self._width
        for slot, at in enumerate(self._ats):
            if at >= not_before:
                fresh.add(
                    bytes(self._sketches[slot * width : (slot + 1) * width]),
                    rowid=self._rowids[slot],
                    at=at,
                )
        fresh.commit()
        return fresh


def _dense(heads: dict[int, int]) -> array[int]:
    table = array("i", [-1]) * _BUCKETS
    for key, slot in heads.items():
        table[key] = slot
    return table
