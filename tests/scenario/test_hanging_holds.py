"""Hanging holds (audit27 parity 5): a call holding its ceiling past ``alerts.hanging_after``
is posted as a P1 at once, not found at its TTL's end as a P2 for tomorrow's digest.

The real app in Slack HTTP mode against the fake Slack Web API, on a ManualClock; the
sweep runs when the test calls ``hanging()`` (its scheduler job reads the same time).
"""

from __future__ import annotations

from typing import Any

from bot.alerts.hanging import CLEARED
from guards.scopes import subtree
from tests.scenario.test_alerts import ALERTS, BOT, POLICY, alerts_of, channel_message

MODEL = "claude-haiku-4-5"


async def hold(app: Any, token: str, key: str, *, scope: str = BOT, micros: int = 400_000) -> str:
    body = {
        "scope": scope,
        "idempotency_key": key,
        "max_cost_micros": micros,
        "ttl_seconds": 600,  # the default: hanging from 5 minutes (the larger of both)
        "model": MODEL,
    }
    r = await app.request("POST", "/v1/reservations", token=token, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["reservation_id"])


async def settle(app: Any, token: str, rid: str) -> None:
    body = {"actual_cost_micros": 100_000, "outcome": "success"}
    r = await app.request("POST", f"/v1/reservations/{rid}/settle", token=token, json=body)
    assert r.status_code == 200, r.text


async def sweep(slack: Any) -> None:
    await alerts_of(slack).hanging()
    await alerts_of(slack).process()


async def hanging_alerts(app: Any) -> list[Any]:
    return list(
        await app.store.fetch(
            "SELECT id, tier, count, resolved_at, resolve_reason, scope FROM alerts"
            " WHERE kind = 'hold_hanging' ORDER BY id"
        )
    )


async def test_a_hold_past_hanging_after_is_posted_once_as_a_p1(slack_http):
    slack = await slack_http(POLICY)
    fake, app = slack.fake, slack.app
    tok = await app.token(BOT)
    rid = await hold(app, tok, "k1")
    app.clock.advance(4 * 60)
    await sweep(slack)
    assert await hanging_alerts(app) == []  # 4 minutes: not yet

    app.clock.advance(61)
    await sweep(slack)
    await fake.wait_for(lambda: fake.posts(ALERTS))
    text = fake.posts(ALERTS)[0].args["text"]
    assert text == (
        f"🟠 P1 · Call hanging on its hold — {BOT}: {rid} on {MODEL} has held $0.40 for 5m 1s"
        f" (since 00:00) without a settle; `/agent release {rid}` ends it,"
        f" `/agent holds {BOT}` lists them"
    )
    [(_, tier, count, resolved, _, scope)] = await hanging_alerts(app)
    assert (tier, count, resolved, scope) == ("P1", 1, None, BOT)

    app.clock.advance(31)  # the next sweep: the same hold is not told again
    await sweep(slack)
    [(_, _, count, resolved, _, _)] = await hanging_alerts(app)
    assert (count, resolved) == (1, None)
    assert len(fake.posts(ALERTS)) == 1


async def test_two_hanging_holds_of_an_agent_are_one_alert_settling_them_resolves_it(slack_http):
    slack = await slack_http(POLICY)
    fake, app = slack.fake, slack.app
    tok = await app.token(BOT)
    first = await hold(app, tok, "k1")
    second = await hold(app, tok, "k2", scope=f"{BOT}/c42")
    app.clock.advance(6 * 60)
    await sweep(slack)
    await fake.wait_for(lambda: fake.posts(ALERTS))
    [(_, _, count, resolved, _, scope)] = await hanging_alerts(app)
    assert (count, resolved, scope) == (2, None, BOT)
    assert len([c for c in fake.posts(ALERTS) if not c.args.get("thread_ts")]) == 1

    await settle(app, tok, first)
    await sweep(slack)
    [(_, _, _, resolved, _, _)] = await hanging_alerts(app)
    assert resolved is None  # c42's hold still hangs

    await settle(app, tok, second)
    await sweep(slack)
    [(_, _, _, resolved, reason, _)] = await hanging_alerts(app)
    assert resolved is not None
    assert reason == "no hold of it hangs any more (settled, released or expired)"
    await fake.wait_for(lambda: "✅ resolved" in str(channel_message(fake)["text"]))


