"""A scope named only by the policy file (a new agent with a budget, no call yet) is what
a typo probably meant, in every command that suggests one (audit24 claims C3: only
`/agent alerts` looked at the policy's scopes)."""

from __future__ import annotations

ADMIN = "U0ADMIN"
POLICY = {
    "admins": [ADMIN],
    "budgets": {"scopes": {"acme/zed/zbot": {"day": "5.00"}}},
    "oncall": {"rotations": [{"name": "ops", "users": [ADMIN]}]},
}
MEANT = "Did you mean `acme/zed/zbot`?"


async def test_each_command_suggests_the_policys_scope(slack_http):
    slack = await slack_http(POLICY)
    for text in (  # reads first: the changes make `zbot` a scope of its own
        "budget zbot",
        "budget zbot yesterday",
        "dedup zbot",
        "routing zbot",
        "silence zbot 1h",
        "budget set zbot 3 day",
        "breaker zbot open",
    ):
        reply = await slack.command(text, user=ADMIN)
        assert MEANT in reply["text"], (text, reply["text"])


async def test_a_conversation_is_suggested_from_sql_and_a_typo_costs_the_writer_nothing(
    slack_http,
):
    """audit25 year F1, F2: a year of conversations was read into Python for every typo
    (5.7 s), and `/agent alerts <typo>` did it inside the writer (every agent call waited
    6.5 s). Conversations are now matched in SQL, and the filter is read off the writer."""
    slack = await slack_http(POLICY)
    app = slack.app
    tok = await app.token("acme")
    for conv in ("c-42", "c_43", "C-44"):
        body = {"scope": f"acme/alice/bot/{conv}", "idempotency_key": conv, "max_cost_micros": 5}
        r = await app.request("POST", "/v1/reservations", token=tok, json=body)
        assert r.status_code == 201, r.text
    said = (await slack.command("dedup c-42"))["text"]
    assert "Did you mean `acme/alice/bot/c-42`?" in said
    said = (await slack.command("dedup ACME/alice/bot/c-44"))["text"]
    assert "Did you mean `acme/alice/bot/C-44`?" in said
    said = (await slack.command("dedup c_42"))["text"]  # `_` is no wildcard: c_42 is not c-42
    assert "Did you mean `acme/alice/bot/c-42`" not in said
    batches = app.store.batches
    said = (await slack.command("alerts nosuch-bot"))["text"]
    assert "is neither a scope Nightshift knows nor an alert kind" in said
    assert app.store.batches == batches  # the writer was not asked
