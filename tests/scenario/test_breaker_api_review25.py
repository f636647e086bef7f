"""``POST /v1/breakers/{scope}/approve|open|close`` after review25 (H3): a person's kill
switch is theirs to lift in Slack (M1); a kill switch on a scope nothing has seen warns
the script and does not make the typo a scope seen (M2); the 409s say what the breaker
will do (L3; L2's 409 during a cool-down is a trial now: audit26 A3 L2); a reason is
words on one line (L5); a conversation's token naming its own conversation is told the
breaker is its agent's, with no misuse alert (L6).

The real app in Slack HTTP mode against the fake Slack Web API, a ManualClock (starts
2026-01-01 00:00 UTC), signed slash commands for what a person does in Slack.
"""

from __future__ import annotations

import json
from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_alerts import BOT, alerts_of, overspend
from tests.scenario.test_breaker_api import APPROVE, snapshot
from tests.scenario.test_operator_api import error, operator_token
from tests.scenario.test_stale_clicks import ADMIN, STALE_POLICY, audit, breaker
from tests.scenario.test_trial_size import reserve

CLOSE = f"/v1/breakers/{BOT}/close"
OPEN = f"/v1/breakers/{BOT}/open"
TYPO = "acme/alice/rss-bto"  # BOT's name misspelt
AUTO_POLICY: dict[str, Any] = {
    **STALE_POLICY,
    "breakers": {**STALE_POLICY["breakers"], "half_open": {"mode": "auto", "trial_calls": 2}},
}


async def scope_violations(app: Any) -> int:
    rows = await app.store.fetch("SELECT COUNT(*) FROM alerts WHERE kind = 'scope_violation'")
    return int(rows[0][0])


# -- M1: a person's kill switch -----------------------------------------------------------


async def test_a_kill_switch_a_person_pulled_is_lifted_in_slack_not_by_a_script(
    slack_http: Any,
) -> None:
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    reply = await slack.command(f"breaker {BOT} open runaway at 3am", user=ADMIN)
    assert "forced open" in reply["text"], reply
    op_id, op = await operator_token(app, "acme/alice")
    before = await snapshot(app)

    said = error(await app.request("POST", CLOSE, token=op), 403, "slack_only")
    assert f"pulled by {ADMIN} (a person, not a token)" in said["message"], said
    assert f"`/agent breaker {BOT} close`" in said["message"], said
    # the approval's 409 says the same: no script way round it
    refused = error(await app.request("POST", APPROVE, token=op), 409, "conflict")
    assert refused["state"] == "forced_open"
    assert f"pulled by {ADMIN} (a person, not a token)" in refused["message"], refused
    assert f"`/agent breaker {BOT} close`" in refused["message"], refused
    assert "POST /v1/breakers" not in refused["message"], refused
    assert await snapshot(app) == before
    assert (await reserve(app, "still-stopped")).status_code == 503

    # the person lifts it in Slack; one a token pulls next, a token may close
    await slack.command(f"breaker {BOT} close", user=ADMIN)
    _, other = await operator_token(app, BOT)
    assert (await app.request("POST", OPEN, token=other)).status_code == 200
    r = await app.request("POST", CLOSE, token=op)
    assert r.status_code == 200, r.text
    assert r.json()["breaker"]["state"] == "closed"
    assert [a[0] for a in await audit(app, "breaker.force_close")] == [ADMIN, f"token:{op_id}"]


# -- M2: a kill switch on a scope nothing has seen ----------------------------------------


async def test_a_kill_switch_on_a_scope_nothing_has_seen_warns_and_stays_a_typo(
    slack_http: Any,
) -> None:
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    assert (await reserve(app, "seen")).status_code == 201  # BOT is seen
    _, op = await operator_token(app, "acme/alice")

    r = await app.request("POST", f"/v1/breakers/{TYPO}/open", token=op, json={"reason": "loop"})
    assert r.status_code == 200, r.text
    assert r.json()["breaker"]["state"] == "forced_open"  # done as asked, with a warning
    warning = r.json()["warning"]
    assert warning.startswith(f"No agent has reserved or sent a heartbeat under `{TYPO}`"), r.json()
    assert "this breaker stops only agents under exactly that scope" in warning
    assert warning.endswith(f"Did you mean `{BOT}`?"), warning
    real = await app.request("POST", OPEN, token=op)
    assert real.status_code == 200 and real.json()["warning"] is None, real.text

    # its own alert does not make the typo "seen": a silence on it still warns
    await alerts_of(slack).process()
    opened = await app.store.fetch("SELECT scope FROM alerts WHERE kind = 'breaker_opened_manual'")
    assert TYPO in [row[0] for row in opened]
    s = await app.request("POST", "/v1/silences", token=op, json={"target": TYPO, "duration": "1h"})
    assert s.status_code == 201, s.text
    assert s.json()["warning"] is not None, s.json()
    # and Slack's hint for another slip suggests the agent, not the typo
    reply = await slack.command("silence acme/alice/rss-bt 1h", user=ADMIN)
    assert f"Did you mean `{BOT}`?" in reply["text"], reply["text"]


async def test_a_kill_switch_typed_in_slack_on_a_typo_leaves_it_a_typo(slack_http: Any) -> None:
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    assert (await reserve(app, "seen")).status_code == 201
    reply = await slack.command(f"breaker {TYPO} open", user=ADMIN)
    assert f"Did you mean `{BOT}`?" in reply["text"], reply["text"]
    await alerts_of(slack).process()
    _, op = await operator_token(app, "acme/alice")
    again = await app.request("POST", f"/v1/breakers/{TYPO}/close", token=op)
    assert again.status_code == 403  # a person's: theirs (M1)
    s = await app.request("POST", "/v1/silences", token=op, json={"target": TYPO, "duration": "1h"})
    assert s.status_code == 201, s.text
    assert s.json()["warning"] is not None, s.json()
    reply = await slack.command(f"silence {TYPO} 1h", user=ADMIN)
    assert "a typo?" in reply["text"], reply["text"]


