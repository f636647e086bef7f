"""What a write function of :class:`guards.store.Store` gets: :class:`Tx`, the writer's
connection inside the operation's own savepoint, with the batch's counter additions
(:meth:`Tx.add`), its events (published after the commit) and a cache of rows shared
by every batch (:attr:`Tx.memo`).

Example:
    >>> # await store.write(lambda tx: tx.one("SELECT COUNT(*) FROM scopes")[0])
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from guards.clock import Clock
from guards.events import Event

__all__ = ["SumRows", "Sums", "Tx", "write_sums"]


SumRows = dict[tuple[Any, ...], list[int]]  # a counter row's key -> its amounts
Sums = dict[str, SumRows]  # by upsert statement


class Tx:
    """What a write function gets: the writer connection inside its own savepoint."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        clock: Clock,
        *,
        memo: dict[str, Any] | None = None,
        batch_sums: Sums | None = None,
    ) -> None:
        self.conn = conn
        self.clock = clock
        self.events: list[tuple[int, Event]] = []
        self.after_commit: list[Callable[[], None]] = []
        self.memo: dict[str, Any] = {} if memo is None else memo
        # The batch's counter additions (this operation's included), and what this
        # operation added, to take back if its savepoint is rolled back.
        self.sums: Sums = {} if batch_sums is None else batch_sums
        self._added: list[
            tuple[dict[tuple[Any, ...], list[int]], tuple[Any, ...], Sequence[int]]
        ] = []

    def add(self, upsert: str, key: tuple[Any, ...], amounts: Sequence[int]) -> None:
        """Add ``amounts`` to the counter row ``key``, written when the batch commits.

        ``upsert`` is an ``INSERT ... ON CONFLICT DO UPDATE`` adding the excluded
        amounts, with the key's columns first; it runs once per row and batch.
        """
        rows = self.sums.get(upsert)
        if rows is None:
            rows = self.sums[upsert] = {}
        row = rows.get(key)
        if row is None:
            row = rows[key] = [0] * len(amounts)
            self._added.append((rows, key, ()))  # made here: taken back, it goes
        for i, amount in enumerate(amounts):
            row[i] += amount
        self._added.append((rows, key, amounts))

    def take_back(self) -> None:
        """Undo this operation's counter additions (its savepoint was rolled back)."""
        for rows, key, amounts in reversed(self._added):
            if not amounts:
                del rows[key]
                continue
            row = rows[key]
            for i, amount in enumerate(amounts):
                row[i] -= amount
        self._added.clear()

    def flush(self) -> None:
        """Write the counter additions now (for a Tx used without a Store)."""
        write_sums(self.conn, self.sums)
        self._added.clear()

    def unwritten(self, upsert: str) -> list[tuple[tuple[Any, ...], list[int]]]:
        """Additions to ``upsert``'s rows not in the database yet (for a reader of those rows)."""
        return list(self.sums.get(upsert, {}).items())

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """The first row, or None."""
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    def emit(self, event: Event) -> int:
        """Record an event in this transaction; it is published after the commit."""
        cur = self.conn.execute(
            "INSERT INTO events (at, kind, scope, payload) VALUES (?, ?, ?, ?)",
            (event.at, event.kind, event.scope, json.dumps(event.payload())),
        )
        event_id = int(cur.lastrowid or 0)
        self.events.append((event_id, event))
        return event_id

    def audit(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        before: str | None = None,
        after: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Append an audit row: who changed what, from what to what."""
        self.conn.execute(
            "INSERT INTO audit (at, actor, action, target, before, after, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.clock.now(), actor, action, target, before, after, detail),
        )


def write_sums(conn: sqlite3.Connection, sums: Sums) -> None:
    for upsert, rows in sums.items():
        conn.executemany(upsert, [(*key, *amounts) for key, amounts in rows.items()])
    sums.clear()