async def test_a_hold_under_a_cent_is_said_to_the_micro_dollar(slack_http):
    """recheck31 L6: a $0.0035 hold was "held $0.00" in the alert."""
    slack = await slack_http(POLICY)
    fake, app = slack.fake, slack.app
    tok = await app.token(BOT)
    await hold(app, tok, "k1", micros=3_500)
    app.clock.advance(5 * 60 + 1)
    await sweep(slack)
    await fake.wait_for(lambda: fake.posts(ALERTS))
    assert "has held $0.0035 for 5m 1s" in fake.posts(ALERTS)[0].args["text"]


async def test_a_hold_settled_in_time_raises_nothing(slack_http):
    slack = await slack_http(POLICY)
    app = slack.app
    tok = await app.token(BOT)
    rid = await hold(app, tok, "k1")
    app.clock.advance(4 * 60)
    await settle(app, tok, rid)
    app.clock.advance(10 * 60)
    await sweep(slack)
    assert await hanging_alerts(app) == []


async def test_hanging_after_off_raises_nothing(slack_http):
    policy = {**POLICY, "alerts": {**POLICY["alerts"], "hanging_after": 0}}
    slack = await slack_http(policy)
    app = slack.app
    tok = await app.token(BOT)
    await hold(app, tok, "k1")
    app.clock.advance(30 * 60)
    await sweep(slack)
    assert await hanging_alerts(app) == []


async def test_the_sweep_reads_the_open_holds_not_every_reservation(slack_http):
    from bot.alerts.hanging import HANGING_SQL, STILL_HANGING_SQL

    slack = await slack_http(POLICY)
    app = slack.app
    now = app.clock.now()
    for sql, args in (
        (HANGING_SQL, (now, 300, now, 1000)),
        (STILL_HANGING_SQL, (now, 300, now, BOT, *subtree(BOT))),
    ):
        rows = await app.store.fetch(f"EXPLAIN QUERY PLAN {sql}", args)
        plan = " | ".join(row[3] for row in rows)
        assert "INDEX reservations_due" in plan, (sql, plan)
        assert "SCAN reservations" not in plan, plan


async def test_a_hold_hanging_past_the_quiet_period_keeps_its_alert_open(slack_http):
    # auto_resolve_after (1h) resolves a quiet alert; a hanging hold is a condition that
    # lasts while it hangs, whether or not it fired again
    slack = await slack_http(POLICY)
    app = slack.app
    tok = await app.token(BOT)
    body = {"scope": BOT, "idempotency_key": "k1", "max_cost_micros": 400_000}
    r = await app.request(
        "POST", "/v1/reservations", token=tok, json={**body, "ttl_seconds": 3 * 3600}
    )
    assert r.status_code == 201, r.text
    app.clock.advance(91 * 60)  # half its TTL: hanging
    await sweep(slack)
    assert len(await hanging_alerts(app)) == 1
    for _ in range(5):  # 1h15 later, the tick that resolves quiet alerts has run
        app.clock.advance(15 * 60)
        await sweep(slack)
        await alerts_of(slack).tick()
    [(_, _, _, resolved, reason, _)] = await hanging_alerts(app)
    assert (resolved, reason) == (None, None)


async def test_a_call_that_asked_for_a_long_ttl_hangs_at_half_of_it(slack_http):
    """review30 M2: a batch call held for an hour on purpose paged at 5 minutes."""
    slack = await slack_http(POLICY)
    app = slack.app
    tok = await app.token(BOT)
    body = {"scope": BOT, "idempotency_key": "k1", "max_cost_micros": 400_000}
    r = await app.request("POST", "/v1/reservations", token=tok, json={**body, "ttl_seconds": 3600})
    assert r.status_code == 201, r.text
    app.clock.advance(29 * 60)
    await sweep(slack)
    assert await hanging_alerts(app) == []  # within half of the hour it asked for
    app.clock.advance(61)
    await sweep(slack)
    [(_, tier, _, resolved, _, _)] = await hanging_alerts(app)
    assert (tier, resolved) == ("P1", None)


