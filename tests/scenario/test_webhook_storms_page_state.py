"""What a storm's posts say of its page never goes back on a known failure (review27 R1 M1).

A page joining a storm while its trigger is out writes one more trigger, due a minute on
and untried. When the first then failed for good, the posts took the storm's latest
trigger (the untried one) as its page: the channel's summary was edited back from "⚠️
The page via webhook pager failed (HTTP 400); <@U0ONCALL> is next:" to "📟 Paging via
webhook pager…" naming nobody, while every thread said it failed. Now a known failure
stands until a later trigger is delivered ("📟 Paged via webhook pager:").

The whole app in Slack HTTP mode, a real receiver on 127.0.0.1, a real SQLite file, time
on a ManualClock; the order is driven (a held answer, a join, the answer)."""

from __future__ import annotations

import asyncio
from typing import Any

from guards.clock import ManualClock
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_webhook_storms import _secret, agents, storm_events, trip
from tests.scenario.test_webhook_storms_failed_note import (
    drained,
    page_line,
    shown,
    webhook_first,
)
from tests.scenario.test_webhooks import ALERTS, deliveries, send
from tests.scenario.test_webhooks_failures import message, until

__all__ = ["_secret", "webhook_receiver"]

FAILED = "⚠️ The page via webhook pager failed (HTTP 400); <@U0ONCALL> is next: "
PAGED = "📟 Paged via webhook pager: "


async def storm_triggers(slack: Any) -> list[dict[str, Any]]:
    return [r for r in await deliveries(slack) if r["storm_id"] == 1 and r["event"] == "trigger"]


async def posted_alone(slack: Any) -> list[int]:
    """The storm's alerts posted on their own (the rest are in the summary)."""
    rows = await slack.app.store.fetch(
        "SELECT DISTINCT a.id FROM escalations e JOIN alerts a ON a.id = e.alert_id"
        " WHERE e.folded_into = 'hook:1' AND a.posted_at IS NOT NULL ORDER BY a.id"
    )
    return [int(r[0]) for r in rows]


async def test_a_storm_page_that_failed_stays_failed_while_its_next_trigger_waits(
    slack_http, webhook_receiver: WebhookReceiver
):
    clock = ManualClock()
    webhook_receiver.script = [200, 200, 200, 400, 200]  # own ×3, the storm's, its next
    slack = await slack_http(webhook_first(webhook_receiver), clock=clock)
    await trip(slack, agents(0, 3))  # three pages of their own: the webhook's limit
    await send(slack)
    assert await until(lambda: drained(slack), within=10)
    webhook_receiver.hold = asyncio.Event()
    await trip(slack, agents(3, 30))  # storm 1: its trigger goes out, held
    assert await until(lambda: drained(slack), within=20)  # the summary is out
    assert len(storm_events(webhook_receiver)) == 1
    [ts] = [
        str(c.response["ts"]) for c in slack.fake.posts(ALERTS) if "Alert storm" in c.args["text"]
    ]
    await trip(slack, agents(30, 32))  # two join meanwhile: one more trigger, a minute on
    first, follow_up = await storm_triggers(slack)
    assert (first["state"], first["attempts"]) == ("pending", 0)  # (out, held)
    assert (follow_up["state"], follow_up["attempts"]) == ("pending", 0)

    webhook_receiver.hold.set()  # the first is refused for good
    assert await until(lambda: _first_failed(slack), within=10), await storm_triggers(slack)
    assert await until(lambda: drained(slack), within=20)
    assert shown(slack, ts)["text"].startswith(FAILED), shown(slack, ts)["text"]
    assert page_line(shown(slack, ts)) == FAILED.removesuffix(" ")
    alone = await posted_alone(slack)
    assert alone, "no alert of the storm is posted on its own"
    for alert_id in alone:  # their own posts say so too
        drawn = await message(slack, alert_id)
        assert "The page via webhook pager failed (HTTP 400)" in drawn, drawn
        assert "Paging via" not in drawn, drawn

    clock.advance(61)  # the follow-up goes, and gets through
    await send(slack)
    assert [r["state"] for r in await storm_triggers(slack)] == ["failed", "delivered"]
    assert await until(lambda: drained(slack), within=20)
    assert shown(slack, ts)["text"].startswith(PAGED), shown(slack, ts)["text"]
    assert PAGED.strip() in await message(slack, alone[0])


async def _first_failed(slack: Any) -> bool:
    return bool((await storm_triggers(slack))[0]["state"] == "failed")
