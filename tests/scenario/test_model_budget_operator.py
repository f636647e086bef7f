"""Budgets per model (``budgets.models``) on the operator's side, after review23: a credit
that frees a model's budget resolves its alert and says so; what the start, ``/agent
status``, the alerts and the 402 say of a model's budget.

A real app on a real SQLite file, in Slack HTTP mode (signed requests), on a manual clock.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
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
        " (`budgets.models`), in each window it limits."
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


async def test_a_model_budget_nobody_could_reserve_under_is_a_start_warning(
    app_factory: Any, caplog: Any, tmp_path: Path
) -> None:
    """review23 M2: a key naming no model Nightshift knows (a typo, a provider's prefix
    agents do not send) capped nothing, and nothing said so. A warning, not a refusal: a
    new model may not be priced yet; once a call named it, it is known."""
    policy = {
        "prices": {"local-llm": {"input": 0, "output": 0}},
        "budgets": {
            "models": {
                "claude-opus-41": {"day": 5},  # a typo
                "anthropic/claude-opus-4-1": {"day": 5},  # agents send claude-opus-4-1
                "Claude-Opus-4-1-20250805": {"day": 5},  # priced (dated): known
                "local-llm": {"day": 1},  # priced in the policy: known
                "brand-new-model": {"day": 1},  # not priced yet
            }
        },
    }
    db = tmp_path / "mb.db"
    with caplog.at_level(logging.WARNING):
        app = await app_factory(policy, db=db)
    warned = [r.getMessage() for r in caplog.records if "names a model Nightshift" in r.message]
    assert [w.split(" names")[0] for w in warned] == [
        "budgets.models.anthropic/claude-opus-4-1",
        "budgets.models.brand-new-model",
        "budgets.models.claude-opus-41",
    ]
    assert warned[2] == (
        "budgets.models.claude-opus-41 names a model Nightshift does not know (did you mean"
        " 'claude-opus-4-1'?): no price, no routing tier, no model breaker and no call"
        " counted for it, so it caps only calls that name claude-opus-41, counted undated"
        " and in lower case as the agents send it (a provider's prefix is part of the"
        " name). Check the spelling, or add the model under prices:"
    )
    assert "(did you mean 'claude-opus-4-1'?)" in warned[0]

    tok = await app.token("acme")  # a call names the new model: it is known from now on
    assert (await reserve(app, tok, BOT, "k", 1_000, model="Brand-New-Model")).status_code == 201
    await app.ns.stop()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        await app_factory(policy, db=db)
    warned = [r.getMessage() for r in caplog.records if "names a model Nightshift" in r.message]
    assert [w.split(" names")[0] for w in warned] == [
        "budgets.models.anthropic/claude-opus-4-1",
        "budgets.models.claude-opus-41",
    ]


async def test_with_model_budgets_only_the_start_and_status_say_what_they_cap(
    slack_http: Any, caplog: Any
) -> None:
    """review23 L2: with only budgets.models, the start said 'nothing refuses a call
    before it starts', and /agent status 'No budgets'; calls naming those models are."""
    with caplog.at_level(logging.WARNING):
        slack = await slack_http(POLICY, clock=ManualClock(T0))
    assert "nothing refuses a call before it starts" not in caplog.text
    assert (
        "no budgets for any level: only calls naming a model of budgets.models"
        " (claude-opus-4-1) are refused before they start, and a call naming another model"
        " or none never is; no spend-rate breaker stops an agent either."
    ) in caplog.text
    text = (await slack.command("status"))["text"]
    assert "No budgets:" not in text
    assert (
        "⚠️ No budgets for any level: only calls naming `claude-opus-4-1` (`budgets.models`)"
        " are refused before they start, a call naming another model or none never is (the"
        " spend-rate breaker acts only after money is charged). `/agent budget set <scope>"
        " <amount> day` or `budgets.defaults` in the policy"
    ) in text


async def test_the_alerts_name_the_model_in_the_way_and_say_a_reload_applies_its_limit(
    slack_http: Any,
) -> None:
    """review23 L3: a level's budget alert said 'also over: acme (model day)', not which
    model; L5: the advice to raise budgets.models did not say a reload applies it (nobody
    sets a model's limit in Slack)."""
    policy = {
        **POLICY,
        "budgets": {"scopes": {"acme": {"day": "1.00"}}, "models": {OPUS: {"day": "2.00"}}},
    }
    slack = await slack_http(policy, clock=ManualClock(T0))
    app, fake = slack.app, slack.fake
    tok, globex = await app.token("acme"), await app.token("globex")
    # $3.00 is $2.00 past acme's day and $1.00 past opus's: the namespace's is named
    both = await reserve(app, tok, BOT, "both", 3_000_000, model=OPUS)
    assert (both.status_code, both.json()["level"]) == (402, "namespace")
    assert [(o["level"], o.get("model")) for o in both.json()["also"]] == [("model", OPUS)]
    # globex has no budget of its own: its opus budget alone refuses
    held = await reserve(app, globex, "globex/x/bot", "held", 1_900_000, model=OPUS)
    assert held.status_code == 201
    only = await reserve(app, globex, "globex/x/bot", "only", 200_000, model=OPUS)
    assert (only.status_code, only.json()["level"]) == (402, "model")
    assert only.json()["message"].endswith(
        "pick a smaller model, or raise budgets.models.claude-opus-4-1 in the policy and"
        " reload it (SIGHUP)"
    )
    await alerts_of(slack).process()
    await fake.wait_for(lambda: len(fake.texts()) >= 2)
    level = [t for t in fake.texts() if "also over" in t]
    assert len(level) == 1 and "; also over: acme (claude-opus-4-1 day)" in level[0], level
    model = [t for t in fake.texts() if "Model budget refused a call" in t]
    assert (
        model
        and ("(raise budgets.models.claude-opus-4-1 in the policy and reload it: SIGHUP)")
        in model[-1]
    ), model
