"""Retention through the real app: what a months-long run deletes, and what it must not.

Time is a ManualClock moved by the test, which runs the retention job itself; the
alerts' scheduler tick is paused so it cannot resolve the test's alert on its own.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from bot.alerts import operations as ops
from bot.outbox import enqueue
from guards.clock import ManualClock
from guards.events import RunawayDetected
from guards.store import Tx
from tests.fakes.fixtures import SlackDriver

DAY = 86400
AGENT = "acme/alice/rss-bot"
ALERTS = "C0ALERTS"
POLICY = {"admins": ["U0ADMIN"], "channels": {"alerts": ALERTS}}
UPKEEP = {
    "retention": 3600,
    "validation-prune": 3600,
    "breakers-prune": 3600,
    "jobs-retention": 3600,
    "routing-prune": 86400,
}


async def test_every_prune_job_first_runs_half_a_minute_after_start(app_factory):
    app = await app_factory(clock=ManualClock())
    started = datetime.now(UTC)
    jobs = {job.id: job for job in app.ns.scheduler.get_jobs()}
    for name, interval in UPKEEP.items():
        job = jobs[name]
        assert job.trigger.interval.total_seconds() == interval, name
        assert 0 < (job.next_run_time - started).total_seconds() <= 30, name
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
