"""When a budget's window resets, said by a 402 and by ``GET /v1/budgets`` (audit28 C2 L1:
an agent refused at 3 a.m. could not tell whether waiting helps, nor until when).

A real app on a real SQLite file, over HTTP, on a manual clock: the namespace ``ny``
counts in America/New_York, the policy's other namespaces in UTC. The 23- and 25-hour
days of 2027 are checked on the same clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from guards.client import GuardClient
from guards.clock import ManualClock
from guards.errors import BudgetExceeded
from tests.scenario.test_budget_fleet import spend
from tests.scenario.test_ledger_api import reserve

NY = ZoneInfo("America/New_York")
OPUS = "claude-opus-4-1"
POLICY = {
    "breakers": {"spend_rate": None},
    "budgets": {
        "models": {OPUS: {"day": "2.00"}},
        "scopes": {
            "ny": {"timezone": "America/New_York", "week": "3.00", "total": "100.00"},
            "ny/u2/a1": {"day": "1.00"},
            "ny/u3": {"total": "0.50"},
        },
    },
}


def at(year: int, month: int, day: int, hour: int, minute: int) -> float:
    """An instant given as New York wall time."""
    return datetime(year, month, day, hour, minute, tzinfo=NY).timestamp()


async def _app(app_factory: Any, when: float) -> tuple[Any, str, ManualClock]:
    clock = ManualClock(when)
    app = await app_factory(POLICY, clock=clock)
    return app, await app.token("ny"), clock


async def test_a_day_s_402_says_when_it_resets_and_in_how_long(app_factory):
    app, tok, _ = await _app(app_factory, at(2026, 11, 29, 20, 48))  # Sunday 20:48 EST
    await spend(app, tok, "ny/u2/a1", 245_768, "a")
    r = await reserve(app, tok, "ny/u2/a1", "b", 999_000)
    assert r.status_code == 402
    body = r.json()
    assert (body["level"], body["window"]) == ("agent", "day")
    assert body["resets_at"] == "2026-11-30T00:00:00-05:00"  # 05:00Z
    assert body["message"] == (
        "budget for ny/u2/a1 (agent) today: this call cannot take $0.999 more: $0.245768"
        " spent and $0.00 held of $1.00, $0.754232 left; wait until it resets at 00:00"
        " America/New_York (in 3h 12m), or raise it with /agent budget set ny/u2/a1 <amount>"
        " day"
    )
    # the Python client carries it, and says the server's words (its zone's name, "in …")
    async with GuardClient(app.url, tok) as guard:
        with pytest.raises(BudgetExceeded) as refused:
            await guard.create_reservation("ny/u2/a1", max_cost_micros=999_000)
    assert refused.value.resets_at == "2026-11-30T00:00:00-05:00"
    assert str(refused.value) == refused.value.message == body["message"]


async def test_every_level_in_the_way_says_its_reset_and_total_says_none(app_factory):
    app, tok, _ = await _app(app_factory, at(2026, 11, 29, 20, 48))
    # a user's total never resets: null, and no waiting is offered
    r = await reserve(app, tok, "ny/u3/a/c", "c", 600_000)
    assert r.status_code == 402 and r.json()["window"] == "total"
    assert r.json()["resets_at"] is None and "wait" not in r.json()["message"]
    # a call past the whole limit: no reset makes it fit, so none is offered
    r = await reserve(app, tok, "ny/u2/a1", "d", 1_500_000)
    assert r.json()["resets_at"] == "2026-11-30T00:00:00-05:00"
    assert "wait" not in r.json()["message"] and "resets" not in r.json()["message"]
    rid = (await reserve(app, tok, "ny/u2/a1", "a", 600_000)).json()["reservation_id"]
    over = {"actual_cost_micros": 2_900_000}  # an overrun: the agent's day and ny's week
    r = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=over)
    assert r.status_code == 200, r.text
    r = await reserve(app, tok, "ny/u2/a1", "b", 200_000)
    body = r.json()
    assert (r.status_code, body["scope"], body["window"]) == (402, "ny/u2/a1", "day")
    assert body["resets_at"] == "2026-11-30T00:00:00-05:00"
    [week] = body["also"]
    assert (week["scope"], week["window"]) == ("ny", "week")
    assert week["resets_at"] == "2026-11-30T00:00:00-05:00"  # Monday: a new ISO week too
    assert week["requested_micros"] == 200_000


@pytest.mark.parametrize(
    ("now", "resets", "left"),
    [
        # 2027-03-14 is 23 hours long in New York: its midnight is 04:00Z, not 05:00Z
        (at(2027, 3, 14, 0, 30), "2027-03-15T00:00:00-04:00", "22h 30m"),
        # 2027-11-07 is 25 hours long: its midnight is 05:00Z, not 04:00Z
        (at(2027, 11, 7, 0, 30), "2027-11-08T00:00:00-05:00", "24h 30m"),
        # after the clocks went back, the reset is still the next midnight
        (at(2027, 11, 7, 1, 30) + 3600, "2027-11-08T00:00:00-05:00", "22h 30m"),
    ],
)
async def test_a_day_the_clocks_change_resets_at_its_own_midnight(app_factory, now, resets, left):
    app, tok, clock = await _app(app_factory, now)
    await spend(app, tok, "ny/u2/a1", 700_000, "a")
    r = await reserve(app, tok, "ny/u2/a1", "b", 700_000)
    assert r.status_code == 402 and r.json()["resets_at"] == resets
    assert f"until it resets at 00:00 America/New_York (in {left})" in r.json()["message"]
    # the reset it names is the instant the ledger's day turns: a second before, refused
    clock.set(datetime.fromisoformat(resets).timestamp() - 1)
    assert (await reserve(app, tok, "ny/u2/a1", "c", 700_000)).status_code == 402
    clock.set(datetime.fromisoformat(resets).timestamp())
    assert (await reserve(app, tok, "ny/u2/a1", "d", 700_000)).status_code == 201


async def test_a_model_budget_s_402_says_when_it_resets(app_factory):
    app, tok, _ = await _app(app_factory, at(2026, 11, 29, 23, 0))
    r = await reserve(app, tok, "ny/u2/m", "a", 2_000_001, model=OPUS)
    assert r.status_code == 402 and r.json()["level"] == "model"
    assert r.json()["resets_at"] == "2026-11-30T00:00:00-05:00"
    assert (await reserve(app, tok, "ny/u2/m", "b", 1_500_000, model=OPUS)).status_code == 201
    r = await reserve(app, tok, "ny/u2/m", "c", 1_000_000, model=OPUS)
    assert r.status_code == 402
    assert (
        "wait for running calls to settle or until it resets at 00:00 America/New_York (in 1h)"
        in (r.json()["message"])
    )


async def test_get_budgets_gives_each_window_its_reset(app_factory):
    app, tok, _ = await _app(app_factory, at(2026, 11, 30, 9, 0))  # Monday 09:00 EST
    await reserve(app, tok, "ny/u2/a1", "a", 1_000, model=OPUS)
    r = await app.request("GET", "/v1/budgets/ny/u2/a1", token=tok)
    assert r.status_code == 200, r.text
    got = r.json()
    resets = {
        (node["scope"], window): figures["resets_at"]
        for node in got["levels"]
        for window, figures in node["windows"].items()
    }
    assert resets == {
        ("ny", "day"): "2026-12-01T00:00:00-05:00",
        ("ny", "week"): "2026-12-07T00:00:00-05:00",
        ("ny", "total"): None,
        ("ny/u2", "day"): "2026-12-01T00:00:00-05:00",
        ("ny/u2/a1", "day"): "2026-12-01T00:00:00-05:00",
    }
    assert [(m["model"], m["window"], m["resets_at"]) for m in got["models"]] == [
        (OPUS, "day", "2026-12-01T00:00:00-05:00")
    ]
    r = await app.request("GET", "/v1/budgets/ny/u2", token=tok)
    [child] = r.json()["children"]
    assert child["windows"]["day"]["resets_at"] == "2026-12-01T00:00:00-05:00"
    # a namespace in the policy's zone (UTC): its month ends on the 1st at 00:00Z
    policy = {"budgets": {"scopes": {"acme": {"month": "9.00"}}}}
    utc = await app_factory(policy, clock=ManualClock(at(2026, 11, 30, 9, 0)))
    tok = await utc.token("acme")
    month = (await utc.request("GET", "/v1/budgets/acme", token=tok)).json()["levels"][0]
    assert month["windows"]["month"]["resets_at"] == "2026-12-01T00:00:00+00:00"


MIXED = {
    "breakers": {"spend_rate": None},
    "budgets": {
        "models": {OPUS: {"day": "2.00"}},
        "scopes": {
            "ny": {"timezone": "America/New_York", "total": "3.00"},
            "ny/u1/a1": {"day": "1.00"},
            "nm": {"timezone": "America/New_York"},
            "nm/u1/a2": {"day": "1.00", "month": "1.50"},
            "nd": {"timezone": "America/New_York", "day": "2.00"},
            "nd/u1/a1": {"day": "1.00"},
        },
    },
}


async def _settled(app: Any, tok: str, scope: str, key: str, micros: int, **extra: Any) -> None:
    r = await reserve(app, tok, scope, key, micros, **extra)
    assert r.status_code == 201, r.text
    done = {"actual_cost_micros": micros, "outcome": "success"}
    path = f"/v1/reservations/{r.json()['reservation_id']}/settle"
    assert (await app.request("POST", path, token=tok, json=done)).status_code == 200


async def test_waiting_is_offered_only_when_it_helps_at_every_level_in_the_way(app_factory):
    """review28 R5 M1: the wait was offered when the call fitted the named level's limit,
    whatever the levels in ``also`` said: a namespace's total that refuses forever, or a
    month that still refuses after the day's midnight."""
    clock = ManualClock(at(2026, 11, 29, 10, 56))  # Sunday 10:56 EST
    app = await app_factory(MIXED, clock=clock)
    tok = await app.token("nm")
    # the agent's day (named, $0.70 short) and its month ($0.10 short): the day's
    # midnight does not help, 1 December's does, and the message says that one
    await spend(app, tok, "nm/u1/a2", 900_000, "m")
    r = await reserve(app, tok, "nm/u1/a2", "m2", 700_000)
    body = r.json()
    assert (r.status_code, body["window"], body["also"][0]["window"]) == (402, "day", "month")
    assert body["resets_at"] == "2026-11-30T00:00:00-05:00"  # the named level's own
    assert (
        "; wait until every limit in the way resets on Tue 01 Dec at 00:00 America/New_York"
        " (in 37h 4m), or raise it with /agent budget set nm/u1/a2 <amount> day; also"
        " nm/u1/a2 (agent) this month: $0.10 short"
    ) in body["message"]
    assert body["wait_until"] == "2026-12-01T00:00:00-05:00"  # when waiting helps
    async with GuardClient(app.url, tok) as guard:  # the client says (and holds) the same
        with pytest.raises(BudgetExceeded) as refused:
            await guard.create_reservation("nm/u1/a2", max_cost_micros=700_000)
    assert refused.value.wait_until == "2026-12-01T00:00:00-05:00"
    assert str(refused.value) == body["message"]
    clock.set(at(2026, 11, 30, 0, 0))  # the day's midnight: the month still refuses
    assert (await reserve(app, tok, "nm/u1/a2", "m3", 700_000)).status_code == 402
    clock.set(at(2026, 12, 1, 0, 0))  # the time it said
    assert (await reserve(app, tok, "nm/u1/a2", "m4", 700_000)).status_code == 201

    # the agent's day (named, $0.89 short) and the namespace's total ($0.84 short, for
    # ever): no wait helps, only a raise
    tok = await app.token("ny")
    await spend(app, tok, "ny/u1/a1", 900_000, "a")
    await spend(app, tok, "ny/u1/a3", 1_950_000, "b")
    r = await reserve(app, tok, "ny/u1/a1", "c", 990_000)
    body = r.json()
    assert (r.status_code, body["window"], body["also"][0]["window"]) == (402, "day", "total")
    assert "wait" not in body["message"] and "resets" not in body["message"]
    assert body["resets_at"] == "2026-12-02T00:00:00-05:00" and body["wait_until"] is None
    assert body["message"].endswith("; also ny (namespace) in total: $0.84 short")
    async with GuardClient(app.url, tok) as guard:
        with pytest.raises(BudgetExceeded) as refused:
            await guard.create_reservation("ny/u1/a1", max_cost_micros=990_000)
    assert refused.value.wait_until is None and "wait" not in str(refused.value)


