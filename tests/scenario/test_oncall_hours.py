"""Follow-the-sun (audit27 parity #6): a Berlin team and a San Francisco team share the
chain, each on call 08:00-20:00 in its own zone; a step off hours is passed over.

The clock starts on Thu 01 Jan 2026 00:00 UTC: 01:00 in Berlin, Wed 16:00 in San
Francisco. The policy's own zone is UTC.
"""

from __future__ import annotations

import json
from typing import Any

from bot.alerts.shift_start import tick as shift_tick
from guards.clock import ManualClock
from guards.events import BreakerOpened
from tests.scenario.test_alerts import ALERTS, alerts_of, emit
from tests.scenario.test_oncall_ahead import shift_dms

ADMIN = "U0ADMIN"
HOUR = 3600
START = 1_767_225_600.0  # Thu 01 Jan 2026 00:00 UTC
BERLIN_3AM = START + 2 * HOUR  # Wed 18:00 in San Francisco
BERLIN_7AM = START + 6 * HOUR  # Wed 22:00 in San Francisco: both teams off
BERLIN_10AM = START + 9 * HOUR  # Thu 01:00 in San Francisco


def policy(**oncall: Any) -> dict[str, Any]:
    return {
        "admins": [ADMIN],
        "channels": {"alerts": ALERTS},
        "alerts": {"repeat_escalation": 0},
        "oncall": {
            "rotations": [
                {
                    "name": "eu",
                    "users": ["U0DANA"],
                    "timezone": "Europe/Berlin",
                    "hours": "08:00-20:00",
                },
                {
                    "name": "us",
                    "users": ["U0SAM"],
                    "timezone": "America/Los_Angeles",
                    "hours": "08:00-20:00",
                    "days": "mon-fri",
                },
            ],
            "escalation": [
                {"notify": "rotation:eu", "after": "0m"},
                {"notify": "rotation:us", "after": "5m"},
            ],
            **oncall,
        },
    }


async def page(slack: Any, scope: str = "acme/alice/bot") -> list[tuple[Any, ...]]:
    """A P0 on ``scope`` now, its chain run: the escalations taken for it."""
    now = slack.app.clock.now()
    await emit(slack.app, BreakerOpened(at=now, scope=scope, trip="spend", reason="r"))
    await alerts_of(slack).process()
    rows = await slack.app.store.fetch(
        "SELECT e.step, e.target FROM escalations e JOIN alerts a ON a.id = e.alert_id"
        " WHERE a.scope = ? ORDER BY e.id",
        (scope,),
    )
    return [tuple(r) for r in rows]


def thread_notes(slack: Any) -> list[str]:
    return [t for t in slack.fake.texts() if "pages nobody" in t]


async def dms(slack: Any, user: str) -> list[str]:
    rows = await slack.app.store.fetch(
        "SELECT args FROM outbox WHERE channel = ? AND method = 'chat.postMessage' ORDER BY id",
        (user,),
    )
    return [json.loads(r["args"])["text"] for r in rows]


async def test_at_3am_in_berlin_berlin_is_passed_over_and_san_francisco_paged(slack_http):
    slack = await slack_http(policy(), clock=ManualClock(BERLIN_3AM))
    assert await page(slack) == [(0, None), (1, "U0SAM")]  # at once: not 5 minutes later
    assert not await dms(slack, "U0DANA")
    await slack.fake.wait_for(lambda: thread_notes(slack))
    [note] = thread_notes(slack)
    assert note == (
        "⚠️ Step 1 of 2 pages nobody: rotation eu is off hours until 08:00"
        " (Europe/Berlin): passed over (`/agent oncall` shows who is on call)."
    )
    [post] = [c for c in slack.fake.posts(ALERTS) if not c.args.get("thread_ts")]
    assert post.args["text"].startswith("<@U0SAM> 🔴 P0"), post.args["text"]  # not Berlin's


async def test_at_10am_in_berlin_berlin_is_paged(slack_http):
    slack = await slack_http(policy(), clock=ManualClock(BERLIN_10AM))
    assert await page(slack) == [(0, "U0DANA")]
    slack.app.clock.advance(5 * 60)
    await alerts_of(slack).tick()
    assert await page(slack) == [(0, "U0DANA"), (1, None)]  # SF is asleep: passed over


