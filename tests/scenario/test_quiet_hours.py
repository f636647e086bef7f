"""Quiet hours (``alerts.quiet_hours``): at night a P1 is posted but pages nobody until
the quiet hours end; a P0 pages at once; a person can still page with Escalate now.

The real app in Slack HTTP mode against the fake Slack Web API, on a ManualClock that
starts on Thursday 2026-01-01 at 00:00 UTC (the policy's time zone).
"""

from __future__ import annotations

from typing import Any

from bot.alerts.quiet import QUIET_UNTIL
from guards.clock import ManualClock
from guards.events import BreakerOpened
from tests.scenario.test_alerts import ALERTS, POLICY, alerts_of, channel_message, dms, emit

AGENT = "acme/team/bot-01"
QUIET = "🌙 Quiet hours: a P1 pages nobody before 07:00"


def quiet_policy(quiet: Any) -> dict[str, Any]:
    return {**POLICY, "alerts": {**POLICY["alerts"], "quiet_hours": quiet}}


async def p1(slack: Any, scope: str = AGENT) -> int:
    """An agent's breaker trips on failures (a P1): posted, on its chain after 30 min."""
    app = slack.app
    await emit(app, BreakerOpened(at=app.clock.now(), scope=scope, trip="failures", reason="r"))
    await alerts_of(slack).process()
    rows = await app.store.fetch("SELECT id FROM alerts WHERE scope = ?", (scope,))
    return int(rows[0][0])


def thread_texts(fake: Any) -> list[str]:
    return [str(c.args["text"]) for c in fake.posts(ALERTS) if c.args.get("thread_ts")]


async def test_a_p1_at_night_pages_nobody_until_the_quiet_hours_end(slack_http):
    slack = await slack_http(quiet_policy("22:00-07:00"), clock=ManualClock())
    fake, app = slack.fake, slack.app
    alert_id = await p1(slack)
    await fake.wait_for(lambda: fake.posts(ALERTS))  # posted at once, as ever

    app.clock.advance(31 * 60)  # 00:31: its step falls due, in the quiet hours
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: any(QUIET in t for t in thread_texts(fake)))
    [row] = await app.store.fetch("SELECT esc_at, esc_step FROM alerts WHERE id = ?", (alert_id,))
    assert row[0] == 1_767_225_600.0 + 7 * 3600 and row[1] == 1  # 07:00, still step 2
    await fake.wait_for(lambda: "rotation:secondary at 07:00" in str(channel_message(fake)))
    for _ in range(3):  # later ticks say nothing more and page nobody
        app.clock.advance(2 * 3600)
        await alerts_of(slack).tick()
    assert app.clock.now() < row[0] and dms(fake, "U04") == []
    assert len([t for t in thread_texts(fake) if QUIET in t]) == 1

    app.clock.set(row[0])  # 07:00: nobody acknowledged it
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: dms(fake, "U04"))
    assert (
        dms(fake, "U04")[0].args["text"].startswith("You are paged (secondary, step 2 of 3): 🟠 P1")
    )


async def test_a_p0_pages_at_once_in_the_quiet_hours(slack_http):
    slack = await slack_http(quiet_policy("22:00-07:00"), clock=ManualClock())
    fake, app = slack.fake, slack.app
    now = app.clock.now()
    await emit(app, BreakerOpened(at=now, scope=AGENT, trip="spend", reason="r"))
    await alerts_of(slack).process()
    await fake.wait_for(lambda: dms(fake, "U01"))
    assert "You are paged (primary" in dms(fake, "U01")[0].args["text"]
    assert not any(QUIET in t for t in thread_texts(fake))


async def test_escalate_now_pages_in_the_quiet_hours(slack_http):
    slack = await slack_http(quiet_policy("22:00-07:00"), clock=ManualClock())
    fake, app = slack.fake, slack.app
    alert_id = await p1(slack)
    app.clock.advance(31 * 60)
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: any(QUIET in t for t in thread_texts(fake)))
    await slack.command(f"escalate {alert_id}", user="U02")
    await fake.wait_for(lambda: dms(fake, "U04"))


async def test_a_p1_acknowledged_in_the_night_pages_nobody_in_the_morning(slack_http):
    slack = await slack_http(quiet_policy("22:00-07:00"), clock=ManualClock())
    fake, app = slack.fake, slack.app
    alert_id = await p1(slack)
    app.clock.advance(31 * 60)
    await alerts_of(slack).tick()
    await slack.command(f"ack {alert_id}", user="U02")
    app.clock.set(1_767_225_600.0 + 7 * 3600 + 60)
    await alerts_of(slack).tick()
    assert dms(fake, "U04") == []


