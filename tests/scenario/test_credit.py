"""``/agent credit``: a charge taken back by a correcting entry (audit27 parity #9).

An absurd settle ($400 reported for a $0.40 call) is charged in full, as it must be; it
then stopped the agent, its user and its namespace for the rest of the window and the
figures stayed wrong for good. A credit appends an entry that lowers the spent counters
of every level, in the windows the charge was booked in; nothing is edited.

A real app on a real SQLite file, in Slack HTTP mode (signed requests), on a manual clock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from typing import Any

from guards.clock import ManualClock
from guards.verify import verify
from tests.scenario.test_ledger_api import reserve, tree, window

ADMIN = "U0ADMIN"
BOT = "acme/alice/rss-bot"
DAY = 86_400
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC).timestamp()  # 10:00 in Berlin, a Saturday
POLICY: dict[str, Any] = {
    "admins": [ADMIN],
    "timezone": "Europe/Berlin",
    # the spend-rate breaker is its own matter (`/agent breaker <scope> close`): not here
    "breakers": {"spend_rate": {"max": "100000.00", "per_seconds": 600}},
    "budgets": {
        "scopes": {
            "acme": {"day": "1000.00"},
            "acme/alice": {"day": "500.00"},
            BOT: {"day": "5.00", "month": "2000.00"},
        }
    },
}


async def settle(app: Any, tok: str, rid: str, micros: int) -> Any:
    body = {"actual_cost_micros": micros}
    r = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def charged(app: Any, tok: str, key: str, micros: int, *, held: int = 400_000) -> str:
    """A call that held ``held`` and reported ``micros``: its reservation id."""
    r = await reserve(app, tok, BOT, key, held)
    assert r.status_code == 201, r.text
    rid: str = r.json()["reservation_id"]
    await settle(app, tok, rid, micros)
    return rid


async def books(app: Any) -> tuple[Any, ...]:
    """What a refused credit must leave as it was."""
    usage = await app.store.fetch("SELECT scope, day, spent_micros, held_micros FROM usage_daily")
    credits = await app.store.fetch("SELECT COUNT(*) FROM credits")
    done = await app.store.fetch("SELECT COUNT(*) FROM audit WHERE action = 'ledger.credit'")
    return sorted(tuple(r) for r in usage), credits[0][0], done[0][0]


def verified(app: Any) -> list[str]:
    with sqlite3.connect(app.ns.settings.db) as conn:
        conn.isolation_level = None
        return verify(conn).problems


async def test_a_400_dollar_unit_bug_is_taken_back_and_the_agent_runs_again(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock(T0))
    app = slack.app
    tok = await app.token("acme")
    rid = await charged(app, tok, "bug", 400_000_000)  # $400 for a $0.40 call
    refused = await reserve(app, tok, BOT, "next", 1_000_000)
    assert refused.status_code == 402, refused.text

    reply = await slack.command(f"credit {rid} 399.60 unit bug in the rss-bot")
    assert reply["response_type"] == "in_channel", reply
    text = reply["text"]
    assert f"<@{ADMIN}> took back *$399.60* of the charge of `{rid}` (`{BOT}`)" in text
    assert "Its charge now counts *$0.40* of the $400.00 settled." in text
    assert (
        "The agent, user and namespace regain $399.60 in their day of 2026-11-28,"
        " week 2026-W48, month 2026-11 and total." in text
    )
    assert "Reason: unit bug in the rss-bot" in text
    assert "⚠️" not in text  # no breaker holds it

    again = await reserve(app, tok, BOT, "next2", 1_000_000)
    assert again.status_code == 201, again.text
    got = await tree(app, tok, BOT)
    for scope in ("acme", "acme/alice", BOT):
        assert window(got, scope)["spent_micros"] == 400_000, scope
    assert window(got, BOT, "month")["spent_micros"] == 400_000
    rows = await app.store.fetch(
        "SELECT actor, target, before, after, detail FROM audit WHERE action = 'ledger.credit'"
    )
    assert [tuple(r) for r in rows] == [
        (ADMIN, f"{rid} {BOT}", "400000000", "400000", "unit bug in the rss-bot")
    ]
    assert verified(app) == []

    rest = await slack.command(f"credit {rid} all typo again")  # what is left: $0.40
    assert "took back *$0.40*" in rest["text"]
    assert "Its charge now counts *$0.00* of the $400.00 settled." in rest["text"]
    nothing = await slack.command(f"credit {rid} all once more")
    assert nothing["text"] == (
        f"Nothing is left to take back of `{rid}`: all $400.00 of its charge was taken back"
        " already."
    )
    assert verified(app) == []


async def test_yesterdays_charge_is_taken_back_from_yesterday_not_today(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock(T0))
    app = slack.app
    tok = await app.token("acme")
    old = await charged(app, tok, "fri", 3_000_000)
    app.clock.advance(DAY)  # Sunday 29th
    await charged(app, tok, "sun", 1_000_000, held=1_000_000)

    reply = await slack.command(f"credit {old} all billed twice")
    assert (
        "The agent, user and namespace regain $3.00 in their day of 2026-11-28"
        " (the day its hold was taken: today's is unchanged), week 2026-W48, month 2026-11"
        " and total." in reply["text"]
    )
    got = await tree(app, tok, BOT)
    assert window(got, BOT)["spent_micros"] == 1_000_000  # today's: as it was
    assert window(got, BOT, "month")["spent_micros"] == 1_000_000  # 4.00 - 3.00
    r = await app.request("GET", f"/v1/budgets/{BOT}?day=yesterday", token=tok)
    assert r.status_code == 200, r.text
    assert [lv["spent_micros"] for lv in r.json()["levels"]] == [0, 0, 0]
    assert verified(app) == []


async def test_a_late_settles_charge_can_be_taken_back(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock(T0))
    app = slack.app
    tok = await app.token("acme")
    r = await reserve(app, tok, BOT, "late", 400_000, ttl_seconds=60)
    rid = r.json()["reservation_id"]
    app.clock.advance(120)
    await app.store.write(app.ns.ledger.expire_due)
    assert (await settle(app, tok, rid, 2_000_000))["late"] is True
    reply = await slack.command(f"credit {rid} 1.5 late retry billed twice")
    assert "took back *$1.50*" in reply["text"]
    assert window(await tree(app, tok, BOT), BOT)["spent_micros"] == 500_000
    assert verified(app) == []


async def test_bad_input_is_refused_clearly_and_changes_nothing(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock(T0))
    app = slack.app
    tok = await app.token("acme")
    rid = await charged(app, tok, "bug", 400_000_000)
    held = (await reserve(app, tok, "acme/bob/bot", "held", 1_000)).json()["reservation_id"]
    gone = (await reserve(app, tok, "acme/bob/bot", "gone", 1_000)).json()["reservation_id"]
    r = await app.request("POST", f"/v1/reservations/{gone}/release", token=tok)
    assert r.status_code == 200, r.text
    lapsed = (await reserve(app, tok, "acme/bob/bot", "x", 1_000, ttl_seconds=60)).json()
    app.clock.advance(120)
    await app.store.write(app.ns.ledger.expire_due)
    before = await books(app)

    async def said(text: str, user: str = ADMIN) -> str:
        reply = await slack.command(text, user=user)
        assert reply.get("response_type") != "in_channel", reply
        return str(reply["text"])

    unknown = "res_0000000000000000000000"
    assert await said(f"credit {unknown} 1 oops") == f"There is no reservation `{unknown}`."
    assert "is not a reservation id" in await said("credit acme/alice/rss-bot 1 oops")
    assert await said(f"credit {held} 1 oops") == (
        f"`{held}` of `acme/bob/bot` is still held: nothing was charged yet. End the hold with"
        f" `/agent release {held}`."
    )
    assert await said(f"credit {gone} 1 oops") == (
        f"`{gone}` of `acme/bob/bot` was released: nothing was charged, nothing to take back."
    )
    assert await said(f"credit {lapsed['reservation_id']} all oops") == (
        f"`{lapsed['reservation_id']}` of `acme/bob/bot` expired without a settle: nothing was"
        " charged, nothing to take back."
    )
    assert "the amount must be more than $0" in await said(f"credit {rid} 0 oops")
    assert "negative" in await said(f"credit {rid} -5 oops")
    assert "is not an amount in USD" in await said(f"credit {rid} NaN oops")
    assert "more than $1,000,000,000" in await said(f"credit {rid} {10**30} oops")
    assert await said(f"credit {rid} 400.01 oops") == (
        f"Only $400.00 of the charge of `{rid}` is left to take back ($400.00 charged, $0.00"
        " taken back before); nothing changed."
    )
    no_reason = await said(f"credit {rid} 1")
    assert "a reason is required" in no_reason
    assert "usage: `/agent credit <reservation id> <amount|all> <reason…>`" in no_reason
    stranger = await said(f"credit {rid} 399.60 mine", user="U0STRANGER")
    assert stranger.startswith("Only admins can take back charges.")
    assert await books(app) == before
    rows = await app.store.fetch("SELECT actor, target, detail FROM audit WHERE action = 'refused'")
    assert [tuple(r) for r in rows] == [
        ("U0STRANGER", "take back charges", f"not an admin: credit {rid} 399.60 mine")
    ]
    assert verified(app) == []


async def test_two_credits_of_all_at_once_take_back_the_charge_once(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock(T0))
    app = slack.app
    tok = await app.token("acme")
    rid = await charged(app, tok, "bug", 400_000_000)
    replies = await asyncio.gather(
        slack.command(f"credit {rid} all first"), slack.command(f"credit {rid} all second")
    )
    took = [r for r in replies if "took back *$400.00*" in r["text"]]
    assert len(took) == 1, replies
    assert any(r["text"].startswith("Nothing is left to take back") for r in replies), replies
    other = await charged(app, tok, "bug2", 1_000_000)
    ledger = app.ns.ledger

    def credit(tx: Any) -> Any:
        return ledger.credit(tx, res_id=other, amount_micros=None, reason="race", actor="t")

    # straight on the store too: two writes racing into one batch
    done = await asyncio.gather(
        app.store.write(credit), app.store.write(credit), return_exceptions=True
    )
    assert sorted(type(d).__name__ for d in done) == ["Conflict", "Credited"], done
    total = await app.store.fetch("SELECT SUM(amount_micros) FROM credits")
    assert total[0][0] == 401_000_000
    got = await tree(app, tok, BOT)
    assert window(got, BOT)["spent_micros"] == 0
    assert window(got, "acme")["spent_micros"] == 0
    assert verified(app) == []


async def test_a_credit_that_frees_the_budget_resolves_its_alert(slack_http):
    """review29 M1: the budget alert of the refused call stayed open and escalating all
    night, though the credit had given the budget its room back."""
    from tests.scenario.test_alerts import alerts_of

    slack = await slack_http(POLICY, clock=ManualClock(T0))
    app = slack.app
    tok = await app.token("acme")
    rid = await charged(app, tok, "bug", 400_000_000)
    assert (await reserve(app, tok, BOT, "next", 1_000_000)).status_code == 402
    await alerts_of(slack).process()
    opened = await app.store.fetch(
        "SELECT id, scope, resolved_at FROM alerts WHERE kind = 'budget_exhausted'"
    )
    assert [tuple(r)[1:] for r in opened] == [(BOT, None)]

    await slack.command(f"credit {rid} 0.10 not enough")  # still over its $5.00: stays open
    rows = await app.store.fetch("SELECT resolved_at FROM alerts WHERE kind = 'budget_exhausted'")
    assert [r[0] for r in rows] == [None]

    await slack.command(f"credit {rid} 399.00 unit bug")
    rows = await app.store.fetch(
        "SELECT resolved_by, resolve_reason FROM alerts WHERE kind = 'budget_exhausted'"
    )
    assert [tuple(r) for r in rows] == [
        (ADMIN, f"$399.00 of the charge of {rid} taken back: the budget has room")
    ]


async def test_the_digest_s_money_by_model_follows_a_credit(slack_http):
    """review29 M2: the digest's per-model line kept the full charge while its spend total
    dropped: the two no longer added up."""
    slack = await slack_http(POLICY, clock=ManualClock(T0))
    app = slack.app
    tok = await app.token("acme")
    rid = await charged(app, tok, "bug", 400_000_000)
    await slack.command(f"credit {rid} 399.60 unit bug")
    by_model = await app.store.fetch("SELECT SUM(charged_micros) FROM digest_model_daily")
    usage = await app.store.fetch("SELECT spent_micros FROM usage_daily WHERE scope = 'acme'")
    assert by_model[0][0] == usage[0][0] == 400_000
    preview = (await slack.command("digest acme"))["text"]
    assert "*By model* (no model) $0.40 (1 call)" in preview


async def test_a_credit_says_when_the_charge_s_breaker_still_stops_the_agent(slack_http):
    """review29 L1: the reply read as if the agent ran again, while the spend breaker the
    absurd charge tripped still held it."""
    policy = {**POLICY, "breakers": {"spend_rate": {"max": "2.00", "per_seconds": 600}}}
    slack = await slack_http(policy, clock=ManualClock(T0))
    app = slack.app
    tok = await app.token("acme")
    rid = await charged(app, tok, "bug", 400_000_000)  # trips the $2 / 10m breaker
    reply = await slack.command(f"credit {rid} all unit bug")
    assert reply["text"].endswith(
        f"⚠️ The breaker of `{BOT}` is not closed (its spend window keeps the charge):"
        f" `/agent breaker {BOT} close` lets it run."
    )
