"""Money the trip did not stop (audit13 incidents M1): calls granted before a spend
breaker opened settle after it, and the P0 says how much more went.

The real app in Slack HTTP mode against the fake Slack Web API, a ManualClock; the
agent calls through HTTP. The spend rate counts charges: 40 calls reserved at once,
before any settles, are all granted, and those that settle after the trip are charged
in full (spending that happened is never dropped). The page cannot stop them; it must
not understate them either.
"""

from __future__ import annotations

import json
from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_alerts import ALERTS, BOT, POLICY, alerts_of

CALLS = 40
COST = 420_000  # $0.42 a call: the fifth charge carries the window past $2.00


async def reserve_all(app: Any, token: str, *, count: int = CALLS, prefix: str = "k") -> list[str]:
    ids = []
    for i in range(count):
        r = await app.request(
            "POST",
            "/v1/reservations",
            token=token,
            json={"scope": BOT, "idempotency_key": f"{prefix}{i}", "max_cost_micros": COST},
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["reservation_id"])
    return ids


async def settle(app: Any, token: str, rid: str, outcome: str = "success") -> None:
    r = await app.request(
        "POST",
        f"/v1/reservations/{rid}/settle",
        token=token,
        json={"actual_cost_micros": COST, "outcome": outcome},
    )
    assert r.status_code == 200, r.text


async def spend_alert(app: Any) -> dict[str, Any]:
    rows = await app.store.fetch(
        "SELECT id, count, facts FROM alerts WHERE kind = 'breaker_opened_spend' AND scope = ?",
        (BOT,),
    )
    assert len(rows) == 1
    return {"id": rows[0][0], "count": rows[0][1], **json.loads(rows[0][2])}


async def test_calls_in_flight_at_the_trip_are_added_to_the_p0(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app, fake = slack.app, slack.fake
    token = await app.token(BOT)
    ids = await reserve_all(app, token)
    for rid in ids:
        await settle(app, token, rid)
    charged = await app.store.fetch(
        "SELECT SUM(charged_micros) FROM reservations WHERE scope = ?", (BOT,)
    )
    assert charged[0][0] == CALLS * COST  # $16.80: nothing dropped
    await alerts_of(slack).process()
    alert = await spend_alert(app)
    # the trip: $2.10 after the fifth charge; the 35 others landed on the open breaker
    assert alert["reason"] == "spent $2.10 in the last 10m (limit $2.00)"
    assert (alert["after_trip_micros"], alert["after_trip_calls"]) == (35 * COST, 35)
    assert alert["count"] == 1  # one trip, one alert: the later charges are not firings
    app.clock.advance(31)  # past update_interval: the message shows the figure
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: fake.posts(ALERTS))
    posted = fake.posts(ALERTS)[0].response["ts"]

    def shown() -> str:
        return json.dumps(fake.messages[(ALERTS, posted)], ensure_ascii=False)

    await fake.wait_for(lambda: "$14.70 more" in shown())
    assert "since then $14.70 more from 35 calls granted before it opened" in shown()


