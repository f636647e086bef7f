"""The store's group commit: counter additions per batch, rollbacks, and other writers."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from guards.clock import ManualClock
from guards.config import parse_policy
from guards.errors import BudgetExceeded, StorageUnavailable
from guards.ledger import Ledger, ReserveRequest
from guards.migrations import begin_immediate, connect
from guards.scopes import Scope
from guards.store import Store, Tx
from guards.store_trouble import storage_trouble
from guards.tokens import authenticate, create_token
from guards.usage import UPSERT_DAY, UsageCache

ROW = ("acme", "2026-01-01")


def _add(tx: Tx, spent: int, held: int) -> None:
    tx.add(UPSERT_DAY, ROW, (spent, held))


def _fail(tx: Tx) -> None:
    _add(tx, 1000, 1000)
    raise RuntimeError("boom")


def refusal() -> BudgetExceeded:
    """A refusal, as an operation raises it (it keeps what the operation recorded)."""
    return BudgetExceeded(
        level="agent",
        scope="acme/a/b",
        window="day",
        limit_micros=1,
        spent_micros=1,
        held_micros=0,
        requested_micros=1,
    )


def _refuse(tx: Tx) -> None:
    _add(tx, 7, 0)
    raise refusal()


def _hit(tx: Tx) -> None:
    tx.execute("INSERT INTO hits VALUES (1)")
    time.sleep(0.0001)  # an operation's work on the loop, so that callers queue meanwhile


def _row(path: Path) -> tuple[int, int] | None:
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT spent_micros, held_micros FROM usage_daily WHERE scope = ? AND day = ?", ROW
        ).fetchone()
    return None if row is None else (row[0], row[1])


async def test_a_batch_writes_each_counter_row_once_with_every_kept_addition(tmp_path):
    path = tmp_path / "s.db"
    store = await Store.open(path, clock=ManualClock())
    try:
        ops = [store.write(lambda tx: _add(tx, 1, 2)) for _ in range(50)]
        results = await asyncio.gather(
            *ops, store.write(_fail), store.write(_refuse), return_exceptions=True
        )
        assert isinstance(results[50], RuntimeError)  # rolled back: its 1000s are not written
        assert isinstance(results[51], BudgetExceeded)  # a refusal keeps what it recorded
        assert store.batches <= 3
        assert _row(path) == (50 + 7, 100)
    finally:
        await store.close()


async def test_what_a_failed_hook_or_operation_added_is_taken_back_and_leaves_no_row(tmp_path):
    path = tmp_path / "s.db"
    store = await Store.open(path, clock=ManualClock())
    other = ("acme", "2026-01-02")

    def bad_hook(tx: Tx) -> None:
        _add(tx, 5, 5)
        raise RuntimeError("hook")

    def fail_on_a_row_of_its_own(tx: Tx) -> None:
        tx.add(UPSERT_DAY, other, (7, 0))
        _add(tx, 1000, 0)
        raise RuntimeError("boom")

    seen: list[list[Any]] = []

    def add_and_look(tx: Tx) -> None:
        _add(tx, 1, 0)
        seen.append(tx.unwritten(UPSERT_DAY))

    store.before_batch.append(bad_hook)
    try:
        results = await asyncio.gather(
            store.write(add_and_look),
            store.write(fail_on_a_row_of_its_own),
            store.write(add_and_look),
            return_exceptions=True,
        )
        assert isinstance(results[1], RuntimeError)
        assert _row(path) == (2, 0)  # the hook's 5s and the failure's 1000 are not written
        with sqlite3.connect(path) as conn:  # nor a row for what only the failure touched
            assert conn.execute("SELECT scope, day FROM usage_daily").fetchall() == [ROW]
        assert seen[-1] == [(ROW, [2, 0])]  # a reader mid-batch sees only what is kept
    finally:
        await store.close()


async def test_a_sum_loaded_mid_batch_counts_what_the_batch_has_not_written_yet(tmp_path):
    path = tmp_path / "s.db"
    store = await Store.open(path, clock=ManualClock(1_767_225_600.0))
    ledger = Ledger(policy=parse_policy({}))  # no limits: reserve loads no sum
    store.on_rollback.append(ledger.forget)
    token, _ = await store.write(lambda tx: create_token(tx, scope="acme"))
    scope = Scope("acme/alice/bot")

    def reserve(key: str, amount: int):
        req = ReserveRequest(scope=scope.path, idempotency_key=key, max_cost_micros=amount)
        return lambda tx: ledger.reserve(tx, token=token, req=req)

    def held(tx: Tx) -> dict[str, int]:
        return {u.window: u.held_micros for u in ledger.usage(tx, scope, now=tx.clock.now())}

    try:
        results: list[object] = await asyncio.gather(
            store.write(reserve("a", 300)),
            store.write(_fail),  # drops every cache mid-batch
            store.write(reserve("b", 200)),
            store.write(held),
            return_exceptions=True,
        )
        first, failed, after_rollback, seen = results
        assert isinstance(failed, RuntimeError)
        assert isinstance(first, tuple) and first[0]  # created
        assert isinstance(after_rollback, tuple) and after_rollback[0]
        assert seen == {"day": 500}
        with sqlite3.connect(path) as conn:
            fresh = UsageCache()
            tx = Tx(conn, store.clock)
            for window, period in (("day", "2026-01-01"), ("week", "2026-W01"), ("total", "all")):
                on_disk = fresh.get(tx, "acme/alice", window, period)
                assert on_disk == (0, 500)
                assert ledger.counters.get(tx, "acme/alice", window, period) == on_disk
    finally:
        await store.close()


async def test_a_commit_by_another_process_drops_what_the_store_remembers(tmp_path):
    path = tmp_path / "s.db"
    store = await Store.open(path, clock=ManualClock())
    try:
        _, raw = await store.write(lambda tx: create_token(tx, scope="acme"))
        assert (await store.write(lambda tx: authenticate(tx, raw))).scope == "acme"
        assert "tokens" in store.memo
        with sqlite3.connect(path) as other:
            other.execute("UPDATE tokens SET revoked_at = 1")
        with pytest.raises(Exception, match="unknown or revoked token"):
            await store.write(lambda tx: authenticate(tx, raw))
    finally:
        await store.close()


async def test_another_process_gets_the_write_lock_while_the_store_is_under_load(tmp_path):
    """Batches begin in their predecessor's commit hop, but not forever: others get a turn."""
    path = tmp_path / "s.db"
    store = await Store.open(path, clock=ManualClock())
    await store.write(lambda tx: tx.execute("CREATE TABLE hits (n INTEGER)"))
    stop = asyncio.Event()

    async def load() -> int:  # a flood: callers arrive while every batch runs
        writes = []
        while not stop.is_set():
            writes.append(asyncio.ensure_future(store.write(_hit)))
            await asyncio.sleep(0.0005)
        await asyncio.gather(*writes)
        return len(writes)

    def other_process() -> float:  # as the CLI takes the lock (`nightshift token revoke`)
        started = time.monotonic()
        conn = connect(path)
        try:
            begin_immediate(conn)
            conn.execute(
                "INSERT INTO tokens (id, scope, hash, created_at) VALUES ('t', 'a', 'h', 0)"
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        return time.monotonic() - started

    try:
        loaders = [asyncio.create_task(load()) for _ in range(8)]
        await asyncio.sleep(0.3)
        waited = await asyncio.to_thread(other_process)
        stop.set()
        written = sum(await asyncio.gather(*loaders))
        print(f"the other process waited {waited * 1000:.1f} ms for the write lock")
        assert waited < 1.0
        assert store.batches > 10 and written > 100
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT COUNT(*) FROM hits").fetchone()[0] == written
            assert conn.execute("SELECT COUNT(*) FROM tokens").fetchone()[0] == 1
    finally:
        stop.set()
        await store.close()


async def test_a_batch_the_database_refuses_is_a_503_for_each_caller_and_the_store_recovers(
    tmp_path, monkeypatch, caplog
):
    """audit11 day-2 H1: the writer handed its own exception to every caller; APScheduler
    cleared that traceback's frames, which finalized the writer: no write ever ended
    again, not even once the other process let go of the lock."""
    import traceback

    from guards.errors import StorageUnavailable

    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    path = tmp_path / "s.db"
    store = await Store.open(path, clock=ManualClock())
    await store.write(lambda tx: tx.execute("CREATE TABLE hits (n INTEGER)"))
    other = connect(path)
    try:
        begin_immediate(other)  # another process holds the write lock past the wait
        answers = await asyncio.gather(
            *(store.write(_hit) for _ in range(3)), return_exceptions=True
        )
        got = [e for e in answers if isinstance(e, StorageUnavailable)]
        assert len(got) == 3, answers
        assert len({id(e) for e in got}) == 3  # one each: none shares the writer's frames
        for exc in got:
            assert exc.status == 503 and exc.code == "storage_unavailable"
            assert "database is locked" in exc.message and "nothing was changed" in exc.message
            assert exc.__cause__ is None and exc.__context__ is None
            traceback.clear_frames(exc.__traceback__)  # as APScheduler does with a job's error
        with pytest.raises(StorageUnavailable):  # still locked: refused again, not hung
            await asyncio.wait_for(store.write(_hit), 5)
        other.execute("ROLLBACK")
        await asyncio.wait_for(store.write(_hit), 5)  # the lock is free: writes go through
    finally:
        other.close()
        await asyncio.wait_for(store.close(), 5)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM hits").fetchone()[0] == 1
    refused = [r for r in caplog.records if "refused writes" in r.getMessage()]
    assert len(refused) == 1 and store.storage_refusals == 2  # the second within the minute: quiet


async def test_a_full_database_is_a_503_for_the_write_that_hit_it_and_passes_when_room_returns(
    tmp_path,
):
    """A full disk (here: SQLite's max_page_count) is no fault of the caller's: a 503 it
    may retry, not a 500. A wrong statement stays an error of its own."""
    from guards.errors import StorageUnavailable

    store = await Store.open(tmp_path / "s.db", clock=ManualClock())
    try:
        await store.write(lambda tx: tx.execute("CREATE TABLE blobs (b BLOB)"))
        pages = await store.write(lambda tx: tx.one("PRAGMA page_count")[0])
        await store.write(lambda tx: tx.execute(f"PRAGMA max_page_count = {pages + 2}"))
        big = b"x" * 200_000

        def put(tx: Tx) -> None:
            tx.execute("INSERT INTO blobs VALUES (?)", (big,))

        with pytest.raises(StorageUnavailable, match="database or disk is full"):
            await store.write(put)
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await store.write(lambda tx: tx.execute("INSERT INTO nope VALUES (1)"))
        await store.write(lambda tx: tx.execute("PRAGMA max_page_count = 1073741823"))
        await store.write(put)
        assert await store.write(lambda tx: tx.one("SELECT COUNT(*) FROM blobs")[0]) == 1
    finally:
        await store.close()


async def test_close_within_a_deadline_refuses_what_the_locked_database_cannot_take(tmp_path):
    """audit11 day-2 M4: with another process holding the lock, SIGTERM took 20 s (the
    writer waited 30 s for the lock); `docker stop` would have killed it."""
    from guards.errors import StorageUnavailable

    path = tmp_path / "s.db"
    store = await Store.open(path, clock=ManualClock())
    await store.write(lambda tx: tx.execute("CREATE TABLE hits (n INTEGER)"))
    other = connect(path)
    try:
        begin_immediate(other)
        pending = asyncio.ensure_future(store.write(_hit))
        await asyncio.sleep(0.1)  # the writer is waiting for the lock
        started = time.monotonic()
        await store.close(within=0.5)
        assert time.monotonic() - started < 2
        with pytest.raises(StorageUnavailable):
            await pending
    finally:
        other.execute("ROLLBACK")
        other.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM hits").fetchone()[0] == 0


async def test_a_batch_broken_by_a_bug_is_an_error_not_a_503_to_retry(tmp_path):
    """review12 M1: a constraint the counter flush broke was answered 503 'send it again',
    so the client sent the bad write again and again, failing its neighbours each time."""
    from guards.errors import StorageUnavailable

    upsert = "INSERT INTO c VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET n = n + excluded.n"
    store = await Store.open(tmp_path / "s.db", clock=ManualClock())
    try:
        await store.write(
            lambda tx: tx.execute("CREATE TABLE c (k TEXT PRIMARY KEY, n INTEGER CHECK (n >= 0))")
        )
        await store.write(lambda tx: tx.execute("CREATE TABLE hits (n INTEGER)"))

        def poison(tx: Tx) -> None:
            tx.add(upsert, ("x",), (-5,))  # breaks the CHECK only when the batch flushes

        answers = await asyncio.gather(
            store.write(poison), store.write(_hit), return_exceptions=True
        )
        assert all(isinstance(a, RuntimeError) for a in answers), answers
        assert not any(isinstance(a, StorageUnavailable) for a in answers)
        assert "CHECK constraint failed" in str(answers[0])
        assert store.storage_refusals == 0
        await store.write(_hit)  # the writer goes on
        assert await store.write(lambda tx: tx.one("SELECT COUNT(*) FROM hits")[0]) == 1
    finally:
        await store.close()


@asynccontextmanager
async def _lock_held_elsewhere(path: Path) -> AsyncIterator[Store]:
    """A store whose database another process holds the write lock of, all along."""
    store = await Store.open(path, clock=ManualClock())
    await store.write(lambda tx: tx.execute("CREATE TABLE hits (n INTEGER)"))
    other = connect(path)
    try:
        begin_immediate(other)
        yield store
    finally:
        other.execute("ROLLBACK")
        other.close()
        await store.close()


async def test_a_write_queued_behind_a_locked_batch_is_answered_within_its_own_wait(
    tmp_path, monkeypatch
):
    """review15 L4: the lock wait was counted per batch, so a write queued behind a batch
    that waited got no answer for twice the wait (past the client's timeout)."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 1.0)
    monkeypatch.setattr("guards.store.MIN_LOCK_WAIT_SECONDS", 0.1)
    async with _lock_held_elsewhere(tmp_path / "q.db") as store:
        started = time.monotonic()
        first = asyncio.ensure_future(store.write(_hit))
        await asyncio.sleep(0.3)  # while the first batch waits for the lock
        with pytest.raises(StorageUnavailable):
            await store.write(_hit)
        queued_for = time.monotonic() - started
        with pytest.raises(StorageUnavailable):
            await first
    # its own 1 s from when it came (0.3 s), not a second whole wait after the first's
    assert queued_for < 1.7, queued_for  # it was 2.0: the first's 1 s, then 1 s again


async def test_a_flood_queued_behind_a_held_lock_is_refused_within_the_wait(tmp_path, monkeypatch):
    """review15b M1: 512 writes a batch were refused per minimum wait, so a flood fell
    further behind with each batch, past the client's timeout."""
    # waits long enough that a loaded machine's overhead (2,048 coroutines and their
    # exceptions) stays well inside the margin between right (2 s) and wrong (5 s)
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 2.0)
    monkeypatch.setattr("guards.store.MIN_LOCK_WAIT_SECONDS", 1.0)
    async with _lock_held_elsewhere(tmp_path / "f.db") as store:
        started = time.monotonic()
        answers = await asyncio.gather(
            *(store.write(_hit) for _ in range(4 * 512)), return_exceptions=True
        )
        took = time.monotonic() - started
    assert all(isinstance(a, StorageUnavailable) for a in answers)
    assert took < 3.5, took  # it was 5.0: 2 s, then 1 s for each next batch of 512


