"""`/agent silence` on a conversation of an agent whose calls were only refused (402, 503,
429: never granted) is no typo (h3 item 4): a refusal is counted per agent
(``refusals_daily``), so the conversation it was for is never kept, and every conversation
of such an agent got "⚠️ … a typo?". A conversation under an agent nothing has seen, or a
misspelt agent, still gets the hint.

A real app on a real SQLite file, in Slack HTTP mode (the fake Slack server).
"""

from __future__ import annotations

from typing import Any

ADMIN = "U0ADMIN"
POLICY = {
    "admins": [ADMIN],
    "budgets": {"scopes": {"acme/bob": {"day": "10.00"}}},
    "oncall": {"rotations": [{"name": "ops", "users": [ADMIN]}]},
}
TYPO = "a typo?"


async def refused_call(slack: Any, scope: str) -> None:
    app = slack.app
    body = {"scope": scope, "idempotency_key": "k", "max_cost_micros": 20_000_000}
    r = await app.request("POST", "/v1/reservations", token=await app.token("acme"), json=body)
    assert r.status_code == 402, r.text


async def test_a_conversation_of_an_agent_seen_only_through_refusals_is_no_typo(
    slack_http: Any,
) -> None:
    slack = await slack_http(POLICY)
    await refused_call(slack, "acme/bob/bot/c7")
    rows = await slack.app.store.fetch("SELECT path FROM scopes WHERE path LIKE 'acme/bob/%'")
    assert not rows  # nothing granted: the refusal is the only trace, per agent
    for target in ("acme/bob/bot", "acme/bob/bot/c7", "acme/bob/bot/c8"):
        reply = await slack.command(f"silence {target} 1h", user=ADMIN)
        assert "silenced" in reply["text"], (target, reply["text"])
        assert TYPO not in reply["text"], (target, reply["text"])


async def test_a_conversation_under_an_agent_nothing_has_seen_is_still_a_typo(
    slack_http: Any,
) -> None:
    slack = await slack_http(POLICY)
    await refused_call(slack, "acme/bob/bot/c7")
    for target in ("acme/bob/bto/c7", "acme/bob/other/c7"):  # the agent misspelt, another
        reply = await slack.command(f"silence {target} 1h", user=ADMIN)
        assert f"No agent has reserved or sent a heartbeat under `{target}`" in reply["text"]
        assert TYPO in reply["text"], reply["text"]
