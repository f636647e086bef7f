"""The validation tables (migrations/0003_validation.sql, 0009_validation_preview.sql,
0011_validation_calls.sql, 0046_validation_feature_text.sql).

One query per function.

Write functions take the :class:`~guards.store.Tx` of the operation they belong to;
:func:`rejections` reads through the store's reader connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from guards.store import Store, Tx
from guards.validation.types import DUPLICATE_REASONS, Rejection

__all__ = [
    "PRUNE_LIMIT",
    "ItemRow",
    "add_call",
    "add_item",
    "add_rejections",
    "count_duplicates",
    "count_rejections",
    "find_call",
    "find_exact",
    "item_info",
    "items_feature_texts",
    "iter_sketches",
    "last_burst_at",
    "prune_calls",
    "prune_items",
    "prune_rejections",
    "rejections",
    "set_burst",
    "stream_row",
]

_FETCH_CHUNK = 50_000
_END_OF_TIME = 1e15


@dataclass(frozen=True, slots=True)
class StreamRow:
    id: int
    last_duplicate_at: float | None
    in_burst: bool


@dataclass(frozen=True, slots=True)
class ItemRow:
    id: int
    at: float
    ref: str | None
    preview: str | None = None


def stream_row(tx: Tx, *, agent: str, name: str, now: float) -> StreamRow:
    """The stream of ``agent`` called ``name``, created on first use."""
    tx.execute(
        "INSERT INTO validation_streams (agent, name, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (agent, name) DO NOTHING",
        (agent, name, now),
    )
    row = tx.one(
        "SELECT id, last_duplicate_at, in_burst FROM validation_streams"
        " WHERE agent = ? AND name = ?",
        (agent, name),
    )
    return StreamRow(row[0], row[1], bool(row[2]))


def find_exact(
    tx: Tx, *, stream_id: int, exact: int, not_before: float, ref: str | None = None
) -> ItemRow | None:
    """The remembered item with this exact fingerprint inside the window.

    One with the id ``ref`` if there is one (the same item sent again), else the newest.
    """
    row = tx.one(
        "SELECT id, at, ref, preview FROM validation_items"
        " WHERE stream_id = ? AND exact = ? AND at >= ?"
        " ORDER BY ref = ? DESC, id DESC LIMIT 1",
        (stream_id, exact, not_before, ref),
    )
    return ItemRow(row[0], row[1], row[2], row[3]) if row else None


def item_info(tx: Tx, item_id: int) -> tuple[str | None, str | None, int | None]:
    """An item's ``(ref, preview, exact)``."""
    row = tx.one("SELECT ref, preview, exact FROM validation_items WHERE id = ?", (item_id,))
    return (row[0], row[1], row[2]) if row else (None, None, None)


def items_feature_texts(
    tx: Tx, item_ids: Iterable[int]
) -> list[tuple[int, bytes | None, str | None, int]]:
    """The ``(id, feature_text, preview, exact)`` of these items (those that exist), in one
    query: the stored text their features are read from (None before migration 0046), the
    preview and exact fingerprint that may stand in for it."""
    return [
        (row[0], row[1], row[2], row[3])
        for row in tx.all(
            "SELECT id, feature_text, preview, exact FROM validation_items"
            " WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(item_ids)),),
        )
    ]


def add_item(
    tx: Tx,
    *,
    stream_id: int,
    at: float,
    exact: int,
    kind: str,
    sketch: bytes,
    ref: str | None,
    preview: str | None = None,
    feature_text: bytes | None = None,
) -> int:
    """Remember an accepted item (with a short preview for people and, for the exact
    near-duplicate re-check, the text its features are read from); returns its id."""
    cur = tx.execute(
        "INSERT INTO validation_items"
        " (stream_id, at, exact, kind, sketch, ref, preview, feature_text)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (stream_id, at, exact, kind, sketch, ref, preview, feature_text),
    )
    return int(cur.lastrowid or 0)


def iter_sketches(
    tx: Tx, *, stream_id: int, kind: str, not_before: float
) -> Iterator[tuple[int, float, bytes]]:
    """Every live ``(id, at, sketch)`` of a stream, oldest first, fetched in chunks."""
    cur = tx.execute(
        "SELECT id, at, sketch FROM validation_items"
        " WHERE stream_id = ? AND kind = ? AND at >= ? ORDER BY id",
        (stream_id, kind, not_before),
    )
    while rows := cur.fetchmany(_FETCH_CHUNK):
        yield from rows


def add_rejections(tx: Tx, rows: Sequence[dict[str, Any]]) -> None:
    """Store rejections (keys are the column names of ``validation_rejections``)."""
    if rows:
        tx.executemany(
            "INSERT INTO validation_rejections (at, stream_id, scope, stream, reason,"
            " item_index, item_ref, preview, matched_item_id, matched_ref, matched_at,"
            " similarity, batch_size, expected_count, matched_preview) VALUES (:at,"
            " :stream_id, :scope, :stream, :reason, :item_index, :item_ref, :preview,"
            " :matched_item_id, :matched_ref, :matched_at, :similarity, :batch_size,"
            " :expected_count, :matched_preview)",
            rows,  # type: ignore[arg-type]  # sqlite3 takes a sequence of mappings
        )


