"""The exact re-check of near-duplicate candidates (audit26 A3 M1).

The index finds candidates by their MinHash estimate, from a margin under the
threshold; each candidate (at most :data:`MAX_RECHECKS`, the best estimates first) is
then decided on the exact similarity of the two items' feature bags
(:func:`guards.validation.bags.similarity`), so a rejection never rests on hash luck.
The cost is one primary-key read and the features of the two texts per candidate
(about 0.1 ms for a headline), whatever the stream's size.

A row remembered before its text was kept (migration 0046) has none: its bag is read
from its preview when the preview holds the whole text (up to
:data:`~guards.validation.types.ITEM_PREVIEW_CHARS` characters as shown), else the
estimate decides, as it did, until the row leaves the window.

Example:
    >>> complete("Order #48213 shipped"), complete("x" * 119 + "…")
    (True, False)
"""

from __future__ import annotations

from collections.abc import Iterable

from guards.store import Tx
from guards.validation import repo
from guards.validation.bags import Bag, bag_of, similarity, text_of
from guards.validation.sketchers import Sketcher
from guards.validation.types import ITEM_PREVIEW_CHARS

__all__ = ["MAX_RECHECKS", "complete", "confirm"]

#: candidates re-checked per item and index: a template stream (thousands of items a
#: little under the threshold) costs a bounded number of reads, not one per sibling
MAX_RECHECKS = 8


def complete(preview: str) -> bool:
    """Whether a stored preview is the whole text (it was not clipped)."""
    return len(preview) < ITEM_PREVIEW_CHARS or not preview.endswith("…")


def confirm(
    tx: Tx,
    *,
    candidates: Iterable[tuple[int, float, float]],
    text: str,
    sketcher: Sketcher,
) -> tuple[int, float, float] | None:
    """The best candidate that is a near-duplicate as ``(rowid, at, similarity)``: the
    exact similarity of its bag to the bag of ``text`` (prepared) at least the
    threshold, the newest on a tie.

    ``candidates`` are ``(rowid, at, estimate)`` from :meth:`StreamIndex.nearest`.
    """
    mine = bag_of(text, names=sketcher.names, prepared=True) if text else None
    found: tuple[float, int, float] | None = None
    for rowid, at, estimate in candidates:
        theirs = _stored_bag(tx, rowid, names=sketcher.names) if mine is not None else None
        if mine is None or theirs is None:  # no bag to compare: the estimate decides
            score: float | None = estimate if estimate >= sketcher.decisive else None
        else:
            exact = similarity(mine, theirs)
            score = round(exact, 3) if exact is not None and exact >= sketcher.threshold else None
        if score is not None and (found is None or (score, rowid) > (found[0], found[1])):
            found = (score, rowid, at)
    return None if found is None else (found[1], found[2], found[0])


def _stored_bag(tx: Tx, rowid: int, *, names: bool) -> Bag | None:
    blob, preview = repo.item_feature_text(tx, rowid)
    text = text_of(blob) if blob is not None else None
    if text is not None:
        return bag_of(text, names=names, prepared=True)
    if preview and complete(preview):
        return bag_of(preview, names=names)
    return None
