"""Retention on a real SQLite store: chunked prunes, events, the outbox rule, resolved
alerts and closed heartbeat gaps."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from bot.jobs import state as job_state
from bot.retention import (
    drain,
    prune_alerts,
    prune_events,
    prune_gaps,
    prune_outbox,
    prune_webhooks,
    ref_owner,
    scan,
)
from guards.breaker_attempts import prune_attempts
from guards.routing import records as routing_records
from guards.store import Store, Tx
from guards.validation import repo as vrepo

DAY = 86400.0


async def run_sql(store: Store, sql: str, rows: list[tuple[Any, ...]]) -> None:
    await store.write(lambda tx: tx.executemany(sql, rows))


async def count(store: Store, table: str, where: str = "1") -> int:
    return int((await store.fetch(f"SELECT count(*) FROM {table} WHERE {where}"))[0][0])


async def a_stream(store: Store) -> int:
    await run_sql(
        store,
        "INSERT INTO validation_streams (id, agent, name, created_at) VALUES (?, ?, ?, ?)",
        [(1, "acme/alice/bot", "posts", 0.0)],
    )
    return 1


# -- every prune: the oldest first, at most its limit --------------------------------------

Seed = Callable[[Store, list[float]], Any]


async def seed_items(store: Store, times: list[float]) -> None:
    sid = await a_stream(store)
    await run_sql(
        store,
        "INSERT INTO validation_items (stream_id, at, exact, kind, sketch)"
        " VALUES (?, ?, ?, 'x', x'00')",
        [(sid, at, i) for i, at in enumerate(times)],
    )


async def seed_calls(store: Store, times: list[float]) -> None:
    sid = await a_stream(store)
    await run_sql(
        store,
        "INSERT INTO validation_calls"
        " (stream_id, token_id, idempotency_key, request_hash, answer, at)"
        " VALUES (?, 't', ?, 'h', '{}', ?)",
        [(sid, f"k{i}", at) for i, at in enumerate(times)],
    )


async def seed_rejections(store: Store, times: list[float]) -> None:
    sid = await a_stream(store)
    await run_sql(
        store,
        "INSERT INTO validation_rejections (at, stream_id, scope, stream, reason, preview,"
        " batch_size) VALUES (?, ?, 'acme/alice/bot', 'posts', 'duplicate', 'p', 1)",
        [(at, sid) for at in times],
    )


async def seed_decisions(store: Store, times: list[float]) -> None:
    await run_sql(
        store,
        "INSERT INTO routing_decisions (id, at, scope, namespace, intent, tier, wanted_tier,"
        " model, degraded, source, reason) VALUES (?, ?, 'acme/a/b', 'acme', 'chat', 'small',"
        " 'small', 'm', 0, 'rule', 'r')",
        [(f"r{i}", at) for i, at in enumerate(times)],
    )


async def seed_attempts(store: Store, times: list[float]) -> None:
    await run_sql(
        store,
        "INSERT INTO breaker_attempts (agent, task_id, attempts, first_at, last_at)"
        " VALUES ('acme/a/b', ?, 1, ?, ?)",
        [(f"t{9 - i}", at, at) for i, at in enumerate(times)],  # key order != time order
    )


async def seed_runs(store: Store, times: list[float]) -> None:
    await run_sql(
        store,
        "INSERT INTO job_runs (id, job, scope, scheduled_for, decided_at, state)"
        " VALUES (?, 'rss', 'acme/a/b', ?, ?, 'succeeded')",
        [(f"run{i}", at, at) for i, at in enumerate(times)],
    )


def cut(store: Store) -> float:
    return store.clock.now() - 7 * DAY


PRUNES: dict[str, tuple[Seed, str, str, Callable[[Tx, float, int], int]]] = {
    "validation_items": (
        seed_items,
        "validation_items",
        "at",
        lambda tx, before, n: vrepo.prune_items(tx, before=before, limit=n),
    ),
    "validation_calls": (
        seed_calls,
        "validation_calls",
        "at",
        lambda tx, before, n: vrepo.prune_calls(tx, before=before, limit=n),
    ),
    "validation_rejections": (
        seed_rejections,
        "validation_rejections",
        "at",
        lambda tx, before, n: vrepo.prune_rejections(tx, before=before, limit=n),
    ),
    "routing_decisions": (
        seed_decisions,
        "routing_decisions",
        "at",
        lambda tx, before, n: routing_records.prune_decisions(tx, before=before, limit=n),
    ),
    "breaker_attempts": (
        seed_attempts,
        "breaker_attempts",
        "last_at",
        lambda tx, before, n: prune_attempts(
            tx, older_than_seconds=int(tx.clock.now() - before), limit=n
        ),
    ),
    "job_runs": (
        seed_runs,
        "job_runs",
        "decided_at",
        lambda tx, before, n: job_state.prune_runs(tx, before=before, limit=n),
    ),
}


@pytest.mark.parametrize("name", sorted(PRUNES))
async def test_a_prune_deletes_the_oldest_expired_rows_first_and_at_most_its_limit(store, name):
    seed, table, column, prune = PRUNES[name]
    now = store.clock.now()
    expired = [now - d * DAY for d in (12, 9, 30, 8, 20)]
    recent = [now - 6 * DAY, now - 60]
    await seed(store, expired + recent)
    before = cut(store)

    assert await store.write(lambda tx: prune(tx, before, 3)) == 3
    left = sorted(r[0] for r in await store.fetch(f"SELECT {column} FROM {table}"))
    assert left == sorted([now - 9 * DAY, now - 8 * DAY, *recent])  # 30, 20, 12 days went first
    assert await store.write(lambda tx: prune(tx, before, 3)) == 2
    assert await store.write(lambda tx: prune(tx, before, 3)) == 0
    assert await count(store, table) == len(recent)


async def test_a_prune_without_a_limit_still_deletes_one_chunk_at_most(store):
    now = store.clock.now()
    await seed_items(store, [now - 8 * DAY] * (vrepo.PRUNE_LIMIT + 5))
    assert await store.write(lambda tx: vrepo.prune_items(tx, before=cut(store))) == (
        vrepo.PRUNE_LIMIT
    )
    assert await count(store, "validation_items") == 5


async def test_a_running_job_run_is_never_pruned(store):
    old = store.clock.now() - 100 * DAY
    await run_sql(
        store,
        "INSERT INTO job_runs (id, job, scope, scheduled_for, decided_at, state)"
        " VALUES (?, 'rss', 'acme/a/b', ?, ?, ?)",
        [("r1", old, old, "running"), ("r2", old, old, "failed")],
    )
    assert await store.write(lambda tx: job_state.prune_runs(tx, before=old + 1)) == 1
    assert [r[0] for r in await store.fetch("SELECT id FROM job_runs")] == ["r1"]


# -- draining a backlog: one chunk per write, other writes in between ------------------------


async def test_a_backlog_is_drained_in_chunks_with_other_writes_committed_between(store):
    now = store.clock.now()
    await seed_items(store, [now - 8 * DAY - i for i in range(1000)])
    chunks: list[tuple[int, int]] = []  # (batch it ran in, rows it deleted)

    def chunk(tx: Tx, n: int) -> int:
        deleted = vrepo.prune_items(tx, before=cut(store), limit=n)
        chunks.append((store.batches, deleted))
        return deleted

    others: list[int] = []  # the batch each other write ran in
    done = asyncio.Event()

    async def writer() -> None:
        while not done.is_set():
            await store.write(lambda tx: others.append(store.batches))
            await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    total = await drain(store, chunk, chunk=100)
    done.set()
    await task

    assert total == 1000 and await count(store, "validation_items") == 0
    assert [d for _, d in chunks] == [100] * 10 + [0]
    batches = [b for b, _ in chunks]
    assert len(set(batches)) == len(batches)  # never two chunks in one transaction
    between = [b for b in others if batches[0] < b < batches[-1]]
    assert len(between) >= 5  # the other writer was not held until the end


async def test_a_drain_stops_between_chunks_when_asked(store):
    now = store.clock.now()
    await seed_items(store, [now - 8 * DAY] * 300)
    calls = 0

    def chunk(tx: Tx, n: int) -> int:
        nonlocal calls
        calls += 1
        return vrepo.prune_items(tx, before=cut(store), limit=n)

    total = await drain(store, chunk, chunk=100, stopping=lambda: calls >= 2)
    assert (total, calls) == (200, 2)
    assert await count(store, "validation_items") == 100


# -- events ------------------------------------------------------------------------------------


async def seed_events(store: Store, rows: list[tuple[float, float | None]]) -> None:
    """(at, dispatched_at) rows, in id order."""
    await run_sql(
        store,
        "INSERT INTO events (at, kind, scope, payload, dispatched_at)"
        " VALUES (?, 'budget_exhausted', 'acme/a/b', '{}', ?)",
        rows,
    )


async def event_ages(store: Store) -> list[float]:
    now = store.clock.now()
    rows = await store.fetch("SELECT at FROM events ORDER BY id")
    return [round((now - r[0]) / DAY) for r in rows]


async def test_dispatched_events_past_the_retention_go_undispatched_and_recent_ones_stay(store):
    now = store.clock.now()
    rows: list[tuple[float, float | None]] = [
        (now - 40 * DAY, now - 40 * DAY),
        (now - 35 * DAY, None),  # the alerts never saw it: kept
        (now - 33 * DAY, now - 33 * DAY),
        (now - 31 * DAY, now - 31 * DAY),
        (now - 29 * DAY, now - 29 * DAY),
        (now - 1 * DAY, now - 1 * DAY),
        (now, None),
    ]
    await seed_events(store, rows)
    before = now - 30 * DAY
    deleted = await scan(store, lambda tx, a: prune_events(tx, before=before, after=a, limit=2))
    assert deleted == 3
    assert await event_ages(store) == [35, 29, 1, 0]


async def test_the_newest_event_is_kept_so_event_ids_never_come_back(store):
    now = store.clock.now()
    await seed_events(store, [(now - 60 * DAY, now - 60 * DAY)] * 5)
    before = now - 30 * DAY
    assert await scan(store, lambda tx, a: prune_events(tx, before=before, after=a)) == 4
    await seed_events(store, [(now, None)])
    assert [r[0] for r in await store.fetch("SELECT id FROM events ORDER BY id")] == [5, 6]


async def test_the_event_scan_stops_at_the_first_recent_chunk(store):
    now = store.clock.now()
    await seed_events(store, [(now - 40 * DAY, now)] * 3 + [(now - DAY, now)] * 50)
    steps: list[int] = []

    def step(tx: Tx, after: int) -> Any:
        steps.append(after)
        return prune_events(tx, before=now - 30 * DAY, after=after, limit=10)

    assert await scan(store, step) == 3
    assert steps == [0]  # the first ten rows reach recent ones: nothing further is read


# -- the outbox --------------------------------------------------------------------------------


def test_ref_owner_names_what_keeps_a_row():
    assert ref_owner("alert:42:post") == ("alert", "42")
    assert ref_owner("alert:42:dm:7") == ("alert", "42")
    assert ref_owner("fold:pages:U02:9") == ("fold", "fold:pages:U02:9")
    assert ref_owner("nudge:fold:posts:C1:9:2:1767225600") == ("fold", "fold:posts:C1:9")
    assert ref_owner("done:fold:pages:U02:9") == ("fold", "fold:pages:U02:9")  # its edit
    assert ref_owner("digest:acme:2026-01-01:chart") == ("free", "")
    assert ref_owner("channel-refused:C0ALERTS:U01:1767225600") == ("free", "")
    assert ref_owner("webhook:17:failed") == ("free", "")  # a delivery's thread note
    assert ref_owner("hi") == ("unknown", "")
    assert ref_owner("alert:x") == ("unknown", "")


async def add_alert(
    store: Store,
    alert_id: int,
    *,
    resolved_days_ago: float | None,
    fired_days_ago: float | None = None,
) -> None:
    now = store.clock.now()
    resolved = None if resolved_days_ago is None else now - resolved_days_ago * DAY
    # by default, it first fired a day before its end (and at least 60 days ago)
    fired = fired_days_ago or max(60.0, (resolved_days_ago or 0) + 1)
    first = now - fired * DAY
    await run_sql(
        store,
        "INSERT INTO alerts (id, fingerprint, kind, scope, tier, first_at, last_at, facts,"
        " resolved_at) VALUES (?, ?, 'runaway', 'acme/a/b', 'P1', ?, ?, '{}', ?)",
        [(alert_id, f"fp{alert_id}", first, first, resolved)],
    )


async def add_row(
    store: Store,
    ref: str | None,
    *,
    days_ago: float,
    state: str = "delivered",
    args: dict[str, Any] | None = None,
) -> None:
    at = store.clock.now() - days_ago * DAY
    await run_sql(
        store,
        "INSERT INTO outbox (ref, method, channel, args, state, created_at, result_channel,"
        " result_ts) VALUES (?, 'chat.postMessage', 'C1', ?, ?, ?, 'C1', '1.5')",
        [(ref, json.dumps(args or {"channel": "C1", "text": "x"}), state, at)],
    )


async def prune_all_outbox(store: Store, *, limit: int = 3) -> int:
    now = store.clock.now()
    return await scan(
        store,
        lambda tx, a: prune_outbox(
            tx,
            delivered_before=now - 7 * DAY,
            failed_before=now - 30 * DAY,
            after=a,
            limit=limit,
        ),
    )


async def test_old_delivered_and_failed_rows_go_and_what_alerts_still_need_stays(store):
    await add_alert(store, 1, resolved_days_ago=None)  # open
    await add_alert(store, 2, resolved_days_ago=8)
    await add_alert(store, 3, resolved_days_ago=2)
    await add_alert(store, 4, resolved_days_ago=9)  # its summary also carries open alert 5
    await add_alert(store, 5, resolved_days_ago=None)
    await add_alert(store, 6, resolved_days_ago=20)
    await add_alert(store, 7, resolved_days_ago=20)
    await run_sql(
        store,
        "UPDATE alerts SET folded_into = ? WHERE id = ?",
        [("fold:posts:C1:4", 4), ("fold:posts:C1:4", 5), ("fold:posts:C1:6", 6)],
    )
    await run_sql(
        store,
        "INSERT INTO escalations (alert_id, step, notify, target, at, folded_into)"
        " VALUES (?, 0, 'rotation:primary', 'U1', 0, ?)",
        [(7, "fold:pages:U1:1")],
    )
    gone = {
        None: 10,  # an old reply (ref NULL)
        "digest:acme:2026-01-01": 8,
        "alert:2:post": 8,  # its alert resolved 8 days ago
        "alert:2:dm:1": 8,
        "fold:posts:C1:6": 30,  # every alert it carried resolved long ago
        "nudge:fold:posts:C1:6:2:1767225600": 30,
        "fold:pages:U1:1": 30,
    }
    kept = {
        "alert:1:post": 40,  # open: a later chat.update must find it
        "alert:1:dm:3": 40,
        "alert:3:post": 40,  # resolved only 2 days ago
        "fold:posts:C1:4": 40,  # carries open alert 5
        "nudge:fold:posts:C1:4:2:1767225600": 40,
        "alert:9:post": 40,  # no such alert: not ours to judge
        "hi": 40,  # a ref of a kind retention does not know
    }
    for ref, days in [*gone.items(), *kept.items()]:
        await add_row(store, ref, days_ago=days)
    await add_row(store, "digest:acme:2026-01-02", days_ago=40)  # would go, but:
    await add_row(
        store,
        None,
        days_ago=0,
        state="pending",
        args={
            "channel": "$ref:digest:acme:2026-01-02.channel",
            "ts": "$ref:digest:acme:2026-01-02.ts",
        },
    )
    await add_row(store, None, days_ago=6)  # delivered 6 days ago
    await add_row(store, None, days_ago=20, state="failed")
    await add_row(store, None, days_ago=31, state="failed")
    await add_row(store, None, days_ago=40, state="pending")

    assert await prune_all_outbox(store) == len(gone) + 1
    rows = await store.fetch(
        "SELECT ref, state, round((? - created_at) / 86400) FROM outbox", (store.clock.now(),)
    )
    left = sorted((r[0] or "", r[1], int(r[2])) for r in rows)
    assert left == sorted(
        [(ref, "delivered", days) for ref, days in kept.items()]
        + [
            ("digest:acme:2026-01-02", "delivered", 40),  # a waiting row refers to it
            ("", "pending", 0),
            ("", "delivered", 6),
            ("", "failed", 20),
            ("", "pending", 40),
        ]
    )


async def test_the_outbox_scan_stops_at_the_first_recent_chunk(store):
    for days in [10, 10, 10, 10] + [1] * 20:
        await add_row(store, None, days_ago=days)
    assert await prune_all_outbox(store, limit=3) == 4
    assert await count(store, "outbox") == 20


# -- resolved alerts and closed heartbeat gaps ---------------------------------------------


async def alert_ids(store: Store) -> list[int]:
    return [r[0] for r in await store.fetch("SELECT id FROM alerts ORDER BY id")]


async def prune_all_alerts(store: Store, *, days: float = 90, limit: int = 3) -> int:
    before = store.clock.now() - days * DAY
    return await scan(store, lambda tx, a: prune_alerts(tx, before=before, after=a, limit=limit))


async def add_escalation(store: Store, alert_id: int, folded_into: str | None = None) -> None:
    await run_sql(
        store,
        "INSERT INTO escalations (alert_id, step, notify, target, at, folded_into)"
        " VALUES (?, 0, 'rotation:primary', 'U1', 0, ?)",
        [(alert_id, folded_into)],
    )


async def test_resolved_alerts_past_the_period_go_with_their_escalations(store):
    # in id order, as they first fired
    await add_alert(store, 1, resolved_days_ago=100, fired_days_ago=130)
    await add_alert(store, 2, resolved_days_ago=None, fired_days_ago=125)  # still open
    await add_alert(store, 3, resolved_days_ago=91, fired_days_ago=120)
    await add_alert(store, 4, resolved_days_ago=89, fired_days_ago=110)  # resolved since
    await add_alert(store, 5, resolved_days_ago=95, fired_days_ago=100)
    await add_alert(store, 6, resolved_days_ago=None, fired_days_ago=1)
    for alert_id in (1, 2, 3, 4, 5, 6):
        await add_escalation(store, alert_id)

    # foreign keys are on: the escalation rows go first, in the same write
    assert await prune_all_alerts(store, limit=2) == 3
    assert await alert_ids(store) == [2, 4, 6]
    rows = await store.fetch("SELECT alert_id FROM escalations ORDER BY alert_id")
    assert [r[0] for r in rows] == [2, 4, 6]
    assert (await store.fetch("PRAGMA foreign_key_check"))[:1] == []


async def test_an_alert_is_kept_while_an_outbox_row_still_names_it(store):
    for alert_id in range(1, 7):
        await add_alert(store, alert_id, resolved_days_ago=100)
    await add_row(store, "alert:1:post", days_ago=1)  # its channel message
    await add_row(store, "alert:2:dm:7", days_ago=1, state="failed")  # a page
    await run_sql(store, "UPDATE alerts SET folded_into = ? WHERE id = 3", [("fold:posts:C1:3-1",)])
    await add_row(store, "fold:posts:C1:3-1", days_ago=1)  # the storm summary it joined
    await add_escalation(store, 4, folded_into="fold:pages:U1:4-1")  # its page joined one
    await add_escalation(store, 6)  # the newest escalation is another's (kept, see below)
    await add_row(store, "fold:pages:U1:4-1", days_ago=1)
    await add_row(store, "alert:55:post", days_ago=1)  # alert:5 is not alert:55's prefix

    assert await prune_all_alerts(store) == 1
    assert await alert_ids(store) == [1, 2, 3, 4, 6]  # 6: the newest stays (ids never reused)

    await store.write(lambda tx: tx.execute("DELETE FROM outbox"))
    assert await prune_all_alerts(store) == 4
    assert await alert_ids(store) == [6]
    await add_alert(store, 7, resolved_days_ago=None)
    await add_escalation(store, 7)
    assert await prune_all_alerts(store) == 1
    assert await alert_ids(store) == [7]


async def test_the_newest_escalation_is_kept_so_storm_summary_names_never_come_back(store):
    """review9 L2: page summaries are named after escalation ids (fold:pages:<lane>:<id>);
    a reused id would let an old summary's Acknowledge all act on a new storm."""
    await add_alert(store, 1, resolved_days_ago=100, fired_days_ago=130)
    await add_alert(store, 2, resolved_days_ago=None, fired_days_ago=1)
    await add_escalation(store, 2)
    await add_escalation(store, 1)  # the old alert was paged last
    assert await prune_all_alerts(store) == 0
    await add_escalation(store, 2)
    assert await prune_all_alerts(store) == 1
    assert await alert_ids(store) == [2]


