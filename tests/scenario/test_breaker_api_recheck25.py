"""``POST /v1/breakers/{scope}/approve|open|close`` after recheck25_a: an agent's 403 says
why the breakers are not its to lift (L1); a kill switch pulled again, and a close of a
closed breaker, are 409s that say what to do and end "Nothing changed." as the others
do; a 400 names its field once and shows the value as JSON wrote it; ``null`` is no
value, as in the reservations API (L4).

The real app in Slack HTTP mode against the fake Slack Web API, a ManualClock (starts
2026-01-01 00:00 UTC), signed slash commands for what a person does in Slack.
"""

from __future__ import annotations

from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_alerts import BOT
from tests.scenario.test_breaker_api import APPROVE, snapshot
from tests.scenario.test_operator_api import error, operator_token
from tests.scenario.test_stale_clicks import ADMIN, STALE_POLICY, breaker, half_open_request

CLOSE = f"/v1/breakers/{BOT}/close"
OPEN = f"/v1/breakers/{BOT}/open"


async def test_an_agent_s_token_is_told_the_breaker_is_not_its_to_lift(slack_http: Any) -> None:
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    await half_open_request(slack)
    agent = await app.token(BOT)
    before = await snapshot(app)
    for path, body in (
        (APPROVE, None),
        (APPROVE, {"trial_calls": "x"}),  # a bad body: the token is refused first
        (OPEN, {"reason": "me"}),
        (CLOSE, None),
    ):
        said = error(
            await app.request("POST", path, token=agent, json=body), 403, "operator_token_required"
        )
        assert "an agent must not lift or approve the breaker that stops it" in said["message"]
        assert "alerts about itself" not in said["message"], said
        assert f"`nightshift token create {BOT} --operator`" in said["message"], said
    assert await snapshot(app) == before
    # the alerts' endpoints keep their own reason
    said = error(
        await app.request("GET", "/v1/alerts", token=agent), 403, "operator_token_required"
    )
    assert "an agent must not silence or acknowledge the alerts about itself" in said["message"]


async def test_a_kill_switch_pulled_again_and_a_close_of_a_closed_one_say_what_to_do(
    slack_http: Any,
) -> None:
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    tok_id, op = await operator_token(app, "acme/alice")
    closed = error(await app.request("POST", CLOSE, token=op), 409, "conflict")
    assert closed["state"] == "closed"
    assert closed["message"] == (
        f"the breaker for {BOT} is already closed: its agents' calls go through;"
        f" POST /v1/breakers/{BOT}/open stops them. Nothing changed."
    )

    assert (await app.request("POST", OPEN, token=op, json={"reason": "loop"})).status_code == 200
    before = await snapshot(app)
    again = error(await app.request("POST", OPEN, token=op), 409, "conflict")
    assert again["state"] == "forced_open"
    assert again["message"] == (
        f"the breaker for {BOT} is already forced open (forced open by token:{tok_id}: loop):"
        f" it refuses every call until it is lifted; POST /v1/breakers/{BOT}/close lifts it"
        " when the cause is fixed. Nothing changed."
    )
    assert await snapshot(app) == before

    # a person's kill switch: pulled again over HTTP, the 409 says it is theirs, in Slack
    assert (await app.request("POST", CLOSE, token=op)).status_code == 200
    await slack.command(f"breaker {BOT} open at 3am", user=ADMIN)
    before = await snapshot(app)
    theirs = error(await app.request("POST", OPEN, token=op), 409, "conflict")
    assert f"pulled by {ADMIN} (a person, not a token)" in theirs["message"], theirs
    assert f"`/agent breaker {BOT} close`" in theirs["message"], theirs
    assert theirs["message"].endswith(". Nothing changed."), theirs
    assert await snapshot(app) == before


async def test_a_400_names_its_field_once_and_shows_the_value_as_json(slack_http: Any) -> None:
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    await half_open_request(slack)
    _, op = await operator_token(app, "acme/alice")
    before = await snapshot(app)
    for path, body, field, shown in (
        (APPROVE, {"trial_calls": True}, "trial_calls", "not true"),
        (APPROVE, {"trial_calls": False}, "trial_calls", "not false"),
        (APPROVE, {"trial_calls": "2"}, "trial_calls", 'not "2"'),
        (APPROVE, {"trial_calls": [1]}, "trial_calls", "not [1]"),
        (APPROVE, {"trial_budget_micros": 0}, "trial_budget_micros", "not 0"),
        (OPEN, {"reason": 5}, "reason", "not 5"),
        (OPEN, {"reason": False}, "reason", "not false"),
        (OPEN, {"reason": "stop\nnow"}, "reason", '("\\n", at character 5)'),
        (OPEN, {"reason": "   "}, "reason", "blank"),
    ):
        r = await app.request("POST", path, token=op, json=body)
        said = error(r, 400, "invalid_input")
        assert said["field"] == field, (body, said)
        assert said["message"].startswith(f"{field}: "), (body, said)
        assert said["message"].count(field) == 1, (body, said)  # named once
        assert shown in said["message"], (body, said)
        assert "True" not in said["message"] and "False" not in said["message"], said
    assert await snapshot(app) == before


async def test_null_is_no_value_a_400_naming_the_field(slack_http: Any) -> None:
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    await half_open_request(slack)
    _, op = await operator_token(app, "acme/alice")
    before = await snapshot(app)
    for path, body, field, then in (
        (APPROVE, {"trial_calls": None}, "trial_calls", "leave it out for the policy's size"),
        (APPROVE, {"trial_calls": 1, "trial_budget_micros": None}, "trial_budget_micros", "$0"),
        (OPEN, {"reason": None}, "reason", "say why in words, or leave it out"),
    ):
        r = await app.request("POST", path, token=op, json=body)
        said = error(r, 400, "invalid_input")
        assert said["field"] == field, (body, said)
        assert said["message"].startswith(f"{field}: null is no value; "), said
        assert then in said["message"], said
    assert (await breaker(app)).state == "half_open_pending"
    assert await snapshot(app) == before
    # left out, they are what they were: the policy's size, no reason
    r = await app.request("POST", APPROVE, token=op, json={})
    assert r.status_code == 200, r.text
    assert r.json()["breaker"]["trial"]["calls"] == 3