def test_a_read_only_database_is_storage_trouble_not_a_bug(tmp_path: Path) -> None:
    """audit21 observe M1: a file that became read-only under the process answered its
    writes 500 ("the write batch failed", a bug's answer) instead of 503 (send it again)."""
    db = tmp_path / "ro.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            conn.execute("INSERT INTO t VALUES (1)")
    finally:
        conn.close()
    assert "readonly" in str(caught.value)
    assert storage_trouble(caught.value)
    with pytest.raises(sqlite3.OperationalError) as bug:
        sqlite3.connect(":memory:").execute("SELECT nosuchcolumn FROM sqlite_master")
    assert not storage_trouble(bug.value)  # a wrong statement stays a bug


async def test_an_outage_is_kept_and_its_end_is_said_once_with_how_long_and_how_many(
    tmp_path, caplog
):
    """audit24 resources L5: the log's last words stayed "refused writes" after the disk
    was freed; L4: "Nightshift goes on by itself" was said by a start or a CLI command
    that then exits 1. audit28 L1: "accepts writes again" was said at the first write that
    fitted, while the disk, full again, refused the agents' calls (and then no line): it
    is said once writes have gone through for 30 s, and the refusals between are its."""
    import logging

    from guards.store_watch import Outage

    clock = ManualClock()
    started = clock.now()
    path = tmp_path / "s.db"
    store = await Store.open(path, clock=clock)
    # (its "applied migrations" line is no part of this: it is seen when an earlier test in
    # the worker left the root logger at INFO)
    caplog.clear()
    big = b"x" * 200_000

    def put(tx: Tx) -> None:
        tx.execute("INSERT INTO blobs VALUES (?)", (big,))

    try:
        await store.write(lambda tx: tx.execute("CREATE TABLE blobs (b BLOB)"))
        pages = await store.write(lambda tx: tx.one("PRAGMA page_count")[0])
        await store.write(lambda tx: tx.execute(f"PRAGMA max_page_count = {pages + 2}"))
        assert store.outage() is None
        with caplog.at_level(logging.INFO, logger="guards.store"):
            with pytest.raises(StorageUnavailable):
                await store.write(put)
            clock.advance(250)
            with pytest.raises(StorageUnavailable):
                await store.write(put)
            full = (
                "OperationalError: database or disk is full"
                " (the disk holding it is full: free space)"
            )
            assert store.outage() == Outage(since=started, cause=full, refused=2)
            # room again; a commit that writes no row proves nothing (it passes on a full disk)
            await store.write(lambda tx: tx.execute("PRAGMA max_page_count = 1073741823"))
            assert store.outage() is not None
            await store.write(put)
            assert store.outage() is None  # (not said yet: it may be one write that fitted)
            store.serving = True  # a running server: a refusal there goes on by itself
            await store.write(lambda tx: tx.execute(f"PRAGMA max_page_count = {pages + 2}"))
            # full again within the minute: held back (a disk hovering at full wrote two
            # lines a flap: recheck27 R3), and its end, never named, is no news either
            with pytest.raises(StorageUnavailable):
                await store.write(put)
            await store.write(lambda tx: tx.execute("PRAGMA max_page_count = 1073741823"))
            await store.write(put)
            await store.write(lambda tx: tx.execute(f"PRAGMA max_page_count = {pages + 4}"))
            store._reported_at -= 61  # a minute later
            with pytest.raises(StorageUnavailable):
                await store.write(put)
            await store.write(lambda tx: tx.execute("PRAGMA max_page_count = 1073741823"))
            await store.write(put)  # taken again: said once writes go through for 30 s
            clock.advance(29)
            await store.write(put)
            clock.advance(1)
            await store.write(put)
            await store.write(put)  # (said once)
    finally:
        await store.close()
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "guards.store"]
    assert said == [
        (
            "ERROR",
            # a start or a CLI command answers no agent (audit26b L2)
            f"the database {path} refused writes: {full}; 1 write refused",
        ),
        (
            "ERROR",
            f"the database {path} refused writes: OperationalError: database or disk is full"
            " (the disk holding it is full: free space; Nightshift goes on by itself);"
            " 1 write refused (agents' calls among them answered 503)"
            " (2 more refused since the last report)",
        ),
        (
            "INFO",
            f"the database {path} accepts writes again after 4m10s (4 writes refused):"
            " every write for 30s since went through",
        ),
    ]


