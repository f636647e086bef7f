"""A Nightshift token sent where a scope goes (audit24 security M3): refused with a 400 or
a Slack reply that does not repeat it, and kept nowhere."""

from __future__ import annotations

import json
import sqlite3

POLICY = {"admins": ["U0ADMIN"]}


async def test_a_token_as_a_scope_is_refused_over_http_without_repeating_it(app_factory):
    app = await app_factory()
    tok = await app.token("acme")
    secret = tok.split("_", 3)[3]  # ns_tok_<id>_<secret>: the secret may hold "_"
    for scope in (tok, f"acme/{tok}/bot", f"acme/alice/{tok}", f"acme/a/b/c/{tok}"):
        body = {"scope": scope, "idempotency_key": "k", "max_cost_micros": 10}
        r = await app.request("POST", "/v1/reservations", token=tok, json=body)
        assert r.status_code == 400 and r.json()["field"] == "scope", r.text
        assert "this is a Nightshift token, not a scope" in r.json()["message"]
        assert secret not in r.text
        got = await app.request("GET", f"/v1/budgets/{scope}", token=tok)
        assert got.status_code == 400 and secret not in got.text
    rows = await app.store.fetch("SELECT path FROM scopes")
    assert all(secret not in r[0] for r in rows)


async def test_a_token_as_a_scope_in_slack_is_not_repeated_nor_kept(slack_http):
    slack = await slack_http(POLICY)
    tok = await slack.app.token("acme")
    secret = tok.split("_", 3)[3]
    for text in (f"budget {tok}", f"budget set {tok} $5 day", f"holds acme/{tok}"):
        for user in ("U0ADMIN", "U0STRANGER"):  # a refusal is audited with what was tried
            reply = await slack.command(text, user=user)
            assert secret not in json.dumps(reply), (text, user)
    with sqlite3.connect(slack.app.ns.settings.db) as conn:
        kept = conn.execute(
            "SELECT group_concat(target || ' ' || coalesce(detail, ''), ' ') FROM audit"
        ).fetchone()[0]
        limits = conn.execute("SELECT COUNT(*) FROM budget_limits").fetchone()[0]
    assert "not an admin: budget set ns_tok_" in kept  # the attempt is kept...
    assert secret not in kept and limits == 0  # ...without the secret
