"""The in-memory index that finds near-duplicates sub-linearly.

A sketcher (:mod:`guards.validation.sketchers`) turns features into a fixed-width sketch
and cuts it into *bands*; :class:`StreamIndex` keeps one stream's sketches and, per band,
chains of the items that share a 16-bit bucket. A lookup walks only the chains its own
bands name, so it touches about ``bands × n / 65536`` items instead of ``n``.

Memory per remembered item: the sketch (32 or 8 bytes), its row id and time (16
bytes), and per band a chain link (4 bytes) and, for MinHash, a tag (2 bytes):
96 bytes an item with MinHash, 40 with SimHash. A band's bucket heads sit in a
dict while the stream is small and in a flat 256 KB array once the dict would be
bigger (about 3,600 buckets): a MinHash stream's heads never pass 2 MB.

The index is a cache: SQLite holds every row, and an index is rebuilt from rows
after a restart. It counts the inserts not yet known to be committed
(:meth:`StreamIndex.commit` clears the count); the engine drops an index whose
inserts a rollback may have undone and reloads it from the rows. :class:`IndexCache`
keeps a process's indexes within a byte budget (``validation.index_memory_mb``): past
it, the least recently used streams are dropped, and each reloads on its next batch.

Example:
    >>> from guards.validation.sketchers import MinHashSketcher
    >>> sk = MinHashSketcher(threshold=0.7)
    >>> index = StreamIndex(sk)
    >>> s = sk.sketch([("w:storm", 4), ("w:ireland", 4)])
    >>> index.add(s, rowid=1, at=0.0)
    >>> index.best(s, not_before=0.0)
    (1, 0.0, 1.0)
"""

from __future__ import annotations

import heapq
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any, TypeAlias

from guards.validation.sketchers import Sketcher

__all__ = ["IndexCache", "IndexKey", "StreamIndex"]

_BUCKETS = 1 << 16
# a dict entry of heads, int key and value included (tracemalloc measured about 65)
_DICT_ENTRY_BYTES = 72
# a band's heads live in a dict while few buckets are used, then in a flat array of
# 4-byte slots, from where the dict would take more room than the array
_DENSE_AT = _BUCKETS * 4 // _DICT_ENTRY_BYTES
Heads: TypeAlias = "dict[int, int] | array[int]"
#: a cached index's key: the stream's id and the sketch kind it holds
IndexKey: TypeAlias = tuple[int, str]


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
        #: set when the rows were read off the writer: the largest item id of that read.
        #: Rows with a larger id may be missing until a write catches up and clears it.
        self.behind: int | None = None

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

    def extend(self, rows: Iterable[tuple[int, float, bytes]]) -> None:
        """Remember ``(rowid, at, sketch)`` rows, as loaded from the database."""
        for rowid, at, sketch in rows:
            self.add(sketch, rowid=rowid, at=at)

    def commit(self) -> None:
        """The inserts so far are on disk: keep them."""
        self._uncommitted = 0

    def nbytes(self) -> int:
        """Bytes held by the index's buffers (a dict of heads at ~72 bytes an entry)."""
        arrays: list[array[Any]] = [self._rowids, self._ats, *self._next, *(self._tags or [])]
        total = len(self._sketches) + sum(len(a) * a.itemsize for a in arrays)
        for heads in self._heads:
            if isinstance(heads, dict):
                total += len(heads) * _DICT_ENTRY_BYTES
            else:
                total += len(heads) * heads.itemsize
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

    def _scored(self, sketch: bytes, *, not_before: float) -> Iterator[tuple[float, int, float]]:
        """``(similarity, rowid, at)`` of each live candidate the scorer lets through."""
        width, sketches, ats, rowids = self._width, self._sketches, self._ats, self._rowids
        score = self.sketcher.scorer(sketch)
        for slot in self.candidates(sketch):
            at = ats[slot]
            if at < not_before:
                continue
            similarity = score(sketches[slot * width : (slot + 1) * width])
            if similarity is not None:
                yield similarity, rowids[slot], at

    def best(self, sketch: bytes, *, not_before: float) -> tuple[int, float, float] | None:
        """The most similar live item as ``(rowid, at, similarity)``, newest on a tie."""
        found = max(self._scored(sketch, not_before=not_before), default=None)
        return None if found is None else (found[1], found[2], found[0])

    def nearest(
        self, sketch: bytes, *, not_before: float, limit: int
    ) -> list[tuple[int, float, float]]:
        """Up to ``limit`` live items the scorer lets through, as ``(rowid, at, score)``,
        the highest score first, newest on a tie (the candidates of an exact re-check).

        >>> from guards.validation.sketchers import MinHashSketcher
        >>> index = StreamIndex(MinHashSketcher(threshold=0.7))
        >>> index.add(bytes(32), rowid=1, at=0.0)
        >>> index.add(bytes(32), rowid=2, at=5.0)
        >>> index.nearest(bytes(32), not_before=0.0, limit=8)
        [(2, 5.0, 1.0), (1, 0.0, 1.0)]
        """
        found = heapq.nlargest(limit, self._scored(sketch, not_before=not_before))
        return [(rowid, at, similarity) for similarity, rowid, at in found]

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


