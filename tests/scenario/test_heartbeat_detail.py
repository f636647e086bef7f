"""What an agent's heartbeat says (``detail``) is shown, and a stop resolves its missed
alert in its own words (audit26 A3 M2, L4): through HTTP, the signed Slack command and
the fake Slack Web API, on the injected clock."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from guards.clock import ManualClock

BOT = "acme/alice/rss-bot"
ALERTS = "C0ALERTS"
POLICY = {
    "channels": {"alerts": ALERTS},
    "heartbeats": {"timeout_seconds": "60s", "misses_before_alert": 2},
    "oncall": {"rotations": [{"name": "ops", "users": ["U01"]}]},
}


async def beat(app: Any, **body: Any) -> httpx.Response:
    tok = await app.token("acme/alice")
    r: httpx.Response = await app.request(
        "POST", "/v1/heartbeats", token=tok, json={"scope": BOT, **body}
    )
    return r


async def test_the_missed_alert_and_its_story_say_what_the_last_heartbeat_said(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    alerts = app.ns.extras["alerts"]
    assert (
        await beat(app, status="degraded", detail="rate limited\nby upstream")
    ).status_code == 204
    app.clock.advance(120)
    await alerts.tick()
    await fake.wait_for(lambda: fake.posts(ALERTS) and fake.posts("U01"))
    said = "(2 missed); its last heartbeat said: rate limited by upstream"
    assert said in fake.posts(ALERTS)[0].args["text"]
    assert said in fake.posts("U01")[0].args["text"]  # the page too
    [(alert_id,)] = await app.store.fetch("SELECT id FROM alerts WHERE kind = 'heartbeat_missed'")
    assert said in (await slack.command(f"alert {alert_id}"))["text"]


async def test_a_heartbeat_without_a_detail_says_nothing_more(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    assert (await beat(app, status="ok")).status_code == 204
    app.clock.advance(120)
    await app.ns.extras["alerts"].tick()
    await fake.wait_for(lambda: fake.posts(ALERTS))
    assert "said" not in fake.posts(ALERTS)[0].args["text"]


@pytest.mark.parametrize("detail", ["a\u0000b", "bell\u0007", "esc \u001b[31m", "c1 \u0085"])
async def test_control_characters_in_detail_are_a_400_naming_it(app_factory, detail):
    app = await app_factory(POLICY, clock=ManualClock())
    r = await beat(app, status="ok", detail=detail)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "detail" and "control character U+" in r.json()["message"]
    assert await app.store.fetch("SELECT * FROM heartbeats") == []
    # line breaks and tabs are a sentence's
    assert (await beat(app, detail="line1\r\nline2\tend")).status_code == 204


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("stopped", "the agent reported it stopped (status stopped)"),
        ("shutting-down", "the agent reported it stopped (status shutting-down)"),
        ("paused", "the agent reported it paused (status paused)"),
        ("ok", "heartbeat is back"),
    ],
)
async def test_a_stop_resolves_the_missed_alert_in_its_own_words(slack_http, status, words):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    alerts = app.ns.extras["alerts"]
    await beat(app)
    app.clock.advance(120)
    await alerts.tick()
    await fake.wait_for(lambda: fake.posts(ALERTS))
    post = fake.posts(ALERTS)[0]
    assert (await beat(app, status=status)).status_code == 204
    await alerts.process()
    key = (ALERTS, post.response["ts"])
    await fake.wait_for(lambda: "resolved" in json.dumps(fake.messages[key]))
    assert words in fake.messages[key]["text"], fake.messages[key]["text"]
    if words != "heartbeat is back":
        assert "heartbeat is back" not in fake.messages[key]["text"]