async def test_failed_rows_go_after_their_own_period_when_it_is_the_shorter(store):
    """review9 L1: the scan goes on while rows are older than either period."""
    for days in [5] * 6 + [1] * 10:
        await add_row(store, None, days_ago=days, state="failed")
    now = store.clock.now()
    deleted = await scan(
        store,
        lambda tx, a: prune_outbox(
            tx, delivered_before=now - 7 * DAY, failed_before=now - 3 * DAY, after=a, limit=3
        ),
    )
    assert deleted == 6
    assert await count(store, "outbox") == 10


async def test_the_alert_scan_stops_at_the_first_recent_chunk(store):
    now = store.clock.now()
    await run_sql(
        store,
        "INSERT INTO alerts (id, fingerprint, kind, scope, tier, first_at, last_at, facts,"
        " resolved_at) VALUES (?, ?, 'runaway', 'acme/a/b', 'P1', ?, ?, '{}', ?)",
        [
            (i, f"fp{i}", at, at, at + 60)
            for i, at in enumerate([now - 200 * DAY] * 3 + [now - DAY] * 20, start=1)
        ],
    )
    steps: list[int] = []

    def step(tx: Tx, after: int) -> Any:
        steps.append(after)
        return prune_alerts(tx, before=now - 90 * DAY, after=after, limit=5)

    assert await scan(store, step) == 3
    assert steps == [0]  # the first five reach recent ones: nothing further is read


