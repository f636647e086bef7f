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
from tests.scenario.test_webhooks import (
    ALERTS,
    BOT,
    _secret,
    deliveries,
    policy,
    send,
    webhook_receiver,
)

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


async def redrawn(slack: Any, clock: ManualClock, start: str) -> str:
    """Let the trailing update go out (30 s on) and wait for one beginning with ``start``."""
    clock.advance(30)
    await slack.app.ns.extras["alerts"].tick()
    await slack.fake.wait_for(lambda: any(u.startswith(start) for u in updates(slack)))
    return next(u for u in updates(slack) if u.startswith(start))


def thread(slack: Any) -> list[str]:
    return [str(c.args["text"]) for c in slack.fake.posts(ALERTS) if c.args.get("thread_ts")]


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
    # posted before its trigger is sent: it says it is paging (review25 M1)
    assert text.startswith("📟 Paging via webhook pager… 🔴 P0"), text
    assert "<@" not in text, text  # U0ONCALL is not paged yet: not mentioned
    section = json.dumps(post_calls(slack)[0].args["blocks"], ensure_ascii=False)
    assert "📟 Paging via webhook pager… `" in section and "<@U0ONCALL>" not in section, section
    await send(slack)
    assert webhook_receiver.events() == ["trigger"]
    assert slack.fake.posts("U0ONCALL") == []
    await redrawn(slack, clock, "📟 Paged via webhook pager: 🔴 P0")  # delivered

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
    assert text.startswith("📟 Paging via webhook pager… 🔴 P0"), text
    assert "<@" not in text, text


async def test_a_person_first_is_still_mentioned(slack_http, webhook_receiver):
    slack = await slack_http(policy(webhook_receiver), clock=ManualClock())
    text = await p0(slack)
    assert text.startswith("<@U0ONCALL> 🔴 P0"), text


def then_the_rotation(receiver: WebhookReceiver, *first: dict[str, str]) -> dict[str, Any]:
    """The chain: ``first`` steps at once, then the rotation after 15m (the review's)."""
    p = policy(receiver)
    p["oncall"]["escalation"] = [*first, {"notify": "rotation:primary", "after": "15m"}]
    return p


async def test_a_failed_webhook_page_says_so_and_mentions_whom_the_chain_pages_next(
    slack_http, webhook_receiver
):
    """review25 M1: a receiver refusing the page for good (404) left the post saying
    "📟 Paged via webhook pager:" and mentioning nobody: nobody was reached for 15 minutes."""
    webhook_receiver.script = [404]
    clock = ManualClock()
    hook = {"notify": "webhook:pager", "after": "0m"}
    slack = await slack_http(then_the_rotation(webhook_receiver, hook), clock=clock)
    await p0(slack)
    await send(slack)
    assert [d["state"] for d in await deliveries(slack)] == ["failed"]
    # redrawn at once (no 30 s wait): the post names who is next, and says why
    failed = "⚠️ The page via webhook pager failed (HTTP 404); <@U0ONCALL> is next: 🔴 P0"
    await slack.fake.wait_for(lambda: any(u.startswith(failed) for u in updates(slack)))
    assert not any("Paged via" in u for u in updates(slack)), updates(slack)
    # a mention added by an edit notifies nobody: the thread mentions them, once
    told = "<@U0ONCALL> the page via webhook pager failed (HTTP 404), so nobody is paged yet"
    await slack.fake.wait_for(lambda: any(t.startswith(told) for t in thread(slack)))
    clock.advance(60)
    await slack.app.ns.extras["alerts"].tick()
    await slack.app.ns.extras["alerts"].tick()
    assert len([t for t in thread(slack) if t.startswith("<@U0ONCALL>")]) == 1, thread(slack)
    assert slack.fake.posts("U0ONCALL") == []  # not paged (DM'd) before its step
    clock.advance(15 * 60)  # its step pages them (the last: the chain ran out)
    await slack.app.ns.extras["alerts"].tick()
    await slack.fake.wait_for(lambda: slack.fake.posts("U0ONCALL"))
    await slack.fake.wait_for(lambda: "chain ran out" in updates(slack)[-1])
    # mentioned, not as if they had taken it (recheck25 L1; it read as a bare "🔴 P0")
    last = updates(slack)[-1]
    assert last.startswith("<@U0ONCALL> paged, unacknowledged: 🔴 P0"), last


async def test_a_failed_webhook_page_with_nothing_after_it_says_nobody_was_reached(
    slack_http, webhook_receiver
):
    webhook_receiver.script = [404]
    clock = ManualClock()
    p = policy(webhook_receiver)
    p["oncall"]["escalation"] = [{"notify": "webhook:pager", "after": "0m"}]
    slack = await slack_http(p, clock=clock)
    await p0(slack)
    await send(slack)
    # nobody to tell: redrawn with the next trailing update (the thread said it failed)
    await redrawn(slack, clock, "⚠️ The page via webhook pager failed (HTTP 404); nobody was")
    assert not any(t.startswith("<@") for t in thread(slack)), thread(slack)


