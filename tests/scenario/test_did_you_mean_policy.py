"""A scope named only by the policy file (a new agent with a budget, no call yet) is what
a typo probably meant, in every command that suggests one (audit24 claims C3: only
`/agent alerts` looked at the policy's scopes)."""

from __future__ import annotations

from tests.fakes.tracing import writer_statements
from tests.scenario.test_alerts import alerts_of

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


async def test_an_agent_whose_only_call_was_refused_is_no_typo(slack_http):
    """audit24 L5: an agent's one call refused (402), its budget raised, then `budget` and
    `budget set` warned "No agent has reserved … (a typo?)": the agent did call, with a
    valid token; a refusal made no scope row (and its alert is on the level that refused)."""
    policy = {**POLICY, "budgets": {"scopes": {"acme/bob": {"day": "10.00"}}}}
    slack = await slack_http(policy)
    app = slack.app
    body = {"scope": "acme/bob/bot", "idempotency_key": "k", "max_cost_micros": 20_000_000}
    r = await app.request("POST", "/v1/reservations", token=await app.token("acme"), json=body)
    assert r.status_code == 402, r.text
    assert not await app.store.fetch("SELECT 1 FROM scopes WHERE path = 'acme/bob/bot'")
    await alerts_of(slack).process()  # the P1 "Budget refused a call" (on `acme/bob`)
    for text in (
        "budget set acme/bob/bot 25 day",
        "budget acme/bob/bot",
        "budget set acme/bob 30 day",
    ):
        reply = await slack.command(text, user=ADMIN)
        assert "a typo?" not in reply["text"], (text, reply["text"])
    typo = await slack.command("budget set acme/bob/bto 25 day", user=ADMIN)
    assert "No agent has reserved or sent a heartbeat under `acme/bob/bto` yet" in typo["text"]
    # audit27 B2 L4: and the agent seen only through its refusals is the one suggested
    assert "Did you mean `acme/bob/bot`?" in typo["text"], typo["text"]
    kill = await slack.command("breaker ACME/bob/bot open", user=ADMIN)
    assert "Did you mean `acme/bob/bot`?" in kill["text"], kill["text"]


# review27 R2 M1: refusals_daily (a row per agent, day and reason, never pruned) was read
# whole for every suggestion, inside the writer for `POST /v1/breakers/{scope}/open`
_MANY_REFUSALS = (  # 2,000 agents refused on 10 days: one INSERT, no Python loop
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 19999)"
    " INSERT INTO refusals_daily (scope, day, reason, calls)"
    " SELECT 'acme/u' || (i % 20) || '/a' || (i % 2000), '2026-01-' || (10 + i / 2000),"
    " 'budget', 1 FROM n"
)


async def test_the_refused_agents_are_read_by_index_and_the_api_hint_off_the_writer(
    slack_http,
):
    from bot.known_scopes import CANDIDATES, MAX_CANDIDATES
    from tests.scenario.test_operator_api import operator_token

    slack = await slack_http(POLICY)
    app = slack.app
    await app.store.write(lambda tx: tx.execute(_MANY_REFUSALS))
    await app.store.write(  # an agent seen only by its refusals, and another tenant's
        lambda tx: tx.executemany(
            "INSERT INTO refusals_daily (scope, day, reason, calls) VALUES (?, ?, 'budget', 1)",
            [("acme/bob/agent1", "2026-01-01"), ("acmf/eve/agnet2", "2026-01-01")],
        )
    )
    args = (MAX_CANDIDATES, "breaker_opened_manual", MAX_CANDIDATES)
    plan = " | ".join(r[3] for r in await app.store.fetch(f"EXPLAIN QUERY PLAN {CANDIDATES}", args))
    assert "SEARCH refusals_daily USING PRIMARY KEY (scope>?)" in plan, plan
    assert "SCAN refusals_daily" not in plan, plan  # (a covering scan says SCAN too)
    rows = await app.store.fetch(CANDIDATES, args)
    refused = {r[0] for r in rows if r[0].startswith("acme/u")}
    assert len(refused) == 2000, len(refused)  # every refused agent, each once

    _, op = await operator_token(app, "acme")
    async with writer_statements(app.store) as writer:  # the writer's, during the kill switch
        r = await app.request("POST", "/v1/breakers/acme/bob/agnet1/open", token=op)
        # another tenant's agent, the nearest spelling, is neither said nor suggested
        other = await app.request("POST", "/v1/breakers/acme/eve/agnet2/open", token=op)
    assert r.status_code == 200, r.text
    assert r.json()["warning"].endswith("Did you mean `acme/bob/agent1`?"), r.json()
    assert other.status_code == 200, other.text
    assert "acmf" not in other.json()["warning"], other.json()
    assert "a typo?" in other.json()["warning"], other.json()
    assert writer and not [s for s in writer if "refusals_daily" in s], writer
