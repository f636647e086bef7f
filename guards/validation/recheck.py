"""The exact re-check of near-duplicate candidates (audit26 A3 M1), at a bounded cost.

The index finds candidates by their MinHash estimate, from a margin under the
threshold; each candidate (at most :data:`MAX_RECHECKS`, the best estimates first) is
then decided on the exact similarity of the two items' feature bags
(:func:`guards.validation.bags.similarity`), so a rejection never rests on hash luck.

What that costs is bounded per batch (review26 R1 M2), not paid per candidate:

* an item's own bag is built from the features its sketch was made from
  (:attr:`~guards.validation.prepared.PreparedItem.features`), once, and only when it
  has candidates;
* a batch reads the stored texts of all its candidates in one query
  (:meth:`BatchBags.load`), and builds each candidate's bag once, however many of its
  items name it;
* the bags of items remembered lately stay in a :class:`BagCache` across batches
  (:data:`CACHE_FEATURES` features, about 10 MB, the least recently used go first):
  in a stream of one template every sibling is as alike as the next, so the candidates
  are the newest items, the ones the batches before just remembered. Only committed
  rows enter it (a rolled-back row's id is given again), and a prune empties it.

A row remembered before its text was kept (migration 0046) has none: its bag is read
from its preview only when the preview provably is the whole text, that is when the
exact fingerprint of the preview's normalised form is the row's own (a preview collapses
white space and is cut at 120 characters, so a text with a long run of blanks, or shown
from markup, can look whole when it is not: review26 R1 L6); else the estimate decides,
as it did, until the row leaves the window.

Example:
    >>> cache = BagCache(max_features=3)
    >>> cache.put(1, [("w:storm", 4), ("w:ireland", 8)])
    >>> cache.put(2, [("w:quake", 4), ("w:japan", 8)])  # 4 features: 1 goes
    >>> cache.get(1), sorted(cache.get(2).weights)
    (None, ['w:japan', 'w:quake'])
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TypeAlias

from guards.store import Tx
from guards.validation import repo
from guards.validation.bags import Bag, bag, bag_of, similarity, text_of
from guards.validation.normalize import casefold, exact_fingerprint, prepare
from guards.validation.sketchers import Sketcher

__all__ = ["CACHE_FEATURES", "MAX_RECHECKS", "BagCache", "BatchBags", "confirm", "whole"]

#: candidates re-checked per item and index: a template stream (thousands of items a
#: little under the threshold) costs a bounded number of bags, not one per sibling
MAX_RECHECKS = 8
#: the features the cache of remembered items' bags holds at most (a headline has about
#: 70, a 2 KB text about 1,600; about 100 bytes each)
CACHE_FEATURES = 100_000

#: a bag, or the features it is built from when first asked for
Entry: TypeAlias = "Bag | Sequence[tuple[str, int]]"
Candidate: TypeAlias = tuple[int, float, float]


def _size(entry: Entry) -> int:
    return len(entry.weights) if isinstance(entry, Bag) else len(entry)


def _as_bag(entry: Entry) -> Bag:
    return entry if isinstance(entry, Bag) else bag(entry)


class BagCache:
    """The bags of committed items by row id, within ``max_features`` features; past it
    the least recently used go."""

    def __init__(self, *, max_features: int = CACHE_FEATURES) -> None:
        self.max_features = max_features
        self._entries: OrderedDict[int, Entry] = OrderedDict()
        #: features held
        self.features = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, rowid: object) -> bool:
        return rowid in self._entries

    def get(self, rowid: int) -> Bag | None:
        """The item's bag, now the most recently used; None when it is not held."""
        entry = self._entries.get(rowid)
        if entry is None:
            return None
        self._entries.move_to_end(rowid)
        if isinstance(entry, Bag):
            return entry
        made = bag(entry)
        self._entries[rowid] = made
        self.features += len(made.weights) - len(entry)
        return made

    def put(self, rowid: int, entry: Entry) -> None:
        """Hold an item's bag (or its features) as the most recently used."""
        old = self._entries.pop(rowid, None)
        if old is not None:
            self.features -= _size(old)
        self._entries[rowid] = entry
        self.features += _size(entry)
        while self.features > self.max_features and len(self._entries) > 1:
            _, gone = self._entries.popitem(last=False)
            self.features -= _size(gone)

    def clear(self) -> None:
        self._entries.clear()
        self.features = 0


