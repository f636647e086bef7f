"""A namespace's books stay whole integers (audit16 money M1).

Each amount is at most 10^15 micros, but nothing bounded their sums: 9,300 settles of 10^15
took acme's counters past SQLite's largest integer, they were stored as REALs, and after a
restart every reservation in the namespace was a 500, while ``ledger verify`` said OK. The
ceiling (``MAX_BOOKED_MICROS``, $1 trillion) is lowered here so that a few calls reach it.
"""

from __future__ import annotations

import sqlite3

from guards.verify import verify
from tests.scenario.test_ledger_api import reserve, tree, window

CEILING = 3 * 10**15


async def test_an_amount_past_the_books_ceiling_is_a_400_that_changes_nothing(
    app_factory, monkeypatch
):
    monkeypatch.setattr("guards.budgets.MAX_BOOKED_MICROS", CEILING)
    app = await app_factory()  # no budgets: nothing else refuses
    tok = await app.token("acme")
    ids = []
    for i in range(4):
        r = await reserve(app, tok, "acme/alice/bot", f"k{i}", 1)
        assert r.status_code == 201, r.text
        ids.append(r.json()["reservation_id"])
    for rid in ids[:2]:  # 2 * 10^15 (+ 2 micros held)
        settle = {"actual_cost_micros": 10**15}
        r = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=settle)
        assert r.status_code == 200, r.text
    before = await tree(app, tok, "acme/alice/bot")
    over = {"actual_cost_micros": 10**15}
    r = await app.request("POST", f"/v1/reservations/{ids[2]}/settle", token=tok, json=over)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "actual_cost_micros"
    assert r.json()["message"].startswith("actual_cost_micros: acme's books are full")
    assert "an agent reported absurd costs (its overrun alerts name it" in r.json()["message"]
    r = await reserve(app, tok, "acme/bob/bot", "big", 10**15)  # another user of acme
    assert r.status_code == 400 and r.json()["field"] == "max_cost_micros", r.text
    assert await tree(app, tok, "acme/alice/bot") == before
    # what fits still goes through, for every user of the namespace
    fits = {"actual_cost_micros": 10**15 - 10}
    r = await app.request("POST", f"/v1/reservations/{ids[2]}/settle", token=tok, json=fits)
    assert r.status_code == 200, r.text
    assert (await reserve(app, tok, "acme/bob/bot", "small", 5)).status_code == 201
    assert (await reserve(app, tok, "beta/x/bot", "other-ns", 10**15)).status_code == 403
    spent = window(await tree(app, tok, "acme/alice/bot"), "acme")["spent_micros"]
    assert spent == 3 * 10**15 - 10 and type(spent) is int
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
    r = await app.request(
        "POST", f"/v1/reservations/{rid}/settle", token=tok, json={"actual_cost_micros": 10**15}
    )
    assert r.status_code == 200, r.text
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
