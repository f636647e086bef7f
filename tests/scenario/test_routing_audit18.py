"""audit18 findings 1–3 replayed over HTTP on the whole app (real SQLite, real server).

1. A validation rejection counts only against the routed call the batch names, and only
   for reasons about the model's output: a feed's duplicates promote nothing.
2. Failures of degraded calls (every model's breaker open) promote nothing, and a
   promotion lapses after ``routing.promote.review_after``.
3. ``/agent routing`` tells route decisions from calls, and its saving comes from the
   model the calls were charged on.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.commands import Context, dispatch
from tests.conftest import RunningApp

TIERS = {
    "small": {"model": "claude-haiku-4-5"},
    "medium": {"model": "claude-sonnet-4-5"},
    "large": {"model": "claude-opus-4-1"},
}
POLICY: dict[str, Any] = {"routing": {"tiers": TIERS}}
DAY = 86_400


async def route(app: RunningApp, token: str, scope: str, task: str) -> dict[str, Any]:
    r = await app.request("POST", "/v1/route", token=token, json={"scope": scope, "task": task})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def routed_call(
    app: RunningApp,
    token: str,
    scope: str,
    task: str,
    *,
    outcome: str = "success",
    model: str | None = None,
) -> str:
    """Route ``task``, reserve naming the route_id, settle; returns the route_id."""
    route_id = str((await route(app, token, scope, task))["route_id"])
    body: dict[str, Any] = {"scope": scope, "idempotency_key": route_id, "route_id": route_id}
    if model:
        body["estimate"] = {"model": model, "input_tokens": 3000, "max_output_tokens": 1000}
    else:
        body["max_cost_micros"] = 1000
    r = await app.request("POST", "/v1/reservations", token=token, json=body)
    assert r.status_code == 201, r.text
    rid = r.json()["reservation_id"]
    settle: dict[str, Any] = {"outcome": outcome}
    if model:
        settle["usage"] = {"model": model, "input_tokens": 3000, "output_tokens": 1000}
    else:
        settle["actual_cost_micros"] = 1000
    r = await app.request("POST", f"/v1/reservations/{rid}/settle", token=token, json=settle)
    assert r.status_code == 200, r.text
    return route_id


async def validate(app: RunningApp, token: str, scope: str, **body: Any) -> httpx.Response:
    return await app.request(
        "POST", "/v1/validations", token=token, json={"scope": scope, "stream": "feed", **body}
    )


async def outcomes(app: RunningApp) -> dict[str, str | None]:
    rows = await app.store.fetch("SELECT id, outcome FROM routing_decisions")
    return {r[0]: r[1] for r in rows}


async def routing_reply(app: RunningApp, args: str = "") -> str:
    async def nobody() -> bool:
        return False

    ctx = Context(ns=app.ns, user_id="U1", transport="test", is_admin=nobody)
    return (await dispatch(ctx, f"routing {args}".strip())).text


async def test_a_feeds_duplicates_promote_nothing_and_a_named_call_is_judged(app_factory):
    app = await app_factory(POLICY)
    alice, bob = await app.token("acme/alice"), await app.token("acme/bob")
    feedbot = "acme/alice/feedbot"
    ids = [
        await routed_call(
            app, alice, feedbot, f"Classify feed item {n} as sports, politics or tech"
        )
        for n in range(10)
    ]
    item = ["Fed raises rates by a quarter point as inflation lingers"]
    assert (await validate(app, alice, feedbot, items=item)).json()["verdict"] == "ok"
    for named in (None, ids[-1], ids[-2]):  # repeats, with and without the call named
        extra = {"route_id": named} if named else {}
        r = await validate(app, alice, feedbot, items=item, **extra)
        assert [x["reason"] for x in r.json()["rejected"]] == ["duplicate"]
    assert set((await outcomes(app)).values()) == {"success"}
    ticket = await route(app, bob, "acme/bob/helpdesk", "Classify this support ticket as billing")
    assert (ticket["tier"], ticket["model"]) == ("small", "claude-haiku-4-5")

    # output the model got wrong, naming the call that wrote it: counted against that call
    r = await validate(
        app, alice, feedbot, items=["a", "b", "c"], expected_count=1, route_id=ids[3]
    )
    assert {x["reason"] for x in r.json()["rejected"]} == {"runaway"}
    r = await validate(app, alice, feedbot, items=["  "], route_id=ids[4])
    assert [x["reason"] for x in r.json()["rejected"]] == ["empty"]
    got = await outcomes(app)
    assert (got[ids[3]], got[ids[4]], got[ids[5]]) == ("rejected", "rejected", "success")

    # bob may not judge alice's calls: the decision is outside his token's subtree
    bobs = await route(app, bob, "acme/bob/helpdesk", "Classify this ticket")
    r = await validate(app, alice, feedbot, items=["   "], route_id=bobs["route_id"])
    assert r.json()["verdict"] == "rejected"
    r = await validate(app, bob, "acme/bob/helpdesk", items=[" "], route_id=ids[5])
    assert r.json()["verdict"] == "rejected"
    assert (await outcomes(app))[ids[5]] == "success"


@pytest.mark.parametrize("bad", ["", "x" * 101, 42, ["rt_1"]])
async def test_a_malformed_route_id_is_a_400_naming_it_and_stores_nothing(app_factory, bad):
    app = await app_factory(POLICY)
    token = await app.token("acme")
    r = await validate(app, token, "acme/alice/bot", items=["hello there"], route_id=bad)
    assert r.status_code == 400, r.text
    assert (r.json()["error"], r.json()["field"]) == ("invalid_input", "route_id")
    assert (await app.store.fetch("SELECT COUNT(*) FROM validation_items"))[0][0] == 0


async def test_an_outage_promotes_nothing_and_a_promotion_lapses_on_its_own(app_factory):
    promote = {"window_calls": 4, "min_calls": 4, "rate": 0.5}
    app = await app_factory({"routing": {"tiers": TIERS, "promote": promote}})
    alice, bob = await app.token("acme/alice"), await app.token("acme/bob")
    models = [f"model:{t['model']}" for t in TIERS.values()]
    for m in models:
        await app.store.write(lambda tx, m=m: app.ns.breakers.force_open(tx, m, "U0", "outage"))
    for n in range(12):
        await routed_call(
            app, alice, f"acme/alice/summ{n % 4}", f"Summarize news article {n}", outcome="timeout"
        )
    degraded = await app.store.fetch("SELECT DISTINCT degraded FROM routing_decisions")
    assert [d[0] for d in degraded] == [1]
    for m in models:
        await app.store.write(lambda tx, m=m: app.ns.breakers.force_close(tx, m, "U0"))
    email = await route(app, bob, "acme/bob/other", "Summarize this short email")
    assert (email["tier"], email["degraded"]) == ("small", False)

    # real failures with the breakers closed promote, for a week
    for n in range(4):
        await routed_call(app, alice, "acme/alice/summ4", f"Summarize memo {n}", outcome="failure")
    assert (await route(app, bob, "acme/bob/other", "Summarize this email"))["tier"] == "medium"
    assert "lapses Thu 08 Jan 00:00" in await routing_reply(app)  # the policy's zone (UTC)

    app.clock.advance(7 * DAY)
    after = await route(app, bob, "acme/bob/other", "Summarize this email")
    assert (after["tier"], after["model"]) == ("small", "claude-haiku-4-5")
    audit = await app.store.fetch(
        "SELECT actor, target, before, after FROM audit WHERE action = 'routing.lapse'"
    )
    assert [tuple(a) for a in audit] == [("nightshift", "acme summary", "medium", "small")]
    assert (await routing_reply(app)).endswith("promotions: none")


async def test_agent_routing_reports_calls_charged_not_decisions(app_factory):
    app = await app_factory(POLICY)
    token = await app.token("globex")
    agent = "globex/u/agent"
    for n in range(5):  # routed to haiku, called and charged on opus
        await routed_call(
            app, token, agent, f"Translate reply {n} into French", model="claude-opus-4-1"
        )
    for n in range(3):  # asked, never called
        await route(app, token, agent, f"Translate note {n} into German")
    text = await routing_reply(app, "globex")
    assert text.splitlines() == [
        "routing under globex: 8 route decisions (small 100% · medium 0% · large 0%),"
        " 5 followed by a call",
        "5 calls, by model charged: small 0% · medium 0% · large 100%",
        "charged $0.60; all on claude-opus-4-1: about $0.60 (saving 0%)",
        "5 calls charged another model than routed to",
        "promotions: none",
    ]


async def test_another_agent_s_output_does_not_judge_a_call(app_factory):
    """review18 L5: a user's token could mark one agent's routed call rejected with a
    batch of another agent's stream; a settle from another agent was already ignored."""
    app = await app_factory(POLICY)
    alice = await app.token("acme/alice")
    call = await routed_call(app, alice, "acme/alice/feedbot", "Classify this feed item")
    r = await validate(app, alice, "acme/alice/otherbot", items=["  "], route_id=call)
    assert [x["reason"] for x in r.json()["rejected"]] == ["empty"]
    assert (await outcomes(app))[call] == "success"
    r = await validate(app, alice, "acme/alice/feedbot/c9", items=["  "], route_id=call)
    assert (await outcomes(app))[call] == "rejected"  # its own agent's, a conversation's


async def test_agent_routing_counts_a_call_only_from_the_routes_own_agent(app_factory):
    """review18 L5: a reservation of any agent of the namespace naming a route id counted
    as the call that followed it, though learning ignores such a call."""
    app = await app_factory(POLICY)
    token = await app.token("globex")
    decision = await route(app, token, "globex/u/agent-a", "Translate this reply into French")
    route_id = decision["route_id"]
    for key, scope in (("other", "globex/u/agent-b"), ("own", "globex/u/agent-a/c1")):
        body = {"scope": scope, "idempotency_key": key, "route_id": route_id}
        body["max_cost_micros"] = 1000
        r = await app.request("POST", "/v1/reservations", token=token, json=body)
        rid = r.json()["reservation_id"]
        settle = {"actual_cost_micros": 500}
        r = await app.request("POST", f"/v1/reservations/{rid}/settle", token=token, json=settle)
        assert r.status_code == 200, r.text
    text = await routing_reply(app, "globex")
    assert text.splitlines()[:2] == [
        "routing under globex: 1 route decision (small 100% · medium 0% · large 0%),"
        " 1 followed by a call",
        "1 call, by model charged: small 0% · medium 0% · large 0% · unnamed 100%",
    ]
