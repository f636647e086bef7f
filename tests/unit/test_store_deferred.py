"""Rows deferred to the batch's commit (Tx.defer): written in bulk by the writer thread,
before any statement that could read past them, and undone with the operation that
deferred them."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from guards.clock import ManualClock
from guards.config import parse_policy
from guards.errors import BudgetExceeded, Conflict
from guards.ledger import Ledger, ReserveRequest, SettleRequest
from guards.store import Store, Tx
from guards.tokens import create_token
from guards.tx import BULK_ROWS, Bulk, write_sums
from guards.verify import verify
from tests.fakes.tracing import on_writer, writer_statements
from tests.unit.test_store import refusal

NOTE = Bulk(0, "INSERT INTO notes (n, tag) VALUES ", 2)
RETAG = Bulk(1, "UPDATE notes SET tag = u.column2 FROM (VALUES ", 2, ") AS u WHERE n = u.column1")


def _notes(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        return [(int(n), str(t)) for n, t in conn.execute("SELECT n, tag FROM notes ORDER BY n")]


@pytest.fixture
async def notes(tmp_path: Path) -> AsyncIterator[tuple[Store, Path]]:
    """A store whose database has a table of notes; closed after the test."""
    path = tmp_path / "s.db"
    store = await Store.open(path, clock=ManualClock())
    await store.write(
        lambda tx: tx.execute("CREATE TABLE notes (n INTEGER PRIMARY KEY, tag TEXT NOT NULL)")
    )
    yield store, path
    await store.close()


def _note(n: int, tag: str = "a") -> Callable[[Tx], None]:
    def op(tx: Tx) -> None:
        tx.defer(NOTE, (n, tag), [("note", n)])

    return op


async def test_deferred_rows_are_written_as_the_batch_commits_in_one_statement_per_kind(notes):
    store, path = notes
    n = BULK_ROWS + 10  # more than one statement's worth: two chunks
    async with writer_statements(store) as statements:
        await asyncio.gather(*(store.write(_note(i)) for i in range(n)))
    assert _notes(path) == [(i, "a") for i in range(n)]
    inserts = [s for s in statements if s.startswith("INSERT INTO notes")]
    assert len(inserts) == 2
    assert not [s for s in statements if s.startswith("SAVEPOINT op")]  # none needed


async def test_a_statement_of_an_operation_sees_every_row_deferred_before_it(notes):
    store, path = notes

    def count(tx: Tx) -> int:
        return int(tx.one("SELECT COUNT(*) FROM notes")[0])

    *_, seen = await asyncio.gather(
        store.write(_note(1)),
        store.write(_note(2)),
        store.write(count),
    )
    assert seen == 2
    assert _notes(path) == [(1, "a"), (2, "a")]


async def test_a_failed_operation_takes_its_deferred_rows_back_and_keeps_its_neighbours(notes):
    store, path = notes

    def fail_before_writing(tx: Tx) -> None:
        tx.defer(NOTE, (10, "lost"))
        raise RuntimeError("boom")

    def fail_after_writing(tx: Tx) -> None:
        # its first statement writes what earlier operations deferred (kept) and
        # its own row (inside its savepoint: undone with it)
        tx.defer(NOTE, (11, "lost"))
        tx.execute("UPDATE notes SET tag = 'touched' WHERE n = 1")
        raise RuntimeError("boom")

    def refuse(tx: Tx) -> None:
        tx.defer(NOTE, (12, "kept"))  # a refusal keeps what it recorded
        raise refusal()

    results = await asyncio.gather(
        store.write(_note(1)),
        store.write(fail_before_writing),
        store.write(_note(2)),
        store.write(fail_after_writing),
        store.write(_note(3)),
        store.write(refuse),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == [
        "NoneType",
        "RuntimeError",
        "NoneType",
        "RuntimeError",
        "NoneType",
        "BudgetExceeded",
    ]
    assert store.batches == 2  # the table's creation, then these six together
    assert _notes(path) == [(1, "a"), (2, "a"), (3, "a"), (12, "kept")]


async def test_a_read_naming_a_deferred_row_sees_it_and_other_reads_need_no_write(notes):
    store, path = notes

    def read(n: int) -> Callable[[Tx], object]:
        def op(tx: Tx) -> object:
            row = tx.read_one("SELECT tag FROM notes WHERE n = ?", (n,), [("note", n)])
            return None if row is None else row[0]

        return op

    async with writer_statements(store) as statements:
        results = await asyncio.gather(
            store.write(_note(1, "one")),
            store.write(read(2)),
            store.write(read(1)),
            store.write(_note(2, "two")),
        )
    assert list(results) == [None, None, "one", None]
    # note 1 was written for the read that named it; note 2 as the batch committed
    inserts = [s for s in statements if s.startswith("INSERT INTO notes")]
    assert len(inserts) == 2
    assert _notes(path) == [(1, "one"), (2, "two")]


async def test_updates_are_written_after_the_inserts_they_change(notes):
    store, path = notes

    def retag(tx: Tx) -> None:
        tx.defer(RETAG, (1, "b"))

    await asyncio.gather(
        store.write(retag),  # deferred first, ranked after the insert
        store.write(_note(1)),
    )
    assert _notes(path) == [(1, "b")]


async def test_a_deferred_row_the_database_refuses_fails_its_whole_batch(notes):
    store, path = notes
    await store.write(_note(1))
    results = await asyncio.gather(
        store.write(_note(2)),
        store.write(_note(1)),  # a duplicate key, at commit
        return_exceptions=True,
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    assert _notes(path) == [(1, "a")]  # nothing of the batch is on disk
    await store.write(_note(3))  # the store goes on
    assert _notes(path) == [(1, "a"), (3, "a")]


def test_a_tx_without_a_store_writes_a_deferred_row_at_once(tmp_path):
    conn = sqlite3.connect(tmp_path / "plain.db", isolation_level=None)
    conn.execute("CREATE TABLE notes (n INTEGER PRIMARY KEY, tag TEXT NOT NULL)")
    tx = Tx(conn, ManualClock())
    tx.defer(NOTE, (5, "now"))
    assert conn.execute("SELECT n, tag FROM notes").fetchall() == [(5, "now")]
    with pytest.raises(sqlite3.IntegrityError):
        tx.defer(NOTE, (5, "again"))


async def test_a_call_retried_within_one_batch_is_one_reservation_settled_once(tmp_path):
    """A client's retry can land in the batch of the call it retries: it must find the
    row that batch has not written yet, as the ledger's answers say."""
    path = tmp_path / "s.db"
    store = await Store.open(path, clock=ManualClock(1_767_225_600.0))
    ledger = Ledger(policy=parse_policy({"budgets": {"defaults": {"agent": {"day": "1.00"}}}}))
    store.on_rollback.append(ledger.forget)
    token, _ = await store.write(lambda tx: create_token(tx, scope="acme"))

    def reserve(scope: str, key: str) -> Callable[[Tx], object]:
        req = ReserveRequest(scope=scope, idempotency_key=key, max_cost_micros=400_000)
        return lambda tx: ledger.reserve(tx, token=token, req=req)

    def settle(res_id: str, cost: int) -> Callable[[Tx], object]:
        req = SettleRequest(outcome="success", actual_cost_micros=cost)
        return lambda tx: ledger.settle(tx, token=token, res_id=res_id, req=req)

    try:
        made = await asyncio.gather(
            store.write(reserve("acme/a/bot", "k1")),
            store.write(reserve("acme/a/bot", "k1")),  # the retry
            store.write(reserve("acme/a/other", "k1")),  # the key, elsewhere: a conflict
            store.write(reserve("acme/a/bot", "k2")),
            store.write(reserve("acme/a/bot", "k3")),  # 1.20 > 1.00: refused
            return_exceptions=True,
        )
        assert store.batches == 2
        first, retry, elsewhere, second, refused = made
        assert isinstance(first, tuple) and isinstance(retry, tuple)
        assert first[0] and not retry[0] and first[1] == retry[1]
        assert isinstance(elsewhere, Conflict)
        assert isinstance(second, tuple) and second[0]
        assert isinstance(refused, BudgetExceeded) and refused.level == "agent"
        res_id = first[1]["reservation_id"]
        ended = await asyncio.gather(
            store.write(settle(res_id, 100_000)),
            store.write(settle(res_id, 100_000)),  # the retry: the same answer
            store.write(settle(res_id, 250_000)),  # another cost: a conflict
            store.write(lambda tx: ledger.release(tx, token=token, res_id=res_id)),
            return_exceptions=True,
        )
        assert store.batches == 3
        assert isinstance(ended[0], dict) and ended[0] == ended[1]
        # review19 M1: a retry of the reserve, in the batch that settles its call, is told
        # the call is over (it was told `held`: a client takes that as "make the call")
        res2 = second[1]["reservation_id"]
        over = await asyncio.gather(
            store.write(settle(res2, 50_000)),
            store.write(reserve("acme/a/bot", "k2")),
            store.write(lambda tx: ledger.release(tx, token=token, res_id=res_id)),
            store.write(reserve("acme/a/bot", "k1")),
            return_exceptions=True,
        )
        assert store.batches == 4
        assert isinstance(over[1], tuple) and over[1][1]["state"] == "settled"
        assert isinstance(over[2], Conflict) and isinstance(over[3], tuple)
        assert over[3][1]["state"] == "settled"
        assert ended[0]["charged_micros"] == 100_000
        assert isinstance(ended[2], Conflict) and isinstance(ended[3], Conflict)
        with sqlite3.connect(path) as conn:
            rows = conn.execute(
                "SELECT idempotency_key, state, charged_micros FROM reservations ORDER BY 1"
            ).fetchall()
            assert rows == [("k1", "settled", 100_000), ("k2", "settled", 50_000)]
            assert verify(conn).ok
    finally:
        await store.close()


