"""One batch's bookkeeping while the engine decides it: what it accepted and rejected,
what each rejection matched, and the rejection rows to store (:mod:`guards.validation.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from guards.store import Tx
from guards.validation import repo
from guards.validation.types import Item, Reason, Rejected, preview

__all__ = ["BatchRun", "Hit"]


@dataclass(frozen=True, slots=True)
class Hit:
    """The remembered item a rejected one matched."""

    item_id: int
    ref: str | None
    at: float
    similarity: float
    preview: str | None = None
    exact: int | None = None  # the item's text fingerprint

    @property
    def name(self) -> str:
        """The agent's id for the item, or, when it gave none, ``#`` and 8 hex digits of
        its text's fingerprint: a name of that text alone, where a row number would tell
        every tenant how many items the whole fleet validated (audit15 tenancy 1)."""
        if self.ref is not None:
            return self.ref
        if self.exact is not None:
            return f"#{self.exact & 0xFFFFFFFF:08x}"
        return f"#{self.item_id}"


@dataclass
class BatchRun:
    """What one batch has decided so far, and the rejection rows to store."""

    tx: Tx
    now: float
    stream: repo.StreamRow
    expected: int | None
    base: dict[str, Any]
    accepted: list[int] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    stored: list[dict[str, Any]] = field(default_factory=list)
    by_item: dict[int, int] = field(default_factory=dict)  # item id -> index in this batch

    def accept(self, index: int, item_id: int) -> None:
        self.accepted.append(index)
        self.by_item[item_id] = index

    def reject(self, index: int, item: Item, reason: Reason, hit: Hit | None = None) -> None:
        if hit is None:
            self.rejected.append(Rejected(index, reason))
            self.record(
                reason=reason, preview=preview(item.text), item_index=index, item_ref=item.ref
            )
            return
        self.rejected.append(
            Rejected(
                index,
                reason,
                duplicate_of=hit.name,
                matched_at=hit.at,
                matched_index=self.by_item.get(hit.item_id),
                similarity=hit.similarity,
            )
        )
        self.record(
            reason=reason,
            preview=preview(item.text),
            item_index=index,
            item_ref=item.ref,
            matched_item_id=hit.item_id,
            matched_ref=hit.ref,  # the agent's own id, or NULL (then matched_item_id names it)
            matched_at=hit.at,
            similarity=hit.similarity,
            matched_preview=hit.preview,
        )

    def record(self, **fields: Any) -> None:
        """A rejection row (the columns of ``validation_rejections``)."""
        self.stored.append(
            {
                "item_index": None,
                "item_ref": None,
                "matched_item_id": None,
                "matched_ref": None,
                "matched_at": None,
                "similarity": None,
                "matched_preview": None,
                "expected_count": self.expected,
                "at": self.now,
                **self.base,
                **fields,
            }
        )
