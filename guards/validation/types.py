"""The values the validation engine takes and gives: batches, verdicts, stored rejections.

Example:
    >>> items = parse_items(["first post", {"id": "p2", "text": "second post"}])
    >>> [(i.ref, i.text) for i in items]
    [(None, 'first post'), ('p2', 'second post')]
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from guards.client_types import RejectedItem, ValidationAnswer
from guards.errors import InvalidInput
from guards.validation.features import MARKUP_CHARS
from guards.validation.markup import as_shown
from guards.words import clip_chars

__all__ = [
    "DUPLICATE_REASONS",
    "ITEM_PREVIEW_CHARS",
    "Batch",
    "Item",
    "Outcome",
    "Reason",
    "Rejected",
    "Rejection",
    "parse_items",
    "parse_stream",
    "preview",
]

Reason = Literal["duplicate", "near_duplicate", "runaway", "empty", "too_large"]
Verdict = Literal["ok", "partial", "rejected"]
#: The reasons that count towards a DuplicateBurst.
DUPLICATE_REASONS: tuple[Reason, ...] = ("duplicate", "near_duplicate")
PREVIEW_CHARS = 200
#: what an accepted item keeps of its text, to show what a rejection matched
ITEM_PREVIEW_CHARS = 120
MAX_REF_CHARS = 200
_STREAM = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Item:
    """One piece of output: its text and, if the agent named it, its id."""

    text: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """What an agent asks to validate: items of one stream, under one scope."""

    scope: str
    stream: str
    items: list[Item]
    expected_count: int | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        """What makes two sends the same request (for ``idempotency_key``)."""
        body = [self.scope, self.stream, [[i.ref, i.text] for i in self.items], self.expected_count]
        return hashlib.sha256(json.dumps(body, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why one item of a batch was rejected, and what it matched."""

    index: int
    reason: Reason
    duplicate_of: str | None = None
    matched_at: float | None = None
    matched_index: int | None = None
    similarity: float | None = None
    max_items: int | None = None  # a runaway batch's: how many its expected_count allows

    def as_json(self) -> RejectedItem:
        out: RejectedItem = {"index": self.index, "reason": self.reason}
        if self.duplicate_of is not None:
            out["duplicate_of"] = self.duplicate_of
            if self.matched_at is not None:
                out["matched_at"] = self.matched_at
            if self.similarity is not None:
                out["similarity"] = self.similarity
        if self.matched_index is not None:
            out["matched_index"] = self.matched_index
        if self.max_items is not None:
            out["max_items"] = self.max_items
        return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to a batch: ``ok`` (all accepted), ``partial`` or ``rejected`` (none)."""

    accepted: list[int]
    rejected: list[Rejected] = field(default_factory=list)
    replayed: bool = False  # the stored answer to an earlier send with the same key

    @classmethod
    def from_json(cls, data: dict[str, Any], *, replayed: bool = False) -> Outcome:
        rejected = [Rejected(**r) for r in data["rejected"]]
        return cls(list(data["accepted"]), rejected, replayed=replayed)

    @property
    def verdict(self) -> Verdict:
        if not self.rejected:
            return "ok"
        return "partial" if self.accepted else "rejected"

    def as_json(self) -> ValidationAnswer:
        return {
            "verdict": self.verdict,
            "accepted": self.accepted,
            "rejected": [r.as_json() for r in self.rejected],
        }


@dataclass(frozen=True, slots=True)
class Rejection:
    """A stored rejection, as the bot lists them (``/agent dedup``)."""

    id: int
    at: float
    scope: str
    stream: str
    reason: Reason
    preview: str
    item_index: int | None
    item_ref: str | None
    matched_item_id: int | None
    matched_ref: str | None
    matched_at: float | None
    similarity: float | None
    batch_size: int
    expected_count: int | None
    matched_preview: str | None = None  # the matched item's text (NULL before 0009)


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """At most ``limit`` (200) characters of an item, white space collapsed, for people.

    >>> preview("a  b" + "c" * 300)[-3:]
    'cc…'
    >>> len(preview("x" * 300, ITEM_PREVIEW_CHARS))
    120
    """
    if "<" in text[:MARKUP_CHARS] or "&" in text[: limit * 4]:  # as a reader sees it
        text = as_shown(text[:MARKUP_CHARS]) or text  # (a style sheet shows nothing)
    flat = _SPACE.sub(" ", text[: limit * 4]).strip()
    # JSON may carry lone surrogates ("\ud800"); SQLite stores UTF-8 only
    flat = flat.encode("utf-8", "replace").decode("utf-8")
    return clip_chars(flat, limit)


def parse_stream(value: object) -> str:
    """A stream name: 1-64 of ``A-Z a-z 0-9 . _ : -``."""
    if not isinstance(value, str) or not _STREAM.fullmatch(value):
        raise InvalidInput(
            "stream", "stream: a stream name is 1-64 of A-Z a-z 0-9 . _ : - (e.g. posts)"
        )
    return value


def parse_items(raw: object) -> list[Item]:
    """Items as sent: each a string, or an object ``{"id": ..., "text": ...}``.

    Raises:
        InvalidInput: naming ``items`` or the bad item (``items.3``, ``items.3.text``).
    """
    if not isinstance(raw, list):
        raise InvalidInput("items", "items: send a list of strings or {id, text} objects")
    if not raw:
        raise InvalidInput("items", "items: the batch is empty; send at least one item")
    return [_parse_item(value, i) for i, value in enumerate(raw)]


def _parse_item(value: object, i: int) -> Item:
    if isinstance(value, str):
        return Item(value)
    if not isinstance(value, dict):
        raise InvalidInput(
            f"items.{i}",
            f"items.{i}: an item is a string or an object {{id, text}}, not {type(value).__name__}",
        )
    unknown = sorted(set(value) - {"id", "text"})
    if unknown:
        raise InvalidInput(f"items.{i}.{unknown[0]}", f"items.{i}.{unknown[0]}: unknown field")
    text = value.get("text")
    if not isinstance(text, str):
        raise InvalidInput(f"items.{i}.text", f"items.{i}.text: the item's text must be a string")
    ref = value.get("id")
    if ref is None:
        return Item(text)
    if isinstance(ref, bool) or not isinstance(ref, str | int):
        raise InvalidInput(f"items.{i}.id", f"items.{i}.id: an item id is a string or an integer")
    ref = str(ref)
    if not 1 <= len(ref) <= MAX_REF_CHARS:
        raise InvalidInput(f"items.{i}.id", f"items.{i}.id: 1 to {MAX_REF_CHARS} characters")
    try:
        ref.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"items.{i}.id", f"items.{i}.id: not valid Unicode (a lone surrogate)"
        ) from None
    return Item(text, ref)
