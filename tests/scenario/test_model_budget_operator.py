"""Budgets per model (``budgets.models``) on the operator's side, after review23: a credit
that frees a model's budget resolves its alert and says so; what the start, ``/agent
status``, the alerts and the 402 say of a model's budget.

A real app on a real SQLite file, in Slack HTTP mode (signed requests), on a manual clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_alerts import alerts_of
from tests.scenario.test_ledger_api import reserve
from tests.scenario.test_model_budgets import model_alerts, verified

ADMIN = "U0ADMIN"
OPUS = "claude-opus-4-1"
BOT = "acme/alice/bot"
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC).timestamp()
POLICY: dict[str, Any] = {
    "admins": [ADMIN],
    "channels": {"alerts": "C0ALERTS"},
    "breakers": {"spend_rate": None},  # spend rate is its own matter: not here
    "budgets": {"models": {OPUS: {"day": "1.00"}}},
}


async def settled(app: Any, tok: str, key: str, held: int, charged: int, model: str) -> str:
    """A call of ``model`` that held ``held`` and was charged ``charged``: its id."""
    r = await reserve(app, tok, BOT, key, held, model=model)
    assert r.status_code == 201, r.text
    rid: str = r.json()["reservation_id"]
    body = {"actual_cost_micros": charged}
    s = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=body)
    assert s.status_code == 200, s.text
    return rid


async def test_a_credit_that_frees_a_model_s_budget_resolves_its_alert(slack_http: Any) -> None:
    """review23 M1: the model_budget_exhausted alert stayed open and paging after a credit
    gave the model's budget its room back (a level's alert resolves: review29 M1)."""
    slack = await slack_http(POLICY, clock=ManualClock(T0))
    app = slack.app
    tok = await app.token("acme")
    runaway = await settled(app, tok, "opus", 500_000, 1_500_000, OPUS)  # $0.50 over
    other = await settled(app, tok, "gpt", 100_000, 100_000, "gpt-4o")
    refused = await reserve(app, tok, BOT, "next", 1, model=OPUS)
    assert (refused.status_code, refused.json()["level"]) == (402, "model")
    await alerts_of(slack).process()
    assert [(r[0], r[4]) for r in await model_alerts(app)] == [("model_budget_exhausted", None)]

    # another model's charge taken back: the opus budget has no more room
    reply = await slack.command(f"credit {other} all duplicate charge")
    assert "So does" not in reply["text"]  # gpt-4o has no budget of its own
    # a credit that leaves the opus budget still spent ($1.40 of $1.00): stays open
    reply = await slack.command(f"credit {runaway} 0.10 part of it")
    assert [(r[4], r[5]) for r in await model_alerts(app)] == [(None, None)]
    assert (
        "The agent, user and namespace regain $0.10 in their day of 2026-11-28, week"
        " 2026-W48, month 2026-11 and total. So does acme's budget for claude-opus-4-1"
        " (`budgets.models`), in the same windows."
    ) in reply["text"]

    await slack.command(f"credit {runaway} 0.45 unit bug")  # $0.95 of $1.00 now
    rows = await app.store.fetch(
        "SELECT resolved_by, resolve_reason FROM alerts WHERE kind = 'model_budget_exhausted'"
    )
    assert [tuple(r) for r in rows] == [
        (
            ADMIN,
            f"$0.45 of the charge of {runaway} taken back: the budget for claude-opus-4-1 has room",
        )
    ]
    assert (await reserve(app, tok, BOT, "again", 50_000, model=OPUS)).status_code == 201
    assert verified(app.ns.settings.db) == []
