"""Operator tokens over HTTP: ``GET /v1/alerts``, ``POST /v1/alerts/{id}/ack``,
``GET/POST /v1/silences``, ``DELETE /v1/silences/{id}``.

The real app in Slack HTTP mode against the fake Slack Web API (as test_alerts), a
ManualClock; alert timers run when the test ticks. An operator's token acts on its
subtree's alerts as ``/agent ack`` and ``/agent silence`` do; an agent's is refused.
"""

from __future__ import annotations

from typing import Any

import httpx

from guards.clock import ManualClock
from guards.events import BreakerOpened
from guards.tokens import create_token
from tests.scenario.test_alerts import ALERTS, BOT, POLICY, alerts_of, dms, emit, used

OTHER = "acme/alice/other-bot"
BOB = "acme/bob/bot"


async def operator_token(app: Any, scope: str) -> tuple[str, str]:
    """A new operator token for ``scope``: (its id, the raw bearer string)."""
    token, raw = await app.store.write(
        lambda tx: create_token(tx, scope=scope, operator=True, actor="test")
    )
    return token.id, raw


async def trip(app: Any, scope: str = BOT) -> None:
    await emit(app, BreakerOpened(at=app.clock.now(), scope=scope, trip="spend", reason="r"))


async def state(app: Any) -> list[list[tuple[Any, ...]]]:
    """What these calls may change: alerts, silences and the audit (a step outside a
    token's subtree raises an alert of its own, scope_violation: not counted here)."""
    out = []
    for sql in (
        "SELECT id, acked_at, acked_by, silence_id FROM alerts"
        " WHERE kind != 'scope_violation' ORDER BY id",
        "SELECT * FROM silences ORDER BY id",
        "SELECT actor, action, target FROM audit WHERE action LIKE 'alert.%'"
        " OR action LIKE 'silence.%' ORDER BY id",
    ):
        out.append([tuple(r) for r in await app.store.fetch(sql)])
    return out


def error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == code, body
    assert body["message"], body
    return body


