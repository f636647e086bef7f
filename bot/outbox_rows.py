"""The outbox worker's queries: the channel heads, the mark of a row being sent, and
the row's end (delivered, due again, failed). Each runs one statement.

When the mark is set and cleared, and why, is told in :mod:`bot.outbox_worker`.

Example:
    >>> # heads = await channel_heads(store)
    >>> # await mark_delivered(store, heads[0], now=now, result=Delivered("C1", "1.2"))
"""

from __future__ import annotations

from typing import Any

from bot.outbox_delivery import Delivered
from guards.store import Store, Tx

__all__ = [
    "channel_heads",
    "claim",
    "fail_row",
    "mark_delivered",
    "mark_retry",
    "pending_age",
    "release",
    "shift_due",
]

# The head of each channel's queue: its most urgent pending row, oldest first.
_HEADS = (
    "SELECT id, ref, method, channel, args, attempts, due_at, first_try_at FROM ("
    " SELECT *, ROW_NUMBER() OVER (PARTITION BY channel ORDER BY priority, id) AS place"
    " FROM outbox WHERE state = 'pending')"
    " WHERE place = 1 ORDER BY priority, id LIMIT 500"
)
_MARK_DONE = (
    "UPDATE outbox SET attempts = attempts + 1, state = 'delivered', finished_at = ?,"
    " result_channel = ?, result_ts = ?, last_error = NULL,"
    " first_try_at = COALESCE(first_try_at, ?) WHERE id = ? AND state = 'pending'"
)
# The mark is cleared only when Slack surely showed nothing (see bot.outbox_worker).
_MARK_RETRY = (
    "UPDATE outbox SET attempts = attempts + 1, due_at = ?, first_try_at = ?, last_error = ?,"
    " claimed_at = CASE WHEN ? THEN NULL ELSE claimed_at END WHERE id = ? AND state = 'pending'"
)
# The row as it was read, by what it is as well as its id (a withdrawn row's id may have
# been given to the next row written): marked as being sent, its args as they are now.
_CLAIM = (
    "UPDATE outbox SET claimed_at = ?, first_try_at = COALESCE(first_try_at, ?)"
    " WHERE id = ? AND state = 'pending' AND method = ? AND channel = ? AND ref IS ?"
    " RETURNING args, first_try_at"
)
# A row Slack refused for good (or that never left) is unmarked: nobody saw it. One given
# up after errors that may have shown it keeps its mark.
_MARK_FAILED = (
    "UPDATE outbox SET attempts = attempts + 1, state = 'failed', finished_at = ?,"
    " first_try_at = COALESCE(first_try_at, ?), last_error = ?,"
    " claimed_at = CASE WHEN ? THEN claimed_at END WHERE id = ? AND state = 'pending'"
)


async def channel_heads(store: Store) -> list[Any]:
    """The head of each channel's queue (500 at most), the most urgent first."""
    return await store.fetch(_HEADS)


async def pending_age(store: Store) -> tuple[int, float | None]:
    """How many rows wait, and when the oldest of them was written (None: none waits)."""
    count, oldest = (
        await store.fetch("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state = 'pending'")
    )[0]
    return count, oldest


async def claim(store: Store, row: Any, *, now: float) -> tuple[str, float] | None:
    """Mark ``row`` as being sent: its args and first try as they are now, or None when
    it is gone or no longer the row read (withdrawn since)."""
    params = (now, now, row["id"], row["method"], row["channel"], row["ref"])
    rows = await store.write(lambda tx: tx.all(_CLAIM, params))  # all(): RETURNING
    if not rows:
        return None
    return rows[0][0], rows[0][1]


async def release(store: Store, row: Any) -> None:
    """Clear the mark of a pending row (it was not sent)."""
    await store.write(
        lambda tx: tx.execute(
            "UPDATE outbox SET claimed_at = NULL WHERE id = ? AND state = 'pending'",
            (row["id"],),
        )
    )


async def mark_delivered(store: Store, row: Any, *, now: float, result: Delivered) -> bool:
    """The row is delivered (where it landed); False when it was no longer pending."""
    return await _mark(store, row, _MARK_DONE, (now, result.channel, result.ts, now))


async def mark_retry(
    store: Store, row: Any, *, due_at: float, first_try_at: float, error: str, unmark: bool
) -> bool:
    """The row is due again at ``due_at``; ``unmark`` clears its mark (nobody saw it)."""
    return await _mark(store, row, _MARK_RETRY, (due_at, first_try_at, error, unmark))


def fail_row(tx: Tx, row: Any, *, now: float, error: str, maybe_shown: bool) -> bool:
    """The row failed for good, in the caller's transaction; it keeps its mark only when it
    ``maybe_shown``. False when the row was no longer pending."""
    count: int = tx.execute(_MARK_FAILED, (now, now, error, maybe_shown, row["id"])).rowcount
    return count > 0


async def _mark(store: Store, row: Any, sql: str, params: tuple[Any, ...]) -> bool:
    """Run one of the _MARK_* updates; False when the row was no longer pending."""
    count: int = await store.write(lambda tx: tx.execute(sql, (*params, row["id"])).rowcount)
    return count > 0


def shift_due(tx: Tx, seconds: float) -> None:
    """Move every pending row's ``due_at`` by ``seconds`` (the wall clock stepped)."""
    tx.execute(
        "UPDATE outbox SET due_at = due_at + ? WHERE state = 'pending' AND due_at > 0",
        (seconds,),
    )
