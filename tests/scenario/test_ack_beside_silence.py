"""An acknowledgement stays on an alert's messages when the alert is also silenced or
resolved (audit11 races L3): a silence and an acknowledgement at the same instant left
only "silenced" on the message, and anyone reading the channel concluded nobody took it.

The real app in Slack HTTP mode against the fake Slack Web API, signed requests, a
ManualClock (2026-01-01 00:00 UTC).
"""

from __future__ import annotations

import asyncio

from guards.clock import ManualClock
from tests.scenario.test_slack_races import ADMIN, ALERTS, contexts
from tests.scenario.test_stale_clicks import (
    STALE_POLICY,
    answer,
    audit,
    click,
    message,
    p0_paged,
    settled,
)


async def test_an_acknowledgement_stays_on_the_message_when_the_alert_is_silenced_and_resolved(
    slack_http,
):
    """U01 silences and U02 acknowledges at the same instant: both are on every copy, and
    the acknowledgement stays once the alert is resolved."""
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    fake = slack.fake
    ts, dm_ts = await p0_paged(slack)
    blocks = message(slack, ALERTS, ts)["blocks"]
    slack.app.clock.advance(60)
    await asyncio.gather(
        click(slack, "alert_silence_1h", ALERTS, ts, user="U01", blocks=blocks),
        click(slack, "alert_ack", ALERTS, ts, user="U02", blocks=blocks),
    )
    assert await answer(slack, "U02") == "👀 you acknowledged #1 at 00:01"
    assert await answer(slack, "U01") == "🔕 you silenced #1 for 1h (until 01:01)"
    acked = "👀 acknowledged by <@U02> at 00:01 (1m after it fired)"
    silenced = "🔕 silenced by <@U01> at 00:01 until 01:01; firings are still counted"

    def lines(channel: str, at: str) -> list[str]:
        return contexts(message(slack, channel, at))

    await fake.wait_for(lambda: {acked, silenced} <= set(lines(ALERTS, ts)))
    await fake.wait_for(lambda: {acked, silenced} <= set(lines("U01", dm_ts)))
    await settled(slack)
    assert acked in message(slack, ALERTS, ts)["text"]  # the notification text says it too

    slack.app.clock.advance(60)
    await click(slack, "alert_resolve", ALERTS, ts, user=ADMIN)
    resolved = f"✅ resolved by <@{ADMIN}> at 00:02"
    await fake.wait_for(lambda: resolved in lines(ALERTS, ts) and resolved in lines("U01", dm_ts))
    for shown in (lines(ALERTS, ts), lines("U01", dm_ts)):
        assert acked in shown and shown.index(acked) < shown.index(resolved)
    [(by, *_)] = await audit(slack.app, "alert.ack")
    assert by == "U02"
