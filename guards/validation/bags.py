"""Feature bags of remembered items, and the exact near-duplicate test.

The MinHash sketch (:mod:`guards.validation.minhash`) only *estimates* the weighted
Jaccard similarity of two bags: with 32 bins its standard error near 0.65 is about
0.09, so a pair 0.05 under the threshold was rejected about one time in three (audit26
A3 M1: ``Order #48213 …`` / ``Order #48214 …``). The sketch now only picks candidates;
the decision is :func:`similarity` of the two bags.

A remembered item keeps the text its features are read from (its prepared text, at
most :data:`~guards.validation.features.MARKUP_CHARS` characters, zlib-compressed from
:data:`COMPRESS_FROM` bytes): smaller than its bag would be (a one-line headline is
about 80 bytes and 85 features), read again with the features of the running version,
and only for a candidate. :func:`stored` and :func:`text_of` write and read that form.

:func:`similarity` is the weighted Jaccard ``Σ min / Σ max``, except that two texts that
each hold an identity or a name the other lacks (another order number, another host,
another city: ``i:`` features, and words weighed as ``NAME``) are new output whatever
the rest shares: None.

Example:
    >>> a = bag_of("Order #48213 shipped to customer in Berlin")
    >>> b = bag_of("order #48213 SHIPPED to customer in berlin!!")
    >>> c = bag_of("Order #48214 shipped to customer in Berlin")
    >>> round(similarity(a, b) or 0, 3), similarity(a, c)
    (0.871, None)
    >>> text_of(stored("Order #48213 " * 40)) == "Order #48213 " * 40
    True
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from guards.validation.features import MARKUP_CHARS, features
from guards.validation.normalize import prepare
from guards.validation.words import NAME

__all__ = ["COMPRESS_FROM", "Bag", "bag", "bag_of", "similarity", "stored", "text_of"]

_PLAIN = b"t"
_ZLIB = b"z"
COMPRESS_FROM = 200


def stored(prepared: str) -> bytes:
    """A prepared text as ``validation_items.feature_text`` keeps it (what its features read)."""
    raw = prepared[:MARKUP_CHARS].encode("utf-8", "surrogatepass")
    return _ZLIB + zlib.compress(raw, 6) if len(raw) >= COMPRESS_FROM else _PLAIN + raw


def text_of(blob: bytes) -> str | None:
    """The prepared text of a stored form; None for a form this version does not know."""
    try:
        if blob[:1] == _PLAIN:
            return blob[1:].decode("utf-8", "surrogatepass")
        if blob[:1] == _ZLIB:
            return zlib.decompress(blob[1:]).decode("utf-8", "surrogatepass")
    except (zlib.error, UnicodeDecodeError):
        return None
    return None


@dataclass(frozen=True, slots=True)
class Bag:
    """A text's features: weight per feature, their total, its identities and names."""

    weights: dict[str, int]
    total: int
    identities: frozenset[str]
    names: frozenset[str]


def bag(weighted: Iterable[tuple[str, int]]) -> Bag:
    """``(feature, weight)`` pairs (a feature may repeat: the weights add up) as a bag.

    A ``w:`` feature of weight ``NAME`` is a name (a word said twice is two entries)."""
    weights: dict[str, int] = {}
    names = set()
    for feature, weight in weighted:
        weights[feature] = weights.get(feature, 0) + weight
        if weight == NAME and feature[:2] == "w:":
            names.add(feature)
    return Bag(
        weights=weights,
        total=sum(weights.values()),
        identities=frozenset(f for f in weights if f[:2] == "i:"),
        names=frozenset(names),
    )


def bag_of(text: str, *, names: bool = True, prepared: bool = False) -> Bag:
    """A text's bag as the validator reads it: the ``features`` of its prepared form
    (``prepared``: ``text`` is that form already, as :func:`text_of` gives it)."""
    return bag(features(text if prepared else prepare(text), names=names))


def _replaced(mine: frozenset[str], a: Bag, theirs: frozenset[str], b: Bag) -> bool:
    """Whether each bag holds one of these (identities or names) the other lacks entirely.

    ``berlin`` written lower-case in one text is a word there, not a name, but it is still
    there: a change of case replaces nothing."""
    return any(f not in b.weights for f in mine) and any(f not in a.weights for f in theirs)


def similarity(a: Bag, b: Bag) -> float | None:
    """The weighted Jaccard similarity of two bags, or None when they are new output to
    each other whatever they share: each names an identity or a name the other does not.

    >>> same = bag([("w:storm", 4), ("w:ireland", 8)])
    >>> similarity(same, same), sorted(same.names)
    (1.0, ['w:ireland'])
    """
    if _replaced(a.identities, a, b.identities, b) or _replaced(a.names, a, b.names, b):
        return None
    small, large = (a, b) if len(a.weights) <= len(b.weights) else (b, a)
    other = large.weights
    shared = sum(min(w, other.get(f, 0)) for f, w in small.weights.items())
    union = a.total + b.total - shared
    return shared / union if union else 1.0