async def test_an_operator_lists_acks_silences_and_lifts(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await used(app, OTHER)
    await trip(app)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS) and dms(fake, "U01"))
    tok_id, op = await operator_token(app, "acme/alice")
    actor = f"token:{tok_id}"

    r = await app.request("GET", "/v1/alerts", token=op)
    assert r.status_code == 200, r.text
    [alert] = r.json()["alerts"]
    assert r.json()["scope"] == "acme/alice" and r.json()["truncated"] is False
    assert (alert["id"], alert["kind"], alert["tier"], alert["scope"], alert["state"]) == (
        1,
        "breaker_opened_spend",
        "P0",
        BOT,
        "open",
    )
    assert alert["title"] == "Breaker opened on spend rate"
    assert alert["created_at"] == "2026-01-01T00:00:00Z"
    assert alert["acknowledged_by"] is None and alert["silenced_until"] is None

    r = await app.request("POST", "/v1/alerts/1/ack", token=op, json={"note": "on it"})
    assert r.status_code == 200, r.text
    assert r.json()["acknowledged_now"] is True
    assert r.json()["alert"]["acknowledged_by"] == actor
    assert r.json()["alert"]["state"] == "acked"
    again = await app.request("POST", "/v1/alerts/1/ack", token=op)
    assert again.status_code == 200 and again.json()["acknowledged_now"] is False
    audit = await app.store.fetch(
        "SELECT actor, target, detail FROM audit WHERE action='alert.ack'"
    )
    assert [tuple(r) for r in audit] == [(actor, f"#1 breaker_opened_spend:{BOT}", "on it")]
    await fake.wait_for(  # the Slack message says who, as for a Slack ack
        lambda: any(
            f"acknowledged by @{actor}" in str(c.args) for c in fake.calls_of("chat.update")
        )
    )
    app.clock.advance(10 * 60)  # escalation stopped: the secondary is never paged
    await alerts_of(slack).tick()
    assert dms(fake, "U04") == []

    body = {"target": OTHER, "duration": "1h", "reason": "deploy 4.2"}
    r = await app.request("POST", "/v1/silences", token=op, json=body)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["created"] is True and made["warning"] is None and made["narrowed_to"] is None
    silence = made["silence"]
    assert (silence["target"], silence["state"], silence["created_by"], silence["reason"]) == (
        OTHER,
        "active",
        actor,
        "deploy 4.2",
    )
    assert silence["until"] == "2026-01-01T01:10:00Z"
    retry = await app.request("POST", "/v1/silences", token=op, json=body)
    assert retry.status_code == 200 and retry.json()["created"] is False
    assert retry.json()["silence"]["id"] == silence["id"]
    listed = (await app.request("GET", "/v1/silences", token=op)).json()["silences"]
    assert [s["id"] for s in listed] == [silence["id"]]

    pages = len(dms(fake, "U01"))
    await trip(app, OTHER)  # held back as a Slack-made silence holds it: recorded, not paged
    await alerts_of(slack).process()
    await alerts_of(slack).tick()
    rows = await app.store.fetch("SELECT id, silence_id, was_silenced FROM alerts ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, None, 0), (2, silence["id"], 1)]
    assert len(dms(fake, "U01")) == pages
    listing = (await slack.command("alerts"))["text"]
    assert f"🔕 {OTHER} and below until" in listing and f"(by @{actor}) — deploy 4.2" in listing

    r = await app.request("DELETE", f"/v1/silences/{silence['id']}", token=op)
    assert r.status_code == 200, r.text
    assert r.json()["ended"] is True and r.json()["alerts_notify_again"] == [2]
    assert r.json()["silence"]["state"] == "ended" and r.json()["silence"]["ended_by"] == actor
    await fake.wait_for(lambda: len(dms(fake, "U01")) == pages + 1)  # it pages now
    lift = await app.store.fetch("SELECT actor FROM audit WHERE action = 'silence.lift'")
    assert [r[0] for r in lift] == [actor]
    r = await app.request("DELETE", f"/v1/silences/{silence['id']}", token=op)
    assert r.status_code == 200 and r.json()["ended"] is False
    assert (await app.request("GET", "/v1/silences", token=op)).json()["silences"] == []
    all_alerts = (await app.request("GET", "/v1/alerts?state=all&limit=1", token=op)).json()
    assert [a["id"] for a in all_alerts["alerts"]] == [2] and all_alerts["truncated"] is True


async def test_a_kind_on_every_scope_is_narrowed_to_the_token_s_subtree(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    _, op = await operator_token(app, "acme/alice")
    body = {"target": "breaker_opened", "duration": "30m"}
    r = await app.request("POST", "/v1/silences", token=op, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["narrowed_to"] == "acme/alice"
    assert r.json()["silence"]["target"] == "breaker_opened:acme/alice"
    await trip(app, BOT)
    await trip(app, BOB)  # another user's breaker: not silenced by acme/alice's token
    await alerts_of(slack).process()
    rows = await app.store.fetch("SELECT scope, silence_id FROM alerts ORDER BY id")
    assert [tuple(r) for r in rows] == [(BOT, 1), (BOB, None)]


async def test_an_agent_token_is_refused_everywhere_and_nothing_changes(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await trip(app)
    await alerts_of(slack).process()
    agent = await app.token("acme/alice")
    before = await state(app)
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/v1/alerts", None),
        ("POST", "/v1/alerts/1/ack", {"note": "x"}),
        ("POST", "/v1/alerts/1/ack", None),
        ("GET", "/v1/silences", None),
        ("POST", "/v1/silences", {"target": BOT, "duration": "1h"}),
        ("POST", "/v1/silences", {"target": BOT, "duration": -5, "bogus": 1}),  # bad too
        ("DELETE", "/v1/silences/1", None),
        ("POST", "/v1/alerts/abc/ack", None),
    ]
    for method, path, body in calls:
        r = await app.request(method, path, token=agent, json=body)
        refused = error(r, 403, "operator_token_required")
        assert "nightshift token create acme/alice --operator" in refused["message"], path
    assert await state(app) == before
    for method, path, body in calls:  # and no token, a bad one: 401
        error(await app.request(method, path, json=body), 401, "unauthorized")
        error(await app.request(method, path, token="ns_tok_0_x", json=body), 401, "unauthorized")
    assert await state(app) == before


async def test_an_operator_token_reserves_nothing(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    _, op = await operator_token(app, "acme/alice")
    body = {"scope": BOT, "idempotency_key": "k", "max_cost_micros": 1000}
    r = await app.request("POST", "/v1/reservations", token=op, json=body)
    refused = error(r, 403, "agent_token_required")
    assert "nightshift token create acme/alice`" in refused["message"]
    assert await app.store.fetch("SELECT id FROM reservations") == []
    # it may read what an agent's token of its node reads
    assert (await app.request("GET", "/v1/budgets/acme/alice", token=op)).status_code == 200


async def test_another_user_s_alerts_and_silences_are_out_of_reach(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await used(app, BOB)
    await trip(app, BOB)
    await alerts_of(slack).process()
    made = await slack.command(f"silence {BOB} 1h", user="U01")
    assert made["response_type"] == "in_channel", made
    _, op = await operator_token(app, "acme/alice")
    before = await state(app)

    assert (await app.request("GET", "/v1/alerts?state=all", token=op)).json()["alerts"] == []
    assert (await app.request("GET", "/v1/silences", token=op)).json()["silences"] == []
    forbidden = [
        await app.request("POST", "/v1/alerts/1/ack", token=op),
        await app.request("DELETE", "/v1/silences/1", token=op),
        await app.request(
            "POST", "/v1/silences", token=op, json={"target": "#1", "duration": "1h"}
        ),
        await app.request("POST", "/v1/silences", token=op, json={"target": "1", "duration": "1h"}),
        await app.request("POST", "/v1/silences", token=op, json={"target": BOB, "duration": "1h"}),
        await app.request(
            "POST",
            "/v1/silences",
            token=op,
            json={"target": "heartbeat_missed:acme", "duration": "1h"},
        ),
        await app.request(
            "POST",
            "/v1/silences",
            token=op,
            json={"target": "model:claude-haiku-4-5", "duration": "1h"},
        ),
        await app.request("GET", "/v1/alerts?scope=acme/bob", token=op),
        await app.request("GET", "/v1/silences?scope=acme", token=op),
    ]
    for r in forbidden:
        error(r, 403, "forbidden")
    # an alert and a silence of another user are named by their number, not their scope
    assert "alert #1 is outside it" in forbidden[0].json()["message"]
    assert "acme/bob" not in forbidden[0].text and "acme/bob" not in forbidden[1].text
    assert "silence 1 is outside it" in forbidden[1].json()["message"]
    # a number nothing has: 404 (alert ids are counted up: being told #1 exists says nothing)
    error(await app.request("POST", "/v1/alerts/99/ack", token=op), 404, "not_found")
    error(await app.request("DELETE", "/v1/silences/99", token=op), 404, "not_found")
    assert await state(app) == before
    tried = await app.store.fetch(
        "SELECT COUNT(*) FROM events WHERE kind = 'scope_violation' AND scope LIKE 'acme/bob%'"
    )
    assert tried[0][0] == 6  # recorded (each but the model's and the namespace's)


BAD_SILENCES: list[tuple[Any, str]] = [
    ({"target": BOT, "duration": "1h", "colour": "red"}, "colour"),
    ({"target": BOT}, "duration"),
    ({"target": BOT, "duration": "1h", "until": "2026-01-01T02:00:00Z"}, "duration"),
    ({"target": BOT, "duration": "-5m"}, "duration"),
    ({"target": BOT, "duration": -5}, "duration"),
    ({"target": BOT, "duration": 10**30}, "duration"),
    ({"target": BOT, "duration": "NaN"}, "duration"),
    ({"target": BOT, "duration": "0s"}, "duration"),
    ({"target": BOT, "duration": "400d"}, "duration"),
    ({"target": BOT, "duration": "30"}, "duration"),
    ({"target": BOT, "duration": str(10**30) + "h"}, "duration"),
    ({"target": BOT, "until": "tomorrow"}, "until"),
    ({"target": BOT, "until": "2026-01-01T02:00:00"}, "until"),  # no offset
    ({"target": BOT, "until": "2025-12-31T23:00:00Z"}, "until"),  # past
    ({"target": BOT, "until": "2030-01-01T00:00:00Z"}, "until"),  # past 366 days
    ({"target": BOT, "duration": "1h", "starts_at": "2025-12-31T00:00:00Z"}, "starts_at"),
    ({"target": BOT, "duration": "1h", "starts_at": "2026-03-01T00:00:00Z"}, "starts_at"),
    # no UTC form (year 10000, year 0): a 400, not a 500 (review23 M3)
    ({"target": BOT, "duration": "1h", "starts_at": "9999-12-31T23:59:59-01:00"}, "starts_at"),
    ({"target": BOT, "duration": "1h", "starts_at": "0001-01-01T00:00:00+01:00"}, "starts_at"),
    ({"target": BOT, "until": "9999-12-31T23:59:59-01:00"}, "until"),
    ({"target": BOT, "until": "0001-01-01T00:00:00+01:00"}, "until"),
    ({"target": "", "duration": "1h"}, "target"),
    ({"target": "   ", "duration": "1h"}, "target"),
    ({"target": "x" * 10_000, "duration": "1h"}, "target"),
    ({"target": 12, "duration": "1h"}, "target"),
    ({"target": "-1", "duration": "1h"}, "target"),
    ({"target": "nosuchkind:acme/alice", "duration": "1h"}, "target"),
    ({"target": BOT, "duration": "1h", "reason": "r" * 201}, "reason"),
    ({"target": BOT, "duration": "1h", "reason": 5}, "reason"),
    # a control character, refused as a kill switch's reason is (audit28 C1 L1)
    ({"target": BOT, "duration": "1h", "reason": "why \u001b[31mRED\u001b[0m"}, "reason"),
    ({"target": BOT, "duration": "1h", "reason": "deploy\n🟢 all clear"}, "reason"),
    ({"target": BOT, "duration": "1h", "reason": "t \u001b]0;T\u0007 \r\u001b[K x"}, "reason"),
    ({"target": BOT, "duration": "1h", "reason": "rtl \u202eok"}, "reason"),
    ([BOT, "1h"], "body"),
]


async def test_hostile_input_is_refused_naming_the_field_and_changes_nothing(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await trip(app)
    await alerts_of(slack).process()
    _, op = await operator_token(app, "acme/alice")
    before = await state(app)
    for body, field in BAD_SILENCES:
        r = await app.request("POST", "/v1/silences", token=op, json=body)
        got = error(r, 400, "invalid_input")
        assert got["field"] == field, (body, got)
    raw_bodies = [b"{not json", b'{"target": NaN}', b"[]", b'{"target": "a", "target": "b"}']
    for raw in raw_bodies:
        r = await app.request("POST", "/v1/silences", token=op, content=raw)
        error(r, 400, "invalid_input")
        r = await app.request("POST", "/v1/alerts/1/ack", token=op, content=raw)
        error(r, 400, "invalid_input")
    r = await app.request("POST", "/v1/silences", token=op, content=b"x" * (2 * 1024 * 1024))
    assert r.status_code == 413, r.text
    notes = [({"note": 5}, "note"), ({"note": "n" * 501}, "note"), ({"x": 1}, "x")]
    notes += [({"note": "ok \u0007\u001b]0;T\u0007"}, "note"), ({"note": "a\u2066b"}, "note")]
    for body, field in notes:
        got = error(
            await app.request("POST", "/v1/alerts/1/ack", token=op, json=body), 400, "invalid_input"
        )
        assert got["field"] == field
    # the words of …/open's refusal, naming the field and the character
    body = {"target": BOT, "duration": "1h", "reason": "why \u001b[31m"}
    said = error(
        await app.request("POST", "/v1/silences", token=op, json=body), 400, "invalid_input"
    )
    assert said["message"].startswith(
        'reason: holds a control character ("\\u001b", at character 5): it is shown with the'
        " alerts it holds, so it is plain text on one line"
    ) and said["message"].endswith("; nothing changed"), said
    for path in ("/v1/alerts/abc/ack", "/v1/alerts/-1/ack", "/v1/alerts/1.5/ack"):
        got = error(await app.request("POST", path, token=op), 400, "invalid_input")
        assert got["field"] == "alert_id"
    error(await app.request("POST", "/v1/alerts/" + "9" * 30 + "/ack", token=op), 404, "not_found")
    got = error(await app.request("DELETE", "/v1/silences/abc", token=op), 400, "invalid_input")
    assert got["field"] == "silence_id"
    error(await app.request("DELETE", "/v1/silences/" + "9" * 30, token=op), 404, "not_found")
    got = error(
        await app.request("DELETE", "/v1/silences/1", token=op, json={"why": 1}),
        400,
        "invalid_input",
    )
    assert got["field"] == "why"
    for query, field in [
        ("state=closed", "state"),
        ("limit=0", "limit"),
        ("limit=" + "9" * 30, "limit"),
        ("limit=-1", "limit"),
        ("scope=acme//x", "scope"),
        ("scope=" + "x" * 10_000, "scope"),
        ("colour=red", "colour"),
    ]:
        got = error(await app.request("GET", f"/v1/alerts?{query}", token=op), 400, "invalid_input")
        assert got["field"] == field, query
    got = error(await app.request("GET", "/v1/silences?all=1", token=op), 400, "invalid_input")
    assert got["field"] == "all"
    assert await state(app) == before
