"""The breakers' edges after audit26 A3: the failure rate judged after every outcome
(L3), the 503 while a trial runs (L1), and an approval during the cool-down, the same
over HTTP as in Slack (L2).

The real app against a real SQLite file, a ManualClock (starts 2026-01-01 00:00 UTC);
for L1 and L2 in Slack HTTP mode against the fake Slack Web API, with signed slash
commands for what a person does in Slack.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from guards.clock import ManualClock
from tests.scenario.test_alerts import alerts_of, overspend
from tests.scenario.test_breaker_api import APPROVE
from tests.scenario.test_breakers import BOT, fleet
from tests.scenario.test_breakers import POLICY as FLEET_POLICY
from tests.scenario.test_operator_api import operator_token
from tests.scenario.test_stale_clicks import (
    ADMIN,
    STALE_POLICY,
    audit,
    breaker,
    half_open_request,
)

RATE_POLICY: dict[str, Any] = {
    **FLEET_POLICY,
    "breakers": {
        **FLEET_POLICY["breakers"],
        "failures": {"consecutive": 5, "rate": 0.5, "window_calls": 10, "min_calls": 6},
    },
}


# -- L3: the rate after every outcome -----------------------------------------------------


async def test_the_call_that_brings_the_window_to_min_calls_at_the_rate_trips_it(
    app_factory: Any,
) -> None:
    """F S F S F S: 3 of 6 calls failed, 50% of at least 6. It stayed closed until the
    next failure; the sixth call, a success, trips it now (as resilience4j does)."""
    _, bot, helper = await fleet(app_factory, RATE_POLICY)
    for outcome in ("failure", "success", "failure", "success", "failure"):
        await bot.call(outcome)
    assert (await bot.reserve()).status_code == 201  # 3 of 5: fewer than min_calls
    # (that reservation is left held: it is no outcome, the window does not count it)
    await bot.call("success")
    refused = await bot.reserve()
    assert refused.status_code == 503, refused.text
    body = refused.json()
    assert (body["state"], body["scope"]) == ("open", BOT)
    assert body["reason"] == "3 of the last 6 calls failed (limit 50% of at least 6)"
    assert refused.headers["Retry-After"] == "900"
    [listed] = await bot.breakers()
    assert (listed["trip"], listed["figures"]["failures"], listed["figures"]["calls"]) == (
        "failures",
        3,
        6,
    )
    await helper.call("success")  # another agent keeps working


async def test_a_rate_under_the_limit_at_min_calls_does_not_trip(app_factory: Any) -> None:
    """One unit under: F S S F S S (2 of 6, 33%) stays closed through many more calls."""
    _, bot, _ = await fleet(app_factory, RATE_POLICY)
    for outcome in ("failure", "success", "success") * 8:
        await bot.call(outcome)
    assert (await bot.reserve()).status_code == 201
    assert await bot.breakers() == []


# -- L1: the 503 while a trial runs -------------------------------------------------------


async def trial_call(app: Any, key: str, ttl_seconds: int = 600, micros: int = 10_000) -> Any:
    tok = await app.token(BOT)
    body = {
        "scope": BOT,
        "idempotency_key": key,
        "max_cost_micros": micros,
        "ttl_seconds": ttl_seconds,
    }
    return await app.request("POST", "/v1/reservations", token=tok, json=body)


def refused_while(r: Any, state: str) -> dict[str, Any]:
    """A 503 breaker_open in ``state`` whose Retry-After, body and message agree."""
    assert r.status_code == 503, r.text
    body: dict[str, Any] = r.json()
    assert (body["error"], body["state"]) == ("breaker_open", state), body
    assert r.headers["Retry-After"] == str(body["retry_after"]), (r.headers, body)
    assert f"retry after {body['retry_after']}s" in body["message"], body
    return body


async def listed(app: Any) -> dict[str, Any]:
    """BOT's breaker as ``GET /v1/breakers`` lists it."""
    r = await app.request("GET", "/v1/breakers", token=await app.token(BOT))
    assert r.status_code == 200, r.text
    [row] = [b for b in r.json()["breakers"] if b["scope"] == BOT]
    return dict(row)


