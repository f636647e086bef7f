"""An operator's acts on a breaker over HTTP: ``POST /v1/breakers/{scope}/approve``,
``…/open`` and ``…/close`` (h3 item 1), as ``/agent breaker <scope> approve|open|close``.

The real app in Slack HTTP mode against the fake Slack Web API, a ManualClock (starts
2026-01-01 00:00 UTC). BOT's spend breaker trips on $2.50 and waits for a trial a minute
later (:func:`half_open_request`), its request posted with buttons.
"""

from __future__ import annotations

import json
from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_alerts import ALERTS, BOT, alerts_of, overspend
from tests.scenario.test_operator_api import error, operator_token
from tests.scenario.test_stale_clicks import (
    STALE_POLICY,
    audit,
    breaker,
    half_open_request,
    message,
)
from tests.scenario.test_trial_size import reserve

APPROVE = f"/v1/breakers/{BOT}/approve"


def shown(slack: Any, ts: str) -> str:
    return json.dumps(message(slack, ALERTS, ts), ensure_ascii=False)


async def snapshot(app: Any) -> list[list[tuple[Any, ...]]]:
    """What an act may change: the breakers, their transitions, the audit of breakers."""
    out = []
    for sql in (
        "SELECT * FROM breakers ORDER BY key",
        "SELECT * FROM breaker_transitions ORDER BY id",
        "SELECT actor, action, target FROM audit WHERE action LIKE 'breaker.%' ORDER BY id",
    ):
        out.append([tuple(r) for r in await app.store.fetch(sql)])
    return out


async def test_an_operator_approves_a_trial_of_its_own_size_and_the_request_says_so(
    slack_http: Any,
) -> None:
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    ts = await half_open_request(slack)
    tok_id, op = await operator_token(app, "acme/alice")
    actor = f"token:{tok_id}"
    body = {"trial_calls": 1, "trial_budget_micros": 100_000}
    r = await app.request("POST", APPROVE, token=op, json=body)
    assert r.status_code == 200, r.text
    got = r.json()["breaker"]
    assert (got["scope"], got["state"]) == (BOT, "half_open")
    assert (got["trial"]["calls"], got["trial"]["budget_micros"]) == (1, 100_000)
    [(who, before, after, detail)] = await audit(app, "breaker.approve")
    assert (who, before, after) == (actor, "half_open_pending", "half_open")
    assert detail == f"trial of 1 call up to $0.10 approved by {actor}"
    # the request's message is updated in place, as after a click
    await alerts_of(slack).process()
    done = f"trial of 1 call within $0.10 approved by @{actor}"
    await slack.fake.wait_for(lambda: done in shown(slack, ts))
    assert f"resolved by @{actor}" in shown(slack, ts), shown(slack, ts)
    assert "<@token:" not in shown(slack, ts)
    assert (await reserve(app, "trial-1")).status_code == 201  # the trial lets one through
    assert (await reserve(app, "trial-2")).status_code == 503

    # approved again: the trial runs already, 409 saying so, nothing changed
    before = await snapshot(app)
    again = error(await app.request("POST", APPROVE, token=op), 409, "conflict")
    assert again["state"] == "half_open"
    assert "is half open: a trial is running already (1 of 1 call admitted)" in again["message"]
    assert await snapshot(app) == before


async def test_an_approval_without_a_body_is_of_the_policy_s_size(slack_http: Any) -> None:
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    await half_open_request(slack)
    _, op = await operator_token(app, BOT)
    r = await app.request("POST", APPROVE, token=op)
    assert r.status_code == 200, r.text
    trial = r.json()["breaker"]["trial"]
    assert (trial["calls"], trial["budget_micros"]) == (3, 500_000)  # the policy's


