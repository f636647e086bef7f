"""A budget's warning mark warns again once the spend came back under it (h3 item 3): a
credit (or a raise) resolved the warning, then a lower limit put the spend past the mark
again, and the mark, given once this period, never warned again: the operator heard
nothing until the wall. Both a namespace's budget for a model (``model_budget_threshold``)
and a level's (``budget_threshold``). An alert resolved by hand still forgets nothing.

A real app on a real SQLite file, in Slack HTTP mode (the fake Slack server), on a manual
clock; a reload is a restart on the new policy, as SIGHUP's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_alerts import alerts_of
from tests.scenario.test_budget_warning_resolve import POLICY as LEVEL_POLICY
from tests.scenario.test_model_budget_operator import settled
from tests.scenario.test_model_budget_warnings import ADMIN, OPUS, T0, policy, warning_alerts


async def open_and_resolved(app: Any, kind: str) -> list[bool]:
    rows = await app.store.fetch(
        "SELECT resolved_at IS NULL FROM alerts WHERE kind = ? ORDER BY id", (kind,)
    )
    return [bool(r[0]) for r in rows]


async def test_a_model_warning_credited_under_its_mark_warns_again_after_a_lower_limit(
    slack_http: Any, tmp_path: Path
) -> None:
    db = tmp_path / "rewarn.db"
    clock = ManualClock(T0)
    slack = await slack_http(policy(), clock=clock, db=db)
    tok = await slack.app.token("acme")
    await settled(slack.app, tok, "a", 7_000_000, 7_000_000, OPUS)
    runaway = await settled(slack.app, tok, "b", 1_500_000, 1_500_000, OPUS)  # $8.50 of $10
    await alerts_of(slack).process()
    await slack.command(f"credit {runaway} 0.60 retried call")  # $7.90: under $8.00
    assert await open_and_resolved(slack.app, "model_budget_threshold") == [False]

    # a reload lowers the limit to $9.50: $7.90 is 83%, past the mark again
    await slack.app.ns.stop()
    slack = await slack_http(policy(day="9.50"), clock=clock, db=db)
    await settled(slack.app, tok, "c", 100_000, 100_000, OPUS)  # $8.00
    await alerts_of(slack).process()
    assert await open_and_resolved(slack.app, "model_budget_threshold") == [False, True]
    shown = (await slack.command("alert 2"))["text"]
    assert f"acme's day budget for {OPUS} (2026-11-28) passed 80%: $8.00 spent of $9.50" in shown

    # given again, it warns once: the next charge past it does not repeat it
    await settled(slack.app, tok, "d", 100_000, 100_000, OPUS)
    await alerts_of(slack).process()
    rows = await warning_alerts(slack.app)
    assert [(r[3], r[4] is None) for r in rows] == [(1, False), (1, True)]


async def test_a_level_warning_credited_under_its_mark_warns_again_after_a_lower_limit(
    slack_http: Any,
) -> None:
    slack = await slack_http(LEVEL_POLICY, clock=ManualClock(T0))
    app = slack.app
    tok = await app.token("acme")
    rid = await settled(app, tok, "a", 8_500_000, 8_500_000, "gpt-4o")  # $8.50 of $10
    await alerts_of(slack).process()
    await slack.command(f"credit {rid} 0.60 retried call", user=ADMIN)  # $7.90
    assert await open_and_resolved(app, "budget_threshold") == [False]
    said = await slack.command("budget set acme $9.50 day", user=ADMIN)  # 80%: $7.60
    assert "$9.50" in said["text"], said
    await settled(app, tok, "b", 100_000, 100_000, "gpt-4o")  # $8.00
    await alerts_of(slack).process()
    assert await open_and_resolved(app, "budget_threshold") == [False, True]


async def test_a_warning_resolved_by_hand_does_not_warn_again_this_period(
    slack_http: Any,
) -> None:
    slack = await slack_http(LEVEL_POLICY, clock=ManualClock(T0))
    app = slack.app
    tok = await app.token("acme")
    await settled(app, tok, "a", 8_500_000, 8_500_000, "gpt-4o")
    await alerts_of(slack).process()
    [(alert_id,)] = await app.store.fetch("SELECT id FROM alerts WHERE kind = 'budget_threshold'")
    said = await slack.command(f"resolve {alert_id} known: a backfill", user=ADMIN)
    assert "resolved" in said["text"], said
    await slack.command("budget set acme $9.50 day", user=ADMIN)
    await settled(app, tok, "b", 100_000, 100_000, "gpt-4o")
    await alerts_of(slack).process()
    assert await open_and_resolved(app, "budget_threshold") == [False]
