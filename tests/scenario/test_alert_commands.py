"""``/agent resolve``, ``escalate`` and ``unack`` (audit27 parity #12): the alert buttons
as commands, for an alert whose message Slack refused with its buttons, and undoing an
acknowledgement made by mistake.

The real app in Slack HTTP mode against the fake Slack Web API, signed requests, a
ManualClock (2026-01-01 00:00 UTC). The chain (STALE_POLICY): primary (U01, U02) at once,
secondary (U04) after 5m, the channel after 15m.
"""

from __future__ import annotations

import pytest

from bot.shell_render import render_text
from guards.clock import ManualClock
from tests.scenario.test_alerts import ALERTS, BOT, alerts_of, dms, emit
from tests.scenario.test_slack_races import contexts
from tests.scenario.test_stale_clicks import (
    ADMIN,
    STALE_POLICY,
    answer,
    audit,
    buttons,
    click,
    message,
    p0_paged,
    settled,
)

STRANGER = "U0STRANGER"


async def say(slack: object, text: str, *, user: str = ADMIN) -> str:
    reply = await slack.command(text, user=user)  # type: ignore[attr-defined]
    return str(reply["text"])


def lines(slack: object, channel: str, ts: str) -> list[str]:
    return contexts(message(slack, channel, ts))


async def test_resolve_by_command_redraws_the_alert_as_the_button_does(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    ts, dm_ts = await p0_paged(slack)
    slack.app.clock.advance(120)
    assert await say(slack, "resolve #1") == f"✅ #1 resolved by <@{ADMIN}> at 00:02"
    shown = f"✅ resolved by <@{ADMIN}> at 00:02"
    await slack.fake.wait_for(lambda: shown in lines(slack, ALERTS, ts))
    await slack.fake.wait_for(lambda: shown in lines(slack, "U01", dm_ts))
    assert buttons(message(slack, ALERTS, ts)) == {}  # as after the Resolve button
    [(by, *_)] = await audit(slack.app, "alert.resolve")
    assert by == ADMIN
    # a second one changes nothing, and says who did it
    again = await say(slack, "resolve 1", user="U01")
    assert again == f"#1 was already resolved by <@{ADMIN}> at 00:02; nothing changed."
    assert len(await audit(slack.app, "alert.resolve")) == 1


async def test_resolve_with_a_reason_shows_it_on_the_alert(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    ts, _ = await p0_paged(slack)
    slack.app.clock.advance(60)
    reply = await say(slack, "resolve 1 restarted the <!channel> worker", user="U01")
    assert reply == "✅ #1 resolved by <@U01> at 00:01 — restarted the &lt;!channel&gt; worker"
    shown = "✅ resolved by <@U01> at 00:01 — restarted the &lt;!channel&gt; worker"
    await slack.fake.wait_for(lambda: shown in lines(slack, ALERTS, ts))
    story = await say(slack, "alert 1")
    assert "restarted the &lt;!channel&gt; worker" in story
    detail = await slack.app.store.fetch(
        "SELECT detail FROM audit WHERE action = 'alert.resolve'"
    )  # in the audit log too, as typed (recheck28 L1, review29 L3)
    assert [r[0] for r in detail] == ["restarted the <!channel> worker"]


async def test_a_resolve_reason_keeps_its_commas_and_full_stops(slack_http):
    """recheck28 L1: "raised it, see thread. ok" became "raised it see thread ok"."""
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    await p0_paged(slack)
    reply = await say(slack, "resolve 1 raised it, see thread. ok", user="U01")
    assert reply.endswith(" — raised it, see thread. ok")


async def test_escalate_by_command_pages_the_next_step_as_the_button_does(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    fake = slack.fake
    await p0_paged(slack)
    slack.app.clock.advance(60)
    assert await say(slack, "escalate #1", user="U01") == "Escalated #1: notified <@U04>."
    await fake.wait_for(lambda: dms(fake, "U04"))
    assert "secondary, step 2 of 3" in dms(fake, "U04")[0].args["text"]
    assert [(by, after) for by, _, after, _ in await audit(slack.app, "alert.escalate")] == [
        ("U01", "U04")
    ]
    await settled(slack)
    # the same second typed again: the button's repeat guard
    again = await say(slack, "escalate 1", user="U02")
    assert again == (
        "#1 was already escalated to step 2 of 3 by <@U01> at 00:01; nobody else was paged."
    )
    # acknowledged: nobody is paged, and the refusal says why
    await say(slack, "ack 1", user="U04")
    refused = await say(slack, "escalate 1", user="U02")
    assert refused == (
        "#1 was acknowledged by <@U04> at 00:01, so its escalation stopped; nobody was paged."
    )
    assert len(dms(fake, "U04")) == 1 and len(await audit(slack.app, "alert.escalate")) == 1


async def test_escalate_by_command_does_not_page_who_typed_it(slack_http):
    """A chain of one step (the README's default): the button's refusal, word for word."""
    alone = {
        **STALE_POLICY,
        "alerts": {**STALE_POLICY["alerts"], "repeat_escalation": 1},
        "oncall": {"rotations": [{"name": "primary", "users": ["U01"], "start": "2025-12-29"}]},
    }
    slack = await slack_http(alone, clock=ManualClock())
    await p0_paged(slack)
    refused = await say(slack, "escalate 1", user="U01")
    assert refused.startswith("Escalate now would page you again: the next step of #1"), refused
    assert "nobody was paged" in refused
    assert len(dms(slack.fake, "U01")) == 1 and await audit(slack.app, "alert.escalate") == []


async def test_unack_restarts_the_escalation_from_now(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app, fake = slack.app, slack.fake
    ts, dm_ts = await p0_paged(slack)
    app.clock.advance(60)
    await click(slack, "alert_ack", ALERTS, ts, user="U01")  # a pocket tap
    assert await answer(slack, "U01") == "👀 you acknowledged #1 at 00:01"
    acked = "👀 acknowledged by <@U01> at 00:01 (1m after it fired)"
    await fake.wait_for(lambda: acked in lines(slack, ALERTS, ts))
    app.clock.advance(9 * 60)  # 00:10: step 2 was due at 00:05, and waits no more
    await alerts_of(slack).tick()
    assert dms(fake, "U04") == []

    reply = await say(slack, "unack #1", user="U01")
    assert reply == (
        "↩️ you took back your acknowledgement of #1 (made at 00:01). Its escalation runs"
        " again from now: step 2 of 3 pages <@U04> at 00:15 (in 5m), unless someone"
        " acknowledges it first."
    )
    await fake.wait_for(lambda: acked not in lines(slack, ALERTS, ts))
    await fake.wait_for(lambda: "alert_ack" in buttons(message(slack, ALERTS, ts)))
    await fake.wait_for(lambda: acked not in lines(slack, "U01", dm_ts))
    [(by, before, _, detail)] = await audit(app, "alert.unack")
    assert (by, before) == ("U01", "acknowledged by U01 at 2026-01-01T00:01:00+00:00")
    assert detail == "step 2 of 3 due at 2026-01-01T00:15:00+00:00"
    story = await say(slack, "alert 1")  # the post-mortem sees it taken back
    assert "<@U01> *alert.unack* (step 2 of 3 due at 2026-01-01T00:15:00+00:00)" in story
    assert "open, unacknowledged" in story

    app.clock.advance(4 * 60 + 59)  # not at once: its wait runs from the unack
    await alerts_of(slack).tick()
    await settled(slack)
    assert dms(fake, "U04") == []
    app.clock.advance(1)
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: dms(fake, "U04"))
    assert "secondary, step 2 of 3" in dms(fake, "U04")[0].args["text"]


async def test_only_who_acknowledged_or_an_admin_may_take_it_back(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    await p0_paged(slack)
    await say(slack, "ack 1", user="U01")
    refused = await say(slack, "unack 1", user="U02")  # on call, but not who acknowledged
    assert refused.startswith(
        "Only <@U01> (who acknowledged it) and admins can take back the acknowledgement of #1."
    ), refused
    assert ("U02", "refused") in [(a, b) for a, b, *_ in await refusals(slack.app)]
    assert await audit(slack.app, "alert.unack") == []
    reply = await say(slack, "unack 1")  # an admin
    assert reply.startswith("↩️ you took back <@U01>'s acknowledgement of #1 (made at 00:00)")
    assert [by for by, *_ in await audit(slack.app, "alert.unack")] == [ADMIN]
    # not acknowledged any more: nothing to take back
    assert await say(slack, "unack 1") == "#1 is not acknowledged; nothing changed."


async def refusals(app: object) -> list[tuple[object, ...]]:
    rows = await app.store.fetch(  # type: ignore[attr-defined]
        "SELECT actor, action, target, detail FROM audit WHERE action = 'refused' ORDER BY id"
    )
    return [tuple(r) for r in rows]


@pytest.mark.parametrize("command", ["resolve", "escalate", "unack"])
async def test_the_commands_refuse_what_is_not_an_alert_id(slack_http, command):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    await p0_paged(slack)
    for typed in ("abc", "-1", "10^30", "1.5"):
        said = await say(slack, f"{command} {typed}")
        assert said.startswith(f"`{typed}` is not an alert id (a whole number: `12` or `#12`)")
        assert f"usage: `/agent {command} <id>" in said
    huge = "1" + "0" * 30
    assert (await say(slack, f"{command} {huge}")).startswith("there is no alert #1000000")
    assert await say(slack, f"{command} 99") == (
        "there is no alert #99; `/agent alerts` lists the open ones"
    )
    assert (await say(slack, command)).startswith(f"usage: `/agent {command} <id>")
    stranger = await say(slack, f"{command} 1", user=STRANGER)
    assert stranger.startswith("Only admins and the people on call"), stranger
    assert [a for a, *_ in await refusals(slack.app)] == [STRANGER]


async def test_a_resolved_alert_is_refused_by_escalate_and_unack(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    await p0_paged(slack)
    await say(slack, "ack 1", user="U01")
    slack.app.clock.advance(60)
    await say(slack, "resolve 1", user="U02")
    assert await say(slack, "escalate 1") == (
        "#1 was already resolved by <@U02> at 00:01; nobody was paged."
    )
    assert await say(slack, "unack 1", user="U01") == (
        "#1 was already resolved by <@U02> at 00:01; nothing changed."
    )
    assert await audit(slack.app, "alert.unack") == []


async def test_help_lists_the_alert_commands(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    reply = await slack.command("help")
    shown = render_text(reply["blocks"], reply["text"])  # what Slack shows: every section
    assert len(reply["blocks"]) > 1  # the list outgrew one section's 3,000 characters
    assert "more lines" not in shown and "truncated" not in shown
    for usage in ("resolve <id> [reason…]", "escalate <id>", "unack <id>", "silence "):
        assert f"`/agent {usage}" in shown


async def test_unack_of_an_alert_acknowledged_while_silenced_starts_its_chain(slack_http):
    """review29 H2: acknowledged while silenced, its chain never started (the silence's end
    starts only unacknowledged ones); unack left an open P0 that paged nobody, and said so."""
    from guards.events import BreakerOpened

    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app, fake = slack.app, slack.fake
    await say(slack, "silence acme 1h")
    await emit(app, BreakerOpened(at=app.clock.now(), scope=BOT, trip="spend", reason="r"))
    await alerts_of(slack).process()
    await settled(slack)
    await say(slack, "ack 1", user="U01")
    app.clock.advance(61 * 60)  # the silence ends
    await alerts_of(slack).tick()
    await settled(slack)
    said = await say(slack, "unack 1", user="U01")
    assert "no step left" not in said and "Its escalation runs again from now" in said
    for _ in range(6):
        app.clock.advance(10 * 60)
        await alerts_of(slack).tick()
        await settled(slack)
    assert dms(fake, "U01") or dms(fake, "U04"), "an open, unacknowledged P0 paged nobody"
