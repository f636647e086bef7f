"""Retention through the real app: what a months-long run deletes, and what it must not.

Time is a ManualClock moved by the test, which runs the retention job itself; the
alerts' scheduler tick is paused so it cannot resolve the test's alert on its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

from bot.alerts import operations as ops
from bot.outbox import enqueue
from guards.clock import ManualClock
from guards.events import RunawayDetected
from guards.migrations import begin_immediate, connect
from guards.store import Tx
from tests.fakes.fixtures import SlackDriver

DAY = 86400
AGENT = "acme/alice/rss-bot"
ALERTS = "C0ALERTS"
POLICY = {"admins": ["U0ADMIN"], "channels": {"alerts": ALERTS}}
# The per-feature prune jobs each deleted one chunk of what `retention` drains anyway.
GONE = ("validation-prune", "breakers-prune", "jobs-retention", "routing-prune")


async def test_one_prune_job_runs_half_a_minute_after_start_then_hourly(app_factory):
    app = await app_factory(clock=ManualClock())
    started = datetime.now(UTC)
    jobs = {job.id: job for job in app.ns.scheduler.get_jobs()}
    job = jobs["retention"]
    assert job.trigger.interval.total_seconds() == 3600
    assert 0 < (job.next_run_time - started).total_seconds() <= 30
    assert [name for name in jobs if "prune" in name or "retention" in name] == ["retention"]
    assert not set(GONE) & set(jobs)
    # the short ticks keep their own interval as their first delay
    assert (jobs["sweep"].next_run_time - started).total_seconds() <= 5


async def test_old_validations_and_routing_decisions_are_pruned_by_the_job(app_factory):
    app = await app_factory(clock=ManualClock())
    token = await app.token(AGENT)
    for i in range(3):
        r = await app.request(
            "POST",
            "/v1/validations",
            token=token,
            json={"scope": AGENT, "stream": "posts", "items": [f"item number {i} of the feed"]},
        )
        assert r.status_code == 200, r.text
        r = await app.request(
            "POST", "/v1/route", token=token, json={"scope": AGENT, "task": "Summarise this."}
        )
        assert r.status_code == 200, r.text
    retention = app.ns.extras["retention"]
    app.clock.advance(8 * DAY)  # past validation.window_days (7), within routing's 90 days
    deleted = await retention.run()
    assert (deleted["validation_items"], deleted["routing_decisions"]) == (3, 0)
    app.clock.advance(90 * DAY)
    assert (await retention.run())["routing_decisions"] == 3
    # the validator forgot them too: the same item is new again
    r = await app.request(
        "POST",
        "/v1/validations",
        token=token,
        json={"scope": AGENT, "stream": "posts", "items": ["item number 0 of the feed"]},
    )
    assert r.json()["verdict"] == "ok"


async def emit_runaway(slack: SlackDriver, count: int) -> None:
    app = slack.app

    def write(tx: Tx) -> None:
        tx.emit(
            RunawayDetected(
                at=app.clock.now(), scope=AGENT, stream="rss", count=count, expected_count=1
            )
        )

    await app.store.write(write)
    await app.ns.extras["alerts"].process()


async def outbox(slack: SlackDriver) -> list[tuple[Any, ...]]:
    rows = await slack.app.store.fetch("SELECT ref, method, state FROM outbox ORDER BY id")
    return [tuple(r) for r in rows]


async def all_sent(slack: SlackDriver, within: float = 5.0) -> None:
    """Wait until the outbox worker has delivered every row."""
    for _ in range(int(within / 0.02)):
        if all(state == "delivered" for _, _, state in await outbox(slack)):
            return
        await asyncio.sleep(0.02)  # the worker delivers on the wall clock
    raise AssertionError(f"the outbox did not drain: {await outbox(slack)}")


def message_text(slack: SlackDriver) -> str:
    post = next(c for c in slack.fake.posts(ALERTS) if not c.args.get("thread_ts"))
    return json.dumps(slack.fake.messages[(ALERTS, post.response["ts"])], ensure_ascii=False)


async def test_an_open_alert_keeps_its_message_editable_and_a_resolved_one_lets_it_go(
    slack_http,
):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    app.ns.scheduler.pause_job("alerts-tick")
    retention = app.ns.extras["retention"]
    await emit_runaway(slack, 40)
    await emit_runaway(slack, 41)
    await app.store.write(
        lambda tx: enqueue(tx, method="chat.postMessage", args={"channel": "C0X", "text": "hi"})
    )
    await all_sent(slack)
    assert ("alert:1:post", "chat.postMessage", "delivered") in await outbox(slack)

    app.clock.advance(40 * DAY)
    deleted = await retention.run()
    assert deleted["events"] == 1  # the older firing; the newest event row always stays
    assert [r[0] for r in await outbox(slack)] == ["alert:1:post"]  # "hi" and edits went

    # the alert is still open: a new firing edits its message in place, through its ref
    await emit_runaway(slack, 42)
    await all_sent(slack)
    assert "fired 3×" in message_text(slack)
    assert not await app.store.fetch("SELECT id FROM outbox WHERE state = 'failed'")

    engine = app.ns.extras["alerts"].engine
    await app.store.write(lambda tx: ops.resolve(engine, tx, alert_id=1, actor="U0ADMIN"))
    await all_sent(slack)
    assert "resolved" in message_text(slack)
    app.clock.advance(6 * DAY)
    assert (await retention.run())["outbox"] == 0  # resolved 6 days ago: kept a little longer
    app.clock.advance(2 * DAY)
    await retention.run()
    assert await outbox(slack) == []


# -- the periods come from the policy's retention: section ---------------------------------

SHORT = {
    "retention": {
        "events": "2d",
        "outbox_delivered": "1d",
        "outbox_failed": "3d",
        "breaker_attempts": "1d",
        "job_runs": "3d",
        "alerts_resolved": "3d",
    }
}
TABLES = ("events", "outbox", "breaker_attempts", "job_runs", "alerts", "heartbeat_gaps")


async def seed_history(app: Any) -> None:
    """A row of each kind retention deletes, all written now: two dispatched events and
    their alerts (#1 then resolved, #2 open) with their messages (#1's post and the edit
    that resolved it, #2's post), a delivered and a failed Slack call, a task's attempt
    count, a job run and a closed heartbeat gap."""
    now = app.clock.now()

    def write(tx: Tx) -> None:
        for scope in (AGENT, "acme/bob/news-bot"):
            tx.emit(RunawayDetected(at=now, scope=scope, stream="rss", count=9, expected_count=1))
        tx.executemany(
            "INSERT INTO outbox (ref, method, channel, args, state, created_at)"
            " VALUES (?, 'chat.postMessage', 'C0X', '{}', ?, ?)",
            [("digest:acme:sent", "delivered", now), ("digest:acme:lost", "failed", now)],
        )
        tx.execute(
            "INSERT INTO breaker_attempts (agent, task_id, attempts, first_at, last_at)"
            " VALUES (?, 'task-1', 2, ?, ?)",
            (AGENT, now, now),
        )
        tx.execute(
            "INSERT INTO job_runs (id, job, scope, scheduled_for, decided_at, state)"
            " VALUES ('run-1', 'rss', ?, ?, ?, 'succeeded')",
            (AGENT, now, now),
        )
        tx.execute(
            "INSERT INTO heartbeat_gaps (scope, down_from, down_until) VALUES (?, ?, ?)",
            (AGENT, now - 600, now),
        )

    await app.store.write(write)
    alerts = app.ns.extras["alerts"]
    await alerts.process()
    await drained(app)  # posted: the resolution is an edit of #1's message
    await app.store.write(lambda tx: ops.resolve(alerts.engine, tx, alert_id=1, actor="U0ADMIN"))
    await drained(app)


async def drained(app: Any) -> None:
    for _ in range(250):  # the shell console delivers the alerts' messages on the wall clock
        if not await app.store.fetch("SELECT id FROM outbox WHERE state = 'pending'"):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the outbox did not drain")


async def history(app: Any) -> dict[str, Any]:
    """What is left: row counts, and the outbox by ref (None: #1's resolving edit)."""
    out: dict[str, Any] = {}
    for table in TABLES:
        out[table] = (await app.store.fetch(f"SELECT count(*) FROM {table}"))[0][0]
    out["outbox"] = [r[0] for r in await app.store.fetch("SELECT ref FROM outbox ORDER BY id")]
    return out


SEEDED = {
    "events": 2,
    "outbox": ["digest:acme:sent", "digest:acme:lost", "alert:1:post", "alert:2:post", None],
    "breaker_attempts": 1,
    "job_runs": 1,
    "alerts": 2,
    "heartbeat_gaps": 1,
}


async def test_the_defaults_keep_what_the_fixed_periods_kept(app_factory):
    app = await app_factory(clock=ManualClock())
    app.ns.scheduler.pause_job("alerts-tick")
    retention = app.ns.extras["retention"]
    await seed_history(app)
    start = app.clock.now()
    assert await history(app) == SEEDED

    gone: dict[int, dict[str, int]] = {}
    for day in (6, 8, 29, 31, 89, 91):
        app.clock.set(start + day * DAY + 60)
        deleted = await retention.run()
        gone[day] = {t: n for t, n in deleted.items() if t in TABLES and n}
    assert gone == {
        6: {},
        # delivered Slack calls, with #1's messages (resolved 7 days ago); attempt counts
        8: {"outbox": 3, "breaker_attempts": 1},
        29: {},
        31: {"events": 1, "outbox": 1},  # the newest event stays; failed Slack calls
        89: {},
        91: {"job_runs": 1, "alerts": 1, "heartbeat_gaps": 1},
    }
    assert await history(app) == dict.fromkeys(TABLES, 0) | {
        "events": 1,  # the newest
        "outbox": ["alert:2:post"],  # #2 is open: its message stays editable
        "alerts": 1,
    }


async def test_shorter_periods_in_the_policy_prune_sooner(app_factory):
    short = await app_factory(SHORT, clock=ManualClock())
    default = await app_factory(clock=ManualClock())
    for app in (short, default):
        app.ns.scheduler.pause_job("alerts-tick")
        await seed_history(app)
        app.clock.advance(4 * DAY)
    deleted = await short.ns.extras["retention"].run()
    assert {t: deleted[t] for t in TABLES} == {
        "events": 1,
        "outbox": 4,  # all but the open alert's message
        "breaker_attempts": 1,
        "job_runs": 1,
        "alerts": 1,  # its messages went first, in the same run
        "heartbeat_gaps": 1,
    }
    assert await history(short) == dict.fromkeys(TABLES, 0) | {
        "events": 1,
        "outbox": ["alert:2:post"],
        "alerts": 1,
    }
    deleted = await default.ns.extras["retention"].run()
    assert not any(deleted[t] for t in TABLES)
    assert await history(default) == SEEDED


async def test_the_event_period_still_honours_the_burst_window(app_factory):
    policy = {"retention": {"events": "1d"}, "validation": {"burst": {"window_seconds": "3d"}}}
    app = await app_factory(policy, clock=ManualClock())
    app.ns.scheduler.pause_job("alerts-tick")
    retention = app.ns.extras["retention"]
    await seed_history(app)
    app.clock.advance(2 * DAY)
    assert (await retention.run())["events"] == 0  # the burst check looks back 3 days
    app.clock.advance(DAY + 60)
    assert (await retention.run())["events"] == 1


# -- resolved alerts through Slack ---------------------------------------------------------

BEATS = {
    **POLICY,
    "heartbeats": {"timeout_seconds": "60s", "misses_before_alert": 2},
    "oncall": {"rotations": [{"name": "ops", "users": ["U01"]}]},
    "retention": {"alerts_resolved": "3d"},
}


async def beat(app: Any, status: str = "ok") -> None:
    token = await app.token(AGENT)
    r = await app.request(
        "POST", "/v1/heartbeats", token=token, json={"scope": AGENT, "status": status}
    )
    assert r.status_code == 204, r.text


async def alert_refs(slack: SlackDriver) -> list[str]:
    rows = await slack.app.store.fetch(
        "SELECT ref FROM outbox WHERE ref LIKE 'alert:%' ORDER BY ref"
    )
    return [r[0] for r in rows]


async def test_a_resolved_alert_goes_after_its_messages_and_an_open_one_stays(slack_http):
    slack = await slack_http(BEATS, clock=ManualClock())
    app = slack.app
    app.ns.scheduler.pause_job("alerts-tick")
    alerts, retention = app.ns.extras["alerts"], app.ns.extras["retention"]
    # alert #1: a missed heartbeat (P0: posted, U01 paged), resolved when the agent is back
    await beat(app)
    app.clock.advance(120)
    await alerts.tick()
    await all_sent(slack)  # the page went out (one still waiting would be withdrawn)
    await beat(app)
    await beat(app, status="stopped")  # not watched while the clock jumps ahead
    await alerts.process()
    # alert #2: a runaway elsewhere, still open
    await emit_runaway(slack, 40)
    await all_sent(slack)
    assert await alert_refs(slack) == [
        "alert:1:dm:1",
        "alert:1:post",
        "alert:2:dm:2",
        "alert:2:post",
    ]
    assert len(await app.store.fetch("SELECT id FROM escalations WHERE alert_id = 1")) == 1

    app.clock.advance(4 * DAY)  # past alerts_resolved (3d), within outbox_delivered (7d)
    deleted = await retention.run()
    assert (deleted["alerts"], deleted["heartbeat_gaps"]) == (0, 1)  # #1's messages stay
    assert "alert:1:post" in await alert_refs(slack)

    app.clock.advance(4 * DAY)  # resolved 8 days ago: its messages go first, then the alert
    deleted = await retention.run()
    assert deleted["alerts"] == 1
    assert await alert_refs(slack) == ["alert:2:dm:2", "alert:2:post"]
    assert [r[0] for r in await app.store.fetch("SELECT id FROM alerts")] == [2]
    assert await app.store.fetch("SELECT id FROM escalations WHERE alert_id = 1") == []

    listing = (await slack.command("alerts"))["text"]
    assert "`#2` Runaway output" in listing and "#1" not in listing
    assert "there is no alert #1" in (await slack.command("ack 1"))["text"]
    # the open alert's message is still edited in place, through its ref
    await emit_runaway(slack, 41)
    await all_sent(slack)
    (channel, ts), *_ = await app.store.fetch(
        "SELECT result_channel, result_ts FROM outbox WHERE ref = 'alert:2:post'"
    )
    assert "fired 2×" in json.dumps(slack.fake.messages[(channel, ts)], ensure_ascii=False)
    assert not await app.store.fetch("SELECT id FROM outbox WHERE state = 'failed'")
    # a new alert takes a new id: #1's old buttons can never act on it
    await beat(app)
    app.clock.advance(120)
    await alerts.tick()
    assert [r[0] for r in await app.store.fetch("SELECT id FROM alerts")] == [2, 3]


async def test_a_prune_the_database_refuses_is_a_warning_without_a_traceback(
    app_factory, monkeypatch, caplog
):
    """recheck27 R4: during an ordinary lock, each table's prune logged an ERROR with a
    whole traceback; the store already says the refusal, once a minute."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    app = await app_factory({}, clock=ManualClock())
    other = connect(app.ns.settings.db)
    begin_immediate(other)
    try:
        with caplog.at_level(logging.WARNING, logger="bot.retention"):
            await app.ns.extras["retention"].run()
    finally:
        other.execute("ROLLBACK")
        other.close()
    said = [r for r in caplog.records if r.name == "bot.retention"]
    assert [(r.levelno, r.exc_info) for r in said] == [(logging.WARNING, None)]
    assert said[0].getMessage().startswith("retention: the database refused pruning events (")
    assert "this run stops there, the next one goes on" in said[0].getMessage()
