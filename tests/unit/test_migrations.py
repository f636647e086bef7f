"""Migrations: applied once each, also when two processes start on one file at once."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from guards.clock import ManualClock
from guards.migrations import _migrations, apply_migrations, connect, schema_behind, statements
from guards.store import Store


def _apply(path: Path, results: list[object], ready: threading.Barrier) -> None:
    try:
        ready.wait()
        conn = connect(path)  # at once: the first switch to WAL races too (CI saw it)
        try:
            results.append(apply_migrations(conn, now=0.0))
        finally:
            conn.close()
    except Exception as exc:  # what the test looks for
        results.append(exc)


def test_two_processes_migrating_one_file_at_once_both_succeed(tmp_path):
    """audit11 day-2 M6: `nightshift migrate` beside a starting `run` failed with
    'duplicate column name' or a UNIQUE error: both had read the list before the lock."""
    newest = _migrations()[-1][0]
    for attempt in range(10):
        path = tmp_path / f"m{attempt}.db"
        results: list[object] = []
        ready = threading.Barrier(3, timeout=30)
        # daemon threads: one stuck would otherwise keep the whole test run from exiting
        threads = [
            threading.Thread(target=_apply, args=(path, results, ready), daemon=True)
            for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a migration thread is stuck"
        assert not [r for r in results if isinstance(r, Exception)], results
        applied = [name for r in results for name in r]  # type: ignore[attr-defined]
        assert len(applied) == len(set(applied)) == len(_migrations())  # each once, in all
        with sqlite3.connect(path) as conn:
            versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
        assert max(versions) == newest and len(versions) == len(_migrations())


def test_every_shipped_migration_splits_into_whole_statements():
    for _, _, file in _migrations():
        for statement in statements(file.read_text(encoding="utf-8")):
            assert sqlite3.complete_statement(statement), (file.name, statement)


def test_a_script_s_last_words_run_or_are_refused_as_sqlite_reads_them():
    import pytest

    conn = sqlite3.connect(":memory:")
    script = (
        "CREATE TABLE t (x); -- a note; with a semicolon\nINSERT INTO t VALUES (';')\n/* done */"
    )
    for statement in statements(script):
        conn.execute(statement)
    assert conn.execute("SELECT x FROM t").fetchall() == [(";",)]
    assert statements("SELECT 1;\n/* trailing */") == ["SELECT 1;", "/* trailing */"]
    with pytest.raises(sqlite3.OperationalError, match="incomplete input"):
        for statement in statements("CREATE TABLE u (x);\nCREATE TABLE v ("):
            conn.execute(statement)


async def test_an_open_called_off_midway_finishes_its_migration_and_closes(tmp_path):
    """review21 M1: a stop during the start's migrations left their thread writing, on a
    connection nothing closed, while the run lock was let go (and a reload's exec came)."""
    path = tmp_path / "n.db"
    opening = asyncio.create_task(Store.open(path, clock=ManualClock()))
    for _ in range(10_000):  # until it is connected: the migrations start now
        if path.exists():
            break
        await asyncio.sleep(0.001)
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    # the file is whole, and nobody writes to it any more: another writer gets it at once
    check = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        check.execute("BEGIN IMMEDIATE")
        check.execute("ROLLBACK")
        assert schema_behind(check) is None  # its work was finished, not cut
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        check.close()


def test_0043_keeps_the_validation_calls_made_before_it_under_no_token(tmp_path, monkeypatch):
    """0043 rebuilds validation_calls with the token in its key (recheck24 M2): the rows
    made before it stay (pruned with their window as ever), under no token."""
    from guards import migrations

    every = _migrations()
    monkeypatch.setattr(migrations, "_migrations", lambda: [m for m in every if m[0] < 43])
    conn = connect(tmp_path / "n.db")
    apply_migrations(conn, now=0.0)
    conn.execute(
        "INSERT INTO validation_streams (id, agent, name, created_at) VALUES (1, 'a/b/c', 's', 0)"
    )
    conn.execute(
        "INSERT INTO validation_calls (stream_id, idempotency_key, request_hash, answer, at)"
        " VALUES (1, 'k1', 'h', '{}', 5.0)"
    )
    conn.commit()
    monkeypatch.setattr(migrations, "_migrations", lambda: [m for m in every if m[0] <= 43])
    assert apply_migrations(conn, now=0.0) == ["0043_validation_calls_per_token"]
    rows = conn.execute(
        "SELECT stream_id, token_id, idempotency_key, request_hash, answer, at"
        " FROM validation_calls"
    ).fetchall()
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(validation_calls)")}
    conn.close()
    assert rows == [(1, "", "k1", "h", "{}", 5.0)]
    assert "validation_calls_at" in indexes


def test_0045_keeps_the_resolves_of_triggers_tried_before_it(tmp_path, monkeypatch):
    """0045 adds ``reached`` (a try may have got to the receiver): a trigger tried before
    it keeps the reading it had (its resolve is not dropped), one withdrawn unsent, one
    refused at its only try and one never tried read as not reached."""
    from guards import migrations

    every = _migrations()
    monkeypatch.setattr(migrations, "_migrations", lambda: [m for m in every if m[0] < 45])
    conn = connect(tmp_path / "w.db")
    apply_migrations(conn, now=0.0)
    withdrawn = "withdrawn unsent: the alert's paging ended before the page got through"
    for delivery, state, attempts, status, error in [
        (1, "delivered", 1, 200, None),
        (2, "pending", 2, None, "no answer within 5s"),
        (3, "failed", 1, 404, "HTTP 404: nope"),
        (4, "failed", 1, None, withdrawn),
        (5, "pending", 0, None, None),
        (6, "failed", 3, 503, "HTTP 503: x (gave up after 3 tries)"),
    ]:
        conn.execute(
            "INSERT INTO webhook_deliveries (id, webhook, alert_id, event, body, state,"
            " created_at, next_at, attempts, last_status, last_error)"
            " VALUES (?, 'pager', 1, 'trigger', '{}', ?, 0, 0, ?, ?, ?)",
            (delivery, state, attempts, status, error),
        )
    conn.commit()
    monkeypatch.setattr(migrations, "_migrations", lambda: every)
    assert "0045_webhook_reached" in apply_migrations(conn, now=0.0)
    reached = conn.execute("SELECT id, reached FROM webhook_deliveries ORDER BY id").fetchall()
    conn.close()
    assert reached == [(1, 1), (2, 1), (3, 0), (4, 0), (5, 0), (6, 1)]
