"""The SQLite store: one writer with group commit, and a reader.

Every change goes through :meth:`Store.write`: the function joins the next batch
and runs inside its own ``SAVEPOINT`` of the batch transaction (opened at its first
statement: an operation that only defers rows needs none); concurrent callers
share one ``COMMIT`` (WAL, ``synchronous=FULL``), and each gets its own answer only
after that commit is on disk. One caller's failure rolls back only its own
savepoint. ``BEGIN`` and ``COMMIT`` (which wait for locks and fsync) run on the
writer thread; the operations in between are short and run on the event loop,
one after another, so a batch costs two thread hops however many statements and
callers it holds; under load, one (the next batch begins in the hop that commits
this one). (aiosqlite's model, one hop per statement, measured 4-5x slower here:
each statement paid a GIL hand-off to the busy event loop.)

The rows every call writes (a reservation, its journal rows) are deferred
(:meth:`Tx.defer`): the writer thread writes each kind's rows in one statement, in
the hop that commits, outside the GIL, while the event loop goes on with the next
requests. Such a row must not be able to fail (its operation checked what could make
it fail): one that does fails the whole batch, as a failed commit does. Counters that
many operations of a batch add to (daily usage, the digest's rollup) go through
:meth:`Tx.add`: the batch's additions to one row become one row of an upsert written
there too. :attr:`Tx.memo` is a cache of rows shared by
every batch; it is dropped whenever writes are rolled back or another process
(``nightshift token revoke``, say) committed to the file since the last batch.

A function that raises a :class:`~guards.errors.GuardError` keeps what it wrote
before raising (a refusal may record an event or an attempt); any other
exception rolls its savepoint back. So validate input before writing anything.

Example:
    >>> async def demo(path: str) -> int:
    ...     store = await Store.open(path)
    ...     n = await store.write(lambda tx: tx.one("SELECT 41 + 1")[0])
    ...     await store.close()
    ...     return n
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from guards.clock import Clock, SystemClock
from guards.errors import StorageUnavailable, said
from guards.events import EventBus
from guards.migrations import apply_migrations, begin_immediate, connect
from guards.store_batch import BatchRunner, Failed
from guards.store_trouble import FileLost, cause, identity, storage_trouble
from guards.store_watch import ENDED_KEPT
from guards.tx import Pending, Sums, Tx, write_sums

__all__ = ["Store", "Tx"]

log = logging.getLogger(__name__)
T = TypeVar("T")
# a write waiting for its batch: its operation, its caller's future, when it came
# (time.monotonic(), for its lock wait; and the store's clock, for an outage's start)
Queued = tuple[Callable[[Tx], Any], "asyncio.Future[Any]", float, float]
MAX_BATCH = 512
MAX_CHAINED = 4  # batches begun in their predecessor's COMMIT hop, in a row
# Another process holding the write lock longer: the batch gets 503s. Counted from the
# arrival of the batch's first write (one queued behind a batch that waited gets what is
# left), and under the Python client's default timeout (10 s), so that it reads the 503
# rather than timing out.
LOCK_WAIT_SECONDS = 8.0
MIN_LOCK_WAIT_SECONDS = 0.5  # a batch that waited its whole time in the queue still tries


class Store(BatchRunner):
    """The database of one Nightshift process."""

    def __init__(
        self, path: str | Path, *, clock: Clock, bus: EventBus, conn: sqlite3.Connection
    ) -> None:
        self.path = str(path)
        self.clock = clock
        self.bus = bus
        self._conn = conn
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nightshift-writer")
        # each write, the future its caller awaits, and when it came (time.monotonic())
        self._pending: list[Queued] = []
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._reader: aiosqlite.Connection | None = None
        self._closed = False
        self.batches = 0
        self.batched_writes = 0
        self.before_batch: list[Callable[[Tx], object]] = []
        # Called on the writer thread whenever writes are rolled back, so that
        # in-memory caches of the database can drop what they may have seen.
        self.on_rollback: list[Callable[[], None]] = []
        self.memo: dict[str, Any] = {}
        self._sums: Sums = {}  # the batch's counter additions, not written yet
        self._deferred = Pending()  # the batch's rows written in bulk as it commits
        self._data_version: int | None = None
        self.storage_refusals = 0  # batches, or single writes, the database refused
        self._give_up = threading.Event()  # set by close(): stop waiting for the lock
        self.last_commit_at: float | None = None  # of the last commit that wrote a row
        self._reported_at = float("-inf")
        self._unreported = 0
        self._said = False
        self._file = identity(self.path)  # the file opened, to tell if the path still names it
        # the WAL the connection opened (connect switches the file to WAL; a new file gets
        # its WAL at the migrations' first write)
        self._wal = identity(f"{self.path}-wal") if self._file is not None else None
        self._shm = identity(f"{self.path}-shm") if self._file is not None else None
        self._lost_checked_at = float("-inf")
        self._lost: str | None = None
        self.serving = False  # set by a running server (bot.app): see StorageWatch
        # since when (time.monotonic()) the writer waits for the write lock, or None: a
        # probe that cannot wait as long names the lock (/healthz, audit28 L2); and since
        # when it commits: a slow disk's fsync, which is no held lock (review28 R5 M3)
        self.lock_wait_began: float | None = None
        self.commit_began: float | None = None
        self._outage = None
        self.ended_outages = deque(maxlen=ENDED_KEPT)
        self._came = None

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        clock: Clock | None = None,
        bus: EventBus | None = None,
        migrate: bool = True,
    ) -> Store:
        """Open (and by default migrate) the database at ``path``."""
        clock = clock or SystemClock()
        opening = asyncio.ensure_future(asyncio.to_thread(_open, path, migrate, clock.now()))
        try:
            conn, applied = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # a stop during the start: a thread cannot be stopped midway, so its work (one
            # transaction per migration) ends first, then what it opened is closed, even
            # if a second stop cuts this wait short (review22 L9)
            opening.add_done_callback(_close_opened)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(opening)
            raise
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        store = cls(path, clock=clock, bus=bus or EventBus(), conn=conn)
        store._worker = asyncio.create_task(store._run(), name="nightshift-writer")
        return store

    async def reader(self) -> aiosqlite.Connection:
        """A read-only aiosqlite connection for queries that need no write lock."""
        if self._reader is None:
            self._reader = await aiosqlite.connect(self.path)
            await self._reader.execute("PRAGMA busy_timeout=10000")
            self._reader.row_factory = aiosqlite.Row
        return self._reader

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run one read query on the reader connection."""
        db = await self.reader()
        return list(await db.execute_fetchall(sql, params))

    async def read(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` on a read-only connection of its own, on a worker thread.

        For a long read (the whole fleet) that must not hold every write meanwhile. It
        sees one snapshot of what was committed when it began. ``fn`` runs off the
        event loop: it may use only its ``tx``, not the writer's caches.
        """
        return await asyncio.to_thread(self._read, fn)

    def _read(self, fn: Callable[[Tx], T]) -> T:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            conn.execute("PRAGMA query_only = 1")
            conn.execute("BEGIN")  # one snapshot for every query of fn
            return fn(Tx(conn, self.clock))
        finally:
            conn.close()

    @property
    def waiting(self) -> int:
        """Writes not yet taken into a batch."""
        return len(self._pending)

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in the next batch transaction; return once it is committed."""
        if self._closed:
            raise RuntimeError("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, future, time.monotonic(), self.clock.now()))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        begun: int | None = None  # the data version, when the next batch's BEGIN ran already
        chained = 0
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                self._came = batch[0][3]  # (moved by a step of the clock while it waits)
                try:
                    lost = self._lost_lately()
                    if lost:  # a 2xx means on disk: not in a file gone at the next start
                        raise FileLost(lost)
                    # BEGIN and COMMIT may wait for a lock or fsync: off the loop. The
                    # operations themselves are short and run here, without a thread hop.
                    version = begun
                    begun = None
                    if version is None:
                        waited = time.monotonic() - batch[0][2]
                        wait = max(MIN_LOCK_WAIT_SECONDS, LOCK_WAIT_SECONDS - waited)
                        version = await loop.run_in_executor(self._executor, self._begin, wait)
                    if version != self._data_version:
                        if self._data_version is not None:  # another process wrote
                            self._rolled_back()
                        self._data_version = version
                    changes = self._conn.total_changes
                    results, events, after = self._apply([fn for fn, *_ in batch])
                    changed = (
                        self._conn.total_changes != changes
                        or bool(self._deferred.size)
                        or any(self._sums.values())
                    )
                    # Callers that came during this batch: begin theirs in the same hop,
                    # but not forever: between hops other processes get the write lock.
                    chain = bool(self._pending) and chained < MAX_CHAINED
                    chained = chained + 1 if chain else 0
                    begun = await loop.run_in_executor(self._executor, self._commit, chain)
                except BaseException as exc:  # nobody's change is on disk
                    begun = self.commit_began = None
                    if self._conn.in_transaction:
                        await self._in_writer(loop, "ROLLBACK")
                    self._rolled_back()
                    if isinstance(exc, asyncio.CancelledError):
                        for _, fut, *_ in batch:
                            fut.cancel()
                        raise
                    storage = storage_trouble(exc) or isinstance(exc, FileLost)
                    if storage:
                        # Writes still queued whose wait is (nearly) over are refused with
                        # it: at a thousand writes a second, 512 a batch would fall behind.
                        batch += self._outwaited()
                        self._report(exc, len(batch), came=self._came)  # (the first came first)
                    else:  # a bug (a constraint the flush broke, say): a 500, not "retry"
                        log.error("a write batch failed", exc_info=exc)
                    for _, fut, *_ in batch:
                        if not fut.done():
                            # Each caller gets an exception of its own, made here and not
                            # raised: exc's traceback holds this coroutine's frame, and a
                            # caller clearing it (APScheduler clears every job's traceback)
                            # would finalize the writer, and no write would end again.
                            fut.set_exception(
                                StorageUnavailable(cause(exc))
                                if storage
                                else RuntimeError(f"the write batch failed: {said(exc)}")
                            )
                    continue
                self.batches += 1
                self.batched_writes += len(batch)
                if changed:  # an empty commit succeeds on a full disk too
                    self.last_commit_at = time.time()
                    self._committed(refused=any(map(_refused, results)))  # (store_watch)
                for callback in after:
                    try:
                        callback()
                    except Exception:
                        log.exception("after-commit callback failed")
                for (_, fut, *_), result in zip(batch, results, strict=True):
                    if fut.done():
                        continue
                    if isinstance(result, Failed):
                        fut.set_exception(result.exc)
                    else:
                        fut.set_result(result)
                if events:
                    self.bus.publish(events)
                # The batch's callers answer before the next batch's operations run: their
                # clients send their next requests sooner (measured: 8-13% more requests a
                # second under 64 clients, a lower p99).
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:  # the next batch may have begun: undo it
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    for _, fut, *_ in self._pending:
                        fut.cancel()
                    raise
            if self._closed:
                return

    def clock_stepped(self, seconds: float) -> None:
        """Move the outages' times and the queued writes' arrival by a step of the wall
        clock: a step during a lock wait must not date the outage it ends in in the old
        frame (review26 M2: a 0.5 s outage told as an hour)."""
        super().clock_stepped(seconds)
        self._pending[:] = [
            (fn, fut, mono, came + seconds) for fn, fut, mono, came in self._pending
        ]

    def _outwaited(self) -> list[Queued]:
        """Take the queued writes with less than the minimum wait left of their lock wait."""
        cutoff = time.monotonic() - (LOCK_WAIT_SECONDS - MIN_LOCK_WAIT_SECONDS)
        taken = [p for p in self._pending if p[2] <= cutoff]
        if taken:
            self._pending = [p for p in self._pending if p[2] > cutoff]
        return taken

    async def _in_writer(self, loop: asyncio.AbstractEventLoop, sql: str) -> None:
        await loop.run_in_executor(self._executor, self._conn.execute, sql)

    def _begin(self, wait: float | None = None) -> int:
        """Start the batch transaction (waiting up to ``wait`` seconds for the write lock,
        ``LOCK_WAIT_SECONDS`` by default); return the file's data version (others'
        commits move it)."""
        timeout = LOCK_WAIT_SECONDS if wait is None else wait
        self.lock_wait_began = time.monotonic()
        try:
            begin_immediate(self._conn, timeout=timeout, give_up=self._give_up)
        finally:
            self.lock_wait_began = None
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _commit(self, then_begin: bool) -> int | None:
        """Write the batch's deferred rows and commit it; then maybe begin the next one
        (its data version, or None)."""
        if self._deferred.size:
            self._deferred.write(self._conn)
        write_sums(self._conn, self._sums)
        self.commit_began = time.monotonic()  # (a failed COMMIT: cleared by the batch's end)
        self._conn.execute("COMMIT")
        self.commit_began = None
        if not then_begin:
            return None
        try:
            return self._begin()
        except sqlite3.Error:  # the next batch begins on its own (and reports its error)
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            return None

    async def close(self, within: float | None = None) -> None:
        """Finish pending writes, then close both connections.

        With ``within`` (seconds): writes not committed by then (another process holds the write
        lock) are refused, as a failed batch's are: a shutdown must end in time.
        """
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        if self._worker is not None:
            try:  # it returns once every pending write is committed (or refused)
                await asyncio.wait_for(asyncio.shield(self._worker), within)
            except TimeoutError:
                log.warning(
                    "the database did not take the last writes within %gs (is another"
                    " process holding its lock?): they are refused, none is written",
                    within,
                )
                self._give_up.set()
                await self._worker
        if self._reader is not None:
            await self._reader.close()
        await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)


def _refused(result: Any) -> bool:
    """A batch's operation the database refused in its savepoint (a full disk can)."""
    return isinstance(result, Failed) and isinstance(result.exc, StorageUnavailable)


def _close_opened(opening: asyncio.Future[tuple[sqlite3.Connection, list[str]]]) -> None:
    """Close the connection an open called off made, once its thread is done."""
    if not opening.cancelled() and opening.exception() is None:
        opening.result()[0].close()


def _open(path: str | Path, migrate: bool, now: float) -> tuple[sqlite3.Connection, list[str]]:
    """Connect and apply the migrations (one thread's job: :meth:`Store.open`)."""
    conn = connect(path)
    try:
        return conn, apply_migrations(conn, now=now) if migrate else []
    except BaseException:
        conn.close()
        raise
