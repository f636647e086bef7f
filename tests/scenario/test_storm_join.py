"""A heartbeat blip read by two watchdog ticks is one storm for each person (audit27 B2 L5).

The real app in Slack HTTP mode against the fake Slack Web API, a ManualClock (starts
2026-01-01 00:00 UTC), the policy's defaults for folding (``alerts.fold_after`` 10,
``fold_pages_after`` 1). 200 agents beat, 108 of them two seconds before the others,
then all go silent: the watchdog finds them in two ticks two seconds apart. The first
tick's pages reach U01 as one page and one "Alert storm" summary; the second tick's
alerts come once that summary went out, and join it (an edit) instead of buzzing again.
"""

from __future__ import annotations

from typing import Any

from guards.clock import ManualClock
from guards.events import BreakerOpened
from tests.scenario.test_alerts import ALERTS, POLICY, alerts_of, dms, emit
from tests.scenario.test_stale_clicks import answer, buttons, click, message, settled

AGENTS = 200
FIRST = 108  # the agents the first tick finds
JOIN_POLICY: dict[str, Any] = {
    **POLICY,
    "heartbeats": {"timeout_seconds": "60s", "misses_before_alert": 2},
}


def agent(i: int) -> str:
    return f"acme/team/agent-{i:03d}"


async def beat(app: Any, agents: range) -> None:
    tok = await app.token("acme/team")
    for i in agents:
        r = await app.request("POST", "/v1/heartbeats", token=tok, json={"scope": agent(i)})
        assert r.status_code == 204, r.text


def summaries(fake: Any, channel: str) -> list[Any]:
    return [c for c in fake.posts(channel) if "Alert storm" in str(c.args.get("text"))]


async def test_a_blip_read_in_two_ticks_buzzes_each_person_twice_and_one_summary_takes_it(
    slack_http,
):
    slack = await slack_http(JOIN_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    alerts = alerts_of(slack)
    await beat(app, range(FIRST))
    app.clock.advance(2)
    await beat(app, range(FIRST, AGENTS))
    app.clock.advance(118)  # 2 × 60 s since the first beats
    await alerts.tick()
    await alerts.process()
    await fake.wait_for(lambda: summaries(fake, "U01") and summaries(fake, ALERTS))
    await settled(slack)  # the first tick's summaries went out
    app.clock.advance(2)  # the next tick finds the other 92
    await alerts.tick()
    await alerts.process()
    await settled(slack)
    rows = await app.store.fetch("SELECT COUNT(*) FROM alerts WHERE kind = 'heartbeat_missed'")
    assert rows[0][0] == AGENTS

    # U01: the first page, then one summary; the second tick's alerts edited it
    pages = dms(fake, "U01")
    assert len(pages) == 2, [c.args["text"][:60] for c in pages]
    assert pages[0].args["text"].startswith("You are paged (primary, step 1 of 3): 🔴 P0")
    assert agent(0) in pages[0].args["text"]
    ts = str(pages[1].response["ts"])
    shown = message(slack, "U01", ts)
    assert shown["text"].startswith("🔴 Alert storm · 199 alerts: 🔴 P0 · *Heartbeat missed* × 199")
    lead = shown["blocks"][1]["text"]["text"]
    assert lead == (
        "*You are paged for 199 alerts at once*: they came while your earlier pages were"
        " still on their way or in the minute after, so they are folded into this one"
        " message (edited as they came). Acknowledge all takes this storm's first page"
        " above too (`#1`)."
    )
    assert "storm_ack" in buttons(shown)

    # the channel: its first ten posts on their own, then one summary that took the rest
    posts = [c for c in fake.posts(ALERTS) if not c.args.get("thread_ts")]
    assert len(posts) == 11 and len(summaries(fake, ALERTS)) == 1
    channel_ts = str(summaries(fake, ALERTS)[0].response["ts"])
    assert message(slack, ALERTS, channel_ts)["text"].startswith("<@U01> 🔴 Alert storm · 190")

    # a minute after the summary began, an alert pages on its own again
    app.clock.advance(61)
    now = app.clock.now()
    await emit(app, BreakerOpened(at=now, scope="acme/other/bot", trip="spend", reason="r"))
    await alerts.process()
    await fake.wait_for(lambda: len(dms(fake, "U01")) == 3)
    late = dms(fake, "U01")[2].args["text"]
    assert late.startswith("You are paged (primary, step 1 of 3): 🔴 P0 · Breaker opened")
    await settled(slack)
    assert "Breaker opened" not in str(message(slack, "U01", ts)["blocks"])  # not joined

    # Acknowledge all takes every alert the summary holds, and the first page's (FR4 item 2:
    # its chain went on, paging again 5 minutes later); not the page after the minute
    await click(slack, "storm_ack", "U01", ts, user="U01")
    assert await answer(slack, "U01") == (
        "✅ you acknowledged 200 alerts of this storm (199 here and the page before) at 00:03."
    )
    open_rows = await app.store.fetch("SELECT scope FROM alerts WHERE acked_at IS NULL ORDER BY id")
    assert [r[0] for r in open_rows] == ["acme/other/bot"]
    await fake.wait_for(lambda: "storm_ack" not in buttons(message(slack, "U01", ts)))
    after = message(slack, "U01", ts)
    assert after["text"].startswith("🔴 Alert storm · 199 alerts")  # what it listed stays
    # the numbers agree with its head (recheck27 Kd: "199 alerts" read "✅ 200 acknowledged")
    assert after["text"].endswith(
        "[✅ 200 acknowledged (199 here and the page before) by <@U01> at 00:03]"
    )
    await settled(slack)
    first = message(slack, "U01", str(pages[0].response["ts"]))
    assert "acknowledged by <@U01> at 00:03" in str(first["blocks"])  # as a single ack edits it
