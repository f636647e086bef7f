"""What an agent says reaches people and other agents as plain text, its tokens masked
(audit28 C1 M1, M2): the real app in Slack HTTP mode against the fake Slack Web API.

M1: a settle's ``error`` went into the breaker's reason with terminal escapes, BEL, C1
controls and bidi overrides raw, and every agent refused by that breaker read them in
its 503 (as ``GET /v1/breakers`` gave them). M2: a ``task_id`` holding a live token was
posted in full to the alerts channel and kept in the audit for good.
"""

from __future__ import annotations

import json
import re
from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_operator_api import operator_token

ADMIN = "U0ADMIN"
ALERTS = "C0ALERTS"
POLICY: dict[str, Any] = {
    "admins": [ADMIN],
    "channels": {"alerts": ALERTS},
    "alerts": {"tiers": {"attempts_exhausted": "P1"}},
    "breakers": {"failures": {"consecutive": 2}, "max_attempts_per_task": 3},
}
# colours, a window title (OSC ended by BEL), a clear screen, a C1 CSI, a carriage
# return and line erase, a right-to-left override, an isolate, marks and zero-widths
HOSTILE = (
    "err \x1b[31mRED\x1b[0m \x1b]0;PWNED-TITLE\x07 \x1b[2J\x1b[H CLEAR \x9b31mC1CSI"
    " \r\x1b[Kfake-line \u202eRTL \u2066iso\u2069 d\u200eLRM j\u200bZW k\ufeffBOM"
)
PLAIN = "err RED CLEAR 31mC1CSI fake-line RTL iso dLRM jZW kBOM"
# what a terminal acts on, or what reorders or hides the text after it
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2060\u2066-\u2069\ufeff]"
)


async def reserve(app: Any, tok: str, scope: str, key: str, **body: Any) -> Any:
    return await app.request(
        "POST",
        "/v1/reservations",
        token=tok,
        json={"scope": scope, "idempotency_key": key, "max_cost_micros": 5, **body},
    )


async def test_a_settles_error_reaches_the_503_and_the_breakers_list_as_plain_text(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    tok = await app.token("acme/alice")
    for i in range(2):
        r = await reserve(app, tok, "acme/alice/e1", f"e{i}")
        assert r.status_code == 201, r.text
        body = {"actual_cost_micros": 0, "outcome": "failure", "error": HOSTILE}
        path = f"/v1/reservations/{r.json()['reservation_id']}/settle"
        assert (await app.request("POST", path, token=tok, json=body)).status_code == 200
    # a sibling conversation of the agent: refused by the agent's breaker
    refused = await reserve(app, tok, "acme/alice/e1/c2", "e2")
    assert refused.status_code == 503, refused.text
    said = refused.json()
    assert said["reason"] == f"2 failures in a row (limit 2); last error: {PLAIN}"
    assert f"(2 failures in a row (limit 2); last error: {PLAIN}); retry after" in said["message"]
    _, op = await operator_token(app, "acme")
    for bearer in (tok, op):
        r = await app.request("GET", "/v1/breakers", token=bearer)
        [listed] = r.json()["breakers"]
        assert listed["reason"] == said["reason"], listed
    assert not UNSAFE.search(refused.text + json.dumps(said, ensure_ascii=False))
    # kept so in the breaker's row and the audit, and Slack's rendering is unchanged
    rows = await app.store.fetch("SELECT reason FROM breakers UNION ALL SELECT detail FROM audit")
    assert all(not UNSAFE.search(str(row[0])) for row in rows)
    listed_in_slack = (await slack.command("breakers"))["text"]
    assert f"last error: {PLAIN}" in listed_in_slack, listed_in_slack
