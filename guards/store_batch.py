"""How one write batch runs its hooks and operations: each in a savepoint of its own, a
refusal keeping what it wrote, any other failure rolled back alone
(:class:`guards.store.Store`; what a savepoint holds: :mod:`guards.tx`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from guards.clock import Clock
from guards.errors import GuardError, StorageUnavailable, said
from guards.events import Event
from guards.store_trouble import storage_trouble
from guards.store_watch import StorageWatch
from guards.tx import Pending, Sums, Tx

__all__ = ["BatchRunner", "Failed"]

# the store's own logger, whichever module of it logs: operators filter on it
log = logging.getLogger("guards.store")


class Failed:
    """An operation's exception, kept as its result until the batch is committed."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class BatchRunner(StorageWatch):
    """Run a batch's operations in savepoints of the batch transaction."""

    clock: Clock
    memo: dict[str, Any]
    before_batch: list[Callable[[Tx], object]]
    on_rollback: list[Callable[[], None]]
    _conn: sqlite3.Connection
    _sums: Sums  # the batch's counter additions, not written yet
    _deferred: Pending  # the batch's rows written in bulk as it commits

    def _apply(
        self, fns: list[Callable[[Tx], Any]]
    ) -> tuple[list[Any], list[tuple[int, Event]], list[Callable[[], None]]]:
        """Run the batch's hooks and operations, each in its own savepoint (opened at its
        first statement of its own: see :mod:`guards.tx`)."""
        conn = self._conn
        results: list[Any] = []
        events: list[tuple[int, Event]] = []
        after: list[Callable[[], None]] = []
        self._sums.clear()
        self._deferred.clear()
        for hook in self.before_batch:
            tx = self._tx("hook")
            try:
                hook(tx)
                self._release(tx)
                events.extend(tx.events)
                after.extend(tx.after_commit)
            except Exception:
                tx.take_back()
                if not conn.in_transaction:  # SQLite undid the whole batch (a full disk can)
                    raise
                log.exception("batch hook failed")
                self._undo(tx)
        for fn in fns:
            tx = self._tx("op")
            try:
                result = fn(tx)
            except GuardError as exc:  # a refusal keeps what it recorded
                self._release(tx)
                events.extend(tx.events)
                after.extend(tx.after_commit)
                results.append(Failed(exc))
            except Exception as exc:
                tx.take_back()
                if not conn.in_transaction:  # SQLite undid the whole batch (a full disk can)
                    raise
                self._undo(tx)
                if storage_trouble(exc):  # not the caller's fault, nor a bug of ours
                    self._report(exc, 1, came=self._came)  # (review26 L4)
                    exc = StorageUnavailable(said(exc))
                results.append(Failed(exc))
            else:
                self._release(tx)
                events.extend(tx.events)
                after.extend(tx.after_commit)
                results.append(result)
        return results, events, after

    def _tx(self, savepoint: str) -> Tx:
        return Tx(
            self._conn,
            self.clock,
            memo=self.memo,
            batch_sums=self._sums,
            pending=self._deferred,
            savepoint=savepoint,
        )

    def _release(self, tx: Tx) -> None:
        if tx.in_savepoint:
            self._conn.execute(f"RELEASE {tx.savepoint}")

    def _undo(self, tx: Tx) -> None:
        if tx.in_savepoint:
            self._conn.execute(f"ROLLBACK TO {tx.savepoint}")
            self._conn.execute(f"RELEASE {tx.savepoint}")
        self._rolled_back()

    def _rolled_back(self) -> None:
        self.memo.clear()
        for hook in self.on_rollback:
            hook()