async def test_a_model_s_402_and_running_calls_offer_no_wait_a_level_in_the_way_ignores(
    app_factory,
):
    """review28 R5 M1, the model's message and the wait for running calls alike."""
    app = await app_factory(MIXED, clock=ManualClock(at(2026, 11, 29, 10, 56)))
    tok = await app.token("ny")
    # the model's day ($0.50 short, named) and the namespace's total ($0.10 short)
    await _settled(app, tok, "ny/u1/m", "a", 1_900_000, model=OPUS)
    await _settled(app, tok, "ny/u2/x", "b", 600_000)
    r = await reserve(app, tok, "ny/u1/m", "c", 600_000, model=OPUS)
    body = r.json()
    assert (r.status_code, body["level"], body["also"][0]["window"]) == (402, "model", "total")
    assert "wait" not in body["message"] and body["wait_until"] is None
    assert body["message"].startswith(
        "ny's budget for claude-opus-4-1 for today cannot take $0.60 more ($1.90 spent and"
        " $0.00 held of $2.00, $0.10 left): pick a smaller model, or raise"
    )


async def test_running_calls_are_waited_for_only_when_their_settling_helps_every_level(
    app_factory,
):
    app = await app_factory(MIXED, clock=ManualClock(at(2026, 11, 29, 10, 56)))
    tok = await app.token("nd")
    # the agent's day: $0.80 spent; the namespace's: that and $1.10 held by a running call
    await spend(app, tok, "nd/u1/a1", 800_000, "s")
    assert (await reserve(app, tok, "nd/u3/a", "h", 1_100_000)).status_code == 201
    r = await reserve(app, tok, "nd/u1/a1", "c", 300_000)
    body = r.json()
    assert (body["scope"], body["also"][0]["scope"]) == ("nd", "nd/u1/a1")
    # a settle frees the namespace's day, never the agent's: only the midnight helps both
    assert "running calls" not in body["message"]
    assert (
        "; wait until every limit in the way resets at 00:00 America/New_York" in (body["message"])
    )
