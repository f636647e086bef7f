"""Webhook storms after review25 (H2): the shipped default folds a burst, not two pages;
an Escalate now of a storm's first alert waits behind none of the storm's rows; a storm
page that failed shows as failed on every alert it carried; ending a storm over hundreds
of alerts checks it once. The whole app in Slack HTTP mode, a real receiver on
127.0.0.1, time on a ManualClock (2026-01-01 00:00 UTC)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot import webhook_storms
from guards.clock import ManualClock
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_webhook_storms import _secret, agents, storm_events, trip
from tests.scenario.test_webhooks import deliveries, policy, send

__all__ = ["_secret", "webhook_receiver"]


def own_keys(receiver: WebhookReceiver) -> list[str]:
    storm = storm_events(receiver)
    return [r.json["dedup_key"] for r in receiver.requests if r not in storm]


def shipped(receiver: WebhookReceiver) -> dict[str, Any]:
    """The webhook at once after the rotation, every fold setting as shipped."""
    return policy(receiver, webhook_after="0m")


@pytest.mark.parametrize("how_many", [2, 5])
async def test_unrelated_alerts_seconds_apart_are_each_their_own_incident_by_default(
    slack_http, webhook_receiver: WebhookReceiver, how_many: int
):
    clock = ManualClock()
    slack = await slack_http(shipped(webhook_receiver), clock=clock)
    scopes = [f"acme/team-{i}/bot" for i in range(how_many)]
    for scope in scopes:
        await trip(slack, [scope])
        await send(slack)
        clock.advance(3)
    assert storm_events(webhook_receiver) == []  # (it was "Alert storm: 1 alert" at two)
    keys = own_keys(webhook_receiver)
    assert keys == [f"nightshift-alert-{i}" for i in range(1, how_many + 1)]
    assert [r.json["scope"] for r in webhook_receiver.requests] == scopes


async def test_a_real_storm_folds_by_default_and_its_text_names_its_scope(
    slack_http, webhook_receiver: WebhookReceiver
):
    clock = ManualClock()
    slack = await slack_http(shipped(webhook_receiver), clock=clock)
    for scope in agents(0, 30):  # 30 in a minute, one each 2 s
        await trip(slack, [scope])
        await send(slack)
        clock.advance(2)
    assert len(own_keys(webhook_receiver)) == 10  # webhooks.<name>.fold_after: 10
    first, *more = storm_events(webhook_receiver)
    assert {r.json["dedup_key"] for r in [first, *more]} == {"nightshift-storm-1"}
    body = first.json
    assert body["storm"]["alerts"] == 1  # the 11th page began it, alone at its first try
    assert body["title"] == "Alert storm: 1 alert on acme/team/bot-10"
    assert body["text"].startswith("P0 alert storm on acme/team/bot-10: 1 alert paged since")
    assert "the next pages in this storm are added to this incident" in body["text"]
    clock.advance(60)
    await send(slack)
    last = storm_events(webhook_receiver)[-1].json
    assert last["storm"]["alerts"] == 20
    assert last["text"].startswith("P0 alert storm on 20 scopes under acme/team: 20 alerts")
    folded = await slack.app.store.fetch(
        "SELECT COUNT(*) FROM escalations WHERE folded_into = 'hook:1'"
    )
    assert folded[0][0] == 20


async def test_a_trickle_after_a_storm_pages_on_its_own_again(
    slack_http, webhook_receiver: WebhookReceiver
):
    clock = ManualClock()
    p = shipped(webhook_receiver)
    p["webhooks"]["pager"]["fold_after"] = 2
    slack = await slack_http(p, clock=clock)
    await trip(slack, agents(0, 4))  # two of their own, two in storm 1
    await send(slack)
    assert len(own_keys(webhook_receiver)) == 2
    for scope in agents(4, 7):  # then one every 70 s: fewer than 2 a minute, each its own
        clock.advance(70)  # (storm 1 is still open: nobody acknowledged its alerts)
        await trip(slack, [scope])
        await send(slack)
    assert own_keys(webhook_receiver)[2:] == [f"nightshift-alert-{i}" for i in (5, 6, 7)]


async def test_escalate_now_of_a_storms_first_alert_goes_at_once(
    slack_http, webhook_receiver: WebhookReceiver
):
    clock = ManualClock()
    p = shipped(webhook_receiver)
    p["webhooks"]["pager"]["fold_after"] = 1
    p["oncall"]["escalation"].append({"notify": "webhook:pager", "after": "10m"})
    slack = await slack_http(p, clock=clock)
    await trip(slack, agents(0, 2))  # 1: its own; 2: seeds storm 1, its trigger goes
    await send(slack)
    clock.advance(2)
    await trip(slack, agents(2, 3))  # 3 joins: storm 1's update waits a minute
    await send(slack)
    assert len(webhook_receiver.requests) == 2
    said = await slack.command("escalate 2", user="U0ONCALL")
    assert "webhook pager" in said["text"], said["text"]
    await send(slack)  # (it waited behind the storm's update, a minute on)
    escalated = [r.json for r in webhook_receiver.requests if r.json["alert_id"] == 2]
    assert [(b["dedup_key"], b["step"]) for b in escalated] == [
        ("nightshift-alert-2", "step 3 of 3")
    ]
    waiting = [r for r in await deliveries(slack) if r["state"] == "pending"]
    assert [(r["storm_id"], r["alert_id"]) for r in waiting] == [(1, 2)]  # the update, still


async def test_a_failed_storm_page_shows_as_failed_on_every_alert_it_carried(
    slack_http, webhook_receiver: WebhookReceiver
):
    clock = ManualClock()
    p = shipped(webhook_receiver)
    p["webhooks"]["pager"]["fold_after"] = 1
    slack = await slack_http(p, clock=clock)
    await trip(slack, agents(0, 1))
    await send(slack)
    webhook_receiver.script = [400]  # the storm's trigger is refused
    await trip(slack, agents(1, 3))  # 2 seeds storm 1, 3 joins it (one trigger for both)
    await send(slack)
    assert [r["state"] for r in await deliveries(slack)] == ["delivered", "failed"]
    story = (await slack.command("alert 3"))["text"]
    [line] = [line for line in story.splitlines() if "webhook pager" in line]
    assert line.endswith("(step 2 of 2) — in alert storm 1: ⚠️ failed: HTTP 400"), story
    clock.advance(31)  # the message's next update (alerts.update_interval_seconds)
    await slack.app.ns.extras["alerts"].tick()

    def shown(alert_id: int) -> bool:
        return any(
            f'"#{alert_id}' in (text := json.dumps(c.args, ensure_ascii=False))
            and "webhook pager 00:00 (in alert storm 1: ⚠️ failed: HTTP 400)" in text
            # (redrawn at once when the failure is recorded: a post still queued goes
            # out showing it, recheck28 Ka L3)
            for c in slack.fake.calls_of("chat.update", ok=True)
            + slack.fake.calls_of("chat.postMessage", ok=True)
        )

    await slack.fake.wait_for(lambda: shown(2) and shown(3))


async def test_silencing_a_storm_of_hundreds_checks_it_once(
    slack_http, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
):
    clock = ManualClock()
    p = shipped(webhook_receiver)
    p["webhooks"]["pager"]["fold_after"] = 1
    slack = await slack_http(p, clock=clock)
    await trip(slack, agents(0, 1))
    await trip(slack, [f"acme/team/bot-{i:03d}" for i in range(300)])
    await send(slack)
    [(folded,)] = await slack.app.store.fetch(
        "SELECT COUNT(*) FROM escalations WHERE folded_into = 'hook:1'"
    )
    assert folded == 300
    loads: list[int] = []  # the storm's alerts loaded (each time all 300)
    checks: list[int] = []  # asked whether the storm still pages
    members, check = webhook_storms.storm_alerts, webhook_storms._end_if_quiet

    def loaded(tx: Any, storm: int) -> Any:
        loads.append(storm)
        return members(tx, storm)

    def checked(tx: Any, storm: int, now: float) -> int | None:
        checks.append(storm)
        return check(tx, storm, now)

    monkeypatch.setattr(webhook_storms, "storm_alerts", loaded)
    monkeypatch.setattr(webhook_storms, "_end_if_quiet", checked)
    said = await slack.command("silence acme/team 1h", user="U0ONCALL")
    assert "ilenced" in said["text"], said["text"]
    # once each, at the end of the silence's write (it was per alert silenced: O(n²))
    assert (checks, loads) == ([1], [1])
    await send(slack)
    resolve = storm_events(webhook_receiver)[-1].json
    assert (resolve["event"], resolve["storm"]["handled"]) == ("resolve", {"silenced": 300})