async def test_writes_again_is_not_said_at_a_batch_with_a_refused_write(tmp_path, caplog):
    """review28 R5 L4: a batch where one operation was refused in its savepoint (a full
    disk can, keeping the transaction) while the others committed ran the 'accepts writes
    again ... every write for 30s since went through' branch, at that very batch."""
    import logging

    clock = ManualClock()
    store = await Store.open(tmp_path / "s.db", clock=clock)
    caplog.clear()

    def refused(tx: Tx) -> None:  # an operation the full disk refuses, alone of its batch
        tx.execute("CREATE TABLE IF NOT EXISTS rows (n INTEGER)")
        full = sqlite3.OperationalError("database or disk is full")
        full.sqlite_errorcode = sqlite3.SQLITE_FULL  # (as SQLite's own says it)
        raise full

    def put(tx: Tx) -> None:
        tx.execute("CREATE TABLE IF NOT EXISTS rows (n INTEGER)")
        tx.execute("INSERT INTO rows VALUES (1)")

    try:
        with caplog.at_level(logging.INFO, logger="guards.store"):
            with pytest.raises(StorageUnavailable):
                await store.write(refused)
            await store.write(put)  # the outage is over, said after 30 s of writes
            clock.advance(31)
            both = await asyncio.gather(
                store.write(put), store.write(refused), return_exceptions=True
            )
            assert both[0] is None and isinstance(both[1], StorageUnavailable)  # one batch
            said = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
            assert not [m for m in said if "accepts writes again" in m], said
            await store.write(put)  # taken again: said after 30 s more, counting both
            clock.advance(30)
            await store.write(put)
    finally:
        await store.close()
    said = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    assert [m for m in said if "accepts writes again" in m] == [
        f"the database {tmp_path / 's.db'} accepts writes again after 31s (2 writes refused):"
        " every write for 30s since went through"
    ]


