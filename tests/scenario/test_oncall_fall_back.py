"""The night the clocks go back (H1 session 25): rotation hours, quiet hours and hand-offs
at the wall times the clock shows twice.

America/New_York goes back on Sun 01 Nov 2026 at 02:00 EDT (06:00 UTC): 01:00-02:00 is
shown twice (EDT, then EST). Europe/Berlin goes back on Sun 25 Oct 2026 at 03:00 CEST
(01:00 UTC): 02:00-03:00 is shown twice (CEST, then CET).

What a person on call expects: a range of hours covers each wall time it names as often
as the clock shows it (so ``22:00-01:30`` lasts an hour longer that night, and is not off
hours at the second 01:15: no gap), its hours begin once (no second shift-start DM), an
"until" is never a time already past (``01:30 EST``), and a hand-off at a time shown
twice happens at the first one, once.

The real app in Slack HTTP mode against the fake Slack Web API, on a ManualClock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.alerts.shift_start import tick as shift_tick
from guards.clock import ManualClock
from guards.events import BreakerOpened
from tests.scenario.test_alerts import ALERTS, POLICY, alerts_of, dms, emit
from tests.scenario.test_oncall_ahead import shift_dms
from tests.scenario.test_oncall_hours import page, thread_notes

ADMIN = "U0ADMIN"
NY = "America/New_York"
BERLIN = "Europe/Berlin"


def utc(text: str) -> float:
    """``"2026-11-01 06:15"`` read in UTC, as an instant."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# New York, the night of Sat 31 Oct to Sun 01 Nov 2026
NY_2200_EDT = utc("2026-11-01 02:00")
NY_0115_EDT = utc("2026-11-01 05:15")
NY_0145_EDT = utc("2026-11-01 05:45")  # after the first 01:30
NY_0115_EST = utc("2026-11-01 06:15")  # the second 01:15
NY_0130_EST = utc("2026-11-01 06:30")
NY_0145_EST = utc("2026-11-01 06:45")
# Berlin, the night of Sat 24 to Sun 25 Oct 2026
BERLIN_0215_CEST = utc("2026-10-25 00:15")
BERLIN_0245_CEST = utc("2026-10-25 00:45")
BERLIN_0215_CET = utc("2026-10-25 01:15")
BERLIN_0245_CET = utc("2026-10-25 01:45")


def night_policy(zone: str, hours: str, **oncall: Any) -> dict[str, Any]:
    """A night rotation limited to ``hours`` in ``zone``, then a day rotation always on."""
    return {
        "admins": [ADMIN],
        "timezone": zone,
        "channels": {"alerts": ALERTS},
        "alerts": {"repeat_escalation": 0},
        "oncall": {
            "rotations": [
                {"name": "night", "users": ["U0NIGHT"], "timezone": zone, "hours": hours},
                {"name": "day", "users": ["U0DAY"]},
            ],
            "escalation": [
                {"notify": "rotation:night", "after": "0m"},
                {"notify": "rotation:day", "after": "5m"},
            ],
            **oncall,
        },
    }


async def test_new_york_hours_cover_both_passes_of_the_repeated_hour(slack_http):
    slack = await slack_http(night_policy(NY, "22:00-01:30"), clock=ManualClock(NY_0115_EDT))
    assert await page(slack, "acme/a/first-0115") == [(0, "U0NIGHT")]
    slack.app.clock.set(NY_0145_EDT)  # reads 01:45, but 01:00-01:30 comes again: on hours
    assert await page(slack, "acme/a/first-0145") == [(0, "U0NIGHT")]
    slack.app.clock.set(NY_0115_EST)  # the second 01:15 is in 22:00-01:30: no gap
    assert await page(slack, "acme/a/second-0115") == [(0, "U0NIGHT")]
    text = (await slack.command("oncall"))["text"]
    assert "<@U0NIGHT> · off hours" not in text, text
    slack.app.clock.set(NY_0145_EST)  # now the hours are over, until tonight
    assert await page(slack, "acme/a/second-0145") == [(0, None), (1, "U0DAY")]
    await slack.fake.wait_for(lambda: thread_notes(slack))
    assert thread_notes(slack)[-1].startswith(
        "⚠️ Step 1 of 2 pages nobody: rotation night is off hours until 22:00 (America/New_York)"
    ), thread_notes(slack)
    text = (await slack.command("oncall"))["text"]
    assert "<@U0NIGHT> · off hours until 22:00 (America/New_York)" in text, text


