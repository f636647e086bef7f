"""The database refusing writes (another process holds the lock; a full disk): every
caller gets a 503 it can retry, nothing hangs, and the server recovers by itself."""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from guards.client import GuardClient, Unavailable
from guards.errors import StorageUnavailable
from guards.migrations import begin_immediate, connect

BODY = {"scope": "acme/alice/bot", "idempotency_key": "k1", "max_cost_micros": 1000}


async def test_a_locked_database_is_a_503_with_retry_after_and_the_server_recovers(
    app_factory, monkeypatch, caplog
):
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.3)
    monkeypatch.setattr("bot.api.HEALTH_SECONDS", 1.0)
    app = await app_factory()
    tok = await app.token("acme")
    other = connect(app.ns.settings.db)
    try:
        begin_immediate(other)  # e.g. an operator's sqlite3 shell inside a transaction
        with caplog.at_level(logging.ERROR, logger="guards.store"):
            r = await app.request("POST", "/v1/reservations", token=tok, json=BODY)
        said = [rec.getMessage() for rec in caplog.records if rec.name == "guards.store"]
        assert said and said[0].startswith(f"the database {app.ns.settings.db} refused writes")
        assert "another process holds its write lock: a sqlite3 shell" in said[0]  # obs L3
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "storage_unavailable"
        assert "nothing was changed" in r.json()["message"]
        assert r.headers["Retry-After"] == "5"
        health = await app.client.get("/healthz")
        assert health.status_code == 503 and health.json()["error"] == "storage_unavailable"
        # in words for whoever watches it, not an agent's "send it again" (audit21 L6)
        assert health.json()["status"] == "unavailable", health.text
        assert health.json()["message"].startswith("Nightshift cannot write to its database")
        assert "send it again" not in health.json()["message"]
        await asyncio.sleep(2.5)  # the upkeep jobs fail meanwhile; the writer must live on
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert (await app.client.get("/healthz")).status_code == 200
    metrics = (await app.client.get("/metrics")).text
    failed = [
        line for line in metrics.splitlines() if line.startswith("nightshift_storage_refusals")
    ]
    assert failed and float(failed[0].split()[-1]) >= 2  # the reservation and the probe
    upkeep = 'nightshift_upkeep_last_success_timestamp_seconds{job="breakers"}'
    for _ in range(30):  # the 1 s breaker tick runs to its end again
        if upkeep in (await app.client.get("/metrics")).text:
            break
        await asyncio.sleep(0.1)
    assert upkeep in (await app.client.get("/metrics")).text
    r = await app.request("POST", "/v1/reservations", token=tok, json=BODY)
    assert r.status_code == 201, r.text
    assert "Idempotent-Replayed" not in r.headers  # the 503 wrote nothing


async def test_the_client_tries_a_storage_503_again_until_the_write_goes_through(
    app_factory, monkeypatch
):
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    app = await app_factory()
    tok = await app.token("acme")
    other = connect(app.ns.settings.db)
    begin_immediate(other)

    async def let_go() -> None:
        await asyncio.sleep(1.0)
        other.execute("ROLLBACK")
        other.close()

    release = asyncio.create_task(let_go())
    async with GuardClient(app.url, tok, retries=20) as guard:
        answer = await guard.create_reservation("acme/alice/bot", max_cost_micros=1000)
    await release
    assert answer["state"] == "held"
    rows = await app.store.fetch("SELECT COUNT(*) FROM reservations")
    assert rows[0][0] == 1