async def test_a_failed_webhook_page_with_the_channel_next_names_the_channel(
    slack_http, webhook_receiver
):
    """Session 26: the post said "nobody was reached" while its "next:" line named the
    channel step 15 minutes on; it names what the chain notifies next, as that line does."""
    webhook_receiver.script = [404]
    clock = ManualClock()
    p = policy(webhook_receiver)
    p["oncall"]["escalation"] = [
        {"notify": "webhook:pager", "after": "0m"},
        {"notify": "channel", "after": "15m"},
    ]
    slack = await slack_http(p, clock=clock)
    await p0(slack)
    await send(slack)
    text = await redrawn(slack, clock, "⚠️ The page via webhook pager failed (HTTP 404); the")
    assert text.startswith("⚠️ The page via webhook pager failed (HTTP 404); the channel is next:")
    assert not any(t.startswith("<@") for t in thread(slack)), thread(slack)


async def test_a_webhook_page_being_tried_again_says_it_is_still_paging(
    slack_http, webhook_receiver
):
    webhook_receiver.script = [503]
    clock = ManualClock()
    hook = {"notify": "webhook:pager", "after": "0m"}
    slack = await slack_http(then_the_rotation(webhook_receiver, hook), clock=clock)
    await p0(slack)
    await send(slack)
    [row] = await deliveries(slack)
    assert row["state"] == "pending" and row["attempts"] == 1
    text = await redrawn(slack, clock, "📟 Paging via webhook pager… (retrying, last: HTTP 503)")
    assert "<@" not in text, text
    clock.advance(120)  # its next try gets through
    await send(slack)
    await redrawn(slack, clock, "📟 Paged via webhook pager: 🔴 P0")


async def test_a_channel_step_after_the_webhook_leaves_the_webhook_named(
    slack_http, webhook_receiver
):
    """review25 L1: once the channel step (5 minutes on) was the last taken, the post lost
    "📟 Paged via webhook pager:" though the webhook was still the only thing paged."""
    clock = ManualClock()
    steps = [{"notify": "webhook:pager", "after": "0m"}, {"notify": "channel", "after": "5m"}]
    slack = await slack_http(then_the_rotation(webhook_receiver, *steps), clock=clock)
    await p0(slack)
    await send(slack)
    await redrawn(slack, clock, "📟 Paged via webhook pager: 🔴 P0")
    clock.advance(300)  # the channel step
    await slack.app.ns.extras["alerts"].tick()
    await slack.fake.wait_for(lambda: any("<!channel>" in t for t in thread(slack)))
    seen = len(updates(slack))
    clock.advance(30)
    await slack.app.ns.extras["alerts"].tick()
    await slack.fake.wait_for(lambda: len(updates(slack)) > seen)
    assert updates(slack)[-1].startswith("📟 Paged via webhook pager: 🔴 P0"), updates(slack)


async def test_a_chain_telling_the_channel_first_mentions_nobody(slack_http, webhook_receiver):
    """review25 L2: with the channel first, the post mentioned the rotation's person, who is
    not paged; the channel step's own <!channel> reply is the channel's notice."""
    clock = ManualClock()
    channel = {"notify": "channel", "after": "0m"}
    slack = await slack_http(then_the_rotation(webhook_receiver, channel), clock=clock)
    text = await p0(slack)
    assert text.startswith("🔴 P0"), text
    section = json.dumps(post_calls(slack)[0].args["blocks"], ensure_ascii=False)
    assert "<@U0ONCALL>" not in section, section
    await slack.fake.wait_for(lambda: any("<!channel>" in t for t in thread(slack)))
    assert slack.fake.posts("U0ONCALL") == []


async def test_a_one_step_chain_s_failed_webhook_says_when_it_is_tried_again_at_once(
    slack_http, webhook_receiver
):
    """recheck28 Ka L3: with the webhook as the chain's only step (repeated after 15m),
    the post read "📟 Paging via webhook pager…" until the trailing update 30 s on, then
    "… failed (HTTP 404); webhook pager is next:", the step that had just failed. It says
    when the page is sent again, as soon as the try's answer is recorded."""
    webhook_receiver.script = [404, 404]
    clock = ManualClock()
    p = policy(webhook_receiver)
    p["alerts"] = {"repeat_escalation": 1, "repeat_escalation_after": "15m"}
    p["oncall"]["escalation"] = [{"notify": "webhook:pager", "after": "0m"}]
    slack = await slack_http(p, clock=clock)
    await p0(slack)
    await send(slack)  # the clock stands still: no trailing update is due
    failed = "⚠️ The page via webhook pager failed (HTTP 404); tried again at 00:15 (the chain's"
    await slack.fake.wait_for(lambda: any(u.startswith(failed) for u in updates(slack)))
    assert updates(slack)[-1].startswith(f"{failed} only step): 🔴 P0"), updates(slack)
    assert not any("is next" in u for u in updates(slack)), updates(slack)
    clock.advance(15 * 60)  # its next round: sent again, fails again, and the chain ran out
    await slack.app.ns.extras["alerts"].tick()
    await send(slack)
    last = "⚠️ The page via webhook pager failed (HTTP 404); nobody was reached: 🔴 P0"
    await slack.fake.wait_for(lambda: updates(slack)[-1].startswith(last))
    assert webhook_receiver.events() == ["trigger", "trigger"]
