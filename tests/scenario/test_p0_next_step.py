"""A P0 post whose webhook page failed names what its chain notifies next: a person, or
the step that comes first when it is not a person's (another webhook, the channel), the
step its "next:" line names, also after a reload changed the chain (recheck25_c L5: the
post said "@dana is next" while the line below said "next: webhook:wp").

The whole app in Slack HTTP mode against the fake Slack Web API, a real webhook receiver
on 127.0.0.1, the outbox delivering, time on a ManualClock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from guards.clock import ManualClock
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.scenario.test_p0_webhook_first import p0, redrawn, thread
from tests.scenario.test_webhooks import (
    _secret,
    deliveries,
    policy,
    send,
    webhook_receiver,
)

__all__ = ["_secret", "webhook_receiver"]


def two_webhooks(receiver: WebhookReceiver, *steps: dict[str, str]) -> dict[str, Any]:
    """The webhooks ``pager`` and ``backup`` (one receiver), and the chain ``steps``."""
    p = policy(receiver)
    p["webhooks"]["backup"] = dict(p["webhooks"]["pager"])
    p["oncall"]["escalation"] = list(steps)
    return p


PAGER = {"notify": "webhook:pager", "after": "0m"}
FAILED = "⚠️ The page via webhook pager failed (HTTP 404); "


async def test_a_webhook_step_next_is_named_and_nobody_is_mentioned(
    slack_http, webhook_receiver: WebhookReceiver
):
    webhook_receiver.script = [404]
    clock = ManualClock()
    backup = {"notify": "webhook:backup", "after": "5m"}
    person = {"notify": "rotation:primary", "after": "15m"}
    slack = await slack_http(two_webhooks(webhook_receiver, PAGER, backup, person), clock=clock)
    await p0(slack)
    await send(slack)
    assert [d["state"] for d in await deliveries(slack)] == ["failed"]
    text = await redrawn(slack, clock, FAILED)
    assert text.startswith(FAILED + "webhook backup is next: 🔴 P0"), text
    # the person comes after the backup webhook: not mentioned, not told "you are next"
    assert "<@U0ONCALL>" not in text
    assert not any("<@U0ONCALL>" in t for t in thread(slack)), thread(slack)
    [post] = [c for c in slack.fake.calls_of("chat.update", ok=True) if c.args["text"] == text]
    assert "next: webhook:backup at" in json.dumps(post.args["blocks"], ensure_ascii=False)


async def test_after_a_reload_the_post_names_the_new_chains_next_step(
    slack_http, webhook_receiver: WebhookReceiver, tmp_path: Path
):
    """The page is being tried again; the chain's next step is the rotation's person. A
    reload leaves the alert at that position of a new chain, where a webhook stands; the
    page then fails for good: the post names the webhook, as its "next:" line does (the
    old code said "nobody was reached" there, and "@dana is next" in recheck25_c)."""
    webhook_receiver.script = [503, 404]
    clock = ManualClock()
    db = tmp_path / "reload.db"
    person = {"notify": "rotation:primary", "after": "15m"}
    before = two_webhooks(webhook_receiver, PAGER, person, {"notify": "channel", "after": "30m"})
    first = await slack_http(before, clock=clock, db=db)
    await p0(first)
    await send(first)
    assert [d["state"] for d in await deliveries(first)] == ["pending"]
    await first.app.ns.stop()
    after = two_webhooks(webhook_receiver, PAGER, {"notify": "webhook:backup", "after": "15m"})
    second = await slack_http(after, clock=clock, db=db)
    clock.advance(120)  # its next try: refused for good
    await send(second)
    assert [d["state"] for d in await deliveries(second)] == ["failed"]
    text = await redrawn(second, clock, FAILED)
    assert text.startswith(FAILED + "webhook backup is next: 🔴 P0"), text
    [post] = [c for c in second.fake.calls_of("chat.update", ok=True) if c.args["text"] == text]
    assert "next: webhook:backup at" in json.dumps(post.args["blocks"], ensure_ascii=False)
    assert not any("<@U0ONCALL>" in t for t in thread(second)), thread(second)
