"""An alert's channel post after recheck25 (b): its "next: … at" line is written as the
message's other times and the thread's (the zone's abbreviation the night the clocks
show that time twice, the day when not today: M2). The real app in Slack HTTP mode
against the fake Slack Web API, a real SQLite file, on a ManualClock."""

from __future__ import annotations

import json
from typing import Any

from guards.clock import ManualClock
from guards.events import BreakerOpened
from tests.scenario.test_alerts import ALERTS, alerts_of, emit
from tests.scenario.test_oncall_fall_back import NY_0130_EST, NY_0145_EDT, quiet_policy, utc


def drawn(slack: Any) -> list[str]:
    """Every text the alerts channel's posts were drawn with, blocks included, in order."""
    calls = [
        c
        for c in slack.fake.calls
        if c.method in ("chat.postMessage", "chat.update")
        and c.args.get("channel") == ALERTS
        and not c.args.get("thread_ts")
    ]
    return [json.dumps(c.args, ensure_ascii=False) for c in calls]


async def a_quiet_p1(slack: Any, *, scope: str) -> None:
    app = slack.app
    await emit(app, BreakerOpened(at=app.clock.now(), scope=scope, trip="failures", reason="r"))
    await alerts_of(slack).process()


async def test_the_next_step_the_night_the_clocks_go_back_names_its_zone(slack_http):
    slack = await slack_http(
        quiet_policy("22:00-01:30"), clock=ManualClock(utc("2026-11-01 04:50"))
    )
    app = slack.app
    await a_quiet_p1(slack, scope="acme/team/bot-01")  # at 00:50 EDT: due at 01:20 EDT
    app.clock.set(utc("2026-11-01 05:20"))
    await alerts_of(slack).tick()  # put off to the end of the quiet hours: 01:30 EST
    [row] = await app.store.fetch("SELECT esc_at FROM alerts")
    assert row[0] == NY_0130_EST
    app.clock.set(NY_0145_EDT)  # the message is redrawn at 01:45 EDT
    await alerts_of(slack).tick()
    await slack.fake.wait_for(lambda: any("next: rotation:secondary at" in t for t in drawn(slack)))
    [line] = {t.split("next: ")[1].split('"')[0] for t in drawn(slack) if "next: rotation:" in t}
    assert line == "rotation:secondary at 01:30 EST", line  # not "at 01:30": 15 minutes ago


async def test_a_next_step_days_ahead_names_its_day(slack_http):
    # Fri 06 Nov 2026 23:00 EST: quiet all weekend, so the step waits for Monday 00:00
    slack = await slack_http(
        quiet_policy({"days": ["sat", "sun"]}), clock=ManualClock(utc("2026-11-07 04:00"))
    )
    app = slack.app
    await a_quiet_p1(slack, scope="acme/team/bot-02")
    app.clock.set(utc("2026-11-07 09:00"))  # Sat 04:00: its step fell due in quiet hours
    await alerts_of(slack).tick()
    app.clock.set(utc("2026-11-07 09:01"))
    await alerts_of(slack).tick()
    await slack.fake.wait_for(lambda: any("next: rotation:secondary at" in t for t in drawn(slack)))
    lines = [t.split("next: ")[1].split('"')[0] for t in drawn(slack) if "next: rotation:" in t]
    assert lines[-1] == "rotation:secondary at Mon 09 Nov 00:00", lines
