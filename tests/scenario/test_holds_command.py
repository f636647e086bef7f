"""Holds in the way: which calls hold the money, and ending one (audit16 money M3).

Two conversations' holds of a day's TTL kept every sibling from its agent's budget until
the next evening; the operator could see how much was held but not by which call, and
nothing but SQL could end it (revoking the token does not).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_ledger_api import reserve, tree, window

ADMIN = "U0ADMIN"
BOT = "zz/u/bot"
POLICY: dict[str, Any] = {
    "admins": [ADMIN],
    "budgets": {"defaults": {"agent": {"day": "3.00"}}},
}


async def test_holds_lists_who_holds_the_money_and_release_ends_one(slack_http):
    slack = await slack_http(POLICY)
    app = slack.app
    tok = await app.token(BOT)
    hog = await reserve(app, tok, f"{BOT}/hog", "a", 2_000_000, ttl_seconds=86_400)
    small = await reserve(app, tok, f"{BOT}/hog2", "b", 1_000_000, ttl_seconds=86_400)
    hog_id, small_id = hog.json()["reservation_id"], small.json()["reservation_id"]
    assert (await reserve(app, tok, f"{BOT}/other", "c", 1000)).status_code == 402

    listed = (await slack.command(f"holds {BOT}"))["text"]
    assert f"*Holds at `{BOT}` and below:* 2, $3.00 in all" in listed
    first, second = listed.splitlines()[1:3]
    assert first.startswith(f"• `{hog_id}` `{BOT}/hog` *$2.00*") and "ends in 1d" in first
    assert second.startswith(f"• `{small_id}` `{BOT}/hog2` *$1.00*")
    assert "`/agent release <id>`" in listed
    assert "No hold counts now at `zz/other`" in (await slack.command("holds zz/other"))["text"]

    refused = await slack.command(f"release {hog_id}", user="U0STRANGER")
    assert "Only admins" in refused["text"]
    assert window(await tree(app, tok, BOT), BOT)["held_micros"] == 3_000_000

    ended = await slack.command(f"release {hog_id}")
    assert ended["response_type"] == "in_channel"
    assert f"ended the hold `{hog_id}` of `{BOT}/hog`: $2.00 back to its budgets" in ended["text"]
    assert window(await tree(app, tok, BOT), BOT)["held_micros"] == 1_000_000
    assert (await reserve(app, tok, f"{BOT}/other", "c", 1000)).status_code == 201
    replay = await reserve(app, tok, f"{BOT}/hog", "a", 2_000_000, ttl_seconds=86_400)
    assert replay.json()["state"] == "expired"  # and no end still to come (audit16 F4)
    ended = datetime.fromisoformat(replay.json()["expires_at"].replace("Z", "+00:00"))
    assert ended.timestamp() <= app.clock.now()
    again = await slack.command(f"release {hog_id}")
    assert again["text"] == (
        f"`{hog_id}` of `{BOT}/hog` is expired (its TTL passed, or it was ended already):"
        " nothing to end."
    )
    rows = await app.store.fetch(
        "SELECT actor, action, target, before, after FROM audit WHERE action = 'reservation.end'"
    )
    assert [tuple(r) for r in rows] == [
        (
            ADMIN,
            "reservation.end",
            f"{BOT}/hog",
            f"{hog_id} held $2.00",
            "ended by hand (as if expired: nothing charged)",
        )
    ]

    # the stuck call comes back after all: what it spent is charged, flagged late
    settle = {"actual_cost_micros": 1_500_000}
    r = await app.request("POST", f"/v1/reservations/{hog_id}/settle", token=tok, json=settle)
    assert r.status_code == 200, r.text
    assert r.json()["late"] is True and r.json()["overrun_micros"] == 1_500_000
    assert window(await tree(app, tok, BOT), BOT)["spent_micros"] == 1_500_000


async def test_release_refuses_what_is_not_a_reservation_and_changes_nothing(slack_http):
    slack = await slack_http(POLICY)
    tok = await slack.app.token(BOT)
    rid = (await reserve(slack.app, tok, BOT, "a", 1000)).json()["reservation_id"]
    for text, says in (
        ("release", "`release` takes one reservation id"),
        ("release <!channel>", "is not a reservation id"),
        ("release res_nope", "There is no reservation `res_nope`."),
        (f"release {rid} {rid}", "`release` takes one reservation id"),
        ("holds", "`holds` takes one scope"),
        ("holds acme/al ice", ""),
    ):
        answer = (await slack.command(text))["text"]
        assert says in answer, (text, answer)
        assert "<!channel>" not in answer
    assert window(await tree(slack.app, tok, BOT), BOT)["held_micros"] == 1000
    listed = (await slack.command(f"holds {BOT}"))["text"]  # not "$0.00" (audit16 NEW-4)
    assert "1, $0.001 in all" in listed and f"`{BOT}` *$0.001*" in listed


async def test_ending_a_trial_call_s_hold_frees_its_slot_and_keeps_the_trial(app_factory):
    """review16 M1: the breaker found the trial hold expired and opened again, its cool-down
    doubled, "expired without a settle", while the operator meant to let the trial go on."""
    from tests.scenario.test_breakers import BOT as TRIAL_BOT
    from tests.scenario.test_breakers import events, fleet, trip_on_failures

    app, bot, _ = await fleet(app_factory)
    await trip_on_failures(bot)
    app.clock.advance(900)
    await app.store.write(app.ns.breakers.tick)
    await app.store.write(lambda tx: app.ns.breakers.approve(tx, TRIAL_BOT, "U_DANA"))
    opened = len(await events(app, "breaker_opened"))
    r = await bot.reserve(150_000)
    assert r.status_code == 201, r.text
    rid = r.json()["reservation_id"]
    await app.store.write(lambda tx: app.ns.ledger.end_hold(tx, res_id=rid, actor=ADMIN))
    await app.store.write(app.ns.breakers.tick)
    assert len(await events(app, "breaker_opened")) == opened  # not opened again
    row = await app.store.write(lambda tx: app.ns.breakers.get(tx, TRIAL_BOT))
    assert row.state == "half_open" and row.trial is not None and row.trial["admitted"] == 0
    assert (await bot.reserve(1)).status_code == 201  # the trial goes on


async def test_many_small_holds_are_named_by_agent_when_the_largest_do_not_say(slack_http):
    """audit18 fleet finding 2: 400 small holds of a looping agent never appeared among
    "the 20 largest" (two other agents' larger holds), so `holds` did not say who held."""
    slack = await slack_http({"admins": [ADMIN]})
    app = slack.app
    tok = await app.token("zz")
    for i in range(30):  # the loop: many small holds
        assert (await reserve(app, tok, f"zz/u9/holder/c{i}", f"h{i}", 1_000)).status_code == 201
    for i in range(22):  # two agents' larger holds fill the list
        bot = f"zz/u{i % 2}/big"
        assert (await reserve(app, tok, f"{bot}/c{i}", f"b{i}", 450_000)).status_code == 201
    listed = (await slack.command("holds zz"))["text"]
    head, by_agent = listed.splitlines()[:2]
    assert head == "*Holds at `zz` and below:* 52, $9.93 in all; the 20 largest (times in UTC)"
    assert by_agent == (
        "By agent: `zz/u0/big` 11 holds, $4.95 · `zz/u1/big` 11 holds, $4.95"
        " · `zz/u9/holder` 30 holds, $0.03"
    )
    assert "zz/u9/holder/c" not in listed  # none of its holds is among the largest
    # one agent's own holds need no summary
    assert "By agent" not in (await slack.command("holds zz/u9/holder"))["text"]


async def test_holds_names_the_zone_of_the_times_it_shows(slack_http):
    """audit24 agreement F2: "ends in 59m26s (16:15)" named no zone, for a namespace whose
    day is Auckland's under a policy in Berlin."""
    policy = {
        **POLICY,
        "timezone": "Europe/Berlin",
        "budgets": {
            "defaults": {"agent": {"day": "3.00"}},
            "scopes": {"zz": {"timezone": "Pacific/Auckland"}},
        },
    }
    slack = await slack_http(policy, clock=ManualClock(1_767_622_500.0))  # 15:15 in Berlin
    tok = await slack.app.token(BOT)
    assert (await reserve(slack.app, tok, BOT, "a", 7_777, ttl_seconds=3_600)).status_code == 201
    listed = (await slack.command("holds zz"))["text"]
    head, line = listed.splitlines()[:2]
    assert head == "*Holds at `zz` and below:* 1, $0.007777 in all (times in Europe/Berlin)"
    assert line.endswith("ends in 1h (16:15)"), line


async def test_holds_read_only_open_holds_with_the_same_answers(slack_http):
    """audit26 volume F1: `holds ns3` read every reservation the namespace ever made (the
    scope index walks settled ones too), 3.3 s at 745k: past Slack's ack."""
    from bot.commands_holds import BY_AGENT_SQL, _by_agent
    from guards.holds import HELD_COUNT_SQL, HELD_ROWS_SQL
    from guards.scopes import Scope, subtree

    slack = await slack_http({"admins": [ADMIN]})
    app = slack.app
    tok = await app.token("zz")
    day = {"ttl_seconds": 86_400}
    for scope, key, micros in (
        ("zz/u/bot", "a", 300_000),  # the scope itself
        ("zz/u/bot/c1", "b", 200_000),
        ("zz/u/bot/c2", "c", 100_000),
        ("zz/u/bot2", "d", 900_000),  # siblings whose names start alike: not below it
        ("zz/u/bot-x", "e", 800_000),
        ("zz/v/bot", "f", 50_000),
    ):
        assert (await reserve(app, tok, scope, key, micros, **day)).status_code == 201
    for i in range(30):  # history under the scope: settled, and past its TTL
        r = await reserve(app, tok, f"zz/u/bot/old{i}", f"old{i}", 700_000)
        rid = r.json()["reservation_id"]
        settle = {"actual_cost_micros": 1_000}
        assert (
            await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=settle)
        ).status_code == 200
    short = await reserve(app, tok, "zz/u/bot/c3", "g", 600_000, ttl_seconds=60)
    assert short.status_code == 201
    app.clock.advance(120)  # its TTL passed: no longer counting, though not yet expired

    listed = (await slack.command("holds zz/u/bot"))["text"]
    assert "*Holds at `zz/u/bot` and below:* 3, $0.60 in all (times in UTC)" in listed
    scopes = [line.split("` `")[1].split("`")[0] for line in listed.splitlines()[1:4]]
    assert scopes == ["zz/u/bot", "zz/u/bot/c1", "zz/u/bot/c2"]
    assert (
        "*Holds at `zz` and below:* 6, $2.35 in all (times in UTC)"
        in (await slack.command("holds zz"))["text"]
    )
    agents = await app.store.read(lambda tx: _by_agent(tx, Scope.parse("zz"), tx.clock.now()))
    assert agents == [
        ("zz/u/bot2", 1, 900_000),
        ("zz/u/bot-x", 1, 800_000),
        ("zz/u/bot", 3, 600_000),
        ("zz/v/bot", 1, 50_000),
    ]

    # each query reads the open holds (the partial index), not the scope's whole history
    path = "zz/u/bot"
    params = (app.clock.now(), path, *subtree(path))
    for sql, args in (
        (HELD_COUNT_SQL, params),
        (HELD_ROWS_SQL, (*params, 20)),
        (BY_AGENT_SQL, params),
    ):
        rows = await app.store.fetch(f"EXPLAIN QUERY PLAN {sql}", args)
        plan = " | ".join(row[3] for row in rows)
        assert "INDEX reservations_due" in plan, (sql, plan)
        assert "reservations_scope_key" not in plan and "SCAN reservations" not in plan, plan