async def test_a_storage_503_is_said_as_such_waited_on_and_not_counted_as_maybe_sent(
    app_factory, monkeypatch
):
    """audit15 devx 2: the client retried 0.1 s apart despite Retry-After, then said the
    server "did not answer ... is that its URL?" and that the write may have been done."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    monkeypatch.setattr("guards.client_retry.MAX_RETRY_AFTER", 1.0)  # Retry-After: 5, capped
    app = await app_factory()
    tok = await app.token("acme")
    other = connect(app.ns.settings.db)
    begin_immediate(other)
    try:
        async with GuardClient(app.url, tok, retries=2) as guard:
            started = time.monotonic()
            with pytest.raises(Unavailable) as raised:
                await guard.create_reservation("acme/alice/bot", max_cost_micros=1000)
            waited = time.monotonic() - started
    finally:
        other.execute("ROLLBACK")
        other.close()
    # two pauses of Retry-After (ignoring it, the pauses would be 0.1 and 0.2 s)
    assert raised.value.attempts == 3 and waited >= 2 * 1.0
    assert raised.value.maybe_sent is False and raised.value.answered is True
    assert "could not take the request" in str(raised.value)
    assert "503: the database could not take this write" in str(raised.value)
    assert "is that its URL" not in str(raised.value)
    assert (await app.store.fetch("SELECT COUNT(*) FROM reservations"))[0][0] == 0


async def test_an_answer_the_client_has_no_class_for_keeps_its_status(app_factory):
    """audit15 devx 6: a 413 came back as a GuardError with status 500."""
    app = await app_factory()
    tok = await app.token("acme")
    async with GuardClient(app.url, tok) as guard:
        with pytest.raises(Exception) as raised:
            await guard.validate("acme/alice/bot", "posts", ["x" * 600_000, "y" * 600_000])
    assert type(raised.value).__name__ == "GuardError"
    assert getattr(raised.value, "status", None) == 413
    assert getattr(raised.value, "code", None) == "body_too_large"


async def test_a_database_file_deleted_or_replaced_under_the_server_is_said(
    app_factory, caplog, tmp_path
):
    """audit16 observability M1: writes went on into the unlinked file, 2xx and healthz 200,
    and were lost at the next start; nothing was logged."""
    app = await app_factory()
    tok = await app.token("acme")
    assert (await app.client.get("/healthz")).status_code == 200
    db = Path(app.ns.settings.db)
    moved = tmp_path / "moved-away.db"
    _move(db, moved)  # a clean-up script, a wrong volume mount ...
    health = await app.client.get("/healthz")
    assert health.status_code == 503, health.text
    assert f"the database file {db} was deleted while Nightshift runs" in health.json()["message"]
    refused = await app.request(  # not a 2xx into a file gone at the next start
        "POST", "/v1/reservations", token=tok, json={**BODY, "idempotency_key": "lost"}
    )
    assert refused.status_code == 503 and refused.json()["error"] == "storage_unavailable"
    assert "was deleted while Nightshift runs" in refused.json()["message"]
    with caplog.at_level(logging.ERROR, logger="guards.store"):
        for _ in range(2):  # said once a minute, not per sweep; its write is refused
            with pytest.raises(StorageUnavailable):
                await app.ns.sweep()
    said = [r.getMessage() for r in caplog.records if "was deleted" in r.getMessage()]
    assert len(said) == 1 and "put the file back" in said[0]
    assert "_FileLost" not in said[0]
    _move(Path(__file__), db, copy=True)  # another file at the path
    health = await app.client.get("/healthz")
    assert "is now another file" in health.json()["message"]
    _move(moved, db)  # put back: healthy again
    assert (await app.client.get("/healthz")).status_code == 200
    r = await app.request("POST", "/v1/reservations", token=tok, json=BODY)
    assert r.status_code == 201, r.text


def _truncate_wal(db: str) -> int:
    """A checkpoint from another connection, as the sqlite3 shell or a backup tool runs
    one: the WAL's size after it."""
    other = connect(db)
    try:
        assert other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    finally:
        other.close()
    return Path(f"{db}-wal").stat().st_size


def _move(src: Path, dst: Path, *, copy: bool = False) -> None:
    """(Blocking, so not in the test's coroutine.)"""
    if copy:
        shutil.copyfile(src, dst)
    else:
        src.replace(dst)