async def add_gaps(store: Store, gaps: list[tuple[float, float | None]]) -> None:
    """(down_from, down_until) in days ago; None: still down."""
    now = store.clock.now()
    await run_sql(
        store,
        "INSERT INTO heartbeat_gaps (scope, down_from, down_until) VALUES ('acme/a/b', ?, ?)",
        [(now - f * DAY, None if u is None else now - u * DAY) for f, u in gaps],
    )


async def test_closed_heartbeat_gaps_past_the_period_go_and_open_ones_stay(store):
    await add_gaps(store, [(120, 110), (100, None), (95, 91), (92, 89), (5, 4), (1, None)])
    before = store.clock.now() - 90 * DAY
    deleted = await scan(store, lambda tx, a: prune_gaps(tx, before=before, after=a, limit=2))
    assert deleted == 2
    rows = await store.fetch("SELECT down_from, down_until FROM heartbeat_gaps ORDER BY id")
    now = store.clock.now()
    left = [(round((now - f) / DAY), u if u is None else round((now - u) / DAY)) for f, u in rows]
    assert left == [(100, None), (92, 89), (5, 4), (1, None)]


async def test_done_webhook_deliveries_past_their_period_go(store):
    """Delivered after outbox_delivered, failed after outbox_failed (by when done); kept:
    a pending one, an open alert's, and the newest (its id never comes back)."""
    now = store.clock.now()
    await add_alert(store, 1, resolved_days_ago=40)
    await add_alert(store, 2, resolved_days_ago=None)  # still open
    rows = [  # alert, state, done days ago
        (1, "delivered", 40),  # goes
        (1, "failed", 40),  # goes (past 30 days)
        (1, "failed", 20),  # stays: failed rows are kept 30 days
        (1, "delivered", 8),  # goes
        (1, "delivered", 2),  # stays
        (2, "delivered", 40),  # stays: its alert is open
        (1, "pending", None),  # stays
        (1, "delivered", 40),  # stays: the newest row
    ]
    await run_sql(
        store,
        "INSERT INTO webhook_deliveries (webhook, alert_id, event, body, state, created_at,"
        " next_at, done_at) VALUES ('pager', ?, 'trigger', '{}', ?, ?, ?, ?)",
        [
            (a, state, now - 50 * DAY, now - 50 * DAY, None if d is None else now - d * DAY)
            for a, state, d in rows
        ],
    )
    deleted = await scan(
        store,
        lambda tx, a: prune_webhooks(
            tx, delivered_before=now - 7 * DAY, failed_before=now - 30 * DAY, after=a, limit=3
        ),
    )
    assert deleted == 3
    left = await store.fetch("SELECT id FROM webhook_deliveries ORDER BY id")
    assert [r[0] for r in left] == [3, 5, 6, 7, 8]
