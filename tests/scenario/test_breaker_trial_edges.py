"""The breakers' edges after audit26 A3: the failure rate judged after every outcome
(L3), the 503 while a trial runs (L1), and an approval during the cool-down, the same
over HTTP as in Slack (L2).

The real app against a real SQLite file, a ManualClock (starts 2026-01-01 00:00 UTC);
for L1 and L2 in Slack HTTP mode against the fake Slack Web API, with signed slash
commands for what a person does in Slack.
"""

from __future__ import annotations

from typing import Any

from tests.scenario.test_breakers import BOT, fleet
from tests.scenario.test_breakers import POLICY as FLEET_POLICY

RATE_POLICY: dict[str, Any] = {
    **FLEET_POLICY,
    "breakers": {
        **FLEET_POLICY["breakers"],
        "failures": {"consecutive": 5, "rate": 0.5, "window_calls": 10, "min_calls": 6},
    },
}


# -- L3: the rate after every outcome -----------------------------------------------------


async def test_the_call_that_brings_the_window_to_min_calls_at_the_rate_trips_it(
    app_factory: Any,
) -> None:
    """F S F S F S: 3 of 6 calls failed, 50% of at least 6. It stayed closed until the
    next failure; the sixth call, a success, trips it now (as resilience4j does)."""
    _, bot, helper = await fleet(app_factory, RATE_POLICY)
    for outcome in ("failure", "success", "failure", "success", "failure"):
        await bot.call(outcome)
    assert (await bot.reserve()).status_code == 201  # 3 of 5: fewer than min_calls
    # (that reservation is left held: it is no outcome, the window does not count it)
    await bot.call("success")
    refused = await bot.reserve()
    assert refused.status_code == 503, refused.text
    body = refused.json()
    assert (body["state"], body["scope"]) == ("open", BOT)
    assert body["reason"] == "3 of the last 6 calls failed (limit 50% of at least 6)"
    assert refused.headers["Retry-After"] == "900"
    [listed] = await bot.breakers()
    assert (listed["trip"], listed["figures"]["failures"], listed["figures"]["calls"]) == (
        "failures",
        3,
        6,
    )
    await helper.call("success")  # another agent keeps working


async def test_a_rate_under_the_limit_at_min_calls_does_not_trip(app_factory: Any) -> None:
    """One unit under: F S S F S S (2 of 6, 33%) stays closed through many more calls."""
    _, bot, _ = await fleet(app_factory, RATE_POLICY)
    for outcome in ("failure", "success", "success") * 8:
        await bot.call(outcome)
    assert (await bot.reserve()).status_code == 201
    assert await bot.breakers() == []
