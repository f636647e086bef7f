"""A namespace's budget for one model (``budgets.models``) warns before the wall, as the
levels' budgets do: a ``model_budget_threshold`` alert (P2) on the namespace, naming the
model, what is spent of the limit and the key to raise; once per period, restarts
included; resolved when a reload raises the limit or the window turns.

A real app on a real SQLite file, in Slack HTTP mode (the fake Slack server), on a manual
clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_alerts import alerts_of
from tests.scenario.test_model_budget_operator import settled

ADMIN = "U0ADMIN"
OPUS = "claude-opus-4-1"
DAY = 86_400
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC).timestamp()


def policy(day: str = "10.00") -> dict[str, Any]:
    return {
        "admins": [ADMIN],
        "channels": {"alerts": "C0ALERTS"},
        "breakers": {"spend_rate": None},
        "budgets": {"scopes": {"acme": {"day": "1000.00"}}, "models": {OPUS: {"day": day}}},
    }


async def warning_alerts(app: Any) -> list[tuple[Any, ...]]:
    rows = await app.store.fetch(
        "SELECT kind, scope, tier, count, resolved_at, resolve_reason FROM alerts"
        " WHERE kind LIKE '%budget_threshold' ORDER BY id"
    )
    return [tuple(r) for r in rows]


async def test_a_model_budget_warns_once_says_how_to_raise_it_and_a_restart_does_not_repeat(
    slack_http: Any, tmp_path: Path
) -> None:
    db = tmp_path / "warn.db"
    clock = ManualClock(T0)
    slack = await slack_http(policy(), clock=clock, db=db)
    app, fake = slack.app, slack.fake
    tok = await app.token("acme")
    await settled(app, tok, "a", 7_000_000, 7_000_000, OPUS)  # $7 of $10
    await settled(app, tok, "b", 1_500_000, 1_500_000, OPUS)  # $8.50: past the 80% mark
    await alerts_of(slack).process()
    assert await warning_alerts(app) == [("model_budget_threshold", "acme", "P2", 1, None, None)]
    # a P2 is not posted (the digest and /agent alerts show it), as a level's warning
    shown = (await slack.command("alert 1"))["text"]
    assert "Model budget warning" in shown, shown
    assert (
        "acme's day budget for claude-opus-4-1 (2026-11-28) passed 80%: $8.50 spent of"
        " $10.00 (raise budgets.models.claude-opus-4-1.day in the policy and reload it: SIGHUP)"
    ) in shown
    assert not any("Model budget warning" in t for t in fake.texts())

    # a restart: the next charge finds the mark warned already
    await app.ns.stop()
    slack = await slack_http(policy(), clock=clock, db=db)
    app = slack.app
    await settled(app, tok, "c", 500_000, 500_000, OPUS)
    await alerts_of(slack).process()
    assert await warning_alerts(app) == [("model_budget_threshold", "acme", "P2", 1, None, None)]
    events = await app.store.fetch(
        "SELECT COUNT(*) FROM events WHERE kind = 'model_budget_threshold'"
    )
    assert events[0][0] == 1

    # a reload raising the model's day limit resolves the warning
    await app.ns.stop()
    slack = await slack_http(policy(day="20.00"), clock=clock, db=db)
    await alerts_of(slack).tick()
    rows = await warning_alerts(slack.app)
    raised = "the policy raised the day budget for claude-opus-4-1 to $20.00"
    assert [r[5] for r in rows] == [raised]


async def test_the_next_day_the_warning_resolves_and_warns_afresh(slack_http: Any) -> None:
    clock = ManualClock(T0)
    slack = await slack_http(policy(), clock=clock)
    app = slack.app
    tok = await app.token("acme")
    await settled(app, tok, "a", 9_000_000, 9_000_000, OPUS)
    await alerts_of(slack).process()
    clock.advance(DAY)
    await alerts_of(slack).tick()
    assert [r[5] for r in await warning_alerts(app)] == ["a new day began"]
    await settled(app, tok, "b", 9_000_000, 9_000_000, OPUS)
    await alerts_of(slack).process()
    assert [r[4] is None for r in await warning_alerts(app)] == [False, True]
    # `/agent silence model` holds the model budget kinds, the warning with them
    reply = await slack.command("silence model 1h")
    assert "silenced model_* alerts on every scope for 1h" in reply["text"]
    assert "1 open alert silenced now" in reply["text"]


async def test_a_reload_raising_the_limit_resolves_the_warning_only_under_its_mark(
    slack_http: Any, tmp_path: Path
) -> None:
    """review24 L2: $9.00 of $10 warned at 80%; raised to $10.50 it is still 86%, past
    the mark, so the warning stays (no new one would come this period); at $12 it is 75%."""
    db = tmp_path / "raise.db"
    clock = ManualClock(T0)
    slack = await slack_http(policy(), clock=clock, db=db)
    tok = await slack.app.token("acme")
    await settled(slack.app, tok, "a", 9_000_000, 9_000_000, OPUS)
    await alerts_of(slack).process()
    for day, resolved in (("10.50", None), ("12.00", "the policy raised the day budget")):
        await slack.app.ns.stop()
        slack = await slack_http(policy(day=day), clock=clock, db=db)
        await alerts_of(slack).tick()
        (row,) = await warning_alerts(slack.app)
        assert row[5] == (resolved and f"{resolved} for {OPUS} to ${day}")


async def test_a_credit_resolves_the_warning_once_the_spend_is_under_its_mark(
    slack_http: Any,
) -> None:
    """review24 L3: a credit resolved a level's warning, never a model's."""
    slack = await slack_http(policy(), clock=ManualClock(T0))
    app = slack.app
    tok = await app.token("acme")
    await settled(app, tok, "a", 7_000_000, 7_000_000, OPUS)
    runaway = await settled(app, tok, "b", 1_500_000, 1_500_000, OPUS)  # $8.50 of $10
    await alerts_of(slack).process()
    await slack.command(f"credit {runaway} 0.40 retried call")  # $8.10: past $8.00 still
    assert [r[4] for r in await warning_alerts(app)] == [None]
    await slack.command(f"credit {runaway} 0.20 retried call")  # $7.90
    (row,) = await warning_alerts(app)
    assert row[5] == (
        f"$0.20 of the charge of {runaway} taken back: the day budget for {OPUS} is back"
        " under the mark"
    )


SONNET = "claude-sonnet-4-5"


def two_models(sonnet_day: str = "10.00") -> dict[str, Any]:
    both = {OPUS: {"day": "10.00"}, SONNET: {"day": sonnet_day}}
    return {**policy(), "budgets": {**policy()["budgets"], "models": both}}


async def test_a_model_past_its_mark_keeps_the_warning_open_when_another_model_clears(
    slack_http: Any, tmp_path: Path
) -> None:
    """recheck24 M1: the namespace's one warning alert resolved when a reload raised the
    latest warning's model (sonnet), though opus was still past the mark it had warned
    of; that mark was given, so opus was never warned of again that period. The alert
    now holds every model's warning until each is back under its mark."""
    db = tmp_path / "two.db"
    clock = ManualClock(T0)
    slack = await slack_http(two_models(), clock=clock, db=db)
    tok = await slack.app.token("acme")
    runaway = await settled(slack.app, tok, "a", 8_500_000, 8_500_000, OPUS)  # 85%
    await settled(slack.app, tok, "b", 8_200_000, 8_200_000, SONNET)  # 82%
    await alerts_of(slack).process()
    assert await warning_alerts(slack.app) == [
        ("model_budget_threshold", "acme", "P2", 2, None, None)
    ]
    shown = (await slack.command("alert 1"))["text"]
    assert f"acme's day budget for {SONNET} (2026-11-28) passed 80%: $8.20 spent" in shown
    assert f"still past a mark too: {OPUS} day 80% ($8.50 of $10.00 then)" in shown, shown

    # a reload raising sonnet's limit clears sonnet's warning, not opus's
    await slack.app.ns.stop()
    slack = await slack_http(two_models(sonnet_day="20.00"), clock=clock, db=db)
    await alerts_of(slack).tick()
    assert [r[4] for r in await warning_alerts(slack.app)] == [None]
    shown = (await slack.command("alert 1"))["text"]
    assert f"acme's day budget for {OPUS} (2026-11-28) passed 80%: $8.50 spent" in shown
    assert SONNET not in shown and "still past" not in shown, shown

    # opus spends on past its mark: no new warning (given), the open alert still says it
    await settled(slack.app, tok, "c", 600_000, 600_000, OPUS)  # 91%
    await alerts_of(slack).process()
    assert [r[4] for r in await warning_alerts(slack.app)] == [None]

    # a credit bringing opus back under its mark resolves it, naming what did
    await slack.command(f"credit {runaway} 1.20 retried call")  # $7.90 of $10
    (row,) = await warning_alerts(slack.app)
    assert row[5] == (
        f"$1.20 of the charge of {runaway} taken back: the day budget for {OPUS} is back"
        " under the mark"
    )


async def test_a_credit_of_one_model_leaves_another_model_s_warning_open(
    slack_http: Any,
) -> None:
    """recheck24 M1, the other way: a credit of the latest warning's model (sonnet) does
    not resolve the alert while opus is past its mark; the next day resolves both, once."""
    clock = ManualClock(T0)
    slack = await slack_http(two_models(), clock=clock)
    tok = await slack.app.token("acme")
    await settled(slack.app, tok, "a", 8_500_000, 8_500_000, OPUS)
    second = await settled(slack.app, tok, "b", 8_200_000, 8_200_000, SONNET)
    await alerts_of(slack).process()
    await slack.command(f"credit {second} 1.00 retried call")  # sonnet at 72%
    assert [r[4] for r in await warning_alerts(slack.app)] == [None]
    shown = (await slack.command("alert 1"))["text"]
    assert f"acme's day budget for {OPUS} (2026-11-28) passed 80%" in shown, shown
    await settled(slack.app, tok, "c", 900_000, 900_000, SONNET)  # 81%: warns again
    await alerts_of(slack).process()
    clock.advance(DAY)
    await alerts_of(slack).tick()
    (row,) = await warning_alerts(slack.app)
    assert (row[3], row[5]) == (3, "a new day began")
