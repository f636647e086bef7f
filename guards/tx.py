"""What a write function of :class:`guards.store.Store` gets: :class:`Tx`, the writer's
connection inside the operation's own savepoint, with the batch's counter additions
(:meth:`Tx.add`), its rows written in bulk as the batch commits (:meth:`Tx.defer`), its
events (published after the commit) and a cache of rows shared by every batch
(:attr:`Tx.memo`).

A deferred row costs the event loop nothing but an append: the writer thread writes all
of a batch's rows of one kind in one statement, outside the GIL, just before the commit.
Any statement of an operation's own first writes every row deferred before it (so
nothing reads past one); the savepoint that undoes a failed operation is opened then,
so an operation that only defers rows costs no savepoint.

Example:
    >>> # await store.write(lambda tx: tx.one("SELECT COUNT(*) FROM scopes")[0])
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from guards.clock import Clock
from guards.events import Event

__all__ = ["Bulk", "Pending", "SumRows", "Sums", "Tx", "distinct_seeks", "write_sums"]


SumRows = dict[tuple[Any, ...], list[int]]  # a counter row's key -> its amounts
Sums = dict[str, SumRows]  # by upsert statement


BULK_ROWS = 512  # rows a bulk statement writes at most


@dataclass(frozen=True, eq=False)
class Bulk:
    """A write of many rows in one statement: ``head``, a ``(?, ...)`` of ``width``
    parameters per row, then ``tail`` (an ``UPDATE ... FROM (VALUES ...) AS u`` names
    the row's values ``u.column1``, ``u.column2``...). ``rank`` orders a batch's bulk
    writes: a row's parent (a foreign key's) first."""

    rank: int
    head: str
    width: int
    tail: str = ""

    def sql(self, rows: int) -> str:
        one = "(" + ", ".join("?" * self.width) + ")"
        return self.head + ", ".join([one] * rows) + self.tail


class Pending:
    """A batch's deferred rows, by kind, and the keys they touch (a read of one of those
    must wait for them: :meth:`Tx.read_one`)."""

    def __init__(self) -> None:
        self.rows: dict[Bulk, list[Sequence[Any]]] = {}
        self.size = 0
        self.touched: set[Hashable] = set()

    def clear(self) -> None:
        self.rows.clear()
        self.size = 0
        self.touched.clear()

    def write(
        self,
        conn: sqlite3.Connection,
        marks: dict[Bulk, int] | None = None,
        *,
        earlier: bool = False,
    ) -> None:
        """Write the rows (``earlier``: of each kind, only those before the operation's
        ``marks``). Each statement's rows leave the list as it succeeds, and ``marks`` (where
        the operation's own rows begin) follow, so a failure midway leaves neither a row
        written twice nor an operation taking back a row it did not defer."""
        for bulk in sorted(self.rows, key=lambda b: b.rank):
            rows = self.rows[bulk]
            left = marks.get(bulk, len(rows)) if earlier and marks is not None else len(rows)
            while left:
                chunk = rows[: min(left, BULK_ROWS)]
                conn.execute(bulk.sql(len(chunk)), list(chain.from_iterable(chunk)))
                del rows[: len(chunk)]
                self.size -= len(chunk)
                left -= len(chunk)
                if marks is not None and bulk in marks:
                    marks[bulk] = max(0, marks[bulk] - len(chunk))
        if not self.size:
            self.touched.clear()


class Tx:
    """What a write function gets: the writer connection inside its own savepoint."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        clock: Clock,
        *,
        memo: dict[str, Any] | None = None,
        batch_sums: Sums | None = None,
        pending: Pending | None = None,
        savepoint: str | None = None,
    ) -> None:
        self._conn = conn
        self.clock = clock
        # In a store's batch: the rows deferred to its commit, this operation's first
        # row of each kind there, and the savepoint opened at its first own statement.
        self.pending = pending
        self._marks: dict[Bulk, int] = {}
        self.savepoint = savepoint
        self.in_savepoint = False
        self.events: list[tuple[int, Event]] = []
        self.after_commit: list[Callable[[], None]] = []
        self.memo: dict[str, Any] = {} if memo is None else memo
        # The batch's counter additions (this operation's included), and what this
        # operation added, to take back if its savepoint is rolled back.
        self.sums: Sums = {} if batch_sums is None else batch_sums
        self._added: list[
            tuple[dict[tuple[Any, ...], list[int]], tuple[Any, ...], Sequence[int]]
        ] = []

    def add(
        self, upsert: str, key: tuple[Any, ...], amounts: Sequence[int], first: Sequence[int] = ()
    ) -> None:
        """Add ``amounts`` to the counter row ``key``, written when the batch commits.

        ``upsert`` is an ``INSERT ... ON CONFLICT DO UPDATE`` adding the excluded
        amounts, with the key's columns first; it runs once per row and batch.
        ``first``: values written after the amounts, as the row's first addition in the
        batch gave them (when it first counted: the upsert keeps an older row's own).
        """
        rows = self.sums.get(upsert)
        if rows is None:
            rows = self.sums[upsert] = {}
        row = rows.get(key)
        if row is None:
            row = rows[key] = [0] * len(amounts) + list(first)
            self._added.append((rows, key, ()))  # made here: taken back, it goes
        for i, amount in enumerate(amounts):
            row[i] += amount
        self._added.append((rows, key, amounts))

    def defer(self, bulk: Bulk, row: Sequence[Any], touches: Iterable[Hashable] = ()) -> None:
        """Write ``row`` with the batch's other rows of its kind, as it commits (at once,
        outside a batch). ``touches``: keys a read waiting for it names (see :meth:`read_one`)."""
        pending = self.pending
        if pending is None:
            self._conn.execute(bulk.sql(1), row)
            return
        rows = pending.rows.get(bulk)
        if rows is None:
            rows = pending.rows[bulk] = []
        if bulk not in self._marks:
            self._marks[bulk] = len(rows)
        rows.append(row)
        pending.size += 1
        pending.touched.update(touches)

    def read_one(self, sql: str, params: Sequence[Any], touches: Iterable[Hashable]) -> Any:
        """The first row of a read that may concern deferred rows only through ``touches``
        (a reservation's id, say): the deferred rows are written first only if one of
        them touches one of those keys. (Any other statement writes them first, always.)"""
        pending = self.pending
        if pending is not None and pending.size and not pending.touched.isdisjoint(touches):
            self._own()
        return self._conn.execute(sql, params).fetchone()

    def waits_for(self, key: Hashable) -> bool:
        """Whether a row deferred in this batch (not written yet) touches ``key``."""
        pending = self.pending
        return pending is not None and pending.size > 0 and key in pending.touched

    def _own(self) -> None:
        """Ready for a statement of the operation's own: the rows deferred before it
        written, earlier operations' outside its savepoint and its own inside."""
        pending = self.pending
        if pending is None:
            return
        if not self.in_savepoint:
            if pending.size:
                pending.write(self._conn, self._marks, earlier=True)
            if self.savepoint:
                self._conn.execute(f"SAVEPOINT {self.savepoint}")
            self.in_savepoint = True
        if pending.size:
            pending.write(self._conn, self._marks)

    def take_back(self) -> None:
        """Undo this operation's counter additions and deferred rows (its savepoint was
        rolled back)."""
        if self.pending is not None:
            for bulk, mark in self._marks.items():
                rows = self.pending.rows[bulk]
                self.pending.size -= len(rows) - mark
                del rows[mark:]
            self._marks.clear()
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
        self._own()
        write_sums(self._conn, self.sums)
        self._added.clear()

    def unwritten(self, upsert: str) -> list[tuple[tuple[Any, ...], list[int]]]:
        """Additions to ``upsert``'s rows not in the database yet (for a reader of those rows)."""
        return list(self.sums.get(upsert, {}).items())

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        self._own()
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> sqlite3.Cursor:
        self._own()
        return self._conn.executemany(sql, rows)

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """The first row, or None."""
        self._own()
        return self._conn.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        self._own()
        return self._conn.execute(sql, params).fetchall()

    def emit(self, event: Event) -> int:
        """Record an event in this transaction; it is published after the commit."""
        self._own()
        cur = self._conn.execute(
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
        at: float | None = None,
    ) -> None:
        """Append an audit row: who changed what, from what to what; ``at``: when (None:
        now), for a row that must share its instant with the rows it goes with."""
        self._own()
        self._conn.execute(
            "INSERT INTO audit (at, actor, action, target, before, after, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.clock.now() if at is None else at, actor, action, target, before, after, detail),
        )


