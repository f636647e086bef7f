"""A trial's size: `/agent breaker <scope> approve [calls] [$budget]`, and its words.

The real app in Slack HTTP mode against the fake Slack Web API, signed requests, a
ManualClock (starts 2026-01-01 00:00 UTC). BOT's spend breaker trips on $2.50 and waits
for a trial a minute later (:func:`half_open_request`).
"""

from __future__ import annotations

import json
from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_alerts import ALERTS, BOT, alerts_of
from tests.scenario.test_stale_clicks import (
    ADMIN,
    STALE_POLICY,
    audit,
    breaker,
    click,
    half_open_request,
    message,
    settled,
)

ONE_CALL_POLICY: dict[str, Any] = {
    **STALE_POLICY,
    "breakers": {**STALE_POLICY["breakers"], "half_open": {"trial_calls": 1}},
}


async def reserve(app: Any, key: str, micros: int = 10_000) -> Any:
    tok = await app.token(BOT)
    body = {"scope": BOT, "idempotency_key": key, "max_cost_micros": micros}
    return await app.request("POST", "/v1/reservations", token=tok, json=body)


async def settle_ok(app: Any, reservation_id: str, micros: int = 5_000) -> None:
    tok = await app.token(BOT)
    r = await app.request(
        "POST",
        f"/v1/reservations/{reservation_id}/settle",
        token=tok,
        json={"actual_cost_micros": micros, "outcome": "success"},
    )
    assert r.status_code == 200, r.text


def shown(slack: Any, ts: str) -> str:
    return json.dumps(message(slack, ALERTS, ts), ensure_ascii=False)


# -- plurals (audit24 B L2) -----------------------------------------------------------------


async def test_a_trial_of_one_call_is_worded_in_the_singular_everywhere(slack_http):
    """ "approve a trial of 1 calls", "trial (1 calls) approved": each wording of a trial's
    calls agrees with its number."""
    slack = await slack_http(ONE_CALL_POLICY, clock=ManualClock())
    app = slack.app
    ts = await half_open_request(slack)
    assert "approve a trial of 1 call within $0.50" in shown(slack, ts)
    await click(slack, "breaker_approve", ALERTS, ts)
    await slack.fake.wait_for(lambda: "approved by" in shown(slack, ts))
    done = "✅ trial (1 call) approved by <@U0ADMIN> at 00:01"
    assert done in shown(slack, ts)
    [(_, _, _, detail)] = await audit(app, "breaker.approve")
    assert detail == f"trial of 1 call up to $0.50 approved by {ADMIN}"
    listed = (await slack.command("breakers"))["text"]
    assert "trial 0/1 call, 0 ok, $0.00 of $0.50" in listed, listed
    first = await reserve(app, "trial-1")
    assert first.status_code == 201, first.text
    full = await reserve(app, "trial-2")
    assert full.status_code == 503, full.text
    said = full.json()["message"]
    assert "1 of 1 call admitted, waiting for its result" in said, said
    await settle_ok(app, first.json()["reservation_id"])
    row = await breaker(app)
    assert (row.state, row.reason) == ("closed", "the trial call succeeded")
    await alerts_of(slack).process()
    await settled(slack)
    assert "1 calls" not in shown(slack, ts)
