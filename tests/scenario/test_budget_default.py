"""A limit set in Slack against the policy file's: which one wins is said, and the file's
can be had back (audit15 reload M2)."""

from __future__ import annotations

import logging
from typing import Any

ADMIN = "U0ADMIN"
BOT = "acme/u/a"
POLICY: dict[str, Any] = {
    "admins": [ADMIN],
    "budgets": {"scopes": {BOT: {"day": "1.00"}}},
}


async def day_limit(app: Any) -> int | None:
    tok = await app.token("acme")
    tree = (await app.request("GET", f"/v1/budgets/{BOT}", token=tok)).json()
    agent = next(lv for lv in tree["levels"] if lv["level"] == "agent")
    limit: int | None = agent["windows"]["day"]["limit_micros"]
    return limit


async def test_a_slack_limit_says_it_overrides_the_file_and_default_goes_back(slack_http):
    slack = await slack_http(POLICY)
    raised = await slack.command(f"budget set {BOT} $3 day")
    assert "to *$3.00* (was $1.00)" in raised["text"]
    assert (
        f"It overrides the policy file's $1.00, restarts included, until"
        f" `/agent budget set {BOT} default day`." in raised["text"]
    )
    assert await day_limit(slack.app) == 3_000_000

    refused = await slack.command(f"budget set {BOT} default day", user="U0STRANGER")
    assert "Only admins" in refused["text"]
    assert await day_limit(slack.app) == 3_000_000

    back = await slack.command(f"budget set {BOT} default day")
    assert back["response_type"] == "in_channel"
    assert (
        f"set the *day* budget of `{BOT}` back to the policy file's: *$1.00* (was $3.00)"
        in (back["text"])
    )
    assert await day_limit(slack.app) == 1_000_000
    rows = await slack.app.store.fetch(
        "SELECT actor, before, after, detail FROM audit WHERE action = 'budget.set'"
    )
    assert tuple(rows[-1]) == (ADMIN, "3000000", "1000000", "back to the policy's")

    again = await slack.command(f"budget set {BOT} DEFAULT day")
    assert again["text"] == (
        f"No *day* budget of `{BOT}` was set in Slack: it follows the policy file ($1.00)."
        " Nothing changed."
    )
    week = await slack.command(f"budget set {BOT} $2 week")  # the file sets no week: no note
    assert "overrides" not in week["text"]
    gone = await slack.command(f"budget set {BOT} default week")
    assert "back to the policy file's: *no limit* (was $2.00)" in gone["text"]


async def test_a_start_warns_of_limits_set_in_slack_that_the_file_does_not_say(
    slack_http, app_factory, tmp_path, caplog
):
    db = tmp_path / "kept.db"
    slack = await slack_http(POLICY, db=db)
    await slack.command(f"budget set {BOT} $3 day")
    await slack.app.ns.stop()
    lowered = {**POLICY, "budgets": {"scopes": {BOT: {"day": "0.50"}}}}
    with caplog.at_level(logging.WARNING):
        again = await app_factory(lowered, db=db)
    assert await day_limit(again) == 3_000_000  # Slack's limit still wins, and it is said:
    warned = [r.getMessage() for r in caplog.records if "the policy file: " in r.getMessage()]
    assert warned == [
        "1 budget limit set in Slack overrides the policy file: acme/u/a day $3.00"
        " (the file: $0.50; set by U0ADMIN). `/agent budget set <scope> default <window>`"
        " goes back to the file's"
    ]