async def test_a_full_trial_s_503_says_its_calls_decide_and_when_to_look_again(
    slack_http: Any,
) -> None:
    """audit26 A3 L1: while a trial ran, the 503 said "ask an operator: /agent breaker …
    approve", and that command then answered "nothing to approve". It says the trial's
    calls decide, names no approval, and its Retry-After is the hint (10 s) or, sooner,
    when a trial call's hold runs out (the trial has failed then).

    audit27 B1 L1: ``GET /v1/breakers`` gave the trial ``retry_after: 10`` while it still
    admitted calls; it is null then (as for a closed breaker), and once the trial is full
    it is the 503's figure."""
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    await half_open_request(slack)
    assert (await listed(app))["retry_after"] == 60  # waiting for a person
    approved = await slack.command(f"breaker {BOT} approve 2")
    assert "approved a trial of" in approved["text"], approved
    row = await listed(app)
    assert (row["state"], row["retry_after"], row["trial"]["admitted"]) == ("half_open", None, 0)
    assert (await trial_call(app, "t1")).status_code == 201
    row = await listed(app)
    assert (row["retry_after"], row["trial"]["admitted"]) == (None, 1), row
    assert (await trial_call(app, "t2", ttl_seconds=30)).status_code == 201
    assert (await listed(app))["retry_after"] == 10

    full = refused_while(await trial_call(app, "t3"), "half_open")
    assert full["retry_after"] == 10
    assert full["reason"] == "trial in progress: 2 of 2 calls admitted, waiting for their results"
    assert "approve" not in full["message"] and "ask an operator" not in full["message"]
    assert "trial's calls decide" in full["message"], full
    # what the person who reads it and tries anyway is told: the same
    said = await slack.command(f"breaker {BOT} approve")
    assert (
        "a trial of 2 calls is running already (2 admitted, 0 succeeded) and its calls decide;"
        " there is nothing to approve"
    ) in said["text"], said

    app.clock.advance(25)  # t2's hold runs out in 5 s: the trial is decided then
    soon = refused_while(await trial_call(app, "t4"), "half_open")
    assert soon["retry_after"] == 5
    assert (await listed(app))["retry_after"] == 5  # the list and the 503 agree
    app.clock.advance(5)
    after = refused_while(await trial_call(app, "t5"), "open")  # t2 expired: failed trial
    assert after["reason"].endswith("expired without a settle"), after
    assert after["retry_after"] == 120  # the cool-down, doubled
    # open, an approval starts a trial at once (in Slack, and over HTTP: L2)
    assert f"/agent breaker {BOT} approve" in after["message"]


async def test_a_trial_whose_budget_is_all_held_lists_what_the_next_call_gets(
    slack_http: Any,
) -> None:
    """recheck27 Ka L2: trial calls holding the whole trial budget left a slot free, so the
    list said ``retry_after: null``, while the next reservation, of 1 µ$ even, got a 503
    and re-opened the breaker (the README's ``half_open.trial_budget``: a call that would
    hold more than is left ends the trial like a failure). The list says the figure that
    503 gives: the re-opened breaker's cool-down, doubled; a trial call's hold running out
    sooner does not shorten it, as the trial fails on that next call, not then."""
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    await half_open_request(slack)
    approved = await slack.command(f"breaker {BOT} approve 3 $0.01")
    assert "approved a trial of" in approved["text"], approved
    assert (await trial_call(app, "t1", micros=9_999, ttl_seconds=30)).status_code == 201
    row = await listed(app)
    assert (row["retry_after"], row["trial"]["held_micros"]) == (None, 9_999), row  # 1 µ$ left
    assert (await trial_call(app, "t2", micros=1, ttl_seconds=30)).status_code == 201
    row = await listed(app)
    trial = row["trial"]
    assert (row["state"], trial["admitted"], trial["calls"]) == ("half_open", 2, 3), row
    assert (trial["held_micros"], trial["budget_micros"]) == (10_000, 10_000), row
    assert row["retry_after"] == 120, row
    app.clock.advance(20)  # the holds run out in 10 s: the next call fails the trial first
    assert (await listed(app))["retry_after"] == 120
    over = refused_while(await trial_call(app, "t3", micros=1), "open")
    assert over["reason"].startswith("trial budget hit: $0.01 held + $0.000001 asked"), over
    assert over["retry_after"] == 120  # the list and the 503 agree


async def settle_trial(app: Any, r: Any, *, micros: int) -> None:
    """Settle the trial call of reservation answer ``r`` as a success charged ``micros``."""
    assert r.status_code == 201, r.text
    res = r.json()["reservation_id"]
    body = {"actual_cost_micros": micros, "outcome": "success"}
    s = await app.request(
        "POST", f"/v1/reservations/{res}/settle", token=await app.token(BOT), json=body
    )
    assert s.status_code == 200, s.text


async def test_a_trial_whose_successful_calls_spent_its_budget_has_passed(
    app_factory: Any,
) -> None:
    """recheck27 Kd: a trial of 2 calls within $0.01 whose first call succeeded, charged
    the whole $0.01, was failed by its next call (re-opened, cool-down doubled), the 503
    calling that money "$0.01 held". The budget is spent, not held: every call the trial
    could pay for succeeded, so it passes and closes at that settle. A settled call takes
    what it was charged of the budget, not its hold, and a 503 says which is which."""
    app = await app_factory(STALE_POLICY, clock=ManualClock())
    await overspend(app)
    _, op = await operator_token(app, "acme/alice")
    trial = {"trial_calls": 2, "trial_budget_micros": 10_000}
    assert (await app.request("POST", APPROVE, token=op, json=trial)).status_code == 200
    await settle_trial(app, await trial_call(app, "t1"), micros=10_000)
    assert (await breaker(app)).state == "closed"
    assert (await trial_call(app, "after")).status_code == 201
    [(reason,)] = await app.store.fetch(
        "SELECT reason FROM breaker_transitions WHERE scope = ? AND to_state = 'closed'", (BOT,)
    )
    assert reason == "1 trial call of 2 succeeded and spent the trial's budget ($0.01 of $0.01)"

    # the next trial: a call charged less than it held gives the rest back to the trial
    app.clock.advance(1)  # (charges at the instant it closed do not count)
    await overspend(app, key="k2")
    row = await breaker(app)
    assert row.state == "open", row
    r = await app.request("POST", APPROVE, token=op, json=trial)
    assert r.status_code == 200, r.text
    await settle_trial(app, await trial_call(app, "u1"), micros=4_000)
    row = await listed(app)
    assert (row["state"], row["retry_after"]) == ("half_open", None), row
    assert (row["trial"]["held_micros"], row["trial"]["charged_micros"]) == (0, 4_000), row
    over = refused_while(await trial_call(app, "u2", micros=6_001), "open")
    assert over["reason"] == ("trial budget hit: $0.004 charged + $0.006001 asked is over $0.01"), (
        over
    )  # what it asked more than the $0.006 left: the documented failure
    assert over["retry_after"] == 240  # (it re-tripped on probation: doubled twice)


