"""Acknowledge all on a person's page summary, which takes the storm's first pages too:
its counts, and its button once an alert of it is open again. The real app in Slack
HTTP mode against the fake Slack Web API, as tests/scenario/test_storm_ack.py: eight
agents trip on spend at once; #1-#3 page U01 on their own, #4-#8 fold into U01's
summary ("🔴 Alert storm · 5 alerts")."""

from __future__ import annotations

from bot.alerts import operations as ops
from guards.clock import ManualClock
from tests.scenario.test_alerts import alerts_of
from tests.scenario.test_stale_clicks import answer, buttons, click, message, settled
from tests.scenario.test_storm_ack import (
    ADMIN,
    STORM_POLICY,
    context_lines,
    one_storm,
    summary_of,
)


async def test_a_page_summary_s_counts_say_which_were_here_and_which_before(slack_http):
    """review28 R3 L1 and L2 on U01's page summary ("5 alerts": #4-#8; #1-#3 paged on
    their own before it): #1 and #5 resolved, its click's answer and line said "6
    acknowledged (4 here and the 2 pages before) …; 2 were already resolved", 6 for a
    5-alert head, and a second click "all 8 of its alerts are already handled"."""
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await one_storm(slack, agents=8)
    ts = await summary_of(slack, "U01")
    await settled(slack)
    assert message(slack, "U01", ts)["text"].startswith("🔴 Alert storm · 5 alerts")
    engine = alerts_of(slack).engine
    for alert_id in (1, 5):  # a page before it, and one here
        await app.store.write(
            lambda tx, a=alert_id: ops.resolve(engine, tx, alert_id=a, actor=ADMIN)
        )
    await settled(slack)
    blocks = message(slack, "U01", ts)["blocks"]
    await click(slack, "storm_ack", "U01", ts, user="U01", blocks=blocks)
    resolved = "2 were already resolved (1 here and the page before)"
    assert await answer(slack, "U01") == (
        "✅ you acknowledged 6 alerts of this storm (4 here and the 2 pages before) at 00:00;"
        f" {resolved}."
    )
    line = f"✅ 6 acknowledged (4 here and the 2 pages before) by <@U01> at 00:00; {resolved}"
    await fake.wait_for(lambda: context_lines(message(slack, "U01", ts))[-1] == line)
    await click(slack, "storm_ack", "U01", ts, user="U02", blocks=blocks)
    assert await answer(slack, "U02") == (
        "Nothing to acknowledge in this storm: all 5 of its alerts and the 3 pages before"
        " are already handled (6 acknowledged by <@U01>, 2 resolved). Nothing changed."
    )


async def test_unack_after_acknowledge_all_gives_the_summary_its_button_back(slack_http):
    """review28 R3 L4: after Acknowledge all, `/agent unack 5` paged #5 again while U01's
    summary still said "✅ 8 acknowledged …" with no button. It shows its button again;
    a second Acknowledge all takes #5 and says so."""
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    fake = slack.fake
    await one_storm(slack, agents=8)
    ts = await summary_of(slack, "U01")
    await settled(slack)
    await click(slack, "storm_ack", "U01", ts, user="U01")
    await answer(slack, "U01")
    await settled(slack)
    assert "storm_ack" not in buttons(message(slack, "U01", ts))
    said = await slack.command("unack 5", user="U01")
    assert "took back" in said["text"], said
    await fake.wait_for(lambda: "storm_ack" in buttons(message(slack, "U01", ts)))
    assert not any("✅" in c for c in context_lines(message(slack, "U01", ts)))
    # recheck28 Kb L1: it says what is still handled, not only "paged for 5 alerts"
    reopened = "7 acknowledged (4 here and the 3 pages before) by <@U01>; `#5` open again"
    assert context_lines(message(slack, "U01", ts))[-1] == reopened
    await settled(slack)
    await click(slack, "storm_ack", "U01", ts, user="U01")
    assert await answer(slack, "U01", 2) == (
        "✅ you acknowledged 1 alert of this storm at 00:00;"
        " 7 were already acknowledged (4 here and the 3 pages before) by <@U01>."
    )
    await settled(slack)
    lines = context_lines(message(slack, "U01", ts))
    assert lines[-1].startswith("✅ 1 acknowledged by <@U01>")
    assert not [c for c in lines if "open again" in c]  # (handled again: that line goes)
    # recheck28 Kb L2: the audit says the split the line says, and a mention Slack shows
    rows = await slack.app.store.fetch(
        "SELECT detail FROM audit WHERE action = 'alert.ack_storm' ORDER BY id"
    )
    assert [r[0] for r in rows] == [
        "8 acknowledged (5 here and the 3 pages before)",
        "1 acknowledged; 7 were already acknowledged (4 here and the 3 pages before) by <@U01>",
    ]
    shown = (await slack.command("audit 5 each", user=ADMIN))["text"]
    assert "(8 acknowledged (5 here and the 3 pages before))" in shown
    assert "(4 here and the 3 pages before) by <@U01>)" in shown and "&lt;@" not in shown