def write_sums(conn: sqlite3.Connection, sums: Sums) -> None:
    """Write counter additions: each upsert's rows in statements of many rows each."""
    for upsert, rows in sums.items():
        head, values, tail = _split_upsert(upsert)
        items = [(*key, *amounts) for key, amounts in rows.items()]
        for start in range(0, len(items), BULK_ROWS):
            chunk = items[start : start + BULK_ROWS]
            conn.execute(
                f"{head} VALUES {', '.join([values] * len(chunk))}{tail}",
                list(chain.from_iterable(chunk)),
            )
    sums.clear()


def _split_upsert(upsert: str) -> tuple[str, str, str]:
    """``INSERT ... VALUES (?, max(?, 0)) ON CONFLICT ...`` as its head, row and tail."""
    head, _, rest = upsert.partition(" VALUES ")
    depth = 0
    for end, char in enumerate(rest):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return head, rest[: end + 1], rest[end + 1 :]
    raise ValueError(f"no row of values in {upsert[:80]!r}")


def distinct_seeks(cte: str, table: str, column: str, *, limit: bool = False) -> str:
    """``WITH RECURSIVE cte(column)``: each distinct ``column`` of ``table`` (a column an
    index leads), one seek each, the next value after the last, not a scan of every row of
    a table holding many rows per value. Its last row is NULL: select ``WHERE column IS
    NOT NULL``. ``limit``: at most ``?`` rows (a bound parameter, first in the statement).

    Example:
        >>> import sqlite3
        >>> conn = sqlite3.connect(":memory:")
        >>> _ = conn.execute("CREATE TABLE t (k TEXT, n INTEGER, PRIMARY KEY (k, n))")
        >>> _ = conn.executemany("INSERT INTO t VALUES (?, ?)", [("a", 1), ("a", 2), ("b", 1)])
        >>> sql = distinct_seeks("ks", "t", "k") + " SELECT k FROM ks WHERE k IS NOT NULL"
        >>> conn.execute(sql).fetchall()
        [('a',), ('b',)]
    """
    bound = " LIMIT ?" if limit else ""
    return (
        f"WITH RECURSIVE {cte}({column}) AS ("
        f" SELECT (SELECT MIN({column}) FROM {table})"
        f" UNION ALL SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > {cte}.{column})"
        f" FROM {cte} WHERE {cte}.{column} IS NOT NULL{bound})"
    )
