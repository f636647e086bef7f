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
        ({"days": "sat"}, "alerts.quiet_hours.hours: write the quiet hours"),
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
