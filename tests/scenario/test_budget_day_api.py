"""``GET /v1/budgets/{scope}?day=...``: a past local day's spend over HTTP, every level and
every child that spent (audit23 forensics: only today's tree was served), and the Python
client's ``budget(scope, day=...)``.

A real app on a real SQLite file, driven over HTTP on a manual clock.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from guards.client import GuardClient
from guards.clock import ManualClock
from tests.scenario.test_budget_days import FRI_10H, FRIDAY_SPEND, POLICY, TEAM
from tests.scenario.test_budget_fleet import reserve, spend

DAY = 86_400


async def friday_then_saturday(app_factory: Any) -> tuple[Any, str]:
    """Seven agents spend on Friday in Berlin (agent-0 once more at 23:59), agent-0 and
    agent-7 on Saturday just after midnight, agent-2 holds $0.02 from Friday; the clock
    then reads Saturday 10:00."""
    clock = ManualClock(FRI_10H)
    app = await app_factory(POLICY, clock=clock)
    tok = await app.token("acme")
    for i, micros in enumerate(FRIDAY_SPEND):
        await spend(app, tok, f"{TEAM}/agent-{i}", micros, f"fri-{i}")
    await spend(app, tok, "acme/team0/other", 30_000, "fri-other")
    clock.advance(13 * 3600 + 59 * 60)  # 23:59 Friday in Berlin
    await spend(app, tok, f"{TEAM}/agent-0", 1_000, "fri-late")
    body = {"scope": f"{TEAM}/agent-2", "idempotency_key": "held", "max_cost_micros": 20_000}
    body["ttl_seconds"] = 86_400
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 201, r.text
    clock.advance(120)  # 00:01 Saturday in Berlin
    await spend(app, tok, f"{TEAM}/agent-0", 500_000, "sat-0")
    await spend(app, tok, f"{TEAM}/agent-7", 200_000, "sat-7")
    clock.set(FRI_10H + DAY)
    return app, tok


async def test_yesterday_answers_every_level_and_the_children_that_spent(app_factory):
    app, tok = await friday_then_saturday(app_factory)
    r = await app.request("GET", f"/v1/budgets/{TEAM}?day=yesterday", token=tok)
    assert r.status_code == 200, r.text
    got = r.json()
    assert {k: got[k] for k in ("scope", "timezone", "day", "today", "first_day")} == {
        "scope": TEAM,
        "timezone": "Europe/Berlin",
        "day": "2026-11-27",
        "today": False,
        "first_day": "2026-11-27",
    }
    held = 20_000  # agent-2's hold taken on Friday still counts on Friday
    team = sum(FRIDAY_SPEND) + 1_000
    assert got["levels"] == [
        {"scope": "acme", "level": "namespace", "spent_micros": team + 30_000, "held_micros": held},
        {"scope": TEAM, "level": "user", "spent_micros": team, "held_micros": held},
    ]
    spent = {
        c["scope"].rsplit("/", 1)[1]: (c["spent_micros"], c["held_micros"]) for c in got["children"]
    }
    assert spent == {
        "agent-0": (9_000 + 1_000, 0),
        "agent-1": (105_000, 0),
        "agent-2": (40_000, held),
        "agent-3": (12_000, 0),
        "agent-4": (75_000, 0),
        "agent-5": (50_000, 0),
        "agent-6": (66_000, 0),
    }  # agent-7 spent on Saturday only; nobody's Saturday money is here
    assert [c["scope"] for c in got["children"]][:2] == [f"{TEAM}/agent-1", f"{TEAM}/agent-4"]
    assert got["children_total"] == 7 and got["children_truncated"] is False
    assert all("limit_micros" not in c for c in got["levels"] + got["children"])

    same = await app.request("GET", f"/v1/budgets/{TEAM}?day=2026-11-27", token=tok)
    assert same.json() == got
    today = (await app.request("GET", f"/v1/budgets/{TEAM}?day=today", token=tok)).json()
    assert today["day"] == "2026-11-28" and today["today"] is True
    assert today["levels"][1]["spent_micros"] == 700_000
    # the tree of now is unchanged by the new parameter's existence
    now = (await app.request("GET", f"/v1/budgets/{TEAM}", token=tok)).json()
    assert "day" not in now and now["levels"][1]["windows"]["day"]["period"] == "2026-11-28"


async def test_a_day_before_the_first_is_all_zeros_and_says_which_was_first(app_factory):
    app, tok = await friday_then_saturday(app_factory)
    r = await app.request("GET", "/v1/budgets/acme/nobody?day=2026-01-01", token=tok)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["first_day"] == "2026-11-27"
    assert [lv["spent_micros"] + lv["held_micros"] for lv in got["levels"]] == [0, 0]
    assert got["children"] == [] and got["children_total"] == 0


async def test_bad_days_are_400_naming_day_and_change_nothing(app_factory):
    app, tok = await friday_then_saturday(app_factory)
    before = (await app.request("GET", "/v1/budgets/acme", token=tok)).json()
    for bad in (
        "",
        "tomorrow",
        "2026-11-29",
        "2026-02-30",
        "20261127",
        "2026-W48-5",
        "9999-12-31",
        "-1",
        "2026-11-27%00",
        "x" * 5000,
        "%F0%9F%92%A5",
    ):
        r = await app.request("GET", f"/v1/budgets/{TEAM}?day={bad}", token=tok)
        assert r.status_code == 400, (bad, r.text)
        body = r.json()
        assert body["error"] == "invalid_input" and body["field"] == "day", body
        assert "YYYY-MM-DD" in body["message"] and "2026-11-28 in Europe/Berlin" in body["message"]
        assert len(body["message"]) < 300
    for typo in ("date=2026-11-27", "days=yesterday", "day=yesterday&date=x"):  # recheck24
        r = await app.request("GET", f"/v1/budgets/{TEAM}?{typo}", token=tok)
        assert r.status_code == 400, (typo, r.text)
        assert r.json()["field"] in ("date", "days") and "takes one query parameter, day" in r.text
    # given twice: which one was meant is not guessed
    r = await app.request("GET", f"/v1/budgets/{TEAM}?day=yesterday&day=today", token=tok)
    assert r.status_code == 400 and r.json()["field"] == "day", r.text
    assert "given twice in the query" in r.json()["message"]
    assert (await app.request("GET", "/v1/budgets/acme", token=tok)).json() == before


async def test_the_token_is_checked_before_the_day(app_factory):
    app, _ = await friday_then_saturday(app_factory)
    other = await app.token("acme/team0")
    r = await app.request("GET", f"/v1/budgets/{TEAM}?day=yesterday", token=other)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert "levels" not in r.json()
    r = await app.request("GET", f"/v1/budgets/{TEAM}?day=not-a-day", token=other)
    assert r.status_code == 403  # a bad day says nothing to a token outside the scope
    r = await app.request("GET", f"/v1/budgets/{TEAM}?day=yesterday")
    assert r.status_code == 401
    r = await app.request("GET", f"/v1/budgets/{TEAM}?day=yesterday", token="ns_bogus")
    assert r.status_code == 401


async def test_the_client_reads_a_past_day(app_factory):
    app, tok = await friday_then_saturday(app_factory)
    await reserve(app, tok, f"{TEAM}/agent-9", 1_000, "sat-hold")
    async with GuardClient(app.url, tok) as guard:
        by_word = await guard.budget(TEAM, day="yesterday")
        by_date = await guard.budget(TEAM, day=date(2026, 11, 27))
        now = await guard.budget(TEAM)
    assert by_word == by_date and by_word["day"] == "2026-11-27"
    assert by_word["levels"][1]["spent_micros"] == sum(FRIDAY_SPEND) + 1_000
    assert now["levels"][1]["windows"]["day"]["held_micros"] == 1_000  # Friday's is Friday's