async def test_an_alert_whose_holds_hang_no_longer_by_the_rule_says_so(slack_http, tmp_path):
    """recheck30 L3: restarted with a longer hanging_after, a hold still open was said to be
    "settled, released or expired"."""
    db = tmp_path / "h.db"
    slack = await slack_http(POLICY, db=db)
    app = slack.app
    tok = await app.token(BOT)
    await hold(app, tok, "k1")
    app.clock.advance(5 * 60 + 1)
    await sweep(slack)
    assert len(await hanging_alerts(app)) == 1
    clock = app.clock
    await app.ns.stop()
    longer = {**POLICY, "alerts": {**POLICY["alerts"], "hanging_after": "8m"}}
    again = await slack_http(longer, db=db, clock=clock)
    await sweep(again)
    [(_, _, _, resolved, reason, _)] = await hanging_alerts(again.app)
    assert resolved is not None
    assert reason == (
        "its open holds no longer count as hanging: alerts.hanging_after, or half their TTL"
        " if longer, is 8m now"
    )


async def test_a_hold_told_is_not_told_again_when_hanging_after_grows(slack_http, tmp_path):
    """review31 M2: restarted with a longer hanging_after, a hold told before was told again
    once it passed the new limit (a second alert, paging again)."""
    db = tmp_path / "h2.db"
    slack = await slack_http(POLICY, db=db)
    app = slack.app
    tok = await app.token(BOT)
    await hold(app, tok, "k1", micros=400_000)
    app.clock.advance(5 * 60 + 1)
    await sweep(slack)
    clock = app.clock
    await app.ns.stop()
    longer = {**POLICY, "alerts": {**POLICY["alerts"], "hanging_after": "8m"}}
    again = await slack_http(longer, db=db, clock=clock)
    for _ in range(8):  # past 8 minutes, sweeping as the job does
        clock.advance(30)
        await sweep(again)
    events = await again.app.store.fetch("SELECT COUNT(*) FROM events WHERE kind = 'hold_hanging'")
    assert events[0][0] == 1
    assert len(await hanging_alerts(again.app)) == 1


async def test_a_busy_agents_alert_resolves_as_cleared_not_within(slack_http):
    """review31 L1: an agent with calls in flight (none hanging) got the "within" reason."""
    slack = await slack_http(POLICY)
    app = slack.app
    tok = await app.token(BOT)
    hung = await hold(app, tok, "k1")
    app.clock.advance(5 * 60 + 1)
    await sweep(slack)
    await hold(app, tok, "k2")  # a fresh call in flight
    await settle(app, tok, hung)
    await sweep(slack)
    [(_, _, _, resolved, reason, _)] = await hanging_alerts(app)
    assert resolved is not None and reason == CLEARED


async def test_the_alert_names_a_hold_still_hanging_once_the_one_it_named_has_ended(slack_http):
    """recheck30 L2: after the hold the alert named was settled, its message still said to
    release that one, while another of the agent's holds hung on."""
    slack = await slack_http(POLICY)
    fake, app = slack.fake, slack.app
    tok = await app.token(BOT)
    first = await hold(app, tok, "k1")
    app.clock.advance(60)
    second = await hold(app, tok, "k2", scope=f"{BOT}/c42", micros=300_000)
    app.clock.advance(4 * 60 + 1)
    await sweep(slack)  # the first hangs: posted
    await fake.wait_for(lambda: fake.posts(ALERTS))
    app.clock.advance(60)
    await sweep(slack)  # the second hangs too: the message names it, the latest
    app.clock.advance(31)  # past update_interval: drawn again
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: f"`/agent release {second}`" in str(channel_message(fake)["text"]))

    await settle(app, tok, second)
    app.clock.advance(30)
    await sweep(slack)
    await fake.wait_for(lambda: f"`/agent release {first}`" in str(channel_message(fake)["text"]))
    text = str(channel_message(fake)["text"])
    assert second not in text
    assert f"{first} on {MODEL} has held $0.40 for 7m 2s (since 00:00) without a settle" in text
    assert "in conversation" not in text
    [(_, _, count, resolved, _, _)] = await hanging_alerts(app)
    assert (count, resolved) == (2, None)