async def test_a_trip_again_keeps_what_got_through_and_a_closed_breaker_adds_nothing(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    token = await app.token(BOT)
    ids = await reserve_all(app, token)
    for rid in ids[:6]:  # the trip at the fifth, one more after it
        await settle(app, token, rid)
    await alerts_of(slack).process()
    assert (await spend_alert(app))["after_trip_calls"] == 1
    # the cool-down ends, a trial is approved, its call fails: the breaker opens again
    app.clock.advance(app.ns.policy.breakers.cooldown_seconds + 1)
    await app.ns.breakers.sweep(app.store)
    assert "approved" in (await slack.command(f"breaker {BOT} approve"))["text"]
    [trial] = await reserve_all(app, token, count=1, prefix="trial")
    await settle(app, token, trial, outcome="failure")  # a trial call is not "after"
    await alerts_of(slack).process()
    again = await spend_alert(app)
    assert again["count"] == 2 and again["trip"] == "trial"
    assert (again["after_trip_micros"], again["after_trip_calls"]) == (COST, 1)  # kept
    # an operator closes the breaker: charges then are the closed breaker's, not "after"
    reply = await slack.command(f"breaker {BOT} close")
    assert "closed" in reply["text"], reply["text"]
    await alerts_of(slack).process()
    for rid in ids[6:8]:
        await settle(app, token, rid)
    await alerts_of(slack).process()
    rows = await app.store.fetch(
        "SELECT resolved_at, facts FROM alerts WHERE kind = 'breaker_opened_spend'"
    )
    assert len(rows) == 1 and rows[0][0] is not None
    assert json.loads(rows[0][1])["after_trip_calls"] == 1


async def test_the_person_who_approved_a_trial_that_failed_is_told(slack_http):
    """audit21 guards F3: the approver was told "trial running", and then nothing: the
    P0's message far up the channel was edited, and the next request came 30 min later."""
    slack = await slack_http(POLICY, clock=ManualClock())
    app, fake = slack.app, slack.fake
    token = await app.token(BOT)
    for rid in await reserve_all(app, token, count=5):
        await settle(app, token, rid)  # the spend-rate trip
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS))
    app.clock.advance(app.ns.policy.breakers.cooldown_seconds + 1)
    await app.ns.breakers.sweep(app.store)
    assert "approved" in (await slack.command(f"breaker {BOT} approve"))["text"]
    [trial] = await reserve_all(app, token, count=1, prefix="trial")
    await settle(app, token, trial, outcome="failure")
    await alerts_of(slack).process()

    def told() -> list[str]:
        return [
            str(c.args["text"])
            for c in fake.posts(ALERTS)
            if c.args.get("thread_ts") and "trial you approved" in str(c.args["text"])
        ]

    await fake.wait_for(told)
    [said] = told()
    assert said.startswith(
        f"⚠️ <@U0ADMIN>, the trial you approved on `{BOT}` failed: trial call res_"
    ), said
    assert said.endswith("The breaker is open again for 30m, until 00:45."), said
    # the P0 still says what it opened for (audit23 forensics L4: the spend was gone)
    post = fake.posts(ALERTS)[0].response["ts"]
    await fake.wait_for(lambda: "failed (it opened for:" in fake.messages[(ALERTS, post)]["text"])
    assert (
        "failed (it opened for: spent $2.10 in the last 10m (limit $2.00)); cool-down 30m"
        in fake.messages[(ALERTS, post)]["text"]
    )


async def test_a_trial_the_breaker_started_itself_blames_no_earlier_approver(slack_http):
    """review22 M3: the latest approval of the scope, however old, was taken for this
    trial's: an auto trial failing pinged someone who had approved another, days before."""
    policy = {
        **POLICY,
        "breakers": {
            "spend_rate": {"max": "2.00", "per_seconds": "10m"},
            "half_open": {"mode": "auto"},
            "failures_half_open_mode": "approval",
            "failures": {"consecutive": 3},
        },
    }
    slack = await slack_http(policy, clock=ManualClock())
    app, fake = slack.app, slack.fake
    token = await app.token(BOT)
    for rid in await reserve_all(app, token, count=3, prefix="f"):
        await settle(app, token, rid, outcome="failure")  # a failures trip: approval
    await alerts_of(slack).process()
    app.clock.advance(app.ns.policy.breakers.cooldown_seconds + 1)
    await app.ns.breakers.sweep(app.store)
    assert "approved" in (await slack.command(f"breaker {BOT} approve"))["text"]
    for i in range(3):  # that trial passes: three small calls
        r = await app.request(
            "POST",
            "/v1/reservations",
            token=token,
            json={"scope": BOT, "idempotency_key": f"t{i}", "max_cost_micros": 1000},
        )
        rid = r.json()["reservation_id"]
        ok = {"actual_cost_micros": 1000, "outcome": "success"}
        await app.request("POST", f"/v1/reservations/{rid}/settle", token=token, json=ok)
    assert [b["state"] for b in (await app.request(
        "GET", "/v1/breakers?all=1", token=token)).json()["breakers"]] == ["closed"]  # fmt: skip
    app.clock.advance(5000)
    for rid in await reserve_all(app, token, count=5, prefix="s"):
        await settle(app, token, rid)  # a spend trip, days later: its trial starts itself
    await alerts_of(slack).process()
    app.clock.advance(3 * 3600)
    await app.ns.breakers.sweep(app.store)
    [trial] = await reserve_all(app, token, count=1, prefix="auto")
    await settle(app, token, trial, outcome="failure")
    await alerts_of(slack).process()
    await slack.outbox.drain(1.0)
    said = [str(c.args["text"]) for c in fake.posts(ALERTS) if c.args.get("thread_ts")]
    assert not [t for t in said if "trial you approved" in t], said
