"""A 402 names the level a call overshoots most, and lists the others (audit16 money M4).

Levels already spent past their limit all showed $0 left, so the deepest was named: the
operator raised the agent's limit, then the user's, then the namespace's, one refusal at a
time, and the first raise was of no use.
"""

from __future__ import annotations

import json

import pytest

from guards.client import GuardClient
from guards.errors import BudgetExceeded
from tests.scenario.test_ledger_api import reserve

POLICY = {
    "breakers": {"spend_rate": None},  # the overrun below would trip it
    "budgets": {
        "scopes": {
            "acme": {"day": "10.00"},
            "acme/alice": {"day": "0.50"},
            "acme/alice/bot": {"day": "3.00"},
        }
    },
}


async def test_the_402_names_the_level_most_over_and_lists_the_others(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    rid = (await reserve(app, tok, "acme/alice/bot", "a", 400_000)).json()["reservation_id"]
    settle = {"actual_cost_micros": 3_000_000}  # an overrun: alice $3.00 of $0.50, bot $3 of $3
    r = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=settle)
    assert r.status_code == 200 and r.json()["overrun_micros"] == 2_600_000
    r = await reserve(app, tok, "acme/alice/bot", "b", 100_000)
    assert r.status_code == 402
    body = r.json()
    assert (body["level"], body["scope"], body["window"]) == ("user", "acme/alice", "day")
    assert body["also"] == [
        {
            "level": "agent",
            "scope": "acme/alice/bot",
            "window": "day",
            "limit_micros": 3_000_000,
            "spent_micros": 3_000_000,
            "held_micros": 0,
            "requested_micros": 100_000,  # the same fields as the named level (audit28 C2 L2)
            "resets_at": "2026-01-02T00:00:00+00:00",  # when the agent's day resets (C2 L1)
        }
    ]
    assert body["requested_micros"] == 100_000
    assert "/agent budget set acme/alice <amount> day" in body["message"]
    assert body["message"].endswith("; also acme/alice/bot (agent) today: $0.10 short")
    async with GuardClient(app.url, tok) as guard:  # the Python client says the same
        with pytest.raises(BudgetExceeded) as refused:
            await guard.create_reservation("acme/alice/bot", max_cost_micros=100_000)
    assert refused.value.scope == "acme/alice" and refused.value.also == body["also"]
    assert str(refused.value).endswith("(agent) today: $0.10 short")
    rows = await app.store.fetch("SELECT payload FROM events WHERE kind = 'budget_exhausted'")
    payload = json.loads(rows[-1]["payload"])
    assert payload["scope"] == "acme/alice" and payload["also"] == body["also"]


async def test_one_level_in_the_way_has_no_also(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    r = await reserve(app, tok, "acme/alice/bot", "a", 600_000)
    assert r.status_code == 402
    assert r.json()["scope"] == "acme/alice" and "also" not in r.json()
    assert "also" not in r.json()["message"]


def test_a_402_with_an_also_entry_the_client_cannot_read_is_still_budget_exceeded():
    """review16 L4: an `also` entry without its scope (a proxy, an older server) made the
    client raise KeyError instead of BudgetExceeded."""
    import httpx

    from guards.client_wire import raise_for

    body = {
        "error": "budget_exceeded",
        "message": "budget for acme/alice (user) today: ...",
        "level": "user",
        "scope": "acme/alice",
        "window": "day",
        "limit_micros": 500_000,
        "spent_micros": 3_000_000,
        "held_micros": 0,
        "requested_micros": 100_000,
        "also": [{"limit_micros": 1, "spent_micros": 1, "held_micros": 0}, "junk"],
    }
    with pytest.raises(BudgetExceeded) as refused:
        raise_for(httpx.Response(402, json=body))
    assert refused.value.scope == "acme/alice" and refused.value.also == []
