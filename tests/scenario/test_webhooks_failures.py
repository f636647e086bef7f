"""Webhook steps when things go wrong (review23 H1, H2, M1, M2, M4): a receiver that echoes
its url's key, one that trickles its answer, an alert acknowledged before its page got
through, a database refusing writes after a send, and what the thread, the message and
the story say meanwhile. The whole app in Slack HTTP mode, real receivers on 127.0.0.1,
time on a ManualClock."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.webhooks_rows import WITHDRAWN
from guards.clock import ManualClock
from guards.errors import StorageUnavailable
from guards.migrations import begin_immediate, connect
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_slack_commands import spend
from tests.scenario.test_webhooks import BOT, SECRET, SECRET_ENV, deliveries, policy, send

__all__ = ["webhook_receiver"]

KEY, QUERY = "SECRETPATHKEY", "QUERYSECRET"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


async def trip(slack: Any) -> int:
    """A P0 whose chain's first step is taken now; its id."""
    await spend(slack.app, BOT, micros=2_000_000, key="k1")
    await slack.app.ns.extras["alerts"].tick()
    [(alert_id,)] = await slack.app.store.fetch("SELECT id FROM alerts WHERE tier = 'P0'")
    return int(alert_id)


async def until(check: Callable[[], Awaitable[bool]], within: float) -> bool:
    """Whether ``check()`` comes true within ``within`` seconds (real time)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return await check()


async def message(slack: Any, alert_id: int) -> str:
    """The alert's channel message as it is drawn now (blocks, as JSON)."""
    engine = slack.app.ns.extras["alerts"].engine
    now = slack.app.ns.clock.now()
    _, blocks = await slack.app.store.read(
        lambda tx: engine.render(tx, engine.get(tx, alert_id), now)
    )
    return json.dumps(blocks, ensure_ascii=False)


async def test_a_receiver_echoing_its_url_never_shows_the_key(slack_http, webhook_receiver, caplog):
    clock = ManualClock()
    webhook_receiver.script, webhook_receiver.echo = [404], True
    p = policy(webhook_receiver, webhook_after="0m")
    p["webhooks"]["pager"]["url"] = f"{webhook_receiver.url}/{KEY}?token={QUERY}&x=1"
    slack = await slack_http(p, clock=clock)
    with caplog.at_level(logging.WARNING, logger="bot.webhooks"):
        alert_id = await trip(slack)
        await send(slack)
    [got] = webhook_receiver.requests
    assert got.path == f"/hook/{KEY}"  # the key was used, and the receiver quoted it
    [row] = await deliveries(slack)
    assert row["state"] == "failed" and row["last_error"].startswith("HTTP 404: ")
    assert "Cannot POST" in row["last_error"]
    said = "The page to webhook pager (delivery 1) failed: HTTP 404"
    await slack.fake.wait_for(lambda: any(said in t for t in slack.fake.texts()))
    shown = [row["last_error"], caplog.text, *slack.fake.texts()]
    shown.append((await slack.command(f"alert {alert_id}"))["text"])
    shown.append(await message(slack, alert_id))
    for text in shown:
        assert KEY not in text and QUERY not in text, text


async def test_a_trickling_receiver_holds_up_no_other_webhook(
    slack_http, webhook_receiver, monkeypatch
):
    clock = ManualClock()
    fast = await WebhookReceiver().start()
    try:
        webhook_receiver.trickle = 0.2  # a byte every 0.2 s: no read ever waits 1 s
        p = policy(webhook_receiver, webhook_after="0m")
        p["webhooks"]["pager"]["timeout"] = "1s"
        p["webhooks"]["other"] = {"url": fast.url}
        p["oncall"]["escalation"].append({"notify": "webhook:other", "after": "1m"})
        slack = await slack_http(p, clock=clock)
        await trip(slack)  # the sender's own loop sends it, woken by the commit
        await asyncio.wait_for(webhook_receiver.arrived.wait(), 5)
        began = time.monotonic()
        clock.advance(60)
        await slack.app.ns.extras["alerts"].tick()  # the next step: the healthy webhook

        async def other_delivered() -> bool:
            rows = await deliveries(slack)
            return any(r["webhook"] == "other" and r["state"] == "delivered" for r in rows)

        assert await until(other_delivered, 3), await deliveries(slack)
        assert fast.events() == ["trigger"]
        assert time.monotonic() - began < 3

        async def pager_cut() -> bool:
            [row] = [r for r in await deliveries(slack) if r["webhook"] == "pager"]
            return bool(row["attempts"] == 1)

        assert await until(pager_cut, 3)  # the whole try took at most its 1 s timeout
        [row] = [r for r in await deliveries(slack) if r["webhook"] == "pager"]
        assert (row["state"], row["last_error"]) == ("pending", "no answer within 1s")
    finally:
        await fast.stop()


