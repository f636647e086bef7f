"""A resolve never overtakes a try of its trigger in flight (review26 R1 L2).

The alert is acknowledged while a try of its webhook trigger is out: the receiver holds
that try's answer (its ``hold``), the acknowledgement happens meanwhile, then the
receiver answers. The resolve went out at once, beside the try: a receiver may then
take the resolve first and open the incident after it, which nothing closes. It now
waits for the try's answer, and the row says what the try got (a retry that got through
said "not tried again"). Refused after the ack, a trigger that never got there still
gets no resolve. A try a crash cut short may have got there: the restart sends the
resolve of one whose paging ended meanwhile.

The whole app in Slack HTTP mode, a real receiver on 127.0.0.1, a real SQLite file,
time on a ManualClock; the order is driven (a held answer, the ack, a sending pass),
not timed with sleeps."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import webhooks_send
from bot.webhooks_rows import STOPPED, WITHDRAWN
from bot.webhooks_send import backoff
from guards.clock import ManualClock
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_webhook_storms import agents, storm_events, storm_policy
from tests.scenario.test_webhook_storms import trip as trip_many
from tests.scenario.test_webhooks import SECRET, SECRET_ENV, deliveries, policy, send
from tests.scenario.test_webhooks_failures import message, trip

__all__ = ["webhook_receiver"]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


async def retry_held(
    slack: Any, receiver: WebhookReceiver, clock: ManualClock
) -> asyncio.Task[int]:
    """The trigger's next try, its answer held by the receiver: the pass sending it (it
    waits for the answer), once the request has arrived."""
    receiver.hold = asyncio.Event()
    receiver.arrived.clear()
    clock.advance(10)  # (the first failed try's backoff)
    sending = asyncio.create_task(send(slack))
    await asyncio.wait_for(receiver.arrived.wait(), 5)
    return sending


async def a_pass_while_held(slack: Any) -> set[int]:
    """A sending pass (as the ack's commit wakes one): what is in flight after it."""
    sender = slack.app.ns.extras["webhooks"]
    await sender._start_due()
    return set(sender._flying)


async def crash(
    slack: Any, receiver: WebhookReceiver, sending: asyncio.Task[int]
) -> dict[str, Any]:
    """The process stops with the try out, its answer never recorded (the stop's wait for
    it is cut short: the rows are left as a kill -9 leaves them); the trigger's row then.
    The receiver answers its later requests at once (the cut one's answer, to nobody,
    waits for the test's end: it takes nothing of the script)."""
    await slack.app.ns.stop()
    sending.cancel()
    await asyncio.gather(sending, return_exceptions=True)
    receiver.hold = None
    with sqlite3.connect(slack.app.ns.settings.db) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM webhook_deliveries ORDER BY id LIMIT 1").fetchone()
    return dict(row)


@pytest.fixture
def cut() -> Iterator[list[asyncio.Event]]:
    """The holds of cut tries' answers, released as the test ends."""
    holds: list[asyncio.Event] = []
    yield holds
    for hold in holds:
        hold.set()


async def answer(receiver: WebhookReceiver, sending: asyncio.Task[int]) -> None:
    assert receiver.hold is not None
    receiver.hold.set()
    await asyncio.wait_for(sending, 5)


async def test_an_ack_during_a_retry_sends_the_resolve_after_its_answer(
    slack_http, webhook_receiver: WebhookReceiver
):
    """A 503 first (it may have got there: the ack resolves it), then a retry in flight
    when the alert is acknowledged; that retry gets through."""
    clock = ManualClock()
    webhook_receiver.script = [503, 200]
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    alert_id = await trip(slack)
    await send(slack)
    [trigger] = await deliveries(slack)
    assert (trigger["state"], trigger["reached"]) == ("pending", 1)

    sending = await retry_held(slack, webhook_receiver, clock)
    said = await slack.command(f"ack {alert_id}", user="U0ONCALL")
    assert "acknowledged" in said["text"], said
    rows = await deliveries(slack)
    assert [(r["event"], r["state"]) for r in rows] == [
        ("trigger", "failed"),
        ("resolve", "pending"),
    ]
    assert rows[0]["last_error"] == STOPPED  # not tried again: its resolve is written...
    assert await a_pass_while_held(slack) == {trigger["id"]}  # ...and waits for the try
    assert webhook_receiver.events() == ["trigger", "trigger"]

    await answer(webhook_receiver, sending)
    await send(slack)
    assert webhook_receiver.events() == ["trigger", "trigger", "resolve"]
    resolve = webhook_receiver.requests[-1].json
    assert (resolve["dedup_key"], resolve["state"]) == (
        f"nightshift-alert-{alert_id}",
        "acknowledged",
    )
    trigger, resolved = await deliveries(slack)
    # what the retry got, not "not tried again"
    assert (trigger["state"], trigger["attempts"], trigger["last_status"]) == ("delivered", 2, 200)
    assert trigger["last_error"] is None and trigger["in_flight_at"] is None
    assert resolved["state"] == "delivered"
    assert "webhook pager 00:00 (delivered)" in await message(slack, alert_id)


async def test_an_ack_during_a_retry_then_refused_still_resolves_what_got_there(
    slack_http, webhook_receiver: WebhookReceiver
):
    """The first try's 503 may have opened the incident: the retry's 404 after the ack
    does not undo that. The resolve still waits for the retry's answer."""
    clock = ManualClock()
    webhook_receiver.script = [503, 404]
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    alert_id = await trip(slack)
    await send(slack)
    sending = await retry_held(slack, webhook_receiver, clock)
    await slack.command(f"ack {alert_id}", user="U0ONCALL")
    [trigger, _] = await deliveries(slack)
    assert await a_pass_while_held(slack) == {trigger["id"]}
    await answer(webhook_receiver, sending)
    await send(slack)
    assert webhook_receiver.events() == ["trigger", "trigger", "resolve"]
    trigger, resolve = await deliveries(slack)
    assert (trigger["state"], trigger["last_error"]) == ("failed", STOPPED)
    assert resolve["state"] == "delivered"
    assert "webhook pager 00:00 (not tried again)" in await message(slack, alert_id)


async def test_an_ack_during_a_retry_refused_after_it_sends_no_resolve(
    slack_http, webhook_receiver: WebhookReceiver
):
    """A 429 first (it opened nothing), the retry in flight at the ack, then a 404: the
    page never got there, so no resolve, then or later."""
    clock = ManualClock()
    webhook_receiver.script = [429, 404]
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    alert_id = await trip(slack)
    await send(slack)
    sending = await retry_held(slack, webhook_receiver, clock)
    await slack.command(f"ack {alert_id}", user="U0ONCALL")
    [trigger] = await deliveries(slack)
    assert (trigger["state"], trigger["last_error"]) == ("failed", WITHDRAWN)
    await answer(webhook_receiver, sending)
    for _ in range(3):
        await send(slack)
        clock.advance(900)
    assert webhook_receiver.events() == ["trigger", "trigger"]
    [trigger] = await deliveries(slack)
    assert (trigger["state"], trigger["last_error"]) == ("failed", WITHDRAWN)
    assert trigger["in_flight_at"] is None
    assert "webhook pager 00:00 (withdrawn unsent)" in await message(slack, alert_id)


@pytest.mark.parametrize("first", [None, 503], ids=["first-try", "retry-after-503"])
async def test_a_try_cut_short_by_a_crash_after_the_ack_gets_its_resolve_at_the_restart(
    slack_http,
    webhook_receiver: WebhookReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cut: list[asyncio.Event],
    first: int | None,
):
    """The process dies with the try out, after the ack: nothing of its answer is
    written (its stop is cut short here, which leaves the rows as a kill -9 does). The
    request may have opened the incident: the restart sends the resolve, after nothing
    else of that trigger (it was ended)."""
    monkeypatch.setattr("bot.webhooks.STOP_SECONDS", 0.1)
    clock = ManualClock()
    db = tmp_path / "crash.db"
    p = policy(webhook_receiver, webhook_after="0m")
    slack = await slack_http(p, clock=clock, db=db)
    alert_id = await trip(slack)
    if first is None:  # the page's first try is out
        webhook_receiver.hold = asyncio.Event()
        sending = asyncio.create_task(send(slack))
        await asyncio.wait_for(webhook_receiver.arrived.wait(), 5)
    else:  # a 503, then the retry is out
        webhook_receiver.script = [first]
        await send(slack)
        sending = await retry_held(slack, webhook_receiver, clock)
    await slack.command(f"ack {alert_id}", user="U0ONCALL")
    assert webhook_receiver.hold is not None
    cut.append(webhook_receiver.hold)
    trigger = await crash(slack, webhook_receiver, sending)
    assert (trigger["state"], trigger["reached"]) == ("failed", 0 if first is None else 1)
    assert trigger["in_flight_at"] is not None  # (as a kill -9 leaves it)
    tries = webhook_receiver.events()

    again = await slack_http(p, clock=clock, db=db)
    await send(again)
    assert webhook_receiver.events() == [*tries, "resolve"]  # the trigger is not sent again
    trigger, resolve = await deliveries(again)
    assert (trigger["state"], trigger["last_error"], trigger["reached"]) == ("failed", STOPPED, 1)
    assert trigger["in_flight_at"] is None
    assert (resolve["event"], resolve["state"]) == ("resolve", "delivered")
    assert "webhook pager 00:00 (not tried again)" in await message(again, alert_id)


async def test_a_try_cut_short_with_its_alert_still_paging_is_sent_again_and_may_have_got_there(
    slack_http,
    webhook_receiver: WebhookReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cut: list[asyncio.Event],
):
    """No ack before the crash: the restart sends the trigger again (at-least-once, as
    before), and counts the cut try as one that may have got there, so an ack after a
    refused resend still resolves it."""
    monkeypatch.setattr("bot.webhooks.STOP_SECONDS", 0.1)
    clock = ManualClock()
    db = tmp_path / "crash.db"
    p = policy(webhook_receiver, webhook_after="0m")
    slack = await slack_http(p, clock=clock, db=db)
    alert_id = await trip(slack)
    webhook_receiver.hold = asyncio.Event()
    cut.append(webhook_receiver.hold)
    sending = asyncio.create_task(send(slack))
    await asyncio.wait_for(webhook_receiver.arrived.wait(), 5)
    trigger = await crash(slack, webhook_receiver, sending)
    assert (trigger["state"], trigger["reached"]) == ("pending", 0)
    assert trigger["in_flight_at"] is not None

    webhook_receiver.script = [429]
    again = await slack_http(p, clock=clock, db=db)
    await send(again)
    [trigger] = await deliveries(again)
    assert (trigger["state"], trigger["attempts"], trigger["reached"]) == ("pending", 1, 1)
    await again.command(f"ack {alert_id}", user="U0ONCALL")
    await send(again)
    assert webhook_receiver.events() == ["trigger", "trigger", "resolve"]


async def test_a_storm_ended_during_its_triggers_retry_resolves_after_its_answer(
    slack_http, webhook_receiver: WebhookReceiver
):
    """The same for a storm's trigger: the storm's resolve waits for its retry."""
    clock = ManualClock()
    p = storm_policy(webhook_receiver)
    slack = await slack_http(p, clock=clock)
    webhook_receiver.script = [200, 200, 200, 503]  # three own triggers, the storm's
    await trip_many(slack, agents(0, 10))
    await send(slack)
    [storm] = storm_events(webhook_receiver)
    assert storm.json["event"] == "trigger"
    rows = await deliveries(slack)
    [row] = [r for r in rows if r["storm_id"] is not None]
    assert (row["state"], row["reached"]) == ("pending", 1)
    for own in {r["alert_id"] for r in rows if r["storm_id"] is None}:  # (resolved first)
        await slack.command(f"ack {own}", user="U0ONCALL")
    await send(slack)

    sending = await retry_held(slack, webhook_receiver, clock)
    said = await slack.command("silence acme/team 1h", user="U0ONCALL")
    assert "ilenced" in said["text"], said["text"]
    [resolve] = [r for r in await deliveries(slack) if r["state"] == "pending"]
    assert (resolve["event"], resolve["storm_id"]) == ("resolve", 1)
    assert await a_pass_while_held(slack) == {row["id"]}  # the storm's resolve waits
    assert [r.json["event"] for r in storm_events(webhook_receiver)] == ["trigger", "trigger"]

    await answer(webhook_receiver, sending)
    await send(slack)
    assert [r.json["event"] for r in storm_events(webhook_receiver)] == [
        "trigger",
        "trigger",
        "resolve",
    ]
    [row] = [
        r for r in await deliveries(slack) if r["storm_id"] is not None and r["event"] == "trigger"
    ]
    assert (row["state"], row["attempts"]) == ("delivered", 2)


async def test_an_unexpected_error_in_a_try_clears_its_mark_and_it_goes_on_schedule(
    slack_http, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, caplog: Any
):
    """closing26 (known weak): an unexpected error between a try's claim and its record
    left the row marked in flight until a restart, holding it and its alert's resolve.
    The mark is cleared, the error logged, and the trigger tried after its backoff (the
    stand-in for the request raises once, then sends as the real one does)."""
    clock = ManualClock()
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    real = webhooks_send.post
    calls: list[int] = []

    async def raises_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return await real(*args, **kwargs)

    monkeypatch.setattr("bot.webhooks.post", raises_once)  # (the sender's name for it)
    with caplog.at_level(logging.ERROR, logger="bot.webhooks"):
        await trip(slack)
        await send(slack)
    [row] = await deliveries(slack)
    assert (row["state"], row["in_flight_at"], row["attempts"], row["reached"]) == (
        "pending",
        None,
        1,
        1,  # (its request may have gone out: a later ack sends the resolve)
    )
    assert row["last_error"] == "an unexpected error in Nightshift (RuntimeError: boom)"
    assert row["next_at"] == clock.now() + backoff(1)
    assert any(
        f"delivery {row['id']}: an unexpected error" in r.getMessage() for r in caplog.records
    )
    assert webhook_receiver.requests == []
    clock.advance(backoff(1))
    await send(slack)
    assert webhook_receiver.events() == ["trigger"]
    assert [r["state"] for r in await deliveries(slack)] == ["delivered"]


async def test_a_record_that_keeps_failing_holds_only_its_own_delivery(
    slack_http, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
):
    """A record failing on a bug (not the database refusing writes) was kept in memory
    to be written before anything else, so it failed again at every pass: no other
    delivery went out, and the row stayed marked in flight. Now its mark is cleared and
    its answer is recorded on its own: the receiver answered 200, so it is delivered,
    never sent again (review27 R1 M3: it was left pending, to be sent again after its
    backoff); the others go."""
    clock = ManualClock()
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    sender = slack.app.ns.extras["webhooks"]
    real = sender._record

    def buggy(tx: Any, done: list[Any]) -> Any:
        if any(d.id == 1 for d in done):  # (the first delivery: the first alert's trigger)
            raise RuntimeError("a bug in its record")
        return real(tx, done)

    monkeypatch.setattr(sender, "_record", buggy)
    await trip_many(slack, agents(0, 1))
    await send(slack)
    [first] = await deliveries(slack)
    assert (first["id"], first["state"], first["in_flight_at"], first["attempts"]) == (
        1,
        "delivered",
        None,
        1,
    )
    assert first["last_error"] is None
    await trip_many(slack, agents(1, 2))
    clock.advance(backoff(1))
    await send(slack)
    rows = await deliveries(slack)
    assert [(r["alert_id"], r["state"]) for r in rows] == [
        (first["alert_id"], "delivered"),
        (first["alert_id"] + 1, "delivered"),
    ]
    assert webhook_receiver.events() == ["trigger", "trigger"]  # one each