async def test_berlin_hours_cover_both_passes_of_the_repeated_hour(slack_http):
    slack = await slack_http(
        night_policy(BERLIN, "22:00-02:30"), clock=ManualClock(BERLIN_0215_CEST)
    )
    assert await page(slack, "acme/a/first-0215") == [(0, "U0NIGHT")]
    slack.app.clock.set(BERLIN_0245_CEST)
    assert await page(slack, "acme/a/first-0245") == [(0, "U0NIGHT")]
    slack.app.clock.set(BERLIN_0215_CET)  # the second 02:15
    assert await page(slack, "acme/a/second-0215") == [(0, "U0NIGHT")]
    slack.app.clock.set(BERLIN_0245_CET)
    assert await page(slack, "acme/a/second-0245") == [(0, None), (1, "U0DAY")]


async def test_the_shift_start_dm_names_the_last_0130_and_comes_once(slack_http):
    policy = night_policy(NY, "22:00-01:30", notify_shift_start=True)
    slack = await slack_http(policy, clock=ManualClock(NY_2200_EDT))
    assert await shift_tick(slack.app.ns) == 2  # night's hours begin; day is on call
    assert await shift_dms(slack, "U0NIGHT") == [
        "You are on call for night until Sun 01 Nov 01:30 EST (America/New_York),"
        " the end of its hours."
    ]
    for at in (NY_0115_EDT, NY_0145_EDT, NY_0115_EST, NY_0145_EST):
        slack.app.clock.set(at)
        assert await shift_tick(slack.app.ns) == 0, at  # told once: no second start
    assert len(await shift_dms(slack, "U0NIGHT")) == 1


async def test_a_hand_off_at_a_time_shown_twice_happens_at_the_first_once(slack_http):
    policy = night_policy(NY, "22:00-01:30", notify_shift_start=True)
    policy["oncall"]["rotations"] = [
        {
            "name": "pair",
            "users": ["U0ANN", "U0BOB"],
            "period": "day",
            "handoff": "01:30",
            "timezone": NY,
            "start": "2026-10-31",  # Ann from Sat 01:30, Bob from Sun 01:30 (EDT)
        }
    ]
    policy["oncall"]["escalation"] = [{"notify": "rotation:pair", "after": "0m"}]
    slack = await slack_http(policy, clock=ManualClock(NY_0115_EDT))
    assert await page(slack, "acme/a/ann") == [(0, "U0ANN")]
    slack.app.clock.set(NY_0145_EDT)  # after the first 01:30: Bob's
    assert await page(slack, "acme/a/bob") == [(0, "U0BOB")]
    assert await shift_tick(slack.app.ns) == 1
    text = (await slack.command("oncall"))["text"]
    assert "next hand-off Mon 02 Nov 01:30 EST → <@U0ANN>" in text, text
    for at in (NY_0115_EST, NY_0130_EST, NY_0145_EST):  # the second pass hands off nothing
        slack.app.clock.set(at)
        assert await page(slack, f"acme/a/bob-{at:.0f}") == [(0, "U0BOB")]
        assert await shift_tick(slack.app.ns) == 0
    assert await shift_dms(slack, "U0BOB") == [
        "You are on call for pair until Mon 02 Nov 01:30 (America/New_York), then <@U0ANN>."
    ]


def quiet_policy(quiet: Any) -> dict[str, Any]:
    alerts = {**POLICY["alerts"], "quiet_hours": quiet}
    return {**POLICY, "timezone": NY, "alerts": alerts}


async def test_quiet_hours_end_at_the_last_0130_and_the_note_says_which(slack_http):
    slack = await slack_http(
        quiet_policy("22:00-01:30"), clock=ManualClock(utc("2026-11-01 04:50"))
    )
    fake, app = slack.fake, slack.app
    scope = "acme/team/bot-01"
    await emit(app, BreakerOpened(at=app.clock.now(), scope=scope, trip="failures", reason="r"))
    await alerts_of(slack).process()  # a P1 at 00:50 EDT: its step falls due at 01:20 EDT
    app.clock.set(utc("2026-11-01 05:20"))
    await alerts_of(slack).tick()
    [row] = await app.store.fetch("SELECT esc_at FROM alerts WHERE scope = ?", (scope,))
    assert row[0] == NY_0130_EST  # the last 01:30 of the night, not the first
    note = "🌙 Quiet hours: a P1 pages nobody before 01:30 EST"
    await fake.wait_for(
        lambda: any(
            note in str(c.args["text"]) for c in fake.posts(ALERTS) if c.args.get("thread_ts")
        )
    )
    quiet = (await slack.command("oncall"))["text"]
    assert "now, until 01:30 EST" in quiet, quiet
    for at in (NY_0145_EDT, NY_0115_EST):  # still the quiet hours' wall times: nobody paged
        app.clock.set(at)
        await alerts_of(slack).tick()
    assert dms(fake, "U04") == []
    app.clock.set(NY_0130_EST)
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: dms(fake, "U04"))
