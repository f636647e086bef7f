"""A namespace's books stay whole integers (audit16 money M1), and nobody's holds refuse
another call's spend (audit16 DESIGN check F2).

Each amount is at most 10^15 micros, but nothing bounded their sums: 9,300 settles of 10^15
took acme's counters past SQLite's largest integer, they were stored as REALs, and after a
restart every reservation in the namespace was a 500, while ``ledger verify`` said OK. The
ceilings (``MAX_BOOKED_MICROS``, $1 trillion held and spent at a reservation;
``MAX_SPENT_MICROS``, $8 trillion spent at a settle) are lowered here so that a few calls
reach them.
"""

from __future__ import annotations

import sqlite3

import pytest

from guards.client import GuardClient
from guards.errors import BudgetExceeded
from guards.verify import verify
from tests.scenario.test_ledger_api import reserve, tree, window

BOOKED = 3 * 10**15


async def settle(app, tok, rid, micros):
    body = {"actual_cost_micros": micros}
    return await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=body)


async def test_holds_past_the_books_ceiling_are_a_402_and_never_refuse_a_settle(
    app_factory, monkeypatch
):
    monkeypatch.setattr("guards.budgets.MAX_BOOKED_MICROS", BOOKED)
    app = await app_factory()  # no budgets: nothing else refuses
    alice = await app.token("acme/alice")
    mallory = await app.token("acme/mallory")
    mine = (await reserve(app, alice, "acme/alice/bot", "a", 1000)).json()["reservation_id"]
    for i in range(2):  # holds of the largest amount, as a units bug in a retry loop makes
        r = await reserve(app, mallory, "acme/mallory/bot", f"m{i}", 10**15, ttl_seconds=86_400)
        assert r.status_code == 201, r.text
    r = await reserve(app, mallory, "acme/mallory/bot", "m2", 10**15)  # 3e15 + 1000 > 3e15
    assert r.status_code == 402, r.text
    body = r.json()
    assert (body["error"], body["level"], body["scope"], body["window"]) == (
        "budget_exceeded",
        "namespace",
        "acme",
        "total",
    )
    assert body["message"].startswith("acme's books are full: $0.00 spent and")
    assert "`/agent holds acme` shows who holds it" in body["message"]
    assert body["books_full"] is True
    async with GuardClient(app.url, mallory) as guard:  # the Python client says the same
        with pytest.raises(BudgetExceeded) as refused:
            await guard.create_reservation("acme/mallory/bot", max_cost_micros=10**15)
    assert str(refused.value).startswith("acme's books are full")
    assert (await reserve(app, alice, "acme/alice/bot", "b", 10**15)).status_code == 402
    # alice's call was made: its spend is recorded, whatever mallory holds
    s = await settle(app, alice, mine, 2000)
    assert s.status_code == 200 and s.json()["charged_micros"] == 2000, s.text
    rows = await app.store.fetch("SELECT payload FROM events WHERE kind = 'budget_exhausted'")
    assert rows, "the refusal raised no alert"
    # ending mallory's holds gives the room back
    held = await app.store.fetch("SELECT id FROM reservations WHERE scope = 'acme/mallory/bot'")
    for row in held:
        await app.store.write(
            lambda tx, rid=row[0]: app.ns.ledger.end_hold(tx, res_id=rid, actor="U0ADMIN")
        )
    assert (await reserve(app, alice, "acme/alice/bot", "c", 10**15)).status_code == 201


async def test_a_hold_that_fills_the_books_exactly_is_taken(app_factory, monkeypatch):
    """audit27 mutation F6: the ceiling is the most the books may hold, not one past it."""
    monkeypatch.setattr("guards.budgets.MAX_BOOKED_MICROS", BOOKED)
    app = await app_factory()
    tok = await app.token("acme")
    for i, micros in enumerate((10**15, 10**15, 10**15 - 1000)):
        assert (await reserve(app, tok, "acme/a/bot", f"f{i}", micros)).status_code == 201
    r = await reserve(app, tok, "acme/a/bot", "exact", 1000)  # the books now hold 3e15
    assert r.status_code == 201, r.text
    r = await reserve(app, tok, "acme/a/bot", "one-more", 1)
    assert r.status_code == 402 and r.json()["books_full"] is True, r.text
    assert window(await tree(app, tok, "acme"), "acme")["held_micros"] == BOOKED