class IndexCache:
    """Streams' indexes within a byte budget; past it, the least recently used go.

    An index is a cache of rows, so dropping one is always safe: its stream's next
    batch loads it again. Sizes are measured when an index is stored and when the
    engine says it grew (:meth:`measure`); :attr:`nbytes` and :attr:`items` are their
    sums, so keeping the budget costs nothing per lookup. The index just stored or
    measured is never the one dropped: one stream bigger than the whole budget stays
    until another is used.

    Example:
        >>> from guards.validation.sketchers import SimHashSketcher
        >>> sk = SimHashSketcher(max_distance=3)
        >>> cache = IndexCache(max_bytes=1000)
        >>> for stream_id in (1, 2):
        ...     index = StreamIndex(sk)
        ...     index.add(bytes(8), rowid=stream_id, at=0.0)
        ...     cache.put((stream_id, sk.kind), index)
        >>> cache.nbytes
        656
        >>> cache.get((1, sk.kind)) is not None  # stream 1 is now the most recently used
        True
        >>> cache.max_bytes = 500  # stream 2 goes at the next put or measure
        >>> cache.measure((1, sk.kind))
        >>> cache.keys(), cache.evictions
        ([(1, 'simhash64-nocase')], 1)
    """

    def __init__(self, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._indexes: OrderedDict[IndexKey, StreamIndex] = OrderedDict()
        self._sizes: dict[IndexKey, tuple[int, int]] = {}
        #: the measured items and bytes of every index held
        self.items = 0
        self.nbytes = 0
        #: indexes dropped to stay within the budget, since the start
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._indexes)

    def __contains__(self, key: object) -> bool:
        return key in self._indexes

    def keys(self) -> list[IndexKey]:
        """The keys, least recently used first (a copy: safe from any thread)."""
        return list(self._indexes)

    def items_held(self) -> list[tuple[IndexKey, StreamIndex]]:
        """``(key, index)`` pairs, least recently used first (a copy)."""
        return list(self._indexes.items())

    def get(self, key: IndexKey) -> StreamIndex | None:
        """The index, now the most recently used; None when it is not held."""
        index = self._indexes.get(key)
        if index is not None:
            self._indexes.move_to_end(key)
        return index

    def peek(self, key: IndexKey) -> StreamIndex | None:
        """The index, leaving the order alone."""
        return self._indexes.get(key)

    def put(self, key: IndexKey, index: StreamIndex) -> None:
        """Hold ``index`` as the most recently used, then drop others past the budget."""
        self.pop(key)
        self._indexes[key] = index
        self.measure(key)

    def replace(self, key: IndexKey, index: StreamIndex) -> None:
        """Swap a held index for another (a compacted one), keeping its place."""
        if key in self._indexes:
            self._indexes[key] = index
            self.measure(key)

    def measure(self, key: IndexKey) -> None:
        """Take the index's size again (it grew), then drop others past the budget."""
        index = self._indexes.get(key)
        if index is None:
            return
        items, nbytes = self._sizes.get(key, (0, 0))
        size = (len(index), index.nbytes())
        self._sizes[key] = size
        self.items += size[0] - items
        self.nbytes += size[1] - nbytes
        self._evict(keep=key)

    def pop(self, key: IndexKey) -> StreamIndex | None:
        index = self._indexes.pop(key, None)
        items, nbytes = self._sizes.pop(key, (0, 0))
        self.items -= items
        self.nbytes -= nbytes
        return index

    def clear(self) -> None:
        self._indexes.clear()
        self._sizes.clear()
        self.items = self.nbytes = 0

    def _evict(self, *, keep: IndexKey) -> None:
        while self.nbytes > self.max_bytes and len(self._indexes) > 1:
            oldest = next(iter(self._indexes))
            if oldest == keep:  # only when ``keep`` was not used last: spare it once
                self._indexes.move_to_end(oldest)
                oldest = next(iter(self._indexes))
            self.pop(oldest)
            self.evictions += 1


def _dense(heads: dict[int, int]) -> array[int]:
    table = array("i", [-1]) * _BUCKETS
    for key, slot in heads.items():
        table[key] = slot
    return table
