"""A level's budget warning (``budget_threshold``) resolves only when its window is back
under the mark it warned of: a raise or a credit that leaves the spend past it keeps the
alert open (the mark was given this period and would not warn again), as a model's
warning does (review24 model budgets: the levels resolved on any raise or room).

A real app on a real SQLite file, in Slack HTTP mode (the fake Slack server), on a manual
clock.
"""

from __future__ import annotations

from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_alerts import alerts_of
from tests.scenario.test_model_budget_operator import settled
from tests.scenario.test_model_budget_warnings import ADMIN, T0

POLICY = {
    "admins": [ADMIN],
    "channels": {"alerts": "C0ALERTS"},
    "breakers": {"spend_rate": None},
    "budgets": {"scopes": {"acme": {"day": "10.00"}}},
}


async def warning(app: Any) -> tuple[Any, ...]:
    [row] = await app.store.fetch(
        "SELECT resolved_at IS NULL, resolve_reason FROM alerts WHERE kind = 'budget_threshold'"
    )
    return tuple(row)


async def test_a_raise_that_leaves_the_spend_past_the_mark_keeps_the_warning(
    slack_http: Any,
) -> None:
    slack = await slack_http(POLICY, clock=ManualClock(T0))
    app = slack.app
    tok = await app.token("acme")
    await settled(app, tok, "a", 8_500_000, 8_500_000, "gpt-4o")  # $8.50 of $10: past 80%
    await alerts_of(slack).process()
    assert await warning(app) == (1, None)

    said = await slack.command("budget set acme $10.50 day", user=ADMIN)  # 80%: $8.40
    assert "$10.50" in said["text"], said
    await alerts_of(slack).tick()
    assert await warning(app) == (1, None)

    await slack.command("budget set acme $12 day", user=ADMIN)  # 80%: $9.60
    await alerts_of(slack).tick()
    assert await warning(app) == (0, "the day budget was raised to $12.00")


async def test_a_credit_resolves_the_warning_only_under_its_mark(slack_http: Any) -> None:
    slack = await slack_http(POLICY, clock=ManualClock(T0))
    app = slack.app
    tok = await app.token("acme")
    rid = await settled(app, tok, "a", 9_000_000, 9_000_000, "gpt-4o")  # $9.00 of $10
    await alerts_of(slack).process()
    assert await warning(app) == (1, None)

    await slack.command(f"credit {rid} $0.50 retried twice", user=ADMIN)  # $8.50: past $8
    await alerts_of(slack).tick()
    assert await warning(app) == (1, None)

    await slack.command(f"credit {rid} $0.60 retried twice", user=ADMIN)  # $7.90
    await alerts_of(slack).tick()
    state, reason = await warning(app)
    assert state == 0 and reason.endswith("the budget has room"), reason