async def test_the_wal_file_deleted_under_the_server_refuses_writes_and_fails_healthz(
    app_factory, caplog
):
    """audit23 backup 2: `rm nightshift.db-wal` under a running process (a Restore done
    before the stop ended): writes were answered 2xx into the unlinked WAL, /healthz 200,
    and a kill -9 lost them all."""
    app = await app_factory()
    tok = await app.token("acme")
    wal = Path(f"{app.ns.settings.db}-wal")
    assert await asyncio.to_thread(wal.exists)
    await asyncio.to_thread(wal.unlink)
    health = await app.client.get("/healthz")
    assert health.status_code == 503, health.text
    message = health.json()["message"]
    assert f"the database's WAL file {wal} was deleted while Nightshift runs" in message
    assert "stop Nightshift (SIGTERM, not kill -9" in message
    assert "delete -wal and -shm only once it has stopped" in message
    refused = await app.request(
        "POST", "/v1/reservations", token=tok, json={**BODY, "idempotency_key": "after-rm"}
    )
    assert refused.status_code == 503 and refused.json()["error"] == "storage_unavailable"
    assert "WAL file" in refused.json()["message"]
    # a new WAL made at the path (another connection opening the file) is not the one
    # the store writes into
    await asyncio.to_thread(wal.write_bytes, b"")
    health = await app.client.get("/healthz")
    assert health.status_code == 503 and f"WAL file {wal} was replaced" in health.text


async def test_the_shm_file_deleted_under_the_server_refuses_writes_too(app_factory):
    """recheck23 N2: with the -shm gone, a CLI command made a new one beside the file the
    server holds: each wrote over the other's pages, and the CLI's change was lost."""
    app = await app_factory()
    tok = await app.token("acme")
    shm = Path(f"{app.ns.settings.db}-shm")
    await asyncio.to_thread(shm.unlink)
    health = await app.client.get("/healthz")
    assert health.status_code == 503 and f"WAL file {shm} was deleted" in health.text
    refused = await app.request(
        "POST", "/v1/reservations", token=tok, json={**BODY, "idempotency_key": "after-rm"}
    )
    assert refused.status_code == 503 and refused.json()["error"] == "storage_unavailable"


async def test_checkpoints_that_truncate_the_wal_are_no_false_alarm(app_factory):
    """The WAL is emptied in place at checkpoints (its inode stays): writes go on."""
    app = await app_factory()
    tok = await app.token("acme")
    for n in range(3):
        r = await app.request(
            "POST", "/v1/reservations", token=tok, json={**BODY, "idempotency_key": f"c{n}"}
        )
        assert r.status_code == 201, r.text
        assert await asyncio.to_thread(_truncate_wal, app.ns.settings.db) == 0
        assert (await app.client.get("/healthz")).status_code == 200


async def test_a_full_disk_under_a_running_server_is_said_to_go_on_by_itself(app_factory, caplog):
    """audit24 resources L4: the hint is true of a running server (a start or a CLI command
    refused the same way exits 1, and does not say it: tests/unit/test_store.py)."""
    app = await app_factory()
    pages = await app.store.write(lambda tx: tx.one("PRAGMA page_count")[0])
    await app.store.write(lambda tx: tx.execute(f"PRAGMA max_page_count = {pages + 2}"))
    try:
        with (
            caplog.at_level(logging.ERROR, logger="guards.store"),
            pytest.raises(StorageUnavailable, match="database or disk is full"),
        ):
            await app.store.write(
                lambda tx: tx.execute("CREATE TABLE blobs AS SELECT randomblob(400000) AS b")
            )
    finally:
        await app.store.write(lambda tx: tx.execute("PRAGMA max_page_count = 1073741823"))
    said = [r.getMessage() for r in caplog.records if r.name == "guards.store"]
    assert (
        said
        and "(the disk holding it is full: free space; Nightshift goes on by itself)" in (said[0])
    ), said