async def test_nobody_on_hours_still_pages_the_first_steps_person(slack_http):
    repeating = {**policy(), "alerts": {"repeat_escalation": 2, "repeat_escalation_after": "10m"}}
    slack = await slack_http(repeating, clock=ManualClock(BERLIN_7AM))
    assert await page(slack) == [(0, "U0DANA")]
    [dm] = await dms(slack, "U0DANA")
    said = "nobody in the chain is on hours (eu's begin at 08:00 Europe/Berlin)"
    assert said in dm, dm
    note = f"⚠️ {said}: paging <@U0DANA> anyway."
    await slack.fake.wait_for(lambda: note in slack.fake.texts())
    for _ in range(4):  # the chain's next round pages her again: the thread is told once
        slack.app.clock.advance(10 * 60)
        await alerts_of(slack).tick()
    assert len(await dms(slack, "U0DANA")) > 1
    rows = await slack.app.store.fetch("SELECT args FROM outbox WHERE args LIKE '%anyway.%'")
    assert [json.loads(r["args"])["text"] for r in rows] == [note]


async def test_saturday_is_off_for_san_francisco(slack_http):
    sat_noon_sf = START + 3 * 86_400 + 20 * HOUR  # Sat 03 Jan 12:00 in SF, 21:00 Berlin
    slack = await slack_http(policy(), clock=ManualClock(sat_noon_sf))
    assert await page(slack) == [(0, "U0DANA")]  # nobody on hours: the first step's


async def test_an_override_inside_off_hours_is_paged(slack_http):
    slack = await slack_http(policy(), clock=ManualClock(BERLIN_3AM))
    reply = await slack.command("oncall override <@U0COVER> 2h eu")
    assert reply["text"].startswith("<@U0COVER> is on call for eu"), reply["text"]
    assert await page(slack) == [(0, "U0COVER")]


async def test_oncall_shows_an_off_hours_rotation(slack_http):
    slack = await slack_http(policy(), clock=ManualClock(BERLIN_3AM))
    text = (await slack.command("oncall"))["text"]
    assert (
        "*eu* (weekly, hand-off mon 09:00 Europe/Berlin, hours 08:00-20:00): <@U0DANA>"
        " · off hours until 08:00 (Europe/Berlin)\n"
    ) in text, text
    assert (
        "*us* (weekly, hand-off mon 09:00 America/Los_Angeles, hours 08:00-20:00 mon-fri):"
        " <@U0SAM>\n"
    ) in text, text
    slack.app.clock.set(BERLIN_10AM)
    text = (await slack.command("oncall"))["text"]
    assert "<@U0SAM> · off hours until 08:00 (America/Los_Angeles)" in text, text
    assert "<@U0DANA> ·" not in text, text


async def test_the_shift_start_dm_comes_when_the_hours_begin_once_a_day(slack_http):
    slack = await slack_http(policy(notify_shift_start=True), clock=ManualClock(BERLIN_3AM))
    assert await shift_tick(slack.app.ns) == 1  # SF is on hours; Berlin sleeps
    assert await shift_dms(slack, "U0SAM") == [
        "You are on call for us until 20:00 (America/Los_Angeles), the end of its hours."
    ]
    assert await shift_dms(slack, "U0DANA") == []
    slack.app.clock.set(START + 7 * HOUR)  # 08:00 in Berlin
    assert await shift_tick(slack.app.ns) == 1
    assert await shift_dms(slack, "U0DANA") == [
        "You are on call for eu until 20:00 (Europe/Berlin), the end of its hours."
    ]
    slack.app.clock.set(START + 8 * HOUR)
    assert await shift_tick(slack.app.ns) == 0  # told once
    slack.app.clock.set(START + 31 * HOUR)  # Fri 08:00 in Berlin: a new day's hours
    assert await shift_tick(slack.app.ns) == 1
    assert len(await shift_dms(slack, "U0DANA")) == 2


async def test_hours_in_two_ranges_are_told_once_a_day(slack_http):
    split = policy(notify_shift_start=True)
    split["oncall"]["rotations"][0]["hours"] = ["08:00-12:00", "13:00-20:00"]
    slack = await slack_http(split, clock=ManualClock(START + 7 * HOUR))  # 08:00 Berlin
    assert await shift_tick(slack.app.ns) == 1
    assert await shift_dms(slack, "U0DANA") == [
        "You are on call for eu until 12:00 (Europe/Berlin), the end of its hours."
    ]
    slack.app.clock.set(START + 12 * HOUR)  # 13:00 Berlin: the second range, same day
    assert await shift_tick(slack.app.ns) == 0
    slack.app.clock.set(START + 31 * HOUR)  # Fri 08:00: the next day
    assert await shift_tick(slack.app.ns) == 1
