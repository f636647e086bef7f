"""The Raise budget form's amount against the call the alert is about (recheck27 Kd): a
raise of a micro-dollar ($0.05 to $0.050001) for a call that asked $0.06 resolved the
alert "the day budget was raised to $0.050001", though that call would be refused again.
Amounts are exact USD to the micro-dollar: such a raise is set (it is a limit like any
other), and the alert stays open, the submitter told why; an amount finer than a
micro-dollar, or $0, is refused under the amount, naming the smallest.

The real app in Slack HTTP mode against the fake Slack Web API, signed view submissions.
"""

from __future__ import annotations

from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_slack_races import (
    ADMIN,
    AGENT,
    ALERTS,
    BUDGET_POLICY,
    budget_alert,
    limits,
    open_form,
    submit,
)
from tests.scenario.test_stale_clicks import answer, settled


async def open_alerts(app: Any) -> list[tuple[Any, ...]]:
    rows = await app.store.fetch("SELECT id, resolved_at FROM alerts WHERE kind LIKE 'budget%'")
    return [tuple(r) for r in rows]


async def test_a_raise_short_of_the_refused_call_leaves_its_alert_open(slack_http: Any) -> None:
    slack = await slack_http(BUDGET_POLICY, clock=ManualClock())
    app = slack.app
    ts = await budget_alert(slack)  # $0.06 asked of a $0.05 day
    view = await open_form(slack, ts)

    for bad, said in (
        ("0.0000001", "has more than six decimals: amounts are exact to the micro-dollar"),
        ("0", "a raised budget is more than $0: $0.000001 (one micro-dollar) at the least"),
    ):
        refused = await submit(slack, view, bad)
        assert refused.json()["response_action"] == "errors", refused.text
        assert said in refused.json()["errors"]["amount"], refused.json()
    assert await limits(app) == []  # nothing changed

    assert (await submit(slack, view, "0.050001")).text == ""
    assert await limits(app) == [(AGENT, "day", 50_001, ADMIN)]  # set: exact, as typed
    assert await answer(slack, ADMIN) == (
        f"💰 day budget of `{AGENT}` set to $0.050001 (was $0.05) by <@{ADMIN}> at 00:00;"
        " #1 stays open: the call it refused asked $0.06, more than the day budget now"
        " leaves (the limit must take that on top of what is spent and held). It overrides the"
        f" policy file's $0.05, restarts included, until `/agent budget set {AGENT} default day`."
    )
    assert await open_alerts(app) == [(1, None)]
    await app.ns.extras["alerts"].tick()  # the tick judges it alike (review28 R6 L1)
    assert await open_alerts(app) == [(1, None)]
    await settled(slack)
    posted = slack.fake.messages[(ALERTS, ts)]
    assert "resolved" not in str(posted["blocks"]), posted

    view = await open_form(slack, ts)
    assert (await submit(slack, view, "0.06")).text == ""  # enough for the call: resolved
    [(_, resolved_at)] = await open_alerts(app)
    assert resolved_at is not None


async def test_a_raise_that_held_money_still_eats_leaves_the_alert_open(slack_http: Any) -> None:
    """review28 R2 M2: the reserve refused the call on spent + held + asked, the clearing
    rule judged spent + asked: with $0.05 of a $0.05 day held, a raise to $0.06 resolved
    the alert of a $0.02 call that a retry got refused again (and paged again). What the
    window holds now counts, in `budget set` as in the form and the tick."""
    slack = await slack_http(BUDGET_POLICY, clock=ManualClock())
    app = slack.app
    tok = await app.token(AGENT)

    async def reserve(key: str, micros: int) -> int:
        body = {"scope": AGENT, "idempotency_key": key, "max_cost_micros": micros}
        r = await app.request("POST", "/v1/reservations", token=tok, json=body)
        return int(r.status_code)

    assert await reserve("held", 50_000) == 201  # the whole day held, in flight
    assert await reserve("asks", 20_000) == 402  # $0.00 spent, $0.05 held of $0.05
    await app.ns.extras["alerts"].process()  # the refusal's alert
    assert [a for a, _ in await open_alerts(app)] == [1]
    said = (await slack.command(f"budget set {AGENT} 0.06 day"))["text"]
    assert "$0.06" in said, said
    assert await open_alerts(app) == [(1, None)]  # before: resolved, "raised to $0.06"
    await app.ns.extras["alerts"].tick()  # the tick judges it alike (review28 R6 L1)
    assert await open_alerts(app) == [(1, None)]
    assert await reserve("asks", 20_000) == 402  # it would be refused again: it is
    said = (await slack.command(f"budget set {AGENT} 0.07 day"))["text"]
    [(_, resolved_at)] = await open_alerts(app)
    assert resolved_at is not None, said  # $0.05 held + $0.02 asked: taken now
    assert await reserve("asks", 20_000) == 201