async def test_an_ack_before_the_page_got_through_withdraws_it(slack_http, webhook_receiver):
    clock = ManualClock()
    webhook_receiver.script = [429]  # (a 5xx may have got there: its resolve would follow)
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    alert_id = await trip(slack)
    await send(slack)
    await slack.command(f"ack {alert_id}", user="U0ONCALL")
    for _ in range(3):
        clock.advance(60)
        await send(slack)
    # its one try was refused: no phone rang, so nothing more (no retry, no resolve)
    assert webhook_receiver.events() == ["trigger"]
    # its row stays (failed, withdrawn): a delivery id is never given twice (recheck23 H1)
    [row] = await deliveries(slack)
    assert (row["state"], row["last_error"]) == ("failed", WITHDRAWN)
    assert "webhook pager 00:00 (withdrawn unsent)" in await message(slack, alert_id)
    story = (await slack.command(f"alert {alert_id}"))["text"]
    assert "📟 paged webhook pager (step 2 of 2) — withdrawn unsent at" in story, story


async def test_an_ack_after_a_try_with_no_answer_sends_only_the_resolve(
    slack_http, webhook_receiver
):
    clock = ManualClock()
    webhook_receiver.delay = 2  # longer than the 1 s timeout: the try may have got there
    p = policy(webhook_receiver, webhook_after="0m")
    p["webhooks"]["pager"]["timeout"] = "1s"
    slack = await slack_http(p, clock=clock)
    alert_id = await trip(slack)
    await send(slack)
    [row] = await deliveries(slack)
    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 1, None)
    webhook_receiver.delay = 0
    await slack.command(f"ack {alert_id}", user="U0ONCALL")
    await send(slack)
    clock.advance(60)
    await send(slack)
    assert webhook_receiver.events() == ["trigger", "resolve"]  # not tried again
    trigger, resolve = await deliveries(slack)
    assert (trigger["state"], resolve["state"]) == ("failed", "delivered")
    assert "webhook pager 00:00 (not tried again)" in await message(slack, alert_id)


async def test_an_ack_while_the_page_is_in_flight_resolves_it_after(slack_http, webhook_receiver):
    clock = ManualClock()
    webhook_receiver.delay = 0.5
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    alert_id = await trip(slack)
    await asyncio.wait_for(webhook_receiver.arrived.wait(), 5)  # the loop is sending it
    await slack.command(f"ack {alert_id}", user="U0ONCALL")
    await send(slack)
    await send(slack)
    assert webhook_receiver.events() == ["trigger", "resolve"]  # it got there: closed there
    assert "(withdrawn unsent)" not in await message(slack, alert_id)


