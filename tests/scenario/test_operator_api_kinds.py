"""Operator tokens and agent tokens kept apart both ways, and the operator API's edges
(review23): an operator token on every call an agent makes, its refusals' advice, a
query parameter sent twice, an empty chunked body, ``until`` kept as sent.

The real app in Slack HTTP mode against the fake Slack Web API, a ManualClock, as in
test_operator_api.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from guards.clock import ManualClock
from guards.tokens import create_token
from tests.scenario.test_alerts import BOT, POLICY, alerts_of, used
from tests.scenario.test_operator_api import OTHER, error, operator_token, trip

AGENT_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/reservations", {"scope": BOT, "idempotency_key": "k", "max_cost_micros": 1000}),
    ("/v1/reservations/res_x/settle", {"actual_cost_micros": 1}),
    ("/v1/reservations/res_x/release", {}),
    ("/v1/heartbeats", {"scope": BOT, "status": "stopped"}),
    ("/v1/validations", {"scope": BOT, "stream": "posts", "items": ["hello"]}),
    ("/v1/route", {"scope": BOT, "task": "summarise this"}),
]


async def rows(app: Any) -> dict[str, int]:
    """How many rows each table holds."""
    names = await app.store.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
    counts = {}
    for (name,) in names:
        counts[name] = (await app.store.fetch(f'SELECT COUNT(*) FROM "{name}"'))[0][0]
    return counts


async def test_an_operator_token_makes_none_of_an_agent_s_calls(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await used(app, BOT)
    _, op = await operator_token(app, "acme/alice")
    before = await rows(app)
    for path, body in AGENT_CALLS:
        r = await app.request("POST", path, token=op, json=body)
        refused = error(r, 403, "agent_token_required")
        assert "`nightshift token create acme/alice`" in refused["message"], path
        # a malformed body too: it is told its token's kind, not the call's field rules
        bad = {"scope": BOT} if "scope" in body else {"bogus": 1}
        error(await app.request("POST", path, token=op, json=bad), 403, "agent_token_required")
        raw = await app.request("POST", path, token=op, content=b"{not json")
        error(raw, 403, "agent_token_required")
    assert await rows(app) == before
    # an agent's token is served as before (its own input refusals included)
    agent = await app.token(BOT)
    beat = await app.request("POST", "/v1/heartbeats", token=agent, json={"scope": BOT})
    assert beat.status_code == 204, beat.text
    bad = await app.request("POST", "/v1/heartbeats", token=agent, json={"scope": 5})
    assert error(bad, 400, "invalid_input")["field"] == "scope"


async def test_an_operator_token_s_refusals_name_the_operator_command(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    _, op = await operator_token(app, "acme/alice")
    outside = error(
        await app.request("GET", "/v1/alerts?scope=acme/bob", token=op), 403, "forbidden"
    )
    assert "`nightshift token create <scope> --operator`" in outside["message"]
    token, raw = await app.store.write(
        lambda tx: create_token(tx, scope="acme/alice", operator=True, expires_in=60)
    )
    app.clock.advance(61)
    expired = error(await app.request("GET", "/v1/silences", token=raw), 401, "unauthorized")
    assert "`nightshift token create acme/alice --operator`" in expired["message"]
    assert token.id in expired["message"]
    # an agent's token is still told to make an agent's token
    agent = await app.token("acme/alice")
    body = {"scope": "acme/bob/x", "status": "ok"}
    theirs = error(
        await app.request("POST", "/v1/heartbeats", token=agent, json=body), 403, "forbidden"
    )
    assert "`nightshift token create <scope>`." in theirs["message"]


async def test_a_query_parameter_sent_twice_is_refused_naming_it(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    _, op = await operator_token(app, "acme/alice")
    for path, field in [
        ("/v1/alerts?state=all&state=open", "state"),
        ("/v1/alerts?limit=1&limit=abc", "limit"),
        ("/v1/alerts?scope=acme/alice&scope=acme/alice", "scope"),
        ("/v1/silences?scope=acme/alice&scope=acme/alice/x", "scope"),
    ]:
        got = error(await app.request("GET", path, token=op), 400, "invalid_input")
        assert got["field"] == field and "given twice" in got["message"], path


async def nothing() -> AsyncIterator[bytes]:
    """A chunked body with no bytes in it (Transfer-Encoding: chunked, then the end)."""
    chunks: tuple[bytes, ...] = ()
    for chunk in chunks:
        yield chunk


async def test_an_empty_chunked_body_is_no_body(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await used(app, OTHER)
    await trip(app, OTHER)
    await alerts_of(slack).process()
    _, op = await operator_token(app, "acme/alice")
    auth = {"Authorization": f"Bearer {op}"}
    r = await app.client.post("/v1/alerts/1/ack", content=nothing(), headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["acknowledged_now"] is True
    made = await app.request(
        "POST", "/v1/silences", token=op, json={"target": OTHER, "duration": "1h"}
    )
    assert made.status_code == 201, made.text
    r = await app.client.request("DELETE", "/v1/silences/1", content=nothing(), headers=auth)
    assert r.status_code == 200 and r.json()["ended"] is True, r.text


async def test_until_is_kept_as_sent(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await used(app, OTHER)
    _, op = await operator_token(app, "acme/alice")
    for until, answered in [
        ("2026-01-01T05:00:00.123456Z", "2026-01-01T05:00:00.123456Z"),
        ("2026-01-01T07:30:00+01:00", "2026-01-01T06:30:00Z"),
    ]:
        body = {"target": OTHER, "until": until}
        r = await app.request("POST", "/v1/silences", token=op, json=body)
        assert r.status_code == 201, r.text
        assert r.json()["silence"]["until"] == answered