async def test_holds_says_how_many_it_shows_when_scopes_are_long(slack_http):
    """audit26 volume F2: with long scopes the header said "the 20 largest" over 5 holds
    and the safety net's "… and 16 more lines" (the list was sized for 9,000 characters
    in one 3,000-character section)."""
    from bot.shell import render_text
    from guards.money import format_usd

    slack = await slack_http({"admins": [ADMIN]})
    app = slack.app
    tok = await app.token("zz")
    for i in range(25):
        user, agent = f"{i % 5}".ljust(64, "u"), "agent-".ljust(64, "a")
        scope = f"zz/{user}/{agent}/c{i}"
        task = f"task-{i:03}-".ljust(64, "t")
        r = await reserve(app, tok, scope, f"k{i}", 400_000 + i, task_id=task, ttl_seconds=3_600)
        assert r.status_code == 201, r.text
    for i in range(5):  # and small ones: 30 holds in all
        assert (await reserve(app, tok, f"zz/small/bot/c{i}", f"s{i}", 1_000)).status_code == 201

    body = await slack.command("holds zz")
    assert slack.fake.check_reply("ack", body) is None
    shown = render_text(body["blocks"], body["text"])
    head = shown.splitlines()[0]
    assert head.startswith("*Holds at `zz` and below:* 30, $10.0053 in all; the ")
    said = int(head.split("; the ")[1].split(" largest")[0])
    lines = [line for line in shown.splitlines() if line.startswith("• `res_")]
    assert len(lines) == said == 20  # the list fits what the message takes, and says so
    amounts = [line.split("*")[1] for line in lines]  # the largest first
    assert amounts == [format_usd(400_024 - i, exact=True) for i in range(20)]
    assert "By agent: " in shown and "`/agent release <id>`" in shown
    assert "more lines" not in shown and "truncated" not in shown

    text = body["text"]  # the notification text: within its 3,000, its cut counted in holds
    assert len(text) <= 3000 and text.startswith(head)
    assert "more lines" not in text and "truncated" not in text
    kept = sum(1 for line in text.splitlines() if line.startswith("• `res_"))
    # counted against the 20 its head announces, not all 30 (recheck26 N3)
    assert f"… and {20 - kept} more of the 20 largest" in text


async def test_holds_word_their_durations_and_times_as_the_alerts_do(slack_http):
    """audit27 style M3, M4: "taken 1h2m5s ago, ends in 22h57m55s (Jan 06 09:00)", where an
    alert says "1h 2m" and "Tue 06 Jan 09:00"."""
    clock = ManualClock(1_767_600_000.0)  # Mon 05 Jan 2026 09:00 in Berlin
    slack = await slack_http({**POLICY, "timezone": "Europe/Berlin"}, clock=clock)
    tok = await slack.app.token(BOT)
    taken = await reserve(slack.app, tok, BOT, "a", 7_777, ttl_seconds=86_400)
    assert taken.status_code == 201, taken.text
    clock.advance(3_725)
    line = (await slack.command(f"holds {BOT}"))["text"].splitlines()[1]
    assert line.endswith(" · taken 1h 2m ago, ends in 22h 57m (Tue 06 Jan 09:00)"), line
