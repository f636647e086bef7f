"""Lifting a silence from Slack: ``/agent silence <target> off`` (also ``lift``, ``end``).

The real app in Slack HTTP mode against the fake Slack Web API, signed slash commands,
a ManualClock (starts 2026-01-01 00:00 UTC); alert timers run when the test ticks.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from guards.clock import ManualClock
from guards.events import BreakerClosed, BreakerOpened
from tests.scenario.test_alerts import (
    ADMIN,
    ALERTS,
    BOT,
    POLICY,
    alerts_of,
    channel_message,
    dms,
    emit,
    used,
)
from tests.scenario.test_stale_clicks import settled

SCOPE = "acme/alice"  # BOT is acme/alice/rss-bot


async def trip(app: Any) -> None:
    await emit(app, BreakerOpened(at=app.clock.now(), scope=BOT, trip="spend", reason="r"))


async def silences(app: Any) -> list[tuple[Any, ...]]:
    rows = await app.store.fetch(
        "SELECT id, fingerprint, scope, created_by, expires_at, ended_at, ended_by"
        " FROM silences ORDER BY id"
    )
    return [tuple(r) for r in rows]


async def audit(app: Any, action: str) -> list[tuple[Any, ...]]:
    rows = await app.store.fetch(
        "SELECT actor, target, before, after, detail FROM audit WHERE action = ? ORDER BY id",
        (action,),
    )
    return [tuple(r) for r in rows]


async def test_lifting_a_scope_silence_makes_the_next_firing_page_again(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await used(app)
    made = await slack.command(f"silence {SCOPE} 8h", user="U01")  # unchanged behaviour
    assert made["response_type"] == "in_channel"
    assert made["text"] == (
        f"🔕 <@U01> silenced {SCOPE} and below for 8h (until 08:00). Firings are still recorded."
    )
    await trip(app)
    await alerts_of(slack).process()
    await emit(app, BreakerClosed(at=app.clock.now(), scope=BOT, reason="trial ok"))
    await alerts_of(slack).process()
    assert fake.posts(ALERTS) == [] and dms(fake, "U01") == []  # silenced

    listing = (await slack.command("alerts"))["text"]
    assert f"🔕 {SCOPE} and below until 08:00 (by <@U01>)" in listing
    hint = (await slack.command("alerts"))["blocks"][1]["elements"][0]["text"]  # first: no cut
    assert "`/agent silence <target> off`" in hint

    app.clock.advance(2 * 3600 + 48 * 60)  # 02:48: 5h 12m of the silence left
    reply = await slack.command(f"silence {SCOPE} off", user="U02")
    assert reply["response_type"] == "in_channel"
    assert reply["text"] == (
        f"🔔 <@U02> lifted the silence on {SCOPE} (set by <@U01>, had 5h 12m left);"
        " the next firing notifies as usual."
    )
    [(_, fp, scope, by, _, ended_at, ended_by)] = await silences(app)
    assert (fp, scope, by, ended_at, ended_by) == (None, SCOPE, "U01", app.clock.now(), "U02")
    [(actor, target, before, after, detail)] = await audit(app, "silence.lift")
    assert (actor, target) == ("U02", f"{SCOPE} and below")
    assert (before, after) == ("2026-01-01T08:00:00+00:00", "2026-01-01T02:48:00+00:00")
    assert "set by U01, 5h 12m left" in detail
    assert "No open alerts" in (await slack.command("alerts"))["text"]  # silence gone

    await trip(app)  # the breaker trips again: posted and paged as if never silenced
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS) and dms(fake, "U01"))
    assert fake.posts(ALERTS)[0].args["text"].startswith("<@U01> 🔴 P0")


async def test_lifting_by_alert_id_posts_the_open_alert_and_its_chain_resumes(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await trip(app)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS) and dms(fake, "U01"))
    await slack.command("silence #1 2h", user="U01")
    await fake.wait_for(lambda: "silenced by <@U01>" in json.dumps(channel_message(fake)))
    app.clock.advance(10 * 60)
    await alerts_of(slack).tick()
    assert dms(fake, "U04") == []  # no escalation while silenced

    reply = await slack.command("silence 1 lift", user="U01")
    assert reply["response_type"] == "in_channel"
    assert reply["text"] == (
        f"🔔 <@U01> lifted the silence on #1 (breaker_opened_spend:{BOT})"
        " (set by <@U01>, had 1h 50m left); 1 open alert notifies again now."
    )
    # the open alert is shown unsilenced and its chain starts again: the primary now,
    await fake.wait_for(lambda: len(dms(fake, "U01")) == 2)
    await fake.wait_for(lambda: "silenced by" not in json.dumps(channel_message(fake)))

    # the new page reads as a page, not at once as an old one ("You were paged")
    def page(n: int) -> str:
        call = dms(fake, "U01")[n]
        return json.dumps(fake.messages[(call.response["channel"], call.response["ts"])])

    for _ in range(500):  # every queued edit delivered (the fake answers at once)
        pending = await app.store.fetch("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
        if pending[0][0] == 0:
            break
        await asyncio.sleep(0.02)
    assert pending[0][0] == 0, "the outbox did not drain"
    assert "You were paged" in page(0)
    assert "You are paged" in page(1) and "You were paged" not in page(1)
    row = (await app.store.fetch("SELECT silence_id, was_silenced, resolved_at FROM alerts"))[0]
    assert tuple(row) == (None, 1, None)
    # then the secondary five minutes later, as for a new alert
    app.clock.advance(5 * 60)
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: dms(fake, "U04"))
    [(actor, target, *_)] = await audit(app, "silence.lift")
    assert (actor, target) == ("U01", f"breaker_opened_spend:{BOT}")


async def test_lifting_when_nothing_is_silenced_says_so_and_changes_nothing(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await used(app)
    reply = await slack.command(f"silence {SCOPE} end", user="U01")
    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == (
        f"There is no active silence on {SCOPE}; nothing changed."
        " `/agent alerts` lists the active silences."
    )
    # an expired silence is not active either
    await slack.command(f"silence {SCOPE} 1h", user="U01")
    app.clock.advance(3601)
    reply = await slack.command(f"silence {SCOPE} off", user="U01")
    assert reply["text"].startswith(f"There is no active silence on {SCOPE}")
    # a silence on a wider scope is not lifted by naming a narrower one, but it is named
    await slack.command(f"silence {SCOPE} 1h", user="U01")
    before = await silences(app)
    reply = await slack.command(f"silence {BOT} off", user="U02")
    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == (
        f"There is no active silence on {BOT}; nothing changed. {BOT} is still silenced by"
        f" {SCOPE} and below (set by <@U01>): `/agent silence {SCOPE} off` lifts that one."
        " `/agent alerts` lists the active silences."
    )
    assert await silences(app) == before
    assert await audit(app, "silence.lift") == []


async def test_a_stranger_cannot_lift_a_silence_and_is_audited(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await used(app)
    await slack.command(f"silence {SCOPE} 8h", user="U01")
    before = await silences(app)
    assert len(before) == 1
    reply = await slack.command(f"silence {SCOPE} off", user="U0STRANGER")
    assert reply["text"].startswith(
        "Only admins and the people on call (rotations, escalation users, overrides)"
        " can lift silences."
    )
    assert await silences(app) == before
    refusals = await app.store.fetch("SELECT actor, action, target FROM audit")
    assert ("U0STRANGER", "refused", "lift silences") in [tuple(r) for r in refusals]
    assert await audit(app, "silence.lift") == []


async def test_malformed_lifts_are_refused_with_a_clear_message_and_change_nothing(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await used(app)
    await slack.command(f"silence {SCOPE} 8h", user="U01")
    before = await silences(app)
    usage = (
        "usage: `/agent silence <id, kind[:scope] or scope> <duration|off>"
        " [from <when>] [-- reason]`"
    )
    assert (await slack.command("silence", user="U01"))["text"] == usage
    assert (await slack.command(f"silence {SCOPE} off extra", user="U01"))["text"] == usage
    reply = await slack.command("silence #99999 off", user="U01")
    assert reply["text"] == "there is no alert #99999; `/agent alerts` lists the open ones"
    reply = await slack.command("silence ../x off", user="U01")
    assert reply["text"].startswith(
        "silence an alert id (`42`), an alert kind (`heartbeat_missed`), `kind:scope`"
    )
    assert await silences(app) == before
    assert await audit(app, "silence.lift") == []
    shown = (await slack.command("help"))["blocks"]  # the message (its text is cut short)
    help_text = "\n".join(b["text"]["text"] for b in shown if b.get("type") == "section")
    assert (
        "`/agent silence <id, kind[:scope] or scope> <duration|off> [from <when>] [-- reason]`"
        " — Silences an alert,"
        " a kind of alert or a scope" in help_text
    )
    assert "`off` lifts it" in help_text


async def test_silencing_twice_makes_one_silence(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await used(app)
    await slack.command(f"silence {SCOPE} 1h", user="U01")
    app.clock.advance(5)  # the same again a moment later: a double submit
    again = await slack.command(f"silence {SCOPE} 1h", user="U02")
    assert again["text"] == (
        f"🔕 {SCOPE} and below is already silenced by <@U01> until 01:00; nothing changed."
    )
    assert again.get("response_type", "ephemeral") == "ephemeral"
    assert len(await silences(app)) == 1 and len(await audit(app, "alert.silence")) == 1
    longer = await slack.command(f"silence {SCOPE} 4h", user="U02")  # a longer one is new
    assert "silenced acme/alice and below for 4h" in longer["text"]
    assert len(await silences(app)) == 2


async def test_a_lifted_silence_redraws_the_message_naming_whom_it_pages_now(slack_http):
    """audit19 reboot L2: the redraw that goes with the page named the person paged before
    the silence (an override had put another on call) until the next redraw, 30 s later."""
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await trip(app)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS) and dms(fake, "U01"))
    assert "<@U01>" in json.dumps(channel_message(fake))
    await slack.command("silence #1 2h", user="U01")
    await fake.wait_for(lambda: "silenced by <@U01>" in json.dumps(channel_message(fake)))
    await slack.command("oncall override <@U03> 3h primary", user=ADMIN)
    await slack.command("silence 1 off", user="U01")
    await fake.wait_for(lambda: dms(fake, "U03"))
    await settled(slack)  # every queued edit delivered; no tick, so no later redraw
    shown = channel_message(fake)
    assert shown["text"].startswith("<@U03> 🔴 P0"), shown["text"]  # (U01 stays in its history)
    assert shown["blocks"][1]["text"]["text"].startswith("<@U03> "), shown["blocks"][1]