# -- L2: an approval during the cool-down, in Slack and over HTTP -------------------------


@pytest.mark.parametrize("surface", ["slack", "http"])
async def test_an_approval_during_the_cool_down_starts_the_trial_in_slack_and_over_http(
    slack_http: Any, surface: str
) -> None:
    """audit26 A3 L2: `/agent breaker … approve` on a breaker still cooling down started
    the trial at once, `POST /v1/breakers/…/approve` was a 409 for the same state. Both
    start it now, audited and announced alike: the operator who fixed the cause at
    3 a.m. does not wait out the cool-down."""
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    await overspend(app)
    app.clock.advance(20)  # 40 s of the 1 m cool-down left
    assert (await trial_call(app, "cooling")).json()["state"] == "open"
    if surface == "slack":
        actor = ADMIN
        said = await slack.command(f"breaker {BOT} approve 1 $0.10")
        assert f"<@{ADMIN}> approved a trial of `{BOT}`" in said["text"], said
    else:
        tok_id, op = await operator_token(app, "acme/alice")
        actor = f"token:{tok_id}"
        body = {"trial_calls": 1, "trial_budget_micros": 100_000}
        r = await app.request("POST", APPROVE, token=op, json=body)
        assert r.status_code == 200, r.text
        assert r.json()["breaker"]["state"] == "half_open"
    row = await breaker(app)
    assert (row.state, row.trial["calls"], row.trial["budget_micros"]) == (
        "half_open",
        1,
        100_000,
    )
    [(who, was, now, detail)] = await audit(app, "breaker.approve")
    assert (who, was, now) == (actor, "open", "half_open")
    assert detail == f"trial of 1 call up to $0.10 approved by {actor}"
    moves = await app.store.fetch(
        "SELECT from_state, to_state, actor FROM breaker_transitions WHERE scope = ? ORDER BY id",
        (BOT,),
    )
    assert [tuple(m) for m in moves] == [
        ("closed", "open", "breaker"),
        ("open", "half_open", actor),
    ]
    await alerts_of(slack).process()
    alerts = await app.store.fetch(
        "SELECT kind, resolved_by FROM alerts WHERE scope = ? ORDER BY id", (BOT,)
    )
    # the P0 stays until the trial closes the breaker; no trial request (it is answered)
    assert [tuple(a) for a in alerts] == [("breaker_opened_spend", None)]
    assert (await trial_call(app, "trial-1")).status_code == 201  # the trial: one call
    full = refused_while(await trial_call(app, "trial-2"), "half_open")
    assert "approve" not in full["message"]


async def test_a_trial_stored_before_settled_calls_were_marked_counts_them_once(
    app_factory: Any,
) -> None:
    """review28 R2 L1: a trial row written by the code before 46c14db keeps a settled
    call's hold in trial_holds; read by the code after it, that hold counted on top of
    the call's charge, and a call the budget had room for failed the trial ("trial
    budget hit: $0.004 charged + $0.005 held + $0.002 asked is over $0.01"). Loading
    the row marks settled the calls whose reservation settled."""
    app = await app_factory(STALE_POLICY, clock=ManualClock())
    await overspend(app)
    _, op = await operator_token(app, "acme/alice")
    trial = {"trial_calls": 3, "trial_budget_micros": 10_000}
    assert (await app.request("POST", APPROVE, token=op, json=trial)).status_code == 200
    first = await trial_call(app, "v1", micros=5_000)
    await settle_trial(app, first, micros=4_000)
    old = json.dumps({first.json()["reservation_id"]: 5_000})  # as that code stored it
    await app.store.write(
        lambda tx: tx.execute("UPDATE breakers SET trial_holds = ? WHERE key = ?", (old, BOT))
    )
    app.ns.breakers.forget()  # as a restart on the new code reads it
    r = await trial_call(app, "v2", micros=2_000)
    assert r.status_code == 201, r.text
    row = await listed(app)
    assert row["state"] == "half_open", row
    assert (row["trial"]["held_micros"], row["trial"]["charged_micros"]) == (2_000, 4_000), row
