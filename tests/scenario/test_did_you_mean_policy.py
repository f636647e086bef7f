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
