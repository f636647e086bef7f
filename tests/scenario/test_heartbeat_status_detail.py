"""What an agent's last heartbeat said (``detail``) next to its status word in ``/agent
status`` (audit26 A3 M2): through HTTP and the signed Slack command, on the injected clock."""

from __future__ import annotations

from typing import Any

import httpx

from guards.clock import ManualClock

BOT = "acme/alice/rss-bot"
POLICY = {
    "channels": {"alerts": "C0ALERTS"},
    "heartbeats": {"timeout_seconds": "60s", "misses_before_alert": 2},
    "oncall": {"rotations": [{"name": "ops", "users": ["U01"]}]},
}
HOSTILE = "<!channel> rate limited\r\n\tby *upstream* <https://evil.example|click>"


async def beat(app: Any, **body: Any) -> httpx.Response:
    tok = await app.token("acme/alice")
    r: httpx.Response = await app.request(
        "POST", "/v1/heartbeats", token=tok, json={"scope": BOT, **body}
    )
    return r


async def test_status_shows_the_detail_next_to_the_status_word(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    assert (
        await beat(app, status="degraded", detail="rate limited by upstream")
    ).status_code == 204
    status = (await slack.command("status"))["text"]
    assert "♥ 0s ago (degraded: rate limited by upstream)" in status, status

    # the agent's words, made safe: one line, escaped, cut with "…"
    assert (await beat(app, detail=HOSTILE + " and more" * 30)).status_code == 204
    line = next(s for s in (await slack.command("status"))["text"].splitlines() if BOT in s)
    assert "(&lt;!channel&gt; rate limited by *upstream* &lt;https://evil.example|click&gt;" in line
    assert "<!channel>" not in line and "\t" not in line and "…)" in line
    said = line.split("ago (", 1)[1].split(")", 1)[0]
    assert len(said.replace("&lt;", "<").replace("&gt;", ">")) == 80 + 1  # cut, "…", escaped


async def test_a_missed_heartbeat_in_status_says_what_the_last_one_said(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    assert (
        await beat(app, status="degraded", detail="rate limited\nby upstream")
    ).status_code == 204
    app.clock.advance(120)
    await app.ns.extras["alerts"].tick()
    status = (await slack.command("status"))["text"]
    assert "💔 heartbeat missed (last " in status and ": rate limited by upstream)" in status


async def test_no_detail_shows_the_status_word_alone(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    assert (await beat(slack.app, status="ok")).status_code == 204
    assert "♥ 0s ago (ok) ·" in (await slack.command("status"))["text"]