async def test_a_database_refusing_writes_after_a_send_sends_it_no_second_time(
    slack_http, webhook_receiver, monkeypatch
):
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.3)
    clock = ManualClock()
    webhook_receiver.hold = asyncio.Event()  # the receiver answers when the test says
    slack = await slack_http(policy(webhook_receiver), clock=clock)
    alert_id = await trip(slack)
    clock.advance(300)
    other = connect(slack.app.ns.settings.db)
    try:
        await slack.app.ns.extras["alerts"].tick()  # the webhook step's row is written...
        first = asyncio.create_task(send(slack))  # ...claimed and sent (a claim is a write)
        await asyncio.wait_for(webhook_receiver.arrived.wait(), 5)
        # ...then the database refuses every write (taken in a thread: the app's writer may
        # hold the lock for a batch the event loop must finish first), and the answer comes
        await asyncio.to_thread(begin_immediate, other)
        webhook_receiver.hold.set()
        with pytest.raises(StorageUnavailable):
            await first
        for _ in range(3):
            with pytest.raises(StorageUnavailable):
                await send(slack)
            clock.advance(60)
        await asyncio.sleep(1.5)  # the sender's own loop runs meanwhile too
        assert webhook_receiver.events() == ["trigger"]  # answered 200: not sent again
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()
    await send(slack)
    assert webhook_receiver.events() == ["trigger"]
    [row] = await deliveries(slack)
    assert (row["state"], row["attempts"]) == ("delivered", 1)
    assert alert_id


async def test_the_thread_message_and_story_say_how_the_page_went(slack_http, webhook_receiver):
    clock = ManualClock()
    webhook_receiver.script = [503]
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    alert_id = await trip(slack)
    await send(slack)
    retrying = "⚠️ Webhook pager did not take the page (delivery 1: HTTP 503: nope); trying"
    await slack.fake.wait_for(lambda: any(retrying in t for t in slack.fake.texts()))
    assert "until 01:00" in next(t for t in slack.fake.texts() if retrying in t)
    assert "webhook pager 00:00 (⚠️ retrying, last: HTTP 503)" in await message(slack, alert_id)
    story = (await slack.command(f"alert {alert_id}"))["text"]
    assert "📟 paged webhook pager (step 2 of 2) — ⚠️ retrying, last: HTTP 503" in story, story

    clock.advance(10)
    await send(slack)
    took = "✅ Webhook pager took the page at try 2 (delivery 1)."
    await slack.fake.wait_for(lambda: any(took in t for t in slack.fake.texts()))
    assert "webhook pager 00:00 (delivered)" in await message(slack, alert_id)
    story = (await slack.command(f"alert {alert_id}"))["text"]
    assert "📟 paged webhook pager (step 2 of 2) — delivered" in story, story
    assert sum(retrying in t for t in slack.fake.texts()) == 1  # said once


async def test_a_failed_page_says_so_in_the_story(slack_http, webhook_receiver):
    clock = ManualClock()
    webhook_receiver.script = [404]
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    alert_id = await trip(slack)
    await send(slack)
    assert "webhook pager 00:00 (⚠️ failed: HTTP 404)" in await message(slack, alert_id)
    story = (await slack.command(f"alert {alert_id}"))["text"]
    assert "📟 paged webhook pager (step 2 of 2) — ⚠️ failed: HTTP 404" in story, story
    # refused at its only try, it opened nothing there: its ack sends no resolve (recheck23 L1)
    await slack.command(f"ack {alert_id}", user="U0ONCALL")
    clock.advance(60)
    await send(slack)
    assert webhook_receiver.events() == ["trigger"]


async def test_a_withdrawn_page_s_delivery_id_is_never_given_again(slack_http, webhook_receiver):
    """recheck23 H1: a withdrawn trigger's row was deleted, so the next alert's trigger got
    its delivery id, and a receiver dropping repeats by X-Nightshift-Delivery (as the
    README says to) dropped a real page."""
    clock = ManualClock()
    webhook_receiver.script = [429, 200]  # refused, so withdrawn (a 5xx: resolved)
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    first = await trip(slack)
    await send(slack)
    await slack.command(f"ack {first}", user="U0ONCALL")  # withdrawn after its refused try
    await slack.command(f"resolve {first}", user="U0ONCALL")
    await spend(slack.app, "acme/bob/other", micros=2_000_000, key="k2")
    await slack.app.ns.extras["alerts"].tick()
    await send(slack)
    ids = [r.headers["X-Nightshift-Delivery"] for r in webhook_receiver.requests]
    assert len(ids) == 2 and len(set(ids)) == 2, ids