async def test_healthz_answers_a_held_write_lock_within_a_second_naming_it(app_factory):
    """audit28 L2: /healthz took 5 s to answer while another process held the write lock
    (a write waits 8 s for it): a probe with Kubernetes' 1 s timeout saw a timeout, not
    the 503 and its message."""
    app = await app_factory()
    other = connect(app.ns.settings.db)
    try:
        begin_immediate(other)  # e.g. an operator's sqlite3 shell inside a transaction
        began = time.monotonic()
        health = await app.client.get("/healthz", timeout=1.0)
        took = time.monotonic() - began
        assert health.status_code == 503 and took < 1.0, (health.text, took)
        message = health.json()["message"]
        assert message.startswith(
            "Nightshift cannot write to its database (another process holds its write lock,"
            " waited for 0."
        ), message
        assert "a sqlite3 shell or a backup tool in a transaction?" in message
        # its agents' writes wait for the lock, they are not refused at once (recheck28 Kd L1)
        assert message.endswith(
            "agents' calls that write wait up to 8s for the lock, then are refused with 503"
            " until it is released, and nothing is lost"
        ), message
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert (await app.client.get("/healthz", timeout=1.0)).status_code == 200


class SlowDisk:
    """The store's connection on a disk whose fsync is slow: each COMMIT takes ``seconds``
    more (a throttled network volume; review28 R5 slowed fsync with an LD_PRELOAD shim)."""

    def __init__(self, conn: Any, seconds: float) -> None:
        self._conn, self.seconds = conn, seconds
        self.committing = threading.Event()

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            self.committing.set()
            time.sleep(self.seconds)  # (in the writer's thread, as an fsync is)
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


async def test_healthz_on_a_slow_but_working_disk_is_200_said_slow(app_factory, monkeypatch):
    """review28 R5 M3: the probe's write queued behind the batch in flight, and with a
    slow fsync two commits passed 0.8 s: a false 503 ("agents' calls are refused") while
    every call went through, and Kubernetes restarts a process so told."""
    app = await app_factory()
    tok = await app.token("acme")
    store = app.ns.store
    disk = SlowDisk(store._conn, 0.5)
    monkeypatch.setattr(store, "_conn", disk)
    ahead = asyncio.ensure_future(app.request("POST", "/v1/reservations", token=tok, json=BODY))
    assert await asyncio.to_thread(disk.committing.wait, 5)  # the reservation's batch commits
    began = time.monotonic()
    health = await app.client.get("/healthz", timeout=1.0)
    took = time.monotonic() - began
    assert health.status_code == 200 and took < 1.0, (health.text, took)
    assert health.json()["status"] == "ok"
    assert health.json()["slow"] == (
        "no write within 0.8s, but the database is committing writes (a slow disk): agents'"
        " calls go through, slowly"
    )
    assert (await ahead).status_code == 201
    await store.write(lambda tx: None)  # the probe's own write is in too: the writer idles
    # one commit that does not end (past STUCK_SECONDS, made short here) is a 503 that
    # says the writer takes no write, not that calls are refused
    monkeypatch.setattr("bot.write_probe.STUCK_SECONDS", 0.3)
    disk.seconds = 1.5
    disk.committing.clear()
    ahead = asyncio.ensure_future(
        app.request("POST", "/v1/reservations", token=tok, json={**BODY, "idempotency_key": "k2"})
    )
    assert await asyncio.to_thread(disk.committing.wait, 5)
    health = await app.client.get("/healthz", timeout=1.0)
    assert health.status_code == 503, health.text
    assert health.json()["message"].startswith(
        "Nightshift's database takes no write (no write within 0.8s: a commit has waited 0."
    ), health.json()
    assert health.json()["message"].endswith(
        "s for the disk): agents' calls that write wait for it; check the disk"
    )
    assert (await ahead).status_code == 201
    disk.seconds = 0.0
    await store.write(lambda tx: None)
    assert (await app.client.get("/healthz", timeout=1.0)).json() == {
        "status": "ok",
        "transport": app.ns.settings.transport,
    }