async def test_an_outage_begins_when_its_first_refused_write_came(tmp_path, monkeypatch):
    """audit26 chaos M1: it began when that write was refused, after waiting out the lock
    (8 s): an agent whose beat waited then was paged for silence it never kept."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.5)
    clock = ManualClock()
    store = await Store.open(tmp_path / "s.db", clock=clock)
    other = connect(tmp_path / "s.db")
    begin_immediate(other)
    try:
        came = clock.now()
        write = asyncio.ensure_future(store.write(lambda tx: tx.execute("CREATE TABLE t (x)")))
        await asyncio.sleep(0.1)
        clock.advance(8)  # the lock's wait, on the store's clock
        with pytest.raises(StorageUnavailable):
            await write
        outage = store.outage()
        assert outage is not None and outage.since == came
    finally:
        other.execute("ROLLBACK")
        other.close()
        await store.close()


async def test_a_step_of_the_clock_during_the_lock_wait_moves_the_outage_s_start(
    tmp_path, monkeypatch
):
    """review26 M2: the first refused write's arrival stayed in the frame before a step
    the watch saw during its lock wait: a half-second outage was told as an hour long."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.5)
    clock = ManualClock()
    store = await Store.open(tmp_path / "s.db", clock=clock)
    other = connect(tmp_path / "s.db")
    begin_immediate(other)
    try:
        came = clock.now()
        queued = [
            asyncio.ensure_future(store.write(lambda tx: tx.execute("CREATE TABLE t (x)")))
            for _ in range(2)
        ]
        await asyncio.sleep(0.1)  # the first is waiting for the lock; the step comes
        clock.advance(3600)
        store.clock_stepped(3600)  # as ClockWatch's on_step tells it
        for write in queued:
            with pytest.raises(StorageUnavailable):
                await write
        outage = store.outage()
        assert outage is not None and outage.since == came + 3600
    finally:
        other.execute("ROLLBACK")
        other.close()
        await store.close()