async def test_a_raise_the_tick_resolves_once_a_hold_is_released_says_the_release_made_room(
    slack_http: Any,
) -> None:
    """review28 R6 L5: a raise that held money left short resolves at the tick after the
    hold is released; the reason said only "the day budget was raised to $0.06", though
    the raise (made long before, perhaps) was not what made room."""
    clock = ManualClock()
    slack = await slack_http(BUDGET_POLICY, clock=clock)
    app = slack.app
    tok = await app.token(AGENT)

    async def reserve(key: str, micros: int) -> Any:
        body = {"scope": AGENT, "idempotency_key": key, "max_cost_micros": micros}
        return await app.request("POST", "/v1/reservations", token=tok, json=body)

    held = await reserve("held", 50_000)
    assert held.status_code == 201
    assert (await reserve("asks", 20_000)).status_code == 402
    await app.ns.extras["alerts"].process()
    await slack.command(f"budget set {AGENT} 0.06 day")
    clock.advance(60)  # the hold's ttl is longer
    await app.ns.extras["alerts"].tick()
    assert await open_alerts(app) == [(1, None)]  # the hold still takes the room
    rid = held.json()["reservation_id"]
    released = await app.request("POST", f"/v1/reservations/{rid}/release", token=tok, json={})
    assert released.status_code == 200, released.text
    await app.ns.extras["alerts"].tick()
    rows = await app.store.fetch("SELECT resolved_at, resolved_by, resolve_reason FROM alerts")
    [(resolved_at, by, reason)] = [tuple(r) for r in rows]
    assert resolved_at is not None and by == ADMIN, rows
    assert reason == (
        "the day budget was raised to $0.06, and the held money that kept it short of the"
        " refused call was released"
    ), reason
    assert (await reserve("asks", 20_000)).status_code == 201

    # a raise enough at once says only the raise
    assert (await reserve("more", 50_000)).status_code == 402  # $0.02 held of $0.06
    await app.ns.extras["alerts"].process()
    await slack.command(f"budget set {AGENT} 0.08 day")
    rows = await app.store.fetch("SELECT resolve_reason FROM alerts WHERE id > 1")
    assert [r[0] for r in rows] == ["the day budget was raised to $0.08"], rows


async def test_budget_set_and_the_form_judge_an_amount_alike(slack_http: Any) -> None:
    """review28 R2 L2: README said `budget set` refuses $0, yet it sets a $0 limit (a stop,
    which the README documents), and its "more than six decimals" named no smallest
    amount where the form's did. One rule: an amount finer than a micro-dollar is
    refused naming the smallest; $0 stops the scope by the command, and the Raise
    budget form, which raises, refuses it naming that command."""
    slack = await slack_http(BUDGET_POLICY, clock=ManualClock())
    app = slack.app
    said = (await slack.command(f"budget set {AGENT} 0.0500001 day"))["text"]
    assert (
        "'0.0500001' has more than six decimals: amounts are exact to the micro-dollar,"
        " $0.000001 (one micro-dollar) at the least"
    ) in said, said
    assert await limits(app) == []
    ts = await budget_alert(slack)
    refused = await submit(slack, await open_form(slack, ts), "0.0500001")
    assert refused.json()["errors"]["amount"] == (
        "'0.0500001' has more than six decimals: amounts are exact to the micro-dollar,"
        " $0.000001 (one micro-dollar) at the least"
    )
    refused = await submit(slack, await open_form(slack, ts), "$0")
    assert refused.json()["errors"]["amount"] == (
        "a raised budget is more than $0: $0.000001 (one micro-dollar) at the least"
        " (a $0 limit, a stop, is `/agent budget set <scope> 0 day`)"
    )
    assert await limits(app) == []
    said = (await slack.command(f"budget set {AGENT} 0 day"))["text"]
    assert "$0.00" in said, said
    assert await limits(app) == [(AGENT, "day", 0, ADMIN)]
