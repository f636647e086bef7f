"""A model's budget alert (``model_budget_exhausted``) resolves only when that model's
budget has room again, in every window it limits: a credit that frees one window while
another is still spent leaves it open; a reload (the restart on the edited file) that
raises a limit resolves it when the model has room, not when it is still spent.

A real app on a real SQLite file, in Slack HTTP mode, on a manual clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_alerts import alerts_of
from tests.scenario.test_ledger_api import reserve
from tests.scenario.test_model_budget_operator import settled
from tests.scenario.test_model_budgets import model_alerts, verified

ADMIN = "U0ADMIN"
OPUS = "claude-opus-4-1"
BOT = "acme/alice/bot"
DAY = 86_400
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC).timestamp()  # a Tuesday


def policy(**limits: str) -> dict[str, Any]:
    return {
        "admins": [ADMIN],
        "channels": {"alerts": "C0ALERTS"},
        "breakers": {"spend_rate": None},
        "budgets": {"models": {OPUS: limits}},
    }


async def open_model_alerts(app: Any) -> list[tuple[Any, ...]]:
    return [r for r in await model_alerts(app) if r[0] == "model_budget_exhausted" and not r[4]]


async def test_a_credit_freeing_one_window_while_another_is_spent_leaves_the_alert_open(
    slack_http: Any, tmp_path: Path
) -> None:
    db = tmp_path / "resolve.db"
    clock = ManualClock(T0)
    slack = await slack_http(policy(day="1.00", month="1.50"), clock=clock, db=db)
    app = slack.app
    tok = await app.token("acme")
    yesterday = await settled(app, tok, "y", 600_000, 600_000, OPUS)
    clock.advance(DAY)
    await settled(app, tok, "t", 700_000, 1_000_000, OPUS)  # day $1.00 of $1.00, month $1.60
    refused = await reserve(app, tok, BOT, "r", 10_000, model=OPUS)
    body = refused.json()
    assert (refused.status_code, body["level"], body["window"]) == (402, "model", "month")
    assert [(o["model"], o["window"]) for o in body["also"]] == [(OPUS, "day")]
    await alerts_of(slack).process()
    assert len(await open_model_alerts(app)) == 1

    # yesterday's charge taken back: the month has room ($1.30 of $1.50), today has none
    reply = await slack.command(f"credit {yesterday} 0.30 duplicate charge")
    assert "So does acme's budget for claude-opus-4-1" in reply["text"]
    assert len(await open_model_alerts(app)) == 1
    assert (await reserve(app, tok, BOT, "r2", 10_000, model=OPUS)).status_code == 402
    await alerts_of(slack).tick()
    assert len(await open_model_alerts(app)) == 1

    # a reload raising the day's limit (the other window in the call's way): it has room
    await app.ns.stop()
    slack = await slack_http(policy(day="2.00", month="1.50"), clock=clock, db=db)
    app = slack.app
    await alerts_of(slack).tick()
    rows = await model_alerts(app)
    assert [(r[0], r[5]) for r in rows] == [
        ("model_budget_exhausted", "the policy raised the day budget for claude-opus-4-1 to $2.00")
    ]
    assert (await reserve(app, tok, BOT, "r3", 10_000, model=OPUS)).status_code == 201
    assert verified(str(db)) == []


async def test_a_reload_raising_the_limit_resolves_only_once_the_model_has_room(
    slack_http: Any, tmp_path: Path
) -> None:
    db = tmp_path / "reload.db"
    clock = ManualClock(T0)
    slack = await slack_http(policy(day="1.00"), clock=clock, db=db)
    app = slack.app
    tok = await app.token("acme")
    await settled(app, tok, "over", 900_000, 1_400_000, OPUS)  # $1.40 of $1.00: an overrun
    assert (await reserve(app, tok, BOT, "r", 1, model=OPUS)).status_code == 402
    await alerts_of(slack).process()

    await app.ns.stop()  # raised to $1.20: still $0.20 short of any call
    slack = await slack_http(policy(day="1.20"), clock=clock, db=db)
    await alerts_of(slack).tick()
    assert len(await open_model_alerts(slack.app)) == 1

    await slack.app.ns.stop()
    slack = await slack_http(policy(day="2.00"), clock=clock, db=db)
    await alerts_of(slack).tick()
    rows = await model_alerts(slack.app)
    assert [r[5] for r in rows] == ["the policy raised the day budget for claude-opus-4-1 to $2.00"]


async def test_a_zero_dollar_model_budget_alert_stays_open_when_its_day_turns(
    slack_http: Any,
) -> None:
    """A $0 limit never has room: the window turning does not give it any (the next day
    refuses as well), so its alert stays open until a reload raises it."""
    clock = ManualClock(T0)
    slack = await slack_http(policy(day="0"), clock=clock)
    app = slack.app
    tok = await app.token("acme")
    assert (await reserve(app, tok, BOT, "r", 1, model=OPUS)).status_code == 402
    await alerts_of(slack).process()
    clock.advance(DAY)
    await alerts_of(slack).tick()
    assert len(await open_model_alerts(app)) == 1


async def test_a_refusal_kept_open_by_the_month_resolves_naming_the_new_month(
    slack_http: Any,
) -> None:
    """review24 L4: an alert naming the day, with the month in its way too, stays open
    the next day (the month is still spent) and resolves when the month turns, saying so
    (it said "a new day began")."""
    clock = ManualClock(T0)
    slack = await slack_http(policy(day="1.00", month="1.20"), clock=clock)
    app = slack.app
    tok = await app.token("acme")
    await settled(app, tok, "y", 100_000, 100_000, OPUS)
    clock.advance(DAY)
    await settled(app, tok, "t", 1_000_000, 1_100_000, OPUS)  # day $1.10, month $1.20
    body = (await reserve(app, tok, BOT, "r", 10_000, model=OPUS)).json()
    assert (body["window"], [o["window"] for o in body["also"]]) == ("day", ["month"])
    await alerts_of(slack).process()
    clock.advance(DAY)  # the day has room, the month none
    await alerts_of(slack).tick()
    assert len(await open_model_alerts(app)) == 1
    clock.advance(5 * DAY)  # 2026-12-01
    await alerts_of(slack).tick()
    assert [r[5] for r in await model_alerts(app)] == ["a new month began"]