async def test_a_settle_past_the_spend_ceiling_is_a_400_that_changes_nothing(
    app_factory, monkeypatch
):
    monkeypatch.setattr("guards.budgets.MAX_SPENT_MICROS", 2 * 10**15 + 5)
    app = await app_factory()
    tok = await app.token("acme")
    ids = [
        (await reserve(app, tok, "acme/alice/bot", f"k{i}", 1)).json()["reservation_id"]
        for i in range(4)
    ]
    for rid in ids[:2]:
        assert (await settle(app, tok, rid, 10**15)).status_code == 200
    before = await tree(app, tok, "acme/alice/bot")
    r = await settle(app, tok, ids[2], 10)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "actual_cost_micros"
    assert r.json()["message"].startswith("actual_cost_micros: acme has $2,000,000,000.00 spent")
    assert "cannot be recorded" in r.json()["message"]
    assert await tree(app, tok, "acme/alice/bot") == before
    assert (await settle(app, tok, ids[2], 5)).status_code == 200  # what fits is charged
    spent = window(await tree(app, tok, "acme/alice/bot"), "acme")["spent_micros"]
    assert spent == 2 * 10**15 + 5 and type(spent) is int
    rows = await app.store.fetch("SELECT DISTINCT typeof(spent_micros) FROM usage_daily")
    assert [r[0] for r in rows] == ["integer"]
    with sqlite3.connect(app.ns.settings.db) as conn:
        conn.isolation_level = None
        assert verify(conn).ok


async def test_verify_fails_on_a_counter_stored_as_a_real(app_factory):
    """What the overflow left behind: a counter past 2^63 stored as a REAL equal to the
    journal's sum, so that verify compared 9.301e18 == 9,301 * 10^15 and passed."""
    app = await app_factory()
    tok = await app.token("acme")
    rid = (await reserve(app, tok, "acme/alice/bot", "k", 1)).json()["reservation_id"]
    assert (await settle(app, tok, rid, 10**15)).status_code == 200
    await app.ns.stop()
    big = 3_100_000_000_000_000_000  # three of these pass SQLite's largest integer
    with sqlite3.connect(app.ns.settings.db) as conn:
        conn.isolation_level = None
        assert verify(conn).ok
        conn.row_factory = sqlite3.Row
        row = dict(conn.execute("SELECT * FROM reservations WHERE id = ?", (rid,)).fetchone())
        conn.row_factory = None
        for i in range(3):  # as the server wrote them: rows, journal, counters
            copy = {
                **row,
                "id": f"{rid}x{i}",
                "idempotency_key": f"x{i}",
                "held_micros": 1,
                "charged_micros": big,
                "overrun_micros": big - 1,
                "released_micros": 0,
            }
            names = ", ".join(copy)
            marks = ", ".join("?" for _ in copy)
            conn.execute(
                f"INSERT INTO reservations ({names}) VALUES ({marks})", list(copy.values())
            )
            conn.executemany(
                "INSERT INTO journal (at, reservation_id, kind, held_delta, spent_delta)"
                " VALUES (0, ?, ?, ?, ?)",
                [(copy["id"], "hold", 1, 0), (copy["id"], "settle", -1, big)],
            )
            conn.execute("UPDATE usage_daily SET spent_micros = spent_micros + ?", (big,))
        kinds = conn.execute("SELECT DISTINCT typeof(spent_micros) FROM usage_daily").fetchall()
        assert kinds == [("real",)]
        report = verify(conn)
    assert not report.ok
    assert all("not whole micro-dollars" in problem for problem in report.problems)
    assert len(report.problems) == 3  # acme, acme/alice, acme/alice/bot
