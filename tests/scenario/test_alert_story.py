"""``/agent alert <id>``: one alert's story for the post-mortem (audit23 forensics,
question 6: who was paged for an alert that is resolved could be read only by scrolling
to its Slack message).

The real app in Slack HTTP mode against the fake Slack Web API, signed commands; time
is a ManualClock and the alert timers run when the test calls ``tick()``.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from guards.clock import ManualClock
from guards.events import RunawayDetected
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_signing import block_actions_body
from tests.scenario.test_alerts import ALERTS, BOT, alerts_of, emit, overspend
from tests.scenario.test_alerts import POLICY as ALERTS_POLICY
from tests.scenario.test_slack_shell import Piped
from tests.scenario.test_slack_shell import env as env  # the shell test's fixture

ZONE = "America/New_York"  # 2026-01-01 00:00 UTC, the ManualClock's start, is 19:00 here
POLICY: dict[str, Any] = {**ALERTS_POLICY, "timezone": ZONE}  # the alert tests' chain


def runaway(app: Any) -> RunawayDetected:
    return RunawayDetected(at=app.clock.now(), scope=BOT, stream="rss", count=47, expected_count=1)


def in_order(text: str, *parts: str) -> None:
    """Each part is in ``text``, after the one before it (the story is oldest first)."""
    at = 0
    for part in parts:
        found = text.find(part, at)
        assert found >= 0, f"{part!r} not after position {at} in:\n{text}"
        at = found + len(part)


async def test_a_resolved_alerts_story_says_who_was_paged_and_who_did_what(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake: FakeSlack = slack.fake
    app = slack.app
    fake.refuse["U01"] = "user_not_found"  # the primary's page is refused by Slack
    await overspend(app)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS) and fake.posts("U04"))  # the next step
    app.clock.advance(120)
    acked = await slack.command("ack 1", user="U04")
    assert "acknowledged #1" in acked["text"], acked["text"]
    app.clock.advance(60)
    silenced = await slack.command("silence 1 30m")
    assert "silenced" in silenced["text"], silenced["text"]
    app.clock.advance(7 * 60)
    lifted = await slack.command("silence 1 off")
    assert "lifted" in lifted["text"], lifted["text"]
    app.clock.advance(10 * 60)
    closed = await slack.command(f"breaker {BOT} close")
    assert "closed" in closed["text"], closed["text"]
    await alerts_of(slack).process()
    row = (await app.store.fetch("SELECT resolved_at FROM alerts WHERE id = 1"))[0]
    assert row[0] is not None  # resolved: `/agent alerts` no longer lists it

    # anyone may read it, the next morning (the times get their date)
    app.clock.advance(14 * 3600)
    story = await slack.command("alert #1", user="U0STRANGER")
    text = story["text"]
    assert "#1" in text and "P0" in text and "Breaker opened on spend rate" in text
    assert BOT in text and "fired once" in text
    assert text.count(ZONE) == 1, text  # the zone named once
    assert "Wed 31 Dec 19:00" in text  # a time not today has its date
    assert f"<#{ALERTS}>" in text  # where its message is
    in_order(
        text,
        "fired",
        "<@U01>",
        "user_not_found",  # the page Slack refused
        "<@U04>",
        "acknowledged by <@U04>",
        "silenced by <@U0ADMIN>",
        "lifted by <@U0ADMIN>",
        "resolved",
    )
    assert "<@U0STRANGER>" not in text
    # `12` and `#12` are the same id, as for `ack`
    assert (await slack.command("alert 1"))["text"] == text


async def test_escalate_now_a_resolve_by_hand_a_p2_and_a_silence_on_the_scope(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake: FakeSlack = slack.fake
    app = slack.app
    await emit(app, runaway(app))  # #1, a P0: U01 is paged
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS) and fake.posts("U01"))
    post = fake.posts(ALERTS)[0]
    common = {
        "channel": ALERTS,
        "ts": post.response["ts"],
        "blocks": post.args["blocks"],
        "block_id": "alert:1",
    }
    app.clock.advance(60)
    await slack.post(block_actions_body(action_id="alert_escalate", value="1", **common))
    await fake.wait_for(lambda: fake.posts("U04"))
    app.clock.advance(60)
    await slack.post(block_actions_body(action_id="alert_resolve", value="1", **common))
    await fake.wait_for(
        lambda: "resolved by <@U0ADMIN>" in json.dumps(list(fake.messages.values()))
    )
    text = (await slack.command("alert 1"))["text"]
    in_order(
        text,
        "19:00` 🔥 fired",
        "paged <@U01> (primary, step 1 of 3)",
        "19:01` 📟 paged <@U04> (secondary, step 2 of 3) — Escalate now by <@U0ADMIN>",
        "19:02` ✅ resolved by <@U0ADMIN>",
    )
    assert f"Its message: <#{ALERTS}>" in text

    killed = await slack.command(f"breaker {BOT} open stop it")  # #2, a P2: posted nowhere
    assert "forced open" in killed["text"].lower() or "open" in killed["text"], killed["text"]
    await alerts_of(slack).process()
    p2 = (await slack.command("alert 2"))["text"]
    assert "P2 · Breaker forced open" in p2 and "Not posted: a P2" in p2, p2
    assert "open, unacknowledged" in p2 and "`/agent ack 2` takes it" in p2

    quiet = await slack.command("silence acme/alice 2h")  # a scope above the agent
    assert "silenced" in quiet["text"], quiet["text"]
    app.clock.advance(60)
    await emit(app, runaway(app))  # #3: held by the silence from its first firing
    await alerts_of(slack).process()
    held = (await slack.command("alert 3"))["text"]
    in_order(held, "silenced by <@U0ADMIN> until 21:02 (on `acme/alice`)", "🔥 fired")
    assert "Not posted: a silence held it" in held and "🔕 silenced, open" in held, held
    assert "paged" not in held
    assert "(on `acme/alice`)" not in (await slack.command("alert 1"))["text"]  # made after


async def test_bad_input_is_answered_with_what_to_type(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    await emit(slack.app, runaway(slack.app))
    await alerts_of(slack).process()
    usage = (await slack.command("alert"))["text"]  # `alerts` mistyped, maybe
    assert "`/agent alerts` lists the open ones" in usage, usage
    assert "usage: `/agent alert <id>`" in usage, usage
    two = (await slack.command("alert 1 2"))["text"]
    assert "one alert id" in two and "usage: `/agent alert <id>`" in two, two
    word = (await slack.command("alert rss-bot"))["text"]
    assert "is not an alert id" in word and "`/agent alerts`" in word, word
    negative = (await slack.command("alert -1"))["text"]
    assert "is not an alert id" in negative, negative
    gone = (await slack.command("alert 12"))["text"]
    assert gone == (
        "There is no alert #12: it may have been deleted after `retention.alerts_resolved`"
        " (90d after it was resolved); `/agent alerts` lists the open ones."
    ), gone
    absurd = (await slack.command("alert 12345678901234567890123"))["text"]
    assert "is no alert id: ids have at most 18 digits" in absurd, absurd
    helped = (await slack.command("help"))["text"]
    assert "`/agent alert <id>`" in helped, helped
    assert "`/agent alerts [scope|kind]`" in helped  # the list is still there


async def test_a_story_of_ten_thousand_firings_and_forty_steps_fits_one_message(slack_http):
    policy = {**POLICY, "alerts": {"repeat_escalation": 19, "repeat_escalation_after": "1m"}}
    policy["oncall"] = {
        **POLICY["oncall"],
        "escalation": [
            {"notify": "rotation:primary", "after": "0m"},
            {"notify": "rotation:secondary", "after": "1m"},
        ],
    }
    slack = await slack_http(policy, clock=ManualClock())
    app = slack.app
    await emit(app, *(runaway(app) for _ in range(10_000)))
    while await app.store.write(alerts_of(slack).engine.process_pending):
        pass
    for _ in range(45):  # 20 rounds of 2 steps, a minute apart; then nothing more
        app.clock.advance(60)
        await alerts_of(slack).tick()
    steps = (await app.store.fetch("SELECT COUNT(*) FROM escalations"))[0][0]
    assert steps == 40
    story = await slack.command("alert 1", user="U0STRANGER")
    text = story["text"]
    assert "fired 10,000×" in text, text
    assert len(text) <= 3000
    assert "(truncated)" not in text and "more lines" not in text  # not cut mid-line
    assert re.search(r"… \d+ more steps", text), text  # the middle is summarised
    assert "step 1 of 2" in text  # the first page
    assert "round 20" in text  # the last one
    assert text.count(ZONE) == 1


async def test_the_shell_tells_the_story_too(env):
    shell = await Piped.start(env)
    try:
        await shell.type("/agent alert 3")
        await shell.expect("nightshift> /agent alert 3")
        await shell.expect("There is no alert #3: it may have been deleted after")
    finally:
        shell.end_input()
        assert await asyncio.wait_for(shell.close(), 20) == 0
