"""One batch's near-duplicate search: the index picks candidates, the bags decide.

:class:`BatchNear` looks every item of a batch up in the stream's index *before* the
first one is decided, so that the stored texts of all their candidates are read in one
query (:meth:`~guards.validation.recheck.BatchBags.load`), not one per candidate. The
items the batch accepts as it goes are candidates of the items after them: they are
kept in a small index of the batch's own, whose best candidates join the ones looked up
ahead, so each item is decided among the same best :data:`MAX_RECHECKS` candidates the
whole index would give. Their bags are built from their features, never read back.

A sketcher that is not ``rechecked`` (SimHash) is decided on the index's best distance,
as before: nothing is looked up ahead.

Example:
    >>> top([(1, 0.0, 0.8), (2, 0.0, 0.9), (3, 5.0, 0.9)], limit=2)
    [(3, 5.0, 0.9), (2, 0.0, 0.9)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from guards.store import Tx
from guards.validation.bags import Bag, bag, bag_of
from guards.validation.index import StreamIndex
from guards.validation.prepared import PreparedItem, legacy_sketch
from guards.validation.recheck import MAX_RECHECKS, BagCache, BatchBags, Candidate, confirm
from guards.validation.sketchers import Sketcher

__all__ = ["BatchNear", "top"]


def top(candidates: Iterable[Candidate], *, limit: int = MAX_RECHECKS) -> list[Candidate]:
    """The ``limit`` best ``(rowid, at, estimate)``: the highest estimate first, the newest
    on a tie (the order of :meth:`StreamIndex.nearest`)."""
    return sorted(candidates, key=lambda c: (c[2], c[0], c[1]), reverse=True)[:limit]


class BatchNear:
    """The near-duplicates of one batch's items, in a stream's ``index`` (and its
    ``legacy`` index of rows an older version sketched, while any are in the window)."""

    def __init__(
        self,
        tx: Tx,
        *,
        sketcher: Sketcher,
        index: StreamIndex,
        not_before: float,
        items: Sequence[PreparedItem],
        cache: BagCache,
        legacy: StreamIndex | None = None,
    ) -> None:
        self._sketcher = sketcher
        self._index = index
        self._legacy = legacy
        self._not_before = not_before
        self.bags = BatchBags(tx, names=sketcher.names, cache=cache)
        self._own = StreamIndex(sketcher) if sketcher.rechecked else None
        self._ahead: dict[int, list[Candidate]] = {}
        self._legacy_ahead: dict[int, list[Candidate]] = {}
        self._mine: tuple[int, Bag | None] | None = None  # the last item's bag, by index
        if self._own is not None:
            self._look_ahead(items)

    def _look_ahead(self, items: Sequence[PreparedItem]) -> None:
        nearest, legacy, not_before = self._index.nearest, self._legacy, self._not_before
        for i, p in enumerate(items):
            if p.rejected is not None:
                continue
            self._ahead[i] = nearest(p.sketch, not_before=not_before, limit=MAX_RECHECKS)
            if legacy is not None:
                old_way = p.legacy_sketch or legacy_sketch(p.text, self._sketcher)
                found = {
                    hit[0]: hit
                    for sketch in (old_way, p.sketch)
                    for hit in legacy.nearest(sketch, not_before=not_before, limit=MAX_RECHECKS)
                }
                self._legacy_ahead[i] = list(found.values())
        self.bags.load(
            rowid
            for found in (*self._ahead.values(), *self._legacy_ahead.values())
            for rowid, _, _ in found
        )

    def find(self, i: int, p: PreparedItem) -> Candidate | None:
        """The best near-duplicate of item ``i`` (``p``) as ``(rowid, at, similarity)``."""
        not_before = self._not_before
        if self._own is None:  # the distance decides
            hit = self._index.best(p.sketch, not_before=not_before)
            if hit is None and self._legacy is not None:
                hit = self._legacy.best(p.sketch, not_before=not_before)
            return hit
        ahead = self._ahead.get(i)
        if ahead is None:  # an item not looked up ahead (none is): look it up now
            ahead = self._index.nearest(p.sketch, not_before=not_before, limit=MAX_RECHECKS)
        own = self._own.nearest(p.sketch, not_before=not_before, limit=MAX_RECHECKS)
        candidates = top([*ahead, *own])
        hit = None
        if candidates:
            hit = confirm(
                self.bags, candidates=candidates, mine=self._bag(i, p), sketcher=self._sketcher
            )
        legacy = self._legacy_ahead.get(i)
        if hit is None and legacy:
            hit = confirm(
                self.bags, candidates=legacy, mine=self._bag(i, p), sketcher=self._sketcher
            )
        return hit

    def accepted(self, i: int, p: PreparedItem, *, rowid: int, at: float) -> None:
        """Item ``i`` was accepted and remembered as ``rowid``: a candidate of the items
        after it in the batch (and, once committed, of later batches)."""
        if self._own is None:
            return
        self._own.add(p.sketch, rowid=rowid, at=at)
        mine = self._mine[1] if self._mine is not None and self._mine[0] == i else None
        if mine is not None:
            self.bags.own(rowid, mine)
        elif p.features:
            self.bags.own(rowid, p.features)

    def keep(self) -> None:
        """The batch is committed (run after the commit)."""
        self.bags.keep()

    def _bag(self, i: int, p: PreparedItem) -> Bag | None:
        """Item ``i``'s bag, built once from the features it was sketched from."""
        if self._mine is None or self._mine[0] != i:
            if p.features:
                made: Bag | None = bag(p.features)
            elif p.text:
                made = bag_of(p.text, names=self._sketcher.names, prepared=True)
            else:
                made = None
            self._mine = (i, made)
        return self._mine[1]