# -- L2, L3: what the 409s say ------------------------------------------------------------


async def test_an_approval_while_an_auto_breaker_cools_down_starts_its_trial_now(
    slack_http: Any,
) -> None:
    """It was a 409 saying the trial would start by itself after the cool-down; an
    approval during the cool-down starts it now, as in Slack (audit26 A3 L2), of the
    policy's size."""
    slack = await slack_http(AUTO_POLICY, clock=ManualClock())
    app = slack.app
    _, op = await operator_token(app, "acme/alice")
    await overspend(app)
    r = await app.request("POST", APPROVE, token=op)
    assert r.status_code == 200, r.text
    got = r.json()["breaker"]
    assert (got["state"], got["trial"]["calls"]) == ("half_open", 2)


async def test_a_trial_of_one_call_is_one_call_in_the_409(slack_http: Any) -> None:
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    _, op = await operator_token(app, "acme/alice")
    await overspend(app)
    app.clock.advance(61)
    await app.ns.breakers.sweep(app.store)
    r = await app.request("POST", APPROVE, token=op, json={"trial_calls": 1})
    assert r.status_code == 200, r.text
    again = error(await app.request("POST", APPROVE, token=op), 409, "conflict")
    assert "(0 of 1 call admitted)" in again["message"], again


# -- L5: a reason is words on one line ----------------------------------------------------


async def test_a_blank_or_control_character_reason_is_refused(slack_http: Any) -> None:
    """review25 L5; recheck28 Kc L2: `/agent breaker <scope> open <reason>` took the ESC
    and bidi overrides the HTTP call refuses, and agents read them raw in their 503s and
    GET /v1/breakers. Refused in Slack by the same rule, in the same words."""
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    _, op = await operator_token(app, "acme/alice")
    before = await snapshot(app)
    for reason, said in (
        ("   ", "blank"),
        ("\t\n", "blank"),
        ("a\u0000b", "control character"),
        ("stop\nnow", "control character"),
        ("evil \u202egnp.exe", "control character"),
        ("\x1b[31mred", "control character"),
    ):
        r = await app.request("POST", OPEN, token=op, json={"reason": reason})
        refused = error(r, 400, "invalid_input")
        assert refused["field"] == "reason", (reason, refused)
        assert said in refused["message"], (reason, refused)
        if said == "blank" or "\n" in reason:  # Slack's words are split at white space
            continue
        words = refused["message"].split("holds ", 1)[1].rstrip(".")
        reply = (await slack.command(f"breaker {BOT} open {reason}", user=ADMIN))["text"]
        assert f"the reason holds {words}" in reply, (reply, words)
    assert await snapshot(app) == before
    assert (await breaker(app)).state == "closed"
    ok = await app.request("POST", OPEN, token=op, json={"reason": "  loop 🧑‍💻 déjà  "})
    assert ok.status_code == 200, ok.text
    assert ok.json()["breaker"]["reason"].endswith(": loop 🧑‍💻 déjà")


# -- L6: a conversation's token -----------------------------------------------------------


async def test_a_conversation_s_token_is_told_the_breaker_is_its_agent_s(
    slack_http: Any,
) -> None:
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    _, conv = await operator_token(app, f"{BOT}/c1")
    before = await snapshot(app)
    for verb in ("open", "close", "approve"):
        r = await app.request("POST", f"/v1/breakers/{BOT}/c1/{verb}", token=conv)
        said = error(r, 403, "forbidden")
        assert said["scope"] == BOT, said
        assert "a conversation's breaker is its agent's" in said["message"], said
        assert f"an operator token for {BOT} or above" in said["message"], said
    await alerts_of(slack).process()
    assert await scope_violations(app) == 0  # it named its own scope: no misuse
    assert await snapshot(app) == before
    # another conversation, or the agent named outright, is outside it: alerted as before
    error(await app.request("POST", f"/v1/breakers/{BOT}/c2/open", token=conv), 403, "forbidden")
    await alerts_of(slack).process()
    assert await scope_violations(app) == 1


# -- L1: a token's kill switch in its alert -------------------------------------------------


async def test_a_kill_switch_s_alert_names_its_puller_once_and_a_token_as_no_mention(
    slack_http: Any,
) -> None:
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    tok_id, op = await operator_token(app, "acme/alice")
    r = await app.request("POST", OPEN, token=op, json={"reason": "loop"})
    assert r.status_code == 200, r.text
    await slack.command("breaker acme/alice/other open", user=ADMIN)
    await alerts_of(slack).process()

    async def shown(scope: str) -> str:  # posted to nobody (a person did it): /agent alert
        [(alert_id,)] = await app.store.fetch(
            "SELECT id FROM alerts WHERE kind = 'breaker_opened_manual' AND scope = ?", (scope,)
        )
        return json.dumps(await slack.command(f"alert {alert_id}", user=ADMIN))

    by_token = await shown(BOT)
    assert f"forced open by token:{tok_id}: loop" in by_token, by_token
    assert "<@token:" not in by_token and "; by " not in by_token, by_token
    by_person = await shown("acme/alice/other")
    assert f"forced open by <@{ADMIN}>" in by_person, by_person
    assert f"; by <@{ADMIN}>" not in by_person, by_person  # not named twice
    listed = json.dumps(await slack.command("alerts", user=ADMIN))
    assert "<@token:" not in listed and "; by " not in listed, listed
