"""Batch preparation: the pure half of a validation, done before the transaction.

Checking a batch as a whole and normalising and sketching its items needs no
database, so the HTTP handler does it on a worker thread and the writer thread
only looks up and inserts.

Example:
    >>> from guards.config import Validation
    >>> from guards.validation.sketchers import MinHashSketcher
    >>> from guards.validation.types import Batch, Item
    >>> p = prepare_batch(
    ...     Batch("acme/a/bot", "posts", [Item("Hello"), Item(" ")]),
    ...     config=Validation(),
    ...     sketcher=MinHashSketcher(threshold=0.7),
    ... )
    >>> [item.rejected for item in p.items]
    [None, 'empty']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from guards.config import Validation
from guards.errors import InvalidInput
from guards.validation.features import features, shows_anything
from guards.validation.normalize import casefold, exact_fingerprint, prepare
from guards.validation.sketchers import Sketcher
from guards.validation.types import Batch, Item, Reason, parse_stream

__all__ = ["Prepared", "PreparedItem", "legacy_sketch", "prepare_batch"]


@dataclass(frozen=True, slots=True)
class PreparedItem:
    """One item, normalised and sketched, or already rejected without a lookup."""

    item: Item
    rejected: Reason | None  # too_large or empty
    exact: int = 0
    sketch: bytes = b""
    #: sketched the way older versions did (``legacy``): b"" when not asked for
    legacy_sketch: bytes = b""
    #: the prepared text the features are read from (kept for the exact re-check:
    #: :mod:`guards.validation.bags`)
    text: str = ""
    #: the weighted features of ``text`` its sketch was made from: the exact re-check's
    #: bag of the item is built from them, not read again (review26 R1 M2)
    features: Sequence[tuple[str, int]] = ()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch checked as a whole, its items normalised and sketched."""

    batch: Batch
    stream: str
    runaway: bool
    kind: str  # the sketch kind the items were sketched with
    items: list[PreparedItem]
    fingerprint: str | None = None  # of the request, when it carries an idempotency_key


def prepare_batch(
    batch: Batch, *, config: Validation, sketcher: Sketcher, legacy: bool = False
) -> Prepared:
    """Check the batch as a whole, then normalise and sketch each item (with ``legacy``,
    also the way older versions did, for the rows they remembered: ``legacy_kind``).

    A runaway batch (more than ``expected_count × runaway_factor`` items) is not
    sketched: all of it will be rejected.

    Raises:
        InvalidInput: no items, too many, a bad stream name or expected_count, or one
            id given to two different texts.
    """
    stream = parse_stream(batch.stream)
    n = len(batch.items)
    if n == 0:
        raise InvalidInput("items", "items: the batch is empty; send at least one item")
    expected = batch.expected_count
    if expected is not None and (isinstance(expected, bool) or expected < 1):
        raise InvalidInput("expected_count", "expected_count: a whole number of at least 1")
    runaway = expected is not None and n > expected * config.runaway_factor
    if n > config.max_items and not runaway:
        raise InvalidInput(
            "items",
            f"items: {n} items is more than the {config.max_items} allowed per batch; "
            "split the batch",
        )
    legacy = legacy and sketcher.legacy_kind is not None
    items = (
        [] if runaway else [_prepare_item(item, config, sketcher, legacy) for item in batch.items]
    )
    _check_ids(items)
    return Prepared(
        batch=batch,
        stream=stream,
        runaway=runaway,
        kind=sketcher.kind,
        items=items,
        # hashed here, off the writer's path: a batch may hold megabytes of text
        fingerprint=batch.fingerprint() if batch.idempotency_key is not None else None,
    )


def _check_ids(items: list[PreparedItem]) -> None:
    """An id names one item: the same id twice in a batch must carry the same text.

    Raises:
        InvalidInput: naming ``items.<i>.id`` of the second item.
    """
    seen: dict[str, tuple[int, int | str]] = {}
    for i, p in enumerate(items):
        ref = p.item.ref
        if ref is None:
            continue
        text: int | str = p.exact if p.rejected is None else p.item.text
        first, first_text = seen.setdefault(ref, (i, text))
        if first_text != text:
            raise InvalidInput(
                f"items.{i}.id",
                f"items.{i}.id: id {ref[:40]!r} is also the id of items.{first}, which has"
                " another text; an id names one item (give each item its own id)",
            )


def _prepare_item(
    item: Item, config: Validation, sketcher: Sketcher, legacy: bool = False
) -> PreparedItem:
    if len(item.text) > config.max_item_chars:
        return PreparedItem(item, "too_large")
    prepared = prepare(item.text)
    normalized = casefold(prepared)
    if not normalized or not shows_anything(prepared):  # `<p>&nbsp;</p>` is a blank post
        return PreparedItem(item, "empty")
    weighted = features(prepared, names=sketcher.names)
    return PreparedItem(
        item,
        None,
        exact_fingerprint(normalized),
        sketcher.sketch(weighted),
        legacy_sketch(prepared, sketcher) if legacy else b"",
        prepared,
        weighted,
    )


def legacy_sketch(prepared: str, sketcher: Sketcher) -> bytes:
    """A prepared text sketched as versions before 2026-11-27 15:00 did (see
    :data:`~guards.validation.sketchers.LEGACY_MINHASH`)."""
    return sketcher.sketch(features(prepared, names=sketcher.names, legacy=True))
