"""A page that never reached its receiver gets no resolve (closing25, recheck25c L2).

A receiver opens an incident only for a trigger it took. One refused at every try (a
4xx), one that never connected, one held back by its unreadable ``secret_file``, one
whose webhook a reload took out before it went: none opened anything, so the alert's end
sends no ``resolve`` for it (nor retries one for an hour). One that may have got there (a
try went out and got no answer, or a 5xx: a gateway's 502 or 504 passed it on) still gets
its resolve, whatever its later tries got (review26 R1 M3: a 5xx counted as never
reached, and the incident a gateway passed on stayed open, paging).

The whole app in Slack HTTP mode, a real receiver on 127.0.0.1, a real SQLite file, time
on a ManualClock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.webhooks_rows import STOPPED, WITHDRAWN
from guards.clock import ManualClock
from tests.fakes.ports import free_port
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_webhooks import SECRET, SECRET_ENV, deliveries, policy, send
from tests.scenario.test_webhooks_failures import message, trip

__all__ = ["webhook_receiver"]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


async def ended(slack: Any, alert_id: int, clock: ManualClock) -> list[dict[str, Any]]:
    """Acknowledge the alert, let the sender run for an hour; the rows then."""
    await slack.command(f"ack {alert_id}", user="U0ONCALL")
    for _ in range(4):
        await send(slack)
        clock.advance(900)
    return await deliveries(slack)


async def test_a_page_refused_at_every_try_gets_no_resolve(
    slack_http, webhook_receiver: WebhookReceiver
):
    clock = ManualClock()
    webhook_receiver.script = [429, 404]  # tried again, then refused for good
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    alert_id = await trip(slack)
    await send(slack)
    clock.advance(10)
    await send(slack)
    [row] = await deliveries(slack)
    assert (row["state"], row["attempts"], row["last_status"]) == ("failed", 2, 404)
    rows = await ended(slack, alert_id, clock)
    assert webhook_receiver.events() == ["trigger", "trigger"]  # and no resolve
    assert [r["event"] for r in rows] == ["trigger"]


async def test_a_page_that_never_connected_is_withdrawn_with_no_resolve(slack_http):
    clock = ManualClock()
    nobody = WebhookReceiver(port=free_port())  # nothing listens there
    slack = await slack_http(policy(nobody, webhook_after="0m"), clock=clock)
    alert_id = await trip(slack)
    await send(slack)
    [row] = await deliveries(slack)
    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 1, None)
    assert row["last_error"].startswith("ConnectError"), row["last_error"]
    [row] = await ended(slack, alert_id, clock)
    assert (row["state"], row["last_error"]) == ("failed", WITHDRAWN)
    assert "webhook pager 00:00 (withdrawn unsent)" in await message(slack, alert_id)


async def test_a_page_held_back_by_its_secret_file_gets_no_resolve_retried_for_an_hour(
    slack_http, webhook_receiver: WebhookReceiver, tmp_path: Path
):
    """recheck25c L2: the resolve was written, held on the empty file and retried for an
    hour, for an incident never opened."""
    secret = tmp_path / "pager.secret"
    secret.write_text("")  # being rewritten when the process started (taken, with a WARNING)
    p = policy(webhook_receiver, webhook_after="0m")
    p["webhooks"]["pager"] = {"url": webhook_receiver.url, "secret_file": str(secret)}
    clock = ManualClock()
    slack = await slack_http(p, clock=clock)
    alert_id = await trip(slack)
    await send(slack)
    [row] = await deliveries(slack)
    assert row["state"] == "pending" and row["last_error"].startswith("not sent: ")
    [row] = await ended(slack, alert_id, clock)
    assert (row["state"], row["last_error"]) == ("failed", WITHDRAWN)
    assert webhook_receiver.requests == []
    notes = [t for t in slack.fake.texts() if "resolve to webhook pager" in t]
    assert notes == []


async def test_a_page_of_a_webhook_taken_out_before_it_went_gets_no_resolve(
    slack_http, webhook_receiver: WebhookReceiver, tmp_path: Path
):
    clock = ManualClock()
    db = tmp_path / "gone.db"
    webhook_receiver.script = [429]  # refused; taken out at the restart before its next try
    first = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock, db=db)
    alert_id = await trip(first)
    await send(first)
    await first.app.ns.stop()
    without = policy(webhook_receiver)
    del without["webhooks"]
    without["oncall"]["escalation"] = without["oncall"]["escalation"][:1]
    clock.advance(10)
    second = await slack_http(without, clock=clock, db=db)
    await send(second)
    [row] = await deliveries(second)
    assert (row["state"], row["attempts"]) == ("failed", 1)  # not sent: no try counted
    rows = await ended(second, alert_id, clock)
    assert webhook_receiver.events() == ["trigger"]  # the refused one; no resolve
    assert [r["event"] for r in rows] == ["trigger"]


async def test_a_page_that_may_have_got_there_once_still_gets_its_resolve(
    slack_http, webhook_receiver: WebhookReceiver
):
    """Its first try timed out (it may have opened the incident), its second was refused:
    the receiver may hold an incident, so it is closed."""
    clock = ManualClock()
    p = policy(webhook_receiver, webhook_after="0m")
    p["webhooks"]["pager"]["timeout"] = "1s"
    webhook_receiver.delay = 2
    slack = await slack_http(p, clock=clock)
    alert_id = await trip(slack)
    await send(slack)
    webhook_receiver.delay = 0
    webhook_receiver.script = [503]
    clock.advance(10)
    await send(slack)
    [row] = await deliveries(slack)
    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 2, 503)
    trigger, resolve = await ended(slack, alert_id, clock)
    assert webhook_receiver.events() == ["trigger", "trigger", "resolve"]
    assert (trigger["state"], resolve["state"]) == ("failed", "delivered")
    assert "webhook pager 00:00 (not tried again)" in await message(slack, alert_id)


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_page_a_5xx_answered_gets_its_resolve(
    slack_http, webhook_receiver: WebhookReceiver, status: int
):
    """A gateway's 504: it passed the page on and its upstream did not answer in time; it
    may have opened the incident, which only a resolve closes."""
    clock = ManualClock()
    webhook_receiver.script = [status]
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    alert_id = await trip(slack)
    await send(slack)
    [row] = await deliveries(slack)
    assert (row["state"], row["last_status"], row["reached"]) == ("pending", status, 1)
    trigger, resolve = await ended(slack, alert_id, clock)
    assert webhook_receiver.events() == ["trigger", "resolve"]
    assert (trigger["state"], trigger["last_error"]) == ("failed", STOPPED)
    assert (resolve["state"], resolve["resolves"]) == ("delivered", trigger["id"])
    assert "webhook pager 00:00 (not tried again)" in await message(slack, alert_id)


async def test_a_page_a_gateway_timed_out_until_given_up_gets_its_resolve(
    slack_http, webhook_receiver: WebhookReceiver
):
    """504 at every try for an hour, then acknowledged: no resolve went (review26 R1 M3)."""
    clock = ManualClock()
    webhook_receiver.script = [504] * 100
    slack = await slack_http(policy(webhook_receiver, webhook_after="0m"), clock=clock)
    alert_id = await trip(slack)
    for _ in range(20):
        await send(slack)
        clock.advance(300)
    [row] = await deliveries(slack)
    assert (row["state"], row["last_status"]) == ("failed", 504)
    assert "gave up after" in row["last_error"], row["last_error"]
    tries = len(webhook_receiver.requests)
    webhook_receiver.script = []  # the resolve is taken
    trigger, resolve = await ended(slack, alert_id, clock)
    assert webhook_receiver.events() == ["trigger"] * tries + ["resolve"]
    assert webhook_receiver.requests[-1].json["dedup_key"] == f"nightshift-alert-{alert_id}"
    assert resolve["resolves"] == trigger["id"]
