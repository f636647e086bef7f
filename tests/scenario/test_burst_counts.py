"""A duplicate burst on several streams counts what each stream really had rejected in the
window at the alert's latest firing (review26 R3 L1): through ``POST /v1/validations``
against the whole app on a real SQLite file, on the injected clock."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

from bot.alerts.render_summary import summary
from guards.clock import ManualClock
from tests.conftest import RunningApp

AGENT = "acme/alice/rss-bot"
POLICY = {"validation": {"burst": {"count": 3, "window_seconds": "1h"}}}
TEXT = "Heavy snow closes schools across Vermont"


async def send(app: Any, token: str, stream: str, times: int) -> None:
    """The same text ``times`` times on ``stream``, a second apart: all but the first
    are rejected as duplicates."""
    for _ in range(times):
        r = await app.request(
            "POST",
            "/v1/validations",
            token=token,
            json={"scope": AGENT, "stream": stream, "items": [TEXT]},
        )
        assert r.status_code == 200, r.text
        app.clock.advance(1)


async def burst_said(app: RunningApp) -> tuple[str, dict[str, Any]]:
    await app.ns.extras["alerts"].process()
    [(facts,)] = await app.store.fetch("SELECT facts FROM alerts WHERE kind = 'duplicate_burst'")
    said = json.loads(facts)
    return summary("duplicate_burst", said, ZoneInfo("UTC")), said


async def test_each_stream_counts_its_rejections_since_its_own_firing(app_factory):
    """orders fires at its 3rd rejection and has a 4th; incidents and cities fire at their
    3rd: 10 rejections, which the alert said as 9 (each stream frozen at its firing)."""
    app = await app_factory(POLICY, clock=ManualClock())
    tok = await app.token(AGENT)
    await send(app, tok, "orders", 5)  # 4 rejected: fired at the 3rd
    await send(app, tok, "incidents", 4)  # 3 rejected
    await send(app, tok, "cities", 4)  # 3 rejected
    said, facts = await burst_said(app)
    assert facts["stream_counts"] == {"orders": 4, "incidents": 3, "cities": 3}
    assert said.startswith(
        "10 duplicates in 3 streams (orders 4, incidents 3, cities 3) rejected in 1h"
    ), said
    rows = await app.store.fetch(
        "SELECT count(*) FROM validation_rejections WHERE reason = 'duplicate'"
    )
    assert rows[0][0] == 10  # what was really rejected


async def test_a_stream_whose_burst_left_the_window_is_no_longer_counted(app_factory):
    """rss's burst is over an hour old when feed2's fires again: "rejected in 1h" no longer
    adds rss's 3 (the alert still names it among the streams that fired)."""
    app = await app_factory(POLICY, clock=ManualClock())
    tok = await app.token(AGENT)
    await send(app, tok, "rss", 4)
    app.clock.advance(3000)
    await send(app, tok, "feed2", 4)
    said, _ = await burst_said(app)
    assert said.startswith("6 duplicates in 2 streams (rss 3, feed2 3) rejected in 1h"), said
    app.clock.advance(900)  # a quarter window on: feed2's burst fires again
    await send(app, tok, "feed2", 1)
    said, facts = await burst_said(app)
    assert facts["stream_counts"] == {"feed2": 4}
    assert said.startswith("stream feed2 (also rss): 4 duplicates rejected in 1h"), said
