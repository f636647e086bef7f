"""An alert's channel post after recheck25 (b): its "next: … at" line is written as the
message's other times and the thread's (the zone's abbreviation the night the clocks
show that time twice, the day when not today: M2); once a P0's chain ran out, its post
still begins with how its webhook page went, or with the person its last step paged
(L1); the shell indents each of the silences `/agent alerts` lists (L4). The real app
in Slack HTTP mode against the fake Slack Web API, a real webhook receiver on
127.0.0.1, a real SQLite file, on a ManualClock."""

from __future__ import annotations

import json
from typing import Any

from bot.shell_render import render_text
from guards.clock import ManualClock
from guards.events import BreakerOpened
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.scenario.test_alerts import ALERTS, POLICY, alerts_of, emit
from tests.scenario.test_oncall_fall_back import NY_0130_EST, NY_0145_EDT, quiet_policy, utc
from tests.scenario.test_p0_webhook_first import p0, redrawn, updates
from tests.scenario.test_webhooks import _secret, send
from tests.scenario.test_webhooks import policy as webhook_policy

__all__ = ["_secret", "webhook_receiver"]


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


def chain_of(receiver: WebhookReceiver, *steps: tuple[str, str]) -> dict[str, Any]:
    p = webhook_policy(receiver)
    p["oncall"]["escalation"] = [{"notify": n, "after": a} for n, a in steps]
    return p


async def the_last_step(slack: Any, clock: ManualClock, *, minutes: int) -> str:
    """Take the chain's last step ``minutes`` on, let the next trailing update go out;
    the text the post is then updated to (the chain ran out)."""
    clock.advance(minutes * 60)
    await alerts_of(slack).tick()
    seen = len(updates(slack))
    clock.advance(30)
    await alerts_of(slack).tick()
    await slack.fake.wait_for(lambda: len(updates(slack)) > seen)
    await slack.fake.wait_for(lambda: "chain ran out" in updates(slack)[-1])
    return updates(slack)[-1]


async def test_a_channel_step_ending_the_chain_leaves_the_webhook_named(
    slack_http, webhook_receiver
):
    clock = ManualClock()
    steps = [("webhook:pager", "0m"), ("channel", "1m")]
    slack = await slack_http(chain_of(webhook_receiver, *steps), clock=clock)
    await p0(slack)
    await send(slack)
    await redrawn(slack, clock, "📟 Paged via webhook pager: 🔴 P0")
    text = await the_last_step(slack, clock, minutes=1)
    assert text.startswith("📟 Paged via webhook pager: 🔴 P0"), text  # (README: stands)


async def test_a_failed_page_stays_said_once_the_chain_ran_out(slack_http, webhook_receiver):
    webhook_receiver.script = [404]
    clock = ManualClock()
    steps = [("webhook:pager", "0m"), ("channel", "1m")]
    slack = await slack_http(chain_of(webhook_receiver, *steps), clock=clock)
    await p0(slack)
    await send(slack)
    # the channel step is next, as the post's "next:" line says (1e3195c); once it has
    # run, the chain is out and the failed page stays said
    await redrawn(
        slack, clock, "⚠️ The page via webhook pager failed (HTTP 404); the channel is next"
    )
    failed = "⚠️ The page via webhook pager failed (HTTP 404); nobody was reached: 🔴 P0"
    text = await the_last_step(slack, clock, minutes=1)
    assert text.startswith(failed), text


async def test_a_person_paged_by_the_last_step_is_mentioned_not_as_taking_it(
    slack_http, webhook_receiver
):
    clock = ManualClock()
    steps = [("webhook:pager", "0m"), ("rotation:primary", "5m")]
    slack = await slack_http(chain_of(webhook_receiver, *steps), clock=clock)
    await p0(slack)
    await send(slack)
    await redrawn(slack, clock, "📟 Paged via webhook pager: 🔴 P0")
    text = await the_last_step(slack, clock, minutes=5)
    assert slack.fake.posts("U0ONCALL")  # paged (a DM)
    assert text.startswith("<@U0ONCALL> paged, unacknowledged: 🔴 P0"), text


async def test_the_shell_indents_every_silence_under_alerts(slack_http):
    """L4: only the first of the silences' lines was indented as a context."""
    slack = await slack_http(POLICY, clock=ManualClock())
    for scope in ("acme/b", "acme/c"):
        said = await slack.command(f"silence {scope} 1h")
        assert "silenced" in said["text"], said["text"]
    said = await slack.command("silence acme/d 1h from 22:00")
    assert "booked" in said["text"], said["text"]
    reply = await slack.command("alerts")
    shown = render_text(reply["blocks"], reply["text"]).splitlines()
    silences = [line for line in shown if "🔕" in line]
    assert len(silences) == 3, shown
    assert all(line.startswith("  🔕 ") or line.startswith("  Booked: 🔕") for line in silences), (
        silences
    )
