"""A P0's channel post when its chain pages a webhook first (H1 session 25): it mentions
nobody (no person is paged) and says the webhook was paged; the person of a later step is
mentioned once that step pages them.

The whole app in Slack HTTP mode against the fake Slack Web API, a real webhook receiver
on 127.0.0.1, the outbox delivering, time on a ManualClock.
"""

from __future__ import annotations

import json
from typing import Any

from guards.clock import ManualClock
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.scenario.test_slack_commands import spend
from tests.scenario.test_webhooks import ALERTS, BOT, _secret, policy, send, webhook_receiver

__all__ = ["_secret", "webhook_receiver"]


def webhook_first(receiver: WebhookReceiver, *first: dict[str, str]) -> dict[str, Any]:
    """The chain: ``first`` steps, then the webhook at once, the rotation after 5m, then
    the channel."""
    p = policy(receiver)
    p["oncall"]["escalation"] = [
        *first,
        {"notify": "webhook:pager", "after": "0m"},
        {"notify": "rotation:primary", "after": "5m"},
        {"notify": "channel", "after": "15m"},
    ]
    return p


async def p0(slack: Any) -> str:
    """Trip a P0 and run its chain; the text of its channel post."""
    await spend(slack.app, BOT, micros=2_000_000, key="k1")
    await slack.app.ns.extras["alerts"].tick()
    await slack.fake.wait_for(lambda: post_calls(slack))
    return str(post_calls(slack)[0].args["text"])


def post_calls(slack: Any) -> list[Any]:
    return [c for c in slack.fake.posts(ALERTS) if not c.args.get("thread_ts")]


def updates(slack: Any) -> list[str]:
    """The texts the alerts channel's messages were updated to."""
    calls = slack.fake.calls_of("chat.update", ok=True)
    return [str(c.args["text"]) for c in calls if c.args.get("channel") == ALERTS]


async def test_a_p0_paging_a_webhook_first_mentions_nobody_and_says_so(
    slack_http, webhook_receiver
):
    clock = ManualClock()
    slack = await slack_http(webhook_first(webhook_receiver), clock=clock)
    text = await p0(slack)
    assert text.startswith("📟 Paged via webhook pager: 🔴 P0"), text
    assert "<@" not in text, text  # U0ONCALL is not paged yet: not mentioned
    section = json.dumps(post_calls(slack)[0].args["blocks"], ensure_ascii=False)
    assert "📟 Paged via webhook pager: `" in section and "<@U0ONCALL>" not in section, section
    await send(slack)
    assert webhook_receiver.events() == ["trigger"]
    assert slack.fake.posts("U0ONCALL") == []

    clock.advance(300)  # the rotation's step: now the person is paged, and mentioned
    await slack.app.ns.extras["alerts"].tick()
    await slack.fake.wait_for(lambda: slack.fake.posts("U0ONCALL"))
    await slack.fake.wait_for(
        lambda: any(u.startswith("<@U0ONCALL> 🔴 P0") for u in updates(slack))
    )


async def test_a_step_passed_over_before_the_webhook_leaves_the_webhook_first(
    slack_http, webhook_receiver
):
    off = {"notify": "rotation:nights", "after": "0m"}
    p = webhook_first(webhook_receiver, off)
    # 00:00 UTC: a rotation on call 08:00-20:00 is off hours, passed over at once
    p["oncall"]["rotations"].append(
        {"name": "nights", "users": ["U0NIGHTS"], "hours": "08:00-20:00"}
    )
    slack = await slack_http(p, clock=ManualClock())
    text = await p0(slack)
    assert text.startswith("📟 Paged via webhook pager: 🔴 P0"), text
    assert "<@" not in text, text


async def test_a_person_first_is_still_mentioned(slack_http, webhook_receiver):
    slack = await slack_http(policy(webhook_receiver), clock=ManualClock())
    text = await p0(slack)
    assert text.startswith("<@U0ONCALL> 🔴 P0"), text