async def test_outside_its_days_a_p1_pages_as_ever(slack_http):
    # 2026-01-01 is a Thursday: quiet only at weekends
    quiet = {"hours": "22:00-07:00", "days": "sat-sun"}
    slack = await slack_http(quiet_policy(quiet), clock=ManualClock())
    fake, app = slack.fake, slack.app
    alert_id = await p1(slack)
    app.clock.advance(31 * 60)
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: dms(fake, "U04"))
    facts = await app.store.fetch("SELECT facts FROM alerts WHERE id = ?", (alert_id,))
    assert QUIET_UNTIL not in facts[0][0]


async def test_quiet_hours_in_their_own_time_zone(slack_http):
    # 22:00-07:00 in Tokyo (UTC+9) is 13:00-22:00 UTC: 00:31 UTC is not quiet there
    quiet = {"hours": "22:00-07:00", "timezone": "Asia/Tokyo"}
    slack = await slack_http(quiet_policy(quiet), clock=ManualClock())
    fake, app = slack.fake, slack.app
    await p1(slack)
    app.clock.advance(31 * 60)
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: dms(fake, "U04"))


async def test_a_bad_quiet_hours_value_stops_the_start_naming_the_key(app_factory):
    import pytest

    from guards.config_types import PolicyError

    for bad, said in [
        ({"hours": "22:00-31:00"}, "alerts.quiet_hours.hours.0"),
        ({}, "alerts.quiet_hours.hours: write the quiet hours"),
        ({"hours": None, "days": None}, "alerts.quiet_hours.hours: write the quiet hours"),
        ({"hours": "22:00-07:00", "tiers": ["P1"]}, "alerts.quiet_hours.tiers"),
        ({"hours": "22:00-07:00", "timezone": "Mars/Base"}, "alerts.quiet_hours.timezone"),
    ]:
        with pytest.raises(PolicyError) as info:
            await app_factory(quiet_policy(bad))
        assert said in str(info.value)


async def test_oncall_shows_the_quiet_hours_and_whether_it_is_quiet_now(slack_http):
    quiet = {"hours": "22:00-07:00", "days": "mon-fri"}
    slack = await slack_http(quiet_policy(quiet), clock=ManualClock())
    reply = await slack.command("oncall")
    assert (
        "Quiet hours 22:00-07:00 mon-fri (a P1 pages nobody in them, a P0 does): now, until 07:00"
        in reply["text"]
    )
    slack.app.clock.advance(8 * 3600)  # 08:00: not quiet
    reply = await slack.command("oncall")
    assert "(a P1 pages nobody in them, a P0 does)\n" in reply["text"] + "\n"
    assert "now, until" not in reply["text"]


MIDNIGHT = 1_767_225_600.0  # Thu 2026-01-01 00:00 UTC
SEVEN = MIDNIGHT + 7 * 3600


async def put_off_at_0031(slack: Any) -> int:
    """A P1 fired at 00:00 whose step fell due at 00:31 and was put off to 07:00."""
    alert_id = await p1(slack)
    slack.app.clock.advance(31 * 60)
    await alerts_of(slack).tick()
    rows = await slack.app.store.fetch("SELECT esc_at FROM alerts WHERE id = ?", (alert_id,))
    assert rows[0][0] == SEVEN
    return alert_id


async def test_quiet_hours_taken_out_at_a_reload_let_a_put_off_p1_page_at_once(
    slack_http, tmp_path
):
    """review23 lead M1: the P1 put off to 07:00 waited for 07:00 after a reload that took
    the quiet hours out (a reload is a restart on the same file)."""
    db, clock = tmp_path / "q.db", ManualClock()
    first = await slack_http(quiet_policy("22:00-07:00"), clock=clock, db=db)
    await put_off_at_0031(first)
    await first.app.ns.stop()

    clock.advance(10 * 60)
    second = await slack_http(POLICY, clock=clock, db=db)
    await alerts_of(second).tick()
    await second.fake.wait_for(lambda: dms(second.fake, "U04"))