class BatchBags:
    """The bags of one batch's candidates and accepted items: the candidates' rows read in
    one query (:meth:`load`), each bag built once; :meth:`keep` hands them to the cache
    once the batch is committed."""

    def __init__(self, tx: Tx, *, names: bool, cache: BagCache) -> None:
        self._tx = tx
        self._names = names
        self._cache = cache
        self._rows: dict[int, tuple[bytes | None, str | None, int | None]] = {}
        self._learned: dict[int, Entry] = {}
        self._none: set[int] = set()  # rows with no bag to read: the estimate decides
        #: queries made for candidates' rows
        self.reads = 0

    def load(self, rowids: Iterable[int]) -> None:
        """Read the rows of those of ``rowids`` whose bag is not at hand, in one query."""
        held, learned, rows = self._cache, self._learned, self._rows
        wanted = {r for r in rowids if r not in held and r not in learned and r not in rows}
        if not wanted:
            return
        self.reads += 1
        for rowid, feature_text, preview, exact in repo.items_feature_texts(self._tx, wanted):
            rows[rowid] = (feature_text, preview, exact)
        self._none.update(wanted - rows.keys())  # gone (pruned meanwhile)

    def own(self, rowid: int, entry: Entry) -> None:
        """An item this batch accepted (remembered as ``rowid``)."""
        self._learned[rowid] = entry

    def get(self, rowid: int) -> Bag | None:
        """A candidate's bag; None when it has none to read (the estimate decides)."""
        entry = self._learned.get(rowid)
        if entry is not None:
            self._learned[rowid] = ready = _as_bag(entry)
            return ready
        cached = self._cache.get(rowid)
        if cached is not None or rowid in self._none:
            return cached
        if rowid not in self._rows:
            self.load([rowid])  # not a candidate :meth:`load` was told of
        row = self._rows.pop(rowid, None)
        made: Bag | None = None if row is None else _stored_bag(*row, names=self._names)
        if made is None:
            self._none.add(rowid)
        else:
            self._learned[rowid] = made
        return made

    def keep(self) -> None:
        """The batch is committed: its bags may serve the batches after it."""
        for rowid, entry in self._learned.items():
            self._cache.put(rowid, entry)
        self._learned.clear()


def whole(preview: str, exact: int | None) -> bool:
    """Whether a stored preview provably is its item's whole text: its normalised form has
    the item's exact fingerprint (a cut or a collapsed run of blanks changes it).

    >>> text = "Weather alert: heavy snow in Berlin" + " " * 500 + "and Hamburg"
    >>> stored = exact_fingerprint(casefold(prepare(text)))
    >>> whole("Weather alert: heavy snow in Berlin", stored), whole(text, stored)
    (False, True)
    """
    return exact is not None and exact_fingerprint(casefold(prepare(preview))) == exact


def _stored_bag(
    feature_text: bytes | None, preview: str | None, exact: int | None, *, names: bool
) -> Bag | None:
    text = text_of(feature_text) if feature_text is not None else None
    if text is not None:
        return bag_of(text, names=names, prepared=True)
    if preview and whole(preview, exact):
        return bag_of(preview, names=names)
    return None


def confirm(
    bags: BatchBags,
    *,
    candidates: Iterable[Candidate],
    mine: Bag | None,
    sketcher: Sketcher,
) -> Candidate | None:
    """The best candidate that is a near-duplicate as ``(rowid, at, similarity)``: the
    exact similarity of its bag to ``mine`` (the item's) at least the threshold, the newest
    on a tie. A candidate with no bag to compare (or an item with none) is decided on its
    estimate, as before the re-check.

    ``candidates`` are ``(rowid, at, estimate)`` from :meth:`StreamIndex.nearest`.
    """
    found: tuple[float, int, float] | None = None
    for rowid, at, estimate in candidates:
        theirs = bags.get(rowid) if mine is not None else None
        if mine is None or theirs is None:  # no bag to compare: the estimate decides
            score: float | None = estimate if estimate >= sketcher.decisive else None
        else:
            exact = similarity(mine, theirs)
            score = round(exact, 3) if exact is not None and exact >= sketcher.threshold else None
        if score is not None and (found is None or (score, rowid) > (found[0], found[1])):
            found = (score, rowid, at)
    return None if found is None else (found[1], found[2], found[0])
