"""A failed storm page is said where each alert of the storm is seen (closing25, review25
M2): in the thread of each alert posted on its own, and once in the thread of each Slack
storm summary that carried the others' posts. It was said only in the thread of the
alert that began the storm. The whole app in Slack HTTP mode, a real receiver on
127.0.0.1, a real SQLite file, time on a ManualClock."""

from __future__ import annotations

import json
from typing import Any

from guards.clock import ManualClock
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_webhook_storms import _secret, agents, storm_policy, trip
from tests.scenario.test_webhooks import deliveries, send
from tests.scenario.test_webhooks_failures import until

__all__ = ["_secret", "webhook_receiver"]


async def drained(slack: Any) -> bool:
    [(waiting,)] = await slack.app.store.fetch(
        "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"
    )
    return int(waiting) == 0


async def where_seen(slack: Any, storm: int) -> set[str]:
    """The post each alert of ``storm`` is seen in: its own, or its storm summary's."""
    rows = await slack.app.store.fetch(
        "SELECT DISTINCT a.id, a.posted_at, a.folded_into FROM escalations e"
        " JOIN alerts a ON a.id = e.alert_id WHERE e.folded_into = ?",
        (f"hook:{storm}",),
    )
    return {f"alert:{r[0]}:post" if r[1] is not None else str(r[2]) for r in rows}


async def test_a_failed_storm_page_is_said_in_each_of_its_alerts_threads(
    slack_http, webhook_receiver: WebhookReceiver
):
    clock = ManualClock()
    slack = await slack_http(storm_policy(webhook_receiver), clock=clock)
    await trip(slack, agents(0, 3))  # three pages of their own: the webhook's limit
    await send(slack)
    assert await until(lambda: drained(slack), within=10)  # the channel's lane is empty
    webhook_receiver.script = [400]  # the storm's trigger is refused
    await trip(slack, agents(3, 30))  # the rest fold, at the webhook and in the channel
    await send(slack)
    rows = await deliveries(slack)
    [failed] = [r for r in rows if r["storm_id"] is not None]
    assert failed["state"] == "failed"
    seen = await where_seen(slack, 1)
    summaries = {s for s in seen if s.startswith("fold:posts:")}
    assert summaries and len(seen - summaries) >= 2, seen  # (both kinds are checked)
    said = f"⚠️ The page to webhook pager (delivery {failed['id']}) failed: HTTP 400"
    notes = await slack.app.store.fetch(
        "SELECT ref, args FROM outbox WHERE ref LIKE ?", (f"webhook:{failed['id']}:failed%",)
    )
    assert all(said in json.loads(args)["text"] for _, args in notes)
    parents = [json.loads(args)["thread_ts"].removeprefix("$ref:")[:-3] for _, args in notes]
    assert sorted(parents) == sorted(seen)  # each once
    await slack.fake.wait_for(
        lambda: len([t for t in slack.fake.texts() if said in t]) == len(seen)
    )