async def test_a_kill_switch_and_a_close_over_http_are_audited_and_alerted(
    slack_http: Any,
) -> None:
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    tok_id, op = await operator_token(app, "acme/alice")
    actor = f"token:{tok_id}"
    r = await app.request(
        "POST", f"/v1/breakers/{BOT}/open", token=op, json={"reason": "runaway loop"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["breaker"]["state"] == "forced_open"
    assert r.json()["breaker"]["reason"] == f"forced open by {actor}: runaway loop"
    refused = await reserve(app, "k1")
    assert refused.status_code == 503, refused.text
    await alerts_of(slack).process()
    opened = await app.store.fetch("SELECT kind, facts FROM alerts WHERE scope = ?", (BOT,))
    assert [r[0] for r in opened] == ["breaker_opened_manual"]
    assert "runaway loop" in opened[0][1]

    # an approval does not lift a kill switch: 409 naming the state and the way out
    refusal = error(await app.request("POST", APPROVE, token=op), 409, "conflict")
    assert refusal["state"] == "forced_open"
    assert f"POST /v1/breakers/{BOT}/close" in refusal["message"], refusal
    again = error(await app.request("POST", f"/v1/breakers/{BOT}/open", token=op), 409, "conflict")
    assert "already forced open" in again["message"]

    # a conversation means its agent, as in Slack
    r = await app.request("POST", f"/v1/breakers/{BOT}/c42/close", token=op, json={})
    assert r.status_code == 200, r.text
    assert r.json()["breaker"]["state"] == "closed"
    assert (await reserve(app, "k2")).status_code == 201
    assert [(a[0], a[1], a[2]) for a in await audit(app, "breaker.force_open")] == [
        (actor, "closed", "forced_open")
    ]
    assert [(a[0], a[2]) for a in await audit(app, "breaker.force_close")] == [(actor, "closed")]
    await alerts_of(slack).process()
    rows = await app.store.fetch(
        "SELECT kind, resolved_by FROM alerts WHERE kind = 'breaker_opened_manual'"
    )
    assert [tuple(r) for r in rows] == [("breaker_opened_manual", actor)]
    closed = error(
        await app.request("POST", f"/v1/breakers/{BOT}/close", token=op), 409, "conflict"
    )
    assert closed["state"] == "closed"


async def test_who_may_act_and_every_bad_input_change_nothing(slack_http: Any) -> None:
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    await half_open_request(slack)
    _, op = await operator_token(app, "acme/alice")
    _, bob = await operator_token(app, "acme/bob")
    agent = await app.token("acme/alice")
    before = await snapshot(app)

    for body in (None, {"trial_calls": 1}, {"trial_calls": "x"}):  # agent: refused first
        r = await app.request("POST", APPROVE, token=agent, json=body)
        error(r, 403, "operator_token_required")
    error(
        await app.request("POST", f"/v1/breakers/{BOT}/open", token=agent),
        403,
        "operator_token_required",
    )
    error(await app.request("POST", APPROVE, token=bob), 403, "forbidden")  # not its subtree
    error(await app.request("POST", "/v1/breakers/acme/open", token=op), 403, "forbidden")
    said = error(
        await app.request("POST", "/v1/breakers/model:claude-haiku-4-5/open", token=op),
        403,
        "slack_only",
    )
    assert "/agent breaker model:claude-haiku-4-5 open" in said["message"]
    for path, field in (
        ("/v1/breakers/acme/al ice/bot/approve", "scope"),
        ("/v1/breakers/acme//bot/close", "scope"),
    ):
        assert (
            error(await app.request("POST", path, token=op), 400, "invalid_input")["field"] == field
        )
    bad: list[tuple[dict[str, Any], str]] = [
        ({"trial_calls": 0}, "trial_calls"),
        ({"trial_calls": -1}, "trial_calls"),
        ({"trial_calls": 1001}, "trial_calls"),
        ({"trial_calls": "2"}, "trial_calls"),
        ({"trial_calls": 2.0}, "trial_calls"),
        ({"trial_calls": True}, "trial_calls"),
        ({"trial_budget_micros": 0}, "trial_budget_micros"),
        ({"trial_budget_micros": 1_000_000_001}, "trial_budget_micros"),
        ({"trial_budget_micros": "$0.10"}, "trial_budget_micros"),
        ({"trial_calls": 1, "calls": 1}, "calls"),
        ({"budget": 100_000}, "budget"),
    ]
    for body, field in bad:
        refused = error(
            await app.request("POST", APPROVE, token=op, json=body), 400, "invalid_input"
        )
        assert refused["field"] == field, (body, refused)
        assert field in refused["message"], refused
    for path, body, field in (
        (f"/v1/breakers/{BOT}/open", {"reason": 5}, "reason"),
        (f"/v1/breakers/{BOT}/open", {"reason": ""}, "reason"),
        (f"/v1/breakers/{BOT}/open", {"reason": "x" * 501}, "reason"),
        (f"/v1/breakers/{BOT}/open", {"why": "x"}, "why"),
        (f"/v1/breakers/{BOT}/close", {"reason": "done"}, "reason"),
    ):
        refused = error(await app.request("POST", path, token=op, json=body), 400, "invalid_input")
        assert refused["field"] == field, (body, refused)
    r = await app.request("POST", APPROVE, token=op, content=b"[1]")
    assert error(r, 400, "invalid_input")["field"] == "body"
    assert (await breaker(app)).state == "half_open_pending"
    assert await snapshot(app) == before


async def test_an_approval_while_the_cool_down_runs_starts_the_trial_at_once(
    slack_http: Any,
) -> None:
    """As `/agent breaker <scope> approve` does (audit26 A3 L2: this was a 409 "it cools
    down for 1m more … approve it then", while Slack started the trial)."""
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    tok_id, op = await operator_token(app, "acme/alice")
    before = await snapshot(app)
    closed = error(await app.request("POST", APPROVE, token=op), 409, "conflict")
    assert closed["state"] == "closed" and "there is no trial to approve" in closed["message"]
    assert await snapshot(app) == before
    await overspend(app)
    r = await app.request("POST", APPROVE, token=op)
    assert r.status_code == 200, r.text
    assert r.json()["breaker"]["state"] == "half_open"
    [(who, was, now, _)] = await audit(app, "breaker.approve")
    assert (who, was, now) == (f"token:{tok_id}", "open", "half_open")