async def test_an_operation_whose_first_statement_fails_writing_earlier_rows_leaves_none_of_its_own(
    notes,
):
    """review19 M2: the earlier rows of one kind were written, the next kind's failed (a
    transient error), and the operation's marks were stale: it took back rows that were
    not its own, and its own row was committed although it was told it failed."""
    store, path = notes
    calls = [0]

    def flaky() -> int:  # refuses the first row of `other` only
        calls[0] += 1
        return 1 if calls[0] == 1 else 0

    await on_writer(store, store._conn.create_function, "flaky", 0, flaky)
    other = Bulk(2, "INSERT INTO other (n) VALUES ", 1)

    def setup(tx: Tx) -> None:
        tx.execute("CREATE TABLE other (n INTEGER PRIMARY KEY)")
        tx.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON other WHEN flaky() = 1"
            " BEGIN SELECT RAISE(ABORT, 'transient'); END"
        )

    await store.write(setup)

    def earlier(tx: Tx) -> None:
        tx.defer(NOTE, (1, "earlier"))
        tx.defer(other, (1,))

    def victim(tx: Tx) -> None:
        tx.defer(NOTE, (100, "victim"))
        tx.defer(NOTE, (101, "victim"))
        tx.execute("SELECT 1")  # writes the earlier rows first: `other`'s fails

    results = await asyncio.gather(
        store.write(earlier), store.write(victim), return_exceptions=True
    )
    assert results[0] is None and isinstance(results[1], sqlite3.IntegrityError)
    assert _notes(path) == [(1, "earlier")]  # not the victim's, and the earlier one kept
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT n FROM other").fetchall() == [(1,)]  # tried again: in


def test_counter_rows_are_upserted_many_at_once_whatever_their_row_holds(tmp_path):
    """review19 L5: the row of values was cut at its first `)`."""
    conn = sqlite3.connect(tmp_path / "sums.db", isolation_level=None)
    conn.execute("CREATE TABLE c (k TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    upsert = (
        "INSERT INTO c (k, n) VALUES (?, max(?, 0))"
        " ON CONFLICT (k) DO UPDATE SET n = n + excluded.n"
    )
    write_sums(conn, {upsert: {("a",): [5], ("b",): [-3]}})
    write_sums(conn, {upsert: {("a",): [2]}})
    assert conn.execute("SELECT k, n FROM c ORDER BY k").fetchall() == [("a", 7), ("b", 0)]
