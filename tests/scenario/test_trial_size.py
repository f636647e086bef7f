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


# -- approve [calls] [$budget] (audit24 A L1) ------------------------------------------------


async def test_an_approver_gives_the_trial_a_size_in_either_order(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    ts = await half_open_request(slack)
    reply = await slack.command(f"breaker {BOT} approve $0.10 1")
    assert reply["response_type"] == "in_channel"
    assert reply["text"].startswith(f"<@{ADMIN}> approved a trial of `{BOT}`\n🟠")
    assert "trial of 1 call up to $0.10 approved by <@U0ADMIN>" in reply["text"]
    assert "trial 0/1 call, 0 ok, $0.00 of $0.10" in reply["text"]
    row = await breaker(app)
    assert row.state == "half_open" and row.trial is not None
    assert (row.trial["calls"], row.trial["budget_micros"]) == (1, 100_000)
    [(actor, before, after, detail)] = await audit(app, "breaker.approve")
    assert (actor, before, after) == (ADMIN, "half_open_pending", "half_open")
    assert detail == f"trial of 1 call up to $0.10 approved by {ADMIN}"  # the size, audited
    await alerts_of(slack).process()
    await settled(slack)
    assert (
        f"✅ resolved by <@{ADMIN}> at 00:01 — trial of 1 call within $0.10 approved by <@{ADMIN}>"
    ) in shown(slack, ts)
    assert "breaker_approve" not in shown(slack, ts)


async def answered(app: Any, scope: str) -> dict[str, Any]:
    """The payload of the last trial_answered event of ``scope``."""
    rows = await app.store.fetch(
        "SELECT payload FROM events WHERE kind = 'trial_answered' AND scope = ?"
        " ORDER BY id DESC LIMIT 1",
        (scope,),
    )
    return dict(json.loads(rows[0][0]))


async def test_what_the_approver_leaves_out_is_the_policy_s_or_its_prefix_s(slack_http):
    """Each word is optional; the policy's `half_open` (or its `breakers.scopes` prefix's)
    fills in the rest, and the alert names the size only when it is not the policy's."""
    policy = {
        **STALE_POLICY,
        "breakers": {
            **STALE_POLICY["breakers"],
            "scopes": {"acme/bob": {"half_open": {"trial_calls": 2, "trial_budget": "0.25"}}},
        },
    }
    slack = await slack_http(policy, clock=ManualClock())
    app = slack.app
    cases = [  # (scope, words, the trial's size, whether the alert names it)
        ("acme/alice/a1", "approve 5", (5, 500_000), True),
        ("acme/alice/a2", "approve $0.105", (3, 105_000), True),
        ("acme/alice/a3", "approve 3 $0.50", (3, 500_000), False),  # the policy's, typed
        ("acme/alice/a4", "approve", (3, 500_000), False),
        ("acme/alice/a5", "approve 2, $0.20.", (2, 200_000), True),  # a sentence's , and .
        ("acme/alice/a6", "approve $5.", (3, 5_000_000), True),  # `$`: the . is a full stop
        ("acme/bob/b1", "approve", (2, 250_000), False),  # its prefix's
        ("acme/bob/b2", "approve 2 $0.25", (2, 250_000), False),
        ("acme/bob/b3", "approve 3", (3, 250_000), True),
        ("model:gpt-4o", "APPROVE 1,000 $1,000", (1000, 10**9), True),
    ]
    for scope, _, _, _ in cases:
        await app.store.write(lambda tx, s=scope: app.ns.breakers.force_open(tx, s, "U0X", "t"))
    for scope, words, size, own in cases:
        reply = await slack.command(f"breaker {scope} {words}")
        assert "approved a trial of" in reply["text"], (words, reply["text"])
        row = await app.store.write(lambda tx, s=scope: app.ns.breakers.get(tx, s))
        assert row.trial is not None
        assert (row.trial["calls"], row.trial["budget_micros"]) == size, (scope, words)
        event = await answered(app, scope)
        named = (event["trial_calls"], event["trial_budget_micros"])
        assert named == (size if own else (None, None)), (scope, words, event)
    [(detail,)] = await app.store.fetch(
        "SELECT detail FROM audit WHERE action = 'breaker.approve' AND target = 'acme/alice/a2'"
    )
    assert detail == f"trial of 3 calls up to $0.105 approved by {ADMIN}"  # exact, not $0.11


async def test_a_budget_of_the_approver_s_own_is_not_judged_by_the_spend_rate(slack_http):
    """README `half_open`: trial calls charged the spend-rate limit end the trial, not
    when the approver gave the trial a budget of their own."""
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    await half_open_request(slack)
    await slack.command(f"breaker {BOT} approve 1 $5")
    first = await reserve(app, "big", micros=3_000_000)
    assert first.status_code == 201, first.text
    await settle_ok(app, first.json()["reservation_id"], micros=2_500_000)  # over the $2 rate
    row = await breaker(app)
    assert (row.state, row.reason) == ("closed", "the trial call succeeded")


async def test_a_bad_trial_size_is_refused_and_changes_nothing(slack_http):
    slack = await slack_http(STALE_POLICY, clock=ManualClock())
    app = slack.app
    await half_open_request(slack)
    usage = (
        "usage: `/agent breaker <scope> open [reason] | approve [calls] [$budget] | close"
        " · breaker <prefix>/* approve`"
    )
    refusals = {
        "0": "A trial of 0 calls lets nothing through: give 1 to 1,000 calls",
        "-1": "`-1`: a trial's calls and budget are more than 0",
        "-$0.10": "`-$0.10`: a trial's calls and budget are more than 0",
        "1001": "`1001` calls is more than a trial takes: at most 1,000",
        "99999999999999999999999": "is more than a trial takes: at most 1,000",
        "$0": "A trial's budget of $0 lets nothing through",
        "0.00": "A trial's budget of $0 lets nothing through",
        "$1000.01": "$1,000.01 is more than a trial's budget may be from chat (at most"
        " $1,000.00): for a larger one set `breakers.half_open.trial_budget`",
        "$1e3": "The trial's budget: '$1e3' is not an amount in USD",
        "$0.0000001": "The trial's budget: '$0.0000001' has more than six decimals",
        "$1,50": "a comma only separates thousands",
        "1 2": "Two numbers of calls (`1` and `2`): give at most one number of calls and one"
        " budget, as `/agent breaker <scope> approve 1 $0.10`",
        "$1 0.5": "Two budgets (`$1` and `0.5`)",  # each as typed (review24 trial L4)
        # review24 trial M1: the chat words took the point off `5.`, read as 5 calls
        "5.": "`5.`: a number with a point is a budget, written `$5` or `5.00` (`5` alone is"
        " a number of calls)",
        "1000.": "`1000.`: a number with a point is a budget, written `$1000` or `1000.00`",
        "1,000.": "`1,000.`: a number with a point is a budget",
        "`5`.": "`5.`: a number with a point is a budget",
        # review24 trial L3: a raw ValueError (int() takes at most 4,300 digits)
        "9" * 5000: "is more than a trial takes: at most 1,000",
        "0" * 5000: "A trial of 0 calls lets nothing through",
        # review24 trial L4: "a trial of 000 calls"; `--now` read as a negative number
        "$1 000": "`$1 000`: a number takes no spaces here: write `$1,000`",
        "1 000": "`1 000`: a number takes no spaces here: write `1,000`",
        "000": "A trial of 0 calls lets nothing through",
        "--now": "`--now`: `breaker approve` takes no options: give a number of calls, a"
        " budget, both or neither",
        "−5": "`−5`: a trial's calls and budget are more than 0",
        "now": "`breaker approve` takes no reason: `now` is neither a number of calls nor a"
        " budget, as `/agent breaker <scope> approve 1 $0.10` (a trial of 1 call within"
        " $0.10). Nothing changed.",
        "1 $1 please": "`please` is neither a number of calls nor a budget",
        "3 calls": "`calls` is neither",
        "５": "`５` is neither",
        "<!channel>": "`&lt;!channel&gt;` is neither",
        "$<!here>": "The trial's budget: '$&lt;!here&gt;' is not an amount",
        # recheck24 L1: the amount parser's $1,000,000,000 answered first
        "$" + "9" * 29: f"`${'9' * 29}` is more than a trial's budget may be from chat (at"
        " most $1,000.00): for a larger one set `breakers.half_open.trial_budget`",
        "$10,000,000,000,000": "`$10,000,000,000,000` is more than a trial's budget may be",
        "$" + "9" * 60: "is more than a trial's budget may be from chat (at most $1,000.00)",
        # recheck24 L2: quoted as '$' (the chat words took its point as a full stop)
        "$.": "The trial's budget: '$.' is not an amount in USD",
        "`$.`": "The trial's budget: '$.' is not an amount in USD",
    }
    for words, said in refusals.items():
        reply = await slack.command(f"breaker {BOT} approve {words}")
        assert said in reply["text"], (words, reply["text"])
        assert reply["text"].endswith(usage), (words, reply["text"])
        assert reply["response_type"] == "ephemeral" and "<!" not in reply["text"]
    stranger = await slack.command(f"breaker {BOT} approve 1 $0.10", user="U0STRANGER")
    assert stranger["text"].startswith("Only admins can operate breakers.")
    assert (await breaker(app)).state == "half_open_pending"
    assert await audit(app, "breaker.approve") == []
    [(by, detail)] = await app.store.fetch(
        "SELECT actor, detail FROM audit WHERE action = 'refused'"
    )
    assert (by, detail) == ("U0STRANGER", f"not an admin: breaker {BOT} approve 1 $0.10")
    events = await app.store.fetch("SELECT COUNT(*) FROM events WHERE kind = 'trial_answered'")
    assert events[0][0] == 0
    help_text = (await slack.command("help"))["text"]
    assert "approve [calls] [$budget]" in help_text and "`approve 1 $0.10`" in help_text
