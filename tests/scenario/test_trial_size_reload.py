"""A reload (SIGHUP: a restart on the new policy) that changes the trial's size redraws the
waiting "approve a trial?" request with the size an approval now starts (h3 item 2): it
kept showing "3 calls within $0.50" while Approve trial started a trial of the new size.

The real app in Slack HTTP mode against the fake Slack Web API, a real SQLite file kept
across the restart, a ManualClock (starts 2026-01-01 00:00 UTC).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_alerts import ALERTS
from tests.scenario.test_stale_clicks import (
    STALE_POLICY,
    breaker,
    click,
    half_open_request,
    message,
)

RESIZED: dict[str, Any] = {
    **STALE_POLICY,
    "breakers": {
        **STALE_POLICY["breakers"],
        "half_open": {"trial_calls": 5, "trial_budget": "2.00"},
    },
}


def shown(slack: Any, ts: str) -> str:
    return json.dumps(message(slack, ALERTS, ts), ensure_ascii=False)


def edits_of(slack: Any, ts: str) -> int:
    return sum(1 for c in slack.fake.calls_of("chat.update") if c.args.get("ts") == ts)


async def test_a_reload_changing_the_trial_size_redraws_the_waiting_request(
    slack_http: Any, tmp_path: Path
) -> None:
    db = tmp_path / "resize.db"
    clock = ManualClock()
    slack = await slack_http(STALE_POLICY, clock=clock, db=db)
    ts = await half_open_request(slack)
    assert "approve a trial of 3 calls within $0.50" in shown(slack, ts)

    await slack.app.ns.stop()
    slack = await slack_http(RESIZED, clock=clock, db=db)
    new = "approve a trial of 5 calls within $2.00"
    await slack.fake.wait_for(lambda: new in shown(slack, ts))
    assert "3 calls" not in shown(slack, ts)
    buttons = json.dumps(message(slack, ALERTS, ts)["blocks"])
    assert "breaker_approve" in buttons  # still the request, still answerable

    # what it says is what an approval starts
    await click(slack, "breaker_approve", ALERTS, ts)
    await slack.fake.wait_for(lambda: "approved by" in shown(slack, ts))
    trial = (await breaker(slack.app)).trial
    assert trial is not None
    assert (trial["calls"], trial["budget_micros"]) == (5, 2_000_000)


async def test_a_restart_on_the_same_size_leaves_the_request_as_it_is(
    slack_http: Any, tmp_path: Path
) -> None:
    db = tmp_path / "same.db"
    clock = ManualClock()
    slack = await slack_http(STALE_POLICY, clock=clock, db=db)
    ts = await half_open_request(slack)
    before = edits_of(slack, ts)
    await slack.app.ns.stop()
    slack = await slack_http(STALE_POLICY, clock=clock, db=db)
    facts = await slack.app.store.fetch(
        "SELECT json_extract(facts, '$.trial_calls') FROM alerts WHERE kind = ?",
        ("half_open_requested",),
    )
    assert [r[0] for r in facts] == [3]
    assert edits_of(slack, ts) == before