def count_duplicates(tx: Tx, *, stream_id: int, since: float) -> int:
    """Duplicate and near-duplicate rejections of a stream after ``since``."""
    row = tx.one(
        "SELECT count(*) FROM validation_rejections"
        " WHERE stream_id = ? AND at > ? AND reason IN (?, ?)",
        (stream_id, since, *DUPLICATE_REASONS),
    )
    return int(row[0])


def last_burst_at(tx: Tx, *, scope: str, stream: str) -> float | None:
    """When the stream's last DuplicateBurst was recorded (None: never)."""
    row = tx.one(
        "SELECT max(at) FROM events WHERE kind = 'duplicate_burst' AND scope = ?"
        " AND json_extract(payload, '$.stream') = ?",
        (scope, stream),
    )
    return None if row is None or row[0] is None else float(row[0])


def set_burst(tx: Tx, *, stream_id: int, last_duplicate_at: float, in_burst: bool) -> None:
    tx.execute(
        "UPDATE validation_streams SET last_duplicate_at = ?, in_burst = ? WHERE id = ?",
        (last_duplicate_at, int(in_burst), stream_id),
    )


def find_call(
    tx: Tx, *, stream_id: int, token_id: str, key: str
) -> tuple[str, dict[str, Any]] | None:
    """The token's earlier call's ``(request_hash, answer)`` under this idempotency key,
    or None (a key names one call of one token, as a reservation's does)."""
    row = tx.one(
        "SELECT request_hash, answer FROM validation_calls"
        " WHERE stream_id = ? AND token_id = ? AND idempotency_key = ?",
        (stream_id, token_id, key),
    )
    return (str(row[0]), json.loads(row[1])) if row else None


def add_call(
    tx: Tx,
    *,
    stream_id: int,
    token_id: str,
    key: str,
    request_hash: str,
    answer: Mapping[str, Any],
    at: float,
) -> None:
    tx.execute(
        "INSERT INTO validation_calls"
        " (stream_id, token_id, idempotency_key, request_hash, answer, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (stream_id, token_id, key, request_hash, json.dumps(answer), at),
    )


# Prunes delete the oldest rows first, at most ``limit`` per call (the writer is shared:
# a backlog is deleted by calling again, one write each, until fewer come back).
PRUNE_LIMIT = 2000


def prune_calls(tx: Tx, *, before: float, limit: int = PRUNE_LIMIT) -> int:
    """Forget the answers of calls made before ``before`` (up to ``limit``); returns how many."""
    cur = tx.execute(
        "DELETE FROM validation_calls WHERE rowid IN (SELECT rowid FROM validation_calls"
        " WHERE at < ? ORDER BY at LIMIT ?)",
        (before, limit),
    )
    return int(cur.rowcount)


def prune_items(tx: Tx, *, before: float, limit: int = PRUNE_LIMIT) -> int:
    """Forget items remembered before ``before`` (up to ``limit``); returns how many."""
    cur = tx.execute(
        "DELETE FROM validation_items WHERE id IN (SELECT id FROM validation_items"
        " WHERE at < ? ORDER BY at LIMIT ?)",
        (before, limit),
    )
    return int(cur.rowcount)


def prune_rejections(tx: Tx, *, before: float, limit: int = PRUNE_LIMIT) -> int:
    """Forget rejections recorded before ``before`` (up to ``limit``); returns how many."""
    cur = tx.execute(
        "DELETE FROM validation_rejections WHERE id IN (SELECT id FROM validation_rejections"
        " WHERE at < ? ORDER BY at LIMIT ?)",
        (before, limit),
    )
    return int(cur.rowcount)


_REJECTION_COLUMNS = (
    "id, at, scope, stream, reason, preview, item_index, item_ref, matched_item_id,"
    " matched_ref, matched_at, similarity, batch_size, expected_count, matched_preview"
)
_SUBTREE = "(scope = ? OR (scope >= ? AND scope < ?))"


async def rejections(
    store: Store, *, scope: str, since: float, until: float | None = None, limit: int = 50
) -> list[Rejection]:
    """Rejections at ``scope`` or below it, from ``since`` up to ``until``, newest first.

    Example:
        >>> async def last_day(store: Store, now: float) -> list[Rejection]:
        ...     return await rejections(store, scope="acme/alice", since=now - 86400)
    """
    # scope or anything under "scope/": '/' + 1 is '0', so [scope/, scope0) is the subtree
    rows = await store.fetch(
        f"SELECT {_REJECTION_COLUMNS} FROM validation_rejections"
        f" WHERE {_SUBTREE} AND at >= ? AND at <= ?"
        " ORDER BY at DESC, id DESC LIMIT ?",
        (
            scope,
            scope + "/",
            scope + "0",
            since,
            until if until is not None else _END_OF_TIME,
            max(0, limit),
        ),
    )
    return [Rejection(*tuple(row)) for row in rows]


async def count_rejections(store: Store, *, scope: str, since: float) -> dict[str, int]:
    """Rejected items at ``scope`` or below it since ``since``, by reason (a runaway
    batch counts once).

    Example:
        >>> async def counts(store: Store, now: float) -> dict[str, int]:
        ...     return await count_rejections(store, scope="acme", since=now - 86400)
    """
    rows = await store.fetch(
        f"SELECT reason, count(*) FROM validation_rejections WHERE {_SUBTREE} AND at >= ?"
        " GROUP BY reason",
        (scope, scope + "/", scope + "0", since),
    )
    return {str(r[0]): int(r[1]) for r in rows}