async def test_quiet_hours_shortened_at_a_reload_page_at_their_new_end(slack_http, tmp_path):
    db, clock = tmp_path / "q.db", ManualClock()
    first = await slack_http(quiet_policy("22:00-07:00"), clock=clock, db=db)
    alert_id = await put_off_at_0031(first)
    await first.app.ns.stop()

    second = await slack_http(quiet_policy("22:00-02:00"), clock=clock, db=db)
    await alerts_of(second).tick()
    rows = await second.app.store.fetch("SELECT esc_at FROM alerts WHERE id = ?", (alert_id,))
    assert rows[0][0] == MIDNIGHT + 2 * 3600
    clock.advance(31)  # past update_interval: the message is drawn again
    await alerts_of(second).tick()
    await second.fake.wait_for(
        lambda: "rotation:secondary at 02:00" in str(channel_message(second.fake))
    )
    clock.set(MIDNIGHT + 2 * 3600)
    await alerts_of(second).tick()
    await second.fake.wait_for(lambda: dms(second.fake, "U04"))


async def test_unack_in_the_quiet_hours_says_when_it_really_pages(slack_http):
    """review23 lead M2: /agent unack at 01:31 promised a page at 02:01, put off to 07:00."""
    slack = await slack_http(quiet_policy("22:00-07:00"), clock=ManualClock())
    fake, app = slack.fake, slack.app
    alert_id = await put_off_at_0031(slack)
    await slack.command(f"ack {alert_id}", user="U02")
    app.clock.advance(60 * 60)
    reply = await slack.command(f"unack {alert_id}", user="U02")
    assert "07:00" in str(reply), reply
    assert "02:01" not in str(reply)
    rows = await app.store.fetch("SELECT esc_at FROM alerts WHERE id = ?", (alert_id,))
    assert rows[0][0] == SEVEN
    audit = await app.store.fetch("SELECT detail FROM audit WHERE action = 'alert.unack'")
    assert "07:00" in audit[0][0]
    app.clock.set(SEVEN)
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: dms(fake, "U04"))


async def test_days_alone_are_whole_quiet_days_and_the_note_names_the_day_they_end(slack_http):
    """review23 lead M3: a quiet weekend could not be written (days without hours were
    refused, 00:00-24:00 too), and the note said "before 00:00" for Monday 00:00."""
    slack = await slack_http(quiet_policy({"days": ["sat", "sun"]}), clock=ManualClock())
    fake, app = slack.fake, slack.app
    app.clock.set(MIDNIGHT + 2 * 86400 + 10 * 3600)  # Sat 3 Jan, 10:00
    alert_id = await p1(slack)
    app.clock.advance(31 * 60)
    await alerts_of(slack).tick()
    await fake.wait_for(
        lambda: any("a P1 pages nobody before Mon 00:00" in t for t in thread_texts(fake))
    )
    rows = await app.store.fetch("SELECT esc_at FROM alerts WHERE id = ?", (alert_id,))
    assert rows[0][0] == MIDNIGHT + 4 * 86400  # Mon 5 Jan 00:00
    reply = await slack.command("oncall")
    assert (
        "Quiet hours sat-sun (a P1 pages nobody in them, a P0 does): now, until Mon 00:00"
        in (reply["text"])
    )


async def test_a_p1_firing_again_in_the_night_keeps_its_quiet_mark(slack_http):
    """review23 lead L7: a new firing dropped the mark, so the night's note could repeat."""
    slack = await slack_http(quiet_policy("22:00-07:00"), clock=ManualClock())
    app = slack.app
    alert_id = await put_off_at_0031(slack)
    await p1(slack)  # fires again: the same alert, bumped
    facts = await app.store.fetch("SELECT facts, count FROM alerts WHERE id = ?", (alert_id,))
    assert QUIET_UNTIL in facts[0][0] and facts[0][1] == 2


async def test_the_alerts_story_says_its_step_was_put_off_to_the_end_of_the_quiet_hours(
    slack_http,
):
    """closing23: `/agent alert` said nothing of the night's wait, so a post-mortem read
    a P1 that paged nobody for seven hours as a chain that failed."""
    slack = await slack_http(quiet_policy("22:00-07:00"), clock=ManualClock())
    alert_id = await put_off_at_0031(slack)
    for _ in range(3):  # later ticks in the same night: told once
        slack.app.clock.advance(3600)
        await alerts_of(slack).tick()
    story = (await slack.command(f"alert {alert_id}"))["text"]
    [line] = [t for t in story.splitlines() if "quiet_hours" in t]
    assert line.startswith("`00:31`") and "pages at 07:00" in line, line
    assert "nightshift" in line
