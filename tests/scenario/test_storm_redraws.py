"""A storm summary's redraws (chat.update) when Slack does not take them, on the real app.

The real app in Slack HTTP mode against the fake Slack Web API, a ManualClock (starts
2026-01-01 00:00 UTC), ``alerts.fold_after: 3``: ten agents trip on spend at once, U01 is
paged for three on their own and the other seven fold into one page summary. Agents
tripping in the minute after it went out join it by an edit (bot.alerts.folding_join).

- A redraw Slack answers with a 5xx is tried again as any outbox row is (its ``Retry-
  After`` after a 429), and the summary ends up showing it.
- A summary whose message was deleted: its first edit fails and is logged, once; each
  later edit of it is dropped without a word.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from guards.clock import ManualClock
from tests.scenario.test_stale_clicks import message, settled
from tests.scenario.test_storm_ack import STORM_POLICY, one_storm, storm, summary_of


async def join(slack: Any, agent: str) -> None:
    """One more agent trips: its page joins U01's sent summary by an edit."""
    await storm(slack.app, [agent])
    await settled(slack)


async def test_a_redraw_slack_answers_500_is_tried_again_and_shown(slack_http):
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await one_storm(slack, agents=10)
    ts = await summary_of(slack, "U01")
    await settled(slack)
    assert message(slack, "U01", ts)["text"].startswith("🔴 Alert storm · 7 alerts")
    fake.fail("chat.update", status=500)  # the next call only: then 200
    app.clock.advance(10)
    await storm(app, ["acme/team/bot-late"])
    await fake.wait_for(
        lambda: message(slack, "U01", ts)["text"].startswith("🔴 Alert storm · 8 alerts")
    )
    await settled(slack)
    updates = [c.status for c in fake.calls_of("chat.update") if c.args.get("ts") == ts]
    assert updates == [500, 200]
    rows = await app.store.fetch(
        "SELECT state, attempts FROM outbox WHERE method = 'chat.update'"
        " AND args LIKE '%$ref:fold:pages:U01:%'"
    )
    assert [tuple(r) for r in rows] == [("delivered", 2)]


async def test_a_deleted_summary_s_edits_are_logged_once(
    slack_http, caplog: pytest.LogCaptureFixture
):
    slack = await slack_http(STORM_POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await one_storm(slack, agents=10)
    ts = await summary_of(slack, "U01")
    await settled(slack)
    fake.forget("U01", ts)  # someone deleted it
    caplog.set_level(logging.INFO)
    for i in range(3):  # three edits of it: three agents joining, one by one
        app.clock.advance(5)
        await join(slack, f"acme/team/bot-late-{i}")
    refused = [c for c in fake.calls_of("chat.update") if c.args.get("ts") == ts]
    assert [c.response.get("error") for c in refused] == ["message_not_found"] * 3
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warned if "message_not_found" in r.getMessage()] == [
        f"outbox row {failed} (chat.update) failed: Slack error message_not_found"
        for (failed,) in await app.store.fetch(
            "SELECT id FROM outbox WHERE state = 'failed' AND method = 'chat.update'"
        )
    ]
    said = [r.getMessage() for r in caplog.records if r.name == "bot.alerts.storm_sent"]
    assert len(said) == 1 and said[0].startswith("alert storm summary fold:pages:U01:")
    rows = await app.store.fetch(
        "SELECT state FROM outbox WHERE method = 'chat.update'"
        " AND args LIKE '%$ref:fold:pages:U01:%'"
    )
    assert [r[0] for r in rows] == ["failed"]  # the later ones went, quietly
