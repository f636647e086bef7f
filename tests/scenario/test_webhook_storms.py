"""Webhook pages in an alert storm (bot.webhook_storms): the first pages go on their own,
the rest are one incident at the receiver, resolved once none of its alerts pages. The
whole app in Slack HTTP mode, a real receiver on 127.0.0.1, time on a ManualClock
(2026-01-01 00:00 UTC); agents trip on spend at once (a P0 each)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from guards.clock import ManualClock
from guards.events import BreakerOpened
from tests.fakes.webhook_receiver import Received, WebhookReceiver, webhook_receiver
from tests.scenario.test_alerts import emit
from tests.scenario.test_webhooks import SECRET, SECRET_ENV, deliveries, policy, send

__all__ = ["webhook_receiver"]

FOLD_AFTER = 3


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


def storm_policy(receiver: WebhookReceiver) -> dict[str, Any]:
    p = policy(receiver, webhook_after="0m")
    p["alerts"] = {"repeat_escalation": 0, "fold_after": FOLD_AFTER, "fold_pages_after": 0}
    p["webhooks"]["pager"]["fold_after"] = FOLD_AFTER  # (a webhook's own: 10 by default)
    return p


async def trip(slack: Any, scopes: list[str]) -> None:
    """Every agent of ``scopes`` trips on spend now; the chains take their steps."""
    app = slack.app
    now = app.clock.now()
    await emit(app, *(BreakerOpened(at=now, scope=s, trip="spend", reason="r") for s in scopes))
    alerts = app.ns.extras["alerts"]
    await alerts.process()
    await alerts.tick()


def agents(first: int, last: int) -> list[str]:
    return [f"acme/team/bot-{i:02d}" for i in range(first, last)]


def storm_events(receiver: WebhookReceiver) -> list[Received]:
    return [r for r in receiver.requests if r.json["dedup_key"].startswith("nightshift-storm-")]


def signed(received: Received) -> bool:
    timestamp = received.headers["X-Nightshift-Timestamp"]
    base = b"v1:" + timestamp.encode() + b":" + received.body
    expected = "v1=" + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.headers["X-Nightshift-Signature"])


async def test_a_storm_pages_the_webhook_three_times_then_once_and_resolves_it_once(
    slack_http, webhook_receiver: WebhookReceiver
):
    clock = ManualClock()
    slack = await slack_http(storm_policy(webhook_receiver), clock=clock)
    await trip(slack, agents(0, 30))
    await send(slack)
    await send(slack)
    own = [r for r in webhook_receiver.requests if r not in storm_events(webhook_receiver)]
    assert [r.json["event"] for r in own] == ["trigger"] * FOLD_AFTER  # the first, as before
    [storm] = storm_events(webhook_receiver)  # then one incident for the other 27
    body = storm.json
    assert (body["event"], body["dedup_key"], body["state"]) == (
        "trigger",
        "nightshift-storm-1",
        "open",
    )
    assert (body["alert_id"], body["kind"], body["tier"], body["scope"]) == (
        None,
        "alert_storm",
        "P0",
        "acme/team",
    )
    assert body["title"] == "Alert storm: 27 alerts on 27 scopes under acme/team"
    assert body["text"].startswith(
        "P0 alert storm on 27 scopes under acme/team: 27 alerts paged since 00:00 UTC,"
        " 27 unacknowledged: "
    )
    assert body["storm"]["alerts"] == 27 and body["storm"]["open"] == 27
    assert body["storm"]["kinds"] == {"breaker_opened_spend": 27}
    assert body["storm"]["update"] == 0 and len(body["storm"]["alert_ids"]) == 27
    assert signed(storm)
    folded = await slack.app.store.fetch(
        "SELECT COUNT(*) FROM escalations WHERE folded_into = 'hook:1'"
    )
    assert folded[0][0] == 27  # every page is kept, as carried by the storm's incident

    # 30 s on, five more: they join it; one more trigger, a minute after the first
    clock.advance(30)
    await trip(slack, agents(30, 35))
    await send(slack)
    assert len(storm_events(webhook_receiver)) == 1
    clock.advance(30)
    await send(slack)
    first, more = storm_events(webhook_receiver)
    assert more.json["dedup_key"] == first.json["dedup_key"]  # the same incident
    assert (more.json["storm"]["alerts"], more.json["storm"]["update"]) == (32, 1)
    assert len(webhook_receiver.requests) == FOLD_AFTER + 2

    # one folded alert acknowledged: the storm still pages for the others
    [(one,)] = await slack.app.store.fetch(
        "SELECT alert_id FROM escalations WHERE folded_into = 'hook:1' ORDER BY id LIMIT 1"
    )
    await slack.command(f"ack {one}", user="U0ONCALL")
    await send(slack)
    assert [r.json["event"] for r in storm_events(webhook_receiver)] == ["trigger", "trigger"]
    # the rest silenced at once: the storm resolves, once, beside the three of their own
    said = await slack.command("silence acme/team 1h", user="U0ONCALL")
    assert "ilenced" in said["text"], said["text"]
    await send(slack)
    await send(slack)
    events = storm_events(webhook_receiver)
    assert [r.json["event"] for r in events] == ["trigger", "trigger", "resolve"]
    resolve = events[-1].json
    assert (resolve["dedup_key"], resolve["state"]) == ("nightshift-storm-1", "handled")
    # (the one acknowledged is under the silence too: it counts as silenced, as it shows)
    assert resolve["storm"]["handled"] == {"silenced": 32}
    assert resolve["storm"]["open"] == 0
    assert signed(events[-1])
    own_events = [r.json["event"] for r in webhook_receiver.requests if r not in events]
    assert own_events == ["trigger"] * FOLD_AFTER + ["resolve"] * FOLD_AFTER


async def test_a_storm_over_before_its_page_got_through_resolves_nothing(
    slack_http, webhook_receiver: WebhookReceiver
):
    # every first try refused (a 429: a 5xx may have got there, so it would be resolved)
    webhook_receiver.script = [429] * (FOLD_AFTER + 1)
    slack = await slack_http(storm_policy(webhook_receiver), clock=ManualClock())
    await trip(slack, agents(0, 10))
    await send(slack)
    assert len(storm_events(webhook_receiver)) == 1  # tried, refused: tried again later
    said = await slack.command("silence acme/team 1h", user="U0ONCALL")
    assert "ilenced" in said["text"], said["text"]
    await send(slack)
    # withdrawn unsent (it opened nothing), so no resolve, as an alert's own trigger
    assert [r.json["event"] for r in webhook_receiver.requests] == ["trigger"] * (FOLD_AFTER + 1)
    rows = await deliveries(slack)
    assert {r["state"] for r in rows} == {"failed"}
    assert all(r["last_error"].startswith("withdrawn unsent") for r in rows)
    [(ended,)] = await slack.app.store.fetch("SELECT ended_at FROM webhook_storms")
    assert ended is not None


async def test_escalate_now_pages_the_webhook_on_its_own_in_a_storm(
    slack_http, webhook_receiver: WebhookReceiver
):
    p = storm_policy(webhook_receiver)
    p["oncall"]["escalation"][1]["after"] = "5m"
    slack = await slack_http(p, clock=ManualClock())
    await trip(slack, agents(0, 10))
    for alert_id in range(1, 10):
        await slack.command(f"escalate {alert_id}", user="U0ONCALL")
    await send(slack)
    assert storm_events(webhook_receiver) == []  # a person asked for each: each is sent
    alerts = {r.json["alert_id"] for r in webhook_receiver.requests}
    assert alerts == set(range(1, 10)), webhook_receiver.events()


async def test_pages_a_minute_apart_are_no_storm(slack_http, webhook_receiver: WebhookReceiver):
    clock = ManualClock()
    slack = await slack_http(storm_policy(webhook_receiver), clock=clock)
    for i in range(6):
        await trip(slack, agents(i, i + 1))
        await send(slack)
        clock.advance(25)  # three in a minute at most
    assert storm_events(webhook_receiver) == []
    assert {r.json["alert_id"] for r in webhook_receiver.requests} == set(range(1, 7))
