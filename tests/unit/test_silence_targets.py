"""Silence targets and what a silence holds, on a real SQLite store (audit9 H1);
and migration 0018, which lets a silence name an alert kind."""

from __future__ import annotations

import sqlite3
from functools import partial
from pathlib import Path

import pytest

from bot.alerts import operations as ops
from bot.alerts.targets import SilenceTarget, silence_target
from guards.clock import ManualClock
from guards.errors import InvalidInput
from guards.events import Overrun
from guards.store import Store, Tx
from tests.unit.test_alerts_engine import AGENT, emit, make, outbox, run, seen


async def test_kinds_families_and_scopes_hold_exactly_the_alerts_they_name(store):
    engine = make()
    await seen(store, AGENT)

    async def holds(kind: str | None, scope: str) -> bool:
        now = store.clock.now()
        found = await store.write(
            lambda tx: engine.silence_for(tx, kind=kind, scope=scope, now=now)
        )
        return found is not None

    await store.write(lambda tx: ops.silence(engine, tx, target="runaway", seconds=60, actor="U1"))
    assert await holds("runaway", "globex/x/y") and await holds("runaway", AGENT)
    assert not await holds("overrun", AGENT)
    await store.write(
        lambda tx: ops.silence(
            engine, tx, target="breaker_opened:acme/alice", seconds=60, actor="U"
        )
    )
    assert await holds("breaker_opened_failures", AGENT)
    assert await holds("breaker_opened_manual", "acme/alice")
    assert not await holds("breaker_opened_spend", "acme/alicex/y")  # a sibling, not below
    assert not await holds("half_open_requested", AGENT)  # not of the family
    assert not await holds("breaker_opened_spend", "acme")  # above, not below
    # a whole scope (kind None) is held only by a silence that names no kind
    assert not await holds(None, "acme/alice")


async def test_targets_read_as_the_alerts_filter_reads_them(store):
    engine = make()
    await seen(store, AGENT)

    async def read(text: str, *, known: bool = True) -> SilenceTarget:
        target: SilenceTarget = await store.write(
            lambda tx: silence_target(engine, tx, text, known=known)
        )
        return target

    kind = await read("Heartbeat_Missed")
    assert (kind.kind, kind.scope, kind.name) == ("heartbeat_missed", None, "heartbeat_missed")
    assert kind.matches == "heartbeat_missed alerts on every scope"
    family = await read("BREAKER_OPENED:acme")
    assert (family.name, family.matches) == (
        "breaker_opened:acme",
        "breaker_opened_* alerts on acme and below",
    )
    model = await read("runaway:model:Claude-Haiku-4-5")
    assert (model.kind, model.scope) == ("runaway", "model:claude-haiku-4-5")
    scope = await read("acme/alice")
    assert (scope.kind, scope.scope, scope.matches) == (None, "acme/alice", "acme/alice and below")
    for bad in (":acme", "nokind:acme", "runaway:bad path", "not a scope!", "runaway:"):
        with pytest.raises(InvalidInput):
            await read(bad)
    with pytest.raises(ops.UnseenTarget) as unseen:
        await read("heartbeat_missed:Acme/alice")
    assert (unseen.value.path, unseen.value.prefix) == ("Acme/alice", "heartbeat_missed:")
    # a lift reads any well-formed target, so a silence made on a typo can end
    assert (await read("Acme/alice", known=False)).scope == "Acme/alice"


async def test_0018_keeps_every_silence_made_before_it(tmp_path: Path):
    path = tmp_path / "s.db"
    store = await Store.open(path, clock=ManualClock())
    await store.close()
    with sqlite3.connect(path) as conn:  # the table as 0005 made it, with rows in it
        conn.execute("DROP TABLE silences")
        conn.execute(
            "CREATE TABLE silences (id INTEGER PRIMARY KEY, fingerprint TEXT, scope TEXT,"
            " alert_id INTEGER, created_by TEXT NOT NULL, created_at REAL NOT NULL,"
            " expires_at REAL NOT NULL, ended_at REAL, ended_by TEXT,"
            " CHECK ((fingerprint IS NULL) <> (scope IS NULL)))"
        )
        conn.executemany(
            "INSERT INTO silences VALUES (?, ?, ?, ?, 'U1', 1, 99, ?, ?)",
            [
                (3, "runaway:acme/a/b", None, 7, None, None),
                (9, None, "acme", None, 5, "U2"),
            ],
        )
        conn.execute("DELETE FROM schema_migrations WHERE version = 18")
    store = await Store.open(path, clock=ManualClock())  # migrates
    try:
        rows = await store.fetch(
            "SELECT id, fingerprint, scope, kind, alert_id, ended_by FROM silences ORDER BY id"
        )
        assert [tuple(r) for r in rows] == [
            (3, "runaway:acme/a/b", None, None, 7, None),
            (9, None, "acme", None, None, "U2"),
        ]

        def insert(tx: Tx, row: tuple[str | None, ...]) -> None:
            tx.execute(
                "INSERT INTO silences (fingerprint, scope, kind, created_by, created_at,"
                " expires_at) VALUES (?, ?, ?, 'U1', 1, 2)",
                row,
            )

        for row in (("runaway:a/b/c", None, "runaway"), (None, None, None)):
            with pytest.raises(sqlite3.IntegrityError):  # one fingerprint alone, or a kind/scope
                await store.write(partial(insert, row=row))
        indexes = await store.fetch("SELECT name FROM sqlite_master WHERE tbl_name = 'silences'")
        assert {r[0] for r in indexes} == {"silences", "silences_active"}
    finally:
        await store.close()


async def test_a_silence_on_an_agent_keeps_its_conversations_overruns_one_alert(store):
    """Grouping at the agent goes on under a silence that holds the agent too: 260
    silenced conversations are one silenced alert, as they would be one alert unsilenced."""
    engine = make()
    await seen(store, AGENT)
    await store.write(
        lambda tx: ops.silence(engine, tx, target=f"overrun:{AGENT}", seconds=600, actor="U1")
    )
    await emit(
        store,
        *(
            Overrun(
                at=store.clock.now(),
                scope=f"{AGENT}/c{i}",
                reservation_id=f"res_{i}",
                held_micros=1_000,
                charged_micros=2_000,
                overrun_micros=1_000,
                late=False,
            )
            for i in range(3)
        ),
    )
    await run(store, engine)
    rows = await store.fetch("SELECT scope, count, silence_id IS NOT NULL FROM alerts")
    assert [tuple(r) for r in rows] == [(AGENT, 3, 1)]
    assert await outbox(store) == []
