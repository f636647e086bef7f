"""Every ``/agent`` subcommand of the Slack issue, as signed slash commands in HTTP mode."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.slack.unhandled import foreign
from guards.clock import ManualClock
from tests.fakes.slack_signing import (
    block_actions_payload,
    command_body,
    signed_headers,
    view_submission_payload,
)

ADMIN = "U0ADMIN"
STRANGER = "U0STRANGER"
POLICY = {
    "admins": [ADMIN],
    "budgets": {
        "defaults": {"agent": {"day": "10.00"}},
        "scopes": {"acme": {"day": "200.00", "month": "4000.00"}},
    },
}


async def spend(app: Any, scope: str, *, micros: int, key: str) -> None:
    tok = await app.token(scope.rsplit("/", 1)[0] if scope.count("/") > 2 else scope)
    r = await app.request(
        "POST",
        "/v1/reservations",
        token=tok,
        json={"scope": scope, "idempotency_key": key, "max_cost_micros": micros},
    )
    assert r.status_code == 201, r.text
    rid = r.json()["reservation_id"]
    s = await app.request(
        "POST",
        f"/v1/reservations/{rid}/settle",
        token=tok,
        json={"actual_cost_micros": micros, "outcome": "success"},
    )
    assert s.status_code == 200, s.text


async def audit_rows(app: Any) -> list[tuple[Any, ...]]:
    rows = await app.store.fetch("SELECT actor, action, target, before, after, detail FROM audit")
    return [tuple(r) for r in rows]


# -- verification -------------------------------------------------------------------------


@pytest.mark.parametrize("tamper", ["bad_secret", "stale", "missing", "body_changed"])
async def test_unverified_requests_are_401_and_change_nothing(slack_http, tamper):
    slack = await slack_http(POLICY)
    body = command_body("budget set acme/alice/rss-bot $1 day", user_id=ADMIN)
    if tamper == "bad_secret":
        headers = signed_headers("not-the-secret", body)
    elif tamper == "stale":
        import time

        headers = signed_headers(slack.secret, body, timestamp=int(time.time()) - 6 * 60)
    elif tamper == "missing":
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    else:
        headers = signed_headers(slack.secret, body)
        body = body.replace("%241", "%24999")
    r = await slack.post(body, headers=headers)
    assert r.status_code == 401
    assert await audit_rows(slack.app) == []
    assert await slack.app.store.fetch("SELECT * FROM budget_limits") == []


async def test_refused_signatures_are_said_once_a_minute_with_the_likely_cause(slack_http, caplog):
    """audit16 observability M3: a mistyped SLACK_SIGNING_SECRET, or a clock more than five
    minutes off, refused every command and button with a 401 and logged nothing."""
    import time

    slack = await slack_http(POLICY)
    body = command_body("status", user_id=ADMIN)
    with caplog.at_level(logging.WARNING, logger="bot.slack.http"):
        for _ in range(3):
            r = await slack.post(body, headers=signed_headers("not-the-secret", body))
            assert r.status_code == 401
        skewed = signed_headers(slack.secret, body, timestamp=int(time.time()) - 600)
        assert (await slack.post(body, headers=skewed)).status_code == 401
        unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
        assert (await slack.post(body, headers=unsigned)).status_code == 401
    said = [r.getMessage() for r in caplog.records if r.name == "bot.slack.http"]
    assert len(said) == 2, said  # one per cause; the unsigned one is noise
    assert "does not match SLACK_SIGNING_SECRET" in said[0]
    assert "(said once a minute)" in said[0]
    assert re.search(r"signed 60[01]s before this machine's time", said[1]), said[1]
    assert "check the clock" in said[1]


@pytest.mark.parametrize(
    ("body", "signed", "status"),
    [
        ("payload=notjson", False, 401),
        ("payload=%7B", False, 401),
        ("{bad json", False, 401),
        ("ssl_check=1&token=x", False, 401),
        ("payload=notjson", True, 400),  # signed by Slack but broken: a clear 400, no crash
    ],
)
async def test_malformed_requests_are_refused_before_anything_parses_them(
    slack_http, body, signed, status
):
    slack = await slack_http(POLICY)
    headers = (
        signed_headers(slack.secret, body)
        if signed
        else {"Content-Type": "application/x-www-form-urlencoded"}
    )
    r = await slack.post(body, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"] in ("invalid_request", "invalid_body")
    assert await audit_rows(slack.app) == []


async def test_signed_requests_no_listener_takes_are_acknowledged_quietly(slack_http, caplog):
    """audit27 B2 L7: in HTTP mode an event the app has no listener for, a view_closed or
    a block_suggestion was answered 404 (Slack retries a non-2xx event and may turn the
    app's events off) with Bolt's multi-line WARNING each; Socket Mode acknowledges them.
    They get an empty 200, logged at DEBUG only, and run nothing. review27 R2 M2: but a
    slash command other than /agent is a person waiting: they are told, and it is logged."""
    slack = await slack_http(POLICY)
    caplog.set_level(logging.INFO)
    caplog.clear()  # (what start-up says)
    event = json.dumps({"type": "event_callback", "event": {"type": "app_mention"}})
    json_headers = {**signed_headers(slack.secret, event), "Content-Type": "application/json"}
    retried = {**json_headers, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}
    forms = [
        {"type": "view_closed", "user": {"id": ADMIN}, "view": {"id": "V1"}},
        {"type": "block_suggestion", "action_id": "x", "value": "ac"},
    ]
    requests = [(event, json_headers), (event, retried)]
    for payload in forms:
        body = urlencode({"payload": json.dumps(payload)})
        requests.append((body, signed_headers(slack.secret, body)))
    for body, headers in requests:
        r = await slack.post(body, headers=headers)
        assert (r.status_code, r.text) == (200, ""), body
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    other = command_body("help", user_id=ADMIN).replace("%2Fagent", "%2Fnightshift")
    r = await slack.post(other, headers=signed_headers(slack.secret, other))  # none takes it
    assert r.status_code == 200, r.text
    assert r.json() == {"response_type": "ephemeral", "text": foreign("/nightshift")}
    assert "`/nightshift` reaches it by the Slack app's settings" in r.json()["text"]
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and warned[0].startswith(
        "Slack sent the slash command /nightshift, which Nightshift does not answer"
    ), warned
    assert await audit_rows(slack.app) == []
    assert (await slack.command("help"))["response_type"] == "ephemeral"  # the rest answers
    # any other error of a listener is logged as Bolt logs it, and answered as before
    surface = slack.app.ns.extras["slack"]
    assert await surface.on_error(RuntimeError("boom"), None, None) is None
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert said == ["Failed to run listener function (error: boom)"], said


@pytest.mark.parametrize("timestamp", ["abc", "9" * 400, "1e999", "-" + "9" * 400])
async def test_a_timestamp_that_is_not_a_number_is_401(slack_http, timestamp):
    """audit11 M4: a 400-digit timestamp overflowed a float: a 500 and a traceback."""
    slack = await slack_http(POLICY)
    body = command_body("help", user_id=ADMIN)
    headers = {**signed_headers(slack.secret, body), "X-Slack-Request-Timestamp": timestamp}
    r = await slack.post(body, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_request"


async def test_a_signed_body_nested_too_deeply_is_a_400(slack_http):
    slack = await slack_http(POLICY)
    for body, kind in (
        ("payload=" + "%5B" * 100_000, "application/x-www-form-urlencoded"),
        ("[" * 100_000, "application/json"),
    ):
        headers = {**signed_headers(slack.secret, body), "Content-Type": kind}
        r = await slack.post(body, headers=headers)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "invalid_body"
    assert await audit_rows(slack.app) == []


def _click() -> dict[str, Any]:
    return block_actions_payload(action_id="alert_ack", value="1")


def _submit() -> dict[str, Any]:
    return view_submission_payload(
        callback_id="budget_raise_modal", private_metadata="acme", values={"amount": "3"}
    )


def _reshaped(make: Callable[[], dict[str, Any]], change: Callable[[Any], None]) -> Any:
    payload = make()
    change(payload)
    return payload


# Signed, well-formed JSON, but not a shape Slack sends (audit13 Slack M2: each was a 500)
WRONG_SHAPES: list[Any] = [
    [],
    None,
    1,
    "text",
    _reshaped(_click, lambda p: p.update(actions=[])),
    _reshaped(_click, lambda p: p.update(actions="x")),
    _reshaped(_click, lambda p: p.update(actions=[None])),
    _reshaped(_click, lambda p: p["actions"][0].update(action_id=5)),
    _reshaped(_click, lambda p: p.update(user="U0ADMIN")),
    _reshaped(_click, lambda p: p.update(container="C0ALERTS")),
    _reshaped(_click, lambda p: p.update(response_url=5)),
    _reshaped(_submit, lambda p: p.update(view="x")),
    _reshaped(_submit, lambda p: p["view"].update(state="x")),
    _reshaped(_submit, lambda p: p["view"]["state"].update(values=[1])),
    _reshaped(_submit, lambda p: p["view"]["state"].update(values={"amount": "3"})),
    _reshaped(_submit, lambda p: p["view"].update(callback_id=5)),
]


@pytest.mark.parametrize("payload", WRONG_SHAPES)
async def test_a_signed_payload_of_a_shape_slack_never_sends_is_a_400(slack_http, payload):
    slack = await slack_http(POLICY)
    body = urlencode({"payload": json.dumps(payload)})
    r = await slack.post(body)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_body" and "malformed" in r.json()["message"]
    assert await audit_rows(slack.app) == []
    event = json.dumps({"type": "event_callback", "event": "x"})
    headers = {**signed_headers(slack.secret, event), "Content-Type": "application/json"}
    r = await slack.post(event, headers=headers)
    assert r.status_code == 400 and r.json()["message"].endswith("event must be an object")


# -- help and the parser --------------------------------------------------------------------


async def test_help_lists_every_subcommand(slack_http):
    slack = await slack_http(POLICY)
    reply = await slack.command("help")
    assert reply["response_type"] == "ephemeral"
    for name in ("budget", "breakers", "breaker", "dedup", "audit", "help"):
        assert f"`/agent {name}" in reply["text"]
    assert reply["blocks"][0]["type"] == "section"
    assert "Nightshift commands" in (await slack.command(""))["text"]


async def test_unknown_subcommand_suggests_the_nearest(slack_http):
    slack = await slack_http(POLICY)
    reply = await slack.command("budgte acme")
    assert "I don't know `budgte`" in reply["text"]
    assert "Did you mean `budget`?" in reply["text"]
    nonsense = await slack.command("frobnicate")
    assert "I don't know `frobnicate`." in nonsense["text"]
    assert "Did you mean" not in nonsense["text"]  # no guess is better than a wild one
    # audit26 text 4: what was typed comes back without its NUL or its bidi override
    hidden = await slack.command("budget\x00acme\u202eevil")
    assert "I don't know `budget acme evil`." in hidden["text"]


async def test_text_copied_from_the_bots_own_replies_is_read_as_meant(slack_http):
    """audit9 L4: scopes and ids in backticks, a sentence's full stop, a scope's trailing
    slash and a repeated `/agent` were refused."""
    slack = await slack_http(POLICY)
    await spend(slack.app, "acme/alice/rss-bot", micros=1_000_000, key="k1")
    for text in (
        "budget `acme/alice/rss-bot`",
        "budget *acme/alice/rss-bot*.",
        "budget acme/alice/rss-bot/",
        "/agent budget acme/alice/rss-bot",
        "agent budget `acme/alice/rss-bot`,",
    ):
        reply = await slack.command(text)
        assert "*acme/alice/rss-bot* · agent" in reply["text"], (text, reply["text"])
    done = await slack.command("budget set `acme/alice/rss-bot` $5 *day*.")
    assert "set the *day* budget of `acme/alice/rss-bot` to *$5.00*" in done["text"]
    assert "there is no alert #21" in (await slack.command("ack `#21`"))["text"]
    assert "there is no alert #7" in (await slack.command("ack 7."))["text"]
    silenced = await slack.command("silence `acme/alice/` 1h.")
    assert "silenced acme/alice and below for 1h" in silenced["text"], silenced["text"]
    assert "Nightshift commands" in (await slack.command("/agent"))["text"]  # help
    assert "No rotations" in (await slack.command("on call"))["text"]  # `oncall`, run


# -- budget -------------------------------------------------------------------------------
# -- budget -------------------------------------------------------------------------------


async def test_budget_tree_with_bars(slack_http):
    slack = await slack_http(POLICY)
    await spend(slack.app, "acme/alice/rss-bot", micros=4_200_000, key="k1")
    reply = await slack.command("budget acme/alice/rss-bot")
    text = reply["text"]
    assert "*acme/alice/rss-bot* · agent" in text
    assert "▓▓▓▓░░░░░░ 42% · $4.20 of $10.00 · $5.80 left" in text
    assert "$4.20 of $200.00" in text and "`month` ░░░░░░░░░░ 0% · $4.20 of $4,000.00" in text
    assert reply["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Budget: acme/alice/rss-bot"},
    }
    assert len(reply["blocks"]) <= 50
    overview = await slack.command("budget")
    assert "*acme*" in overview["text"] and "$4.20 of $200.00" in overview["text"]
    children = await slack.command("budget acme/alice")
    assert "*Below acme/alice* (1)" in children["text"] and "`rss-bot`" in children["text"]
    assert "No agent has reserved" not in children["text"]
    typo = await slack.command("budget acme/alcie")
    assert (
        "No agent has reserved or sent a heartbeat under `acme/alcie` yet (a typo?)" in typo["text"]
    )
    assert "Did you mean `acme/alice`?" in typo["text"]  # the one probably meant (audit15 6)


async def test_budget_bad_arguments_show_the_usage(slack_http):
    slack = await slack_http(POLICY)
    for text in ("budget acme/al ice", "budget a/b/c/d/e", "budget acme extra"):
        reply = await slack.command(text)
        assert "usage: `/agent budget [scope]" in reply["text"], text


@pytest.mark.parametrize("text", ["status extra", "alerts now", "jobs all", "oncall bob"])
async def test_commands_that_take_nothing_refuse_extra_words(slack_http, text):
    slack = await slack_http(POLICY)
    reply = await slack.command(text)
    assert f"usage: `/agent {text.split()[0]}" in reply["text"], reply["text"]


async def test_budget_set_by_an_admin_changes_the_limit_and_is_audited(slack_http):
    slack = await slack_http(POLICY)
    reply = await slack.command("budget set acme/alice/rss-bot $5 day")
    assert reply["response_type"] == "in_channel"
    assert "set the *day* budget of `acme/alice/rss-bot` to *$5.00* (was $10.00)" in reply["text"]
    tree = await slack.command("budget acme/alice/rss-bot")
    assert "$0.00 of $5.00" in tree["text"]
    assert await audit_rows(slack.app) == [
        (ADMIN, "budget.set", "acme/alice/rss-bot day", "10000000", "5000000", None)
    ]
    log = await slack.command("audit")
    assert "<@U0ADMIN> *budget.set* `acme/alice/rss-bot day`: $10.00 → $5.00" in log["text"]
    # audit27 B2 L3: the same limit again was announced in the channel ("to $5.00 (was
    # $5.00)") and audited as a change; it is said privately, and nothing is written
    again = await slack.command("budget set acme/alice/rss-bot 5.00 DAY")
    assert again["response_type"] == "ephemeral", again
    assert again["text"].endswith(  # (after the warning: no agent has used it yet)
        "\nThe *day* budget of `acme/alice/rss-bot` is *$5.00* already, set in Slack for good:"
        " nothing changed."
    )
    assert len(await audit_rows(slack.app)) == 1
    for_a_while = await slack.command("budget set acme/alice/rss-bot 5 day for 1h")
    assert for_a_while["response_type"] == "in_channel", for_a_while  # it gets an end
    assert len(await audit_rows(slack.app)) == 2


async def test_budget_amounts_are_shown_as_they_were_set_never_rounded(slack_http):
    """audit9 L1: $2.505 was confirmed and audited as $2.51, $0.004 as $0.00."""
    slack = await slack_http(POLICY)
    odd = await slack.command("budget set acme/alice/rss-bot 2.505 day")
    assert "to *$2.505* (was $10.00)" in odd["text"]
    tiny = await slack.command("budget set acme/alice/rss-bot 0.004 week")
    assert "the *week* budget of `acme/alice/rss-bot` to *$0.004* (was no limit)" in tiny["text"]
    back = await slack.command("budget set acme/alice/rss-bot 3 day")
    assert "to *$3.00* (was $2.505)" in back["text"]
    log = (await slack.command("audit 3"))["text"]
    assert "`acme/alice/rss-bot day`: $10.00 → $2.505" in log
    assert "`acme/alice/rss-bot week`: — → $0.004" in log
    assert "`acme/alice/rss-bot day`: $2.505 → $3.00" in log


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        (
            "budget set acme/alice/rss-bot $5",
            "needs a scope, an amount (or `default`) and a window",
        ),
        ("budget set acme/alice/rss-bot five day", "is not an amount"),
        ("budget set acme/alice/rss-bot $5.0000001 day", "more than six decimals"),
        ("budget set acme/alice/rss-bot $5 fortnight", "the window is one of day, week"),
        ("budget set acme//rss-bot $5 day", "each segment"),
    ],
)
async def test_budget_set_bad_arguments(slack_http, text, detail):
    slack = await slack_http(POLICY)
    reply = await slack.command(text)
    assert detail in reply["text"]
    assert "usage: `/agent budget" in reply["text"]
    assert await slack.app.store.fetch("SELECT * FROM budget_limits") == []


async def test_budget_set_by_a_non_admin_is_refused_and_audited(slack_http):
    slack = await slack_http(POLICY)
    reply = await slack.command("budget set acme/alice/rss-bot $500 day", user=STRANGER)
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith("Only admins can change budgets.")
    assert await slack.app.store.fetch("SELECT * FROM budget_limits") == []
    assert await audit_rows(slack.app) == [
        (
            STRANGER,
            "refused",
            "change budgets",
            None,
            None,
            "not an admin: budget set acme/alice/rss-bot $500 day",
        )
    ]


async def test_admin_groups_are_resolved_through_slack_and_cached(slack_http, fake_slack):
    clock = ManualClock()
    slack = await slack_http({**POLICY, "admin_groups": ["S0OPS"]}, clock=clock)
    fake_slack.groups["S0OPS"] = ["U0GROUPIE"]
    ok = await slack.command("budget set acme/alice/rss-bot $6 day", user="U0GROUPIE")
    assert "to *$6.00*" in ok["text"]
    await slack.command("budget set acme/alice/rss-bot $7 day", user="U0GROUPIE")
    assert len(fake_slack.calls_of("usergroups.users.list")) == 1  # cached
    fake_slack.groups["S0OPS"] = []  # removed from the group
    clock.advance(301)  # past the cache's TTL
    refused = await slack.command("budget set acme/alice/rss-bot $8 day", user="U0GROUPIE")
    assert refused["text"].startswith("Only admins can change budgets.")
    assert len(fake_slack.calls_of("usergroups.users.list")) == 2


async def test_a_rate_limited_group_lookup_is_not_a_refusal_and_waits_as_slack_asks(
    slack_http, fake_slack
):
    """audit20 slack M4: right after a start, while Slack rate-limited the lookup, a group
    admin was told "Only admins…", the refusal went into the audit log, and every command
    asked Slack again at once."""
    clock = ManualClock()
    slack = await slack_http({**POLICY, "admin_groups": ["S0OPS"]}, clock=clock)
    fake_slack.groups["S0OPS"] = ["U0GROUPIE"]
    fake_slack.fail("usergroups.users.list", status=429, retry_after=30)
    for _ in range(2):
        said = await slack.command("budget set acme/alice/rss-bot $6 day", user="U0GROUPIE")
        assert said["text"] == (
            "I could not check with Slack whether you are in <!subteam^S0OPS> (Slack is rate"
            " limiting us), so I did nothing; try again in 30 s."
        )
    assert len(fake_slack.calls_of("usergroups.users.list")) == 1  # Retry-After is waited out
    audit = await slack.command("audit")
    assert "refused" not in audit["text"]
    clock.advance(31)
    ok = await slack.command("budget set acme/alice/rss-bot $6 day", user="U0GROUPIE")
    assert "to *$6.00*" in ok["text"]
    assert len(fake_slack.calls_of("usergroups.users.list")) == 2
    # read again after its TTL: someone no longer in the group is refused, as before
    fake_slack.groups["S0OPS"] = []
    clock.advance(301)
    refused = await slack.command("budget set acme/alice/rss-bot $8 day", user="U0GROUPIE")
    assert refused["text"].startswith("Only admins can change budgets.")


async def test_a_group_slack_then_says_does_not_exist_is_no_one_not_unknown(slack_http, fake_slack):
    """review20 M3: after one rate limit, a group Slack then answered `no_such_subteam` for
    kept saying "Slack is rate limiting us… try again" on every command."""
    clock = ManualClock()
    slack = await slack_http({**POLICY, "admin_groups": ["S0GONE"]}, clock=clock)
    fake_slack.fail("usergroups.users.list", status=429, retry_after=30)
    first = await slack.command("budget set acme/alice/rss-bot $6 day", user="U0GROUPIE")
    assert first["text"].startswith("I could not check with Slack"), first["text"]
    clock.advance(31)  # Slack now answers: no such group
    later = await slack.command("budget set acme/alice/rss-bot $6 day", user="U0GROUPIE")
    assert later["text"].startswith("Only admins can change budgets."), later["text"]


async def test_a_refusal_does_not_send_the_user_to_a_group_slack_cannot_resolve(
    slack_http, fake_slack
):
    """audit24 claims C7: with `admin_groups: [S0OPS, S0GONE]` and S0GONE unknown to Slack
    (the log said so), a refusal still said "Ask … or <!subteam^S0GONE>"."""
    fake_slack.groups["S0OPS"] = ["U0GROUPIE"]
    slack = await slack_http({**POLICY, "admin_groups": ["S0OPS", "S0GONE"]})
    refused = await slack.command("budget set acme $5 day", user="U0STRANGER")
    assert refused["text"] == (
        "Only admins can change budgets. Ask <@U0ADMIN> or <!subteam^S0OPS>."
    ), refused["text"]
    # the admins listed by person are named
    only_gone = await slack_http({**POLICY, "admin_groups": ["S0GONE"]})
    refused = await only_gone.command("budget set acme $5 day", user="U0STRANGER")
    assert refused["text"] == "Only admins can change budgets. Ask <@U0ADMIN>.", refused["text"]
    # nobody listed by person: whoever runs Nightshift, with what to fix
    nobody = await slack_http({"budgets": POLICY["budgets"], "admin_groups": ["S0GONE"]})
    refused = await nobody.command("budget set acme $5 day", user="U0STRANGER")
    assert refused["text"] == (
        "Only admins can change budgets. Ask whoever runs Nightshift: Slack cannot resolve"
        " the policy's `admin_groups` (S0GONE: no_such_subteam)."
    ), refused["text"]


# -- audit --------------------------------------------------------------------------------


async def test_audit_shows_the_last_n(slack_http):
    slack = await slack_http(POLICY)
    for amount in (1, 2, 3):
        await slack.command(f"budget set acme/alice/rss-bot ${amount} day")
    await slack.command("budget set acme/alice/rss-bot $9 day", user=STRANGER)
    two = await slack.command("audit 2")
    assert two["text"].startswith("*Last 2 changes*")
    assert (
        "<@U0STRANGER> *refused* `change budgets` (not an admin: budget set"
        " acme/alice/rss-bot $9 day)" in two["text"]
    )
    assert "$2.00 → $3.00" in two["text"]
    assert "$1.00 → $2.00" not in two["text"]
    for bad in ("audit 0", "audit 51", "audit -1", "audit 1.5", "audit 1 2", "audit " + "9" * 5000):
        assert "n is a number from 1 to 50" in (await slack.command(bad))["text"]
    for bad in ("audit a b", "audit <!channel>"):
        assert (
            "usage: `/agent audit [n] [each] [@user | change | scope]`"
            in (await slack.command(bad))["text"]
        )
    assert "No changes matching `many` recorded." in (await slack.command("audit many"))["text"]


async def test_audit_when_empty(slack_http):
    slack = await slack_http(POLICY)
    assert (await slack.command("audit"))["text"] == "No changes recorded yet."


# -- breakers -----------------------------------------------------------------------------


async def test_breaker_kill_switch_approve_and_close(slack_http):
    slack = await slack_http(POLICY)
    assert "Every breaker is closed" in (await slack.command("breakers"))["text"]
    opened = await slack.command("breaker acme/alice/rss-bot open runaway posting")
    assert opened["response_type"] == "in_channel"
    assert "<@U0ADMIN> forced open `acme/alice/rss-bot`" in opened["text"]
    listed = await slack.command("breakers")
    assert "⛔ *acme/alice/rss-bot* forced open" in listed["text"]
    assert "runaway posting" in listed["text"]
    tok = await slack.app.token("acme/alice")
    refused = await slack.app.request(
        "POST",
        "/v1/reservations",
        token=tok,
        json={"scope": "acme/alice/rss-bot", "idempotency_key": "x", "max_cost_micros": 10},
    )
    assert refused.status_code == 503
    approved = await slack.command("breaker acme/alice/rss-bot approve")
    assert "approved a trial of `acme/alice/rss-bot`" in approved["text"]
    assert "🟠" in approved["text"] and "trial" in approved["text"]
    await spend(slack.app, "acme/alice/rss-bot", micros=4_000, key="trial-1")
    trial = (await slack.command("breakers"))["text"]
    assert "trial 1/3 calls, 1 ok, $0.004 of $0.50" in trial, trial  # not $0.00 (audit21 F4)
    closed = await slack.command("breaker acme/alice/rss-bot close")
    assert "closed `acme/alice/rss-bot`" in closed["text"]
    assert "Every breaker is closed" in (await slack.command("breakers"))["text"]
    every = await slack.command("breakers all")
    assert "🟢 *acme/alice/rss-bot* closed" in every["text"]
    actions = [r[1] for r in await audit_rows(slack.app) if r[1].startswith("breaker")]
    assert actions == ["breaker.force_open", "breaker.approve", "breaker.force_close"]


async def test_a_kill_switch_on_a_name_nothing_uses_says_it_may_be_a_typo(slack_http):
    """audit7 M1: at 3 a.m. a mistyped model or agent must not pass for a stopped one."""
    slack = await slack_http(POLICY)
    tok = await slack.app.token("acme/alice")
    await spend(slack.app, "acme/alice/rss-bot", micros=10, key="seen")

    typo = await slack.command("breaker model:claude-haiku-4.5 open outage")
    assert typo["text"].startswith("⚠️ `claude-haiku-4.5` is not a model Nightshift prices")
    assert "Did you mean `model:claude-haiku-4-5`?" in typo["text"]
    assert "forced open `model:claude-haiku-4.5`" in typo["text"]  # done, as asked

    exact = await slack.command("breaker model:Claude-Haiku-4-5 open outage")
    assert exact["text"].startswith("<@U0ADMIN> forced open `model:claude-haiku-4-5`")
    body = {"scope": "acme/alice/rss-bot", "max_cost_micros": 10, "model": "claude-haiku-4-5"}
    refused = await slack.app.request(
        "POST", "/v1/reservations", token=tok, json={**body, "idempotency_key": "h"}
    )
    assert refused.status_code == 503  # the name as typed, in any case, is the one stopped

    dated = await slack.command("breaker model:gpt-4o-2024-08-06 open outage")
    assert dated["text"].startswith(
        "⚠️ `gpt-4o-2024-08-06` is a snapshot of `gpt-4o`: this stops only reservations that"
        " name `gpt-4o-2024-08-06`; `model:gpt-4o` stops `gpt-4o` and every snapshot of it."
    )
    base = await slack.command("breaker model:gpt-4o open outage")
    assert base["text"].startswith("<@U0ADMIN> forced open `model:gpt-4o`")
    snapshot = {**body, "model": "GPT-4o-2024-11-20", "idempotency_key": "s"}
    refused = await slack.app.request("POST", "/v1/reservations", token=tok, json=snapshot)
    assert refused.status_code == 503  # the model's kill switch stops its snapshots too

    unseen = await slack.command("breaker acme/alcie/rss-bot open")
    assert unseen["text"].startswith(
        "⚠️ No agent has reserved or sent a heartbeat under `acme/alcie/rss-bot` yet (a typo?)"
    )
    assert "Did you mean `acme/alice/rss-bot`?" in unseen["text"]
    seen = await slack.command("breaker acme/alice/rss-bot open")
    assert seen["text"].startswith("<@U0ADMIN> forced open `acme/alice/rss-bot`")
    beat = await slack.app.request(  # an agent that only sends heartbeats is known too
        "POST", "/v1/heartbeats", token=tok, json={"scope": "acme/alice/watcher"}
    )
    assert beat.status_code == 204
    watched = await slack.command("breaker acme/alice/watcher open")
    assert watched["text"].startswith("<@U0ADMIN> forced open `acme/alice/watcher`")

    unseen_budget = await slack.command("budget set acme/bobb $5 day")  # (alcie has an alert now)
    note = "⚠️ No agent has reserved or sent a heartbeat under `acme/bobb` yet (a typo?)"
    assert unseen_budget["text"].startswith(note)  # first, as the kill switch says it
    upper = await slack.command("budget set ACME $5 day")  # another case: another namespace
    assert "under `ACME` yet (a typo?)" in upper["text"]
    assert "Did you mean `acme`?" in upper["text"]
    seen_budget = await slack.command("budget set acme/alice $5 day")
    assert "⚠️" not in seen_budget["text"]


async def test_a_model_name_no_agent_could_send_is_refused(slack_http):
    """audit13 Slack M1: `model:<!channel>` pinged the whole channel from a public reply."""
    slack = await slack_http(POLICY)
    for text in (
        "breaker model:<!channel> open",
        "breaker model:x\u202e open",
        "silence model:<!here>zz 1h",
        "silence breaker_opened:model:<!here> 1h",
        "silence model:<!here>zz off",
    ):
        reply = await slack.command(text)
        assert reply["response_type"] == "ephemeral", (text, reply)
        assert "a model name is letters, digits and . _ - : / @ +" in reply["text"], text
        assert "<!" not in reply["text"], text
    assert "Every breaker is closed" in (await slack.command("breakers"))["text"]
    assert await audit_rows(slack.app) == []


async def test_breaker_conflicts_and_bad_arguments(slack_http):
    slack = await slack_http(POLICY)
    conflict = await slack.command("breaker acme/alice/rss-bot close")
    assert "already closed" in conflict["text"]
    for text in (
        "breaker",
        "breaker acme/alice/rss-bot",
        "breaker acme/alice/rss-bot explode",
        "breaker acme/al!ce/bot open",
        "breaker acme/alice/rss-bot close now",
    ):
        reply = await slack.command(text)
        usage = (
            "usage: `/agent breaker <scope> open [reason] | approve [calls] [$budget] | close"
            " · breaker <prefix>/* approve`"
        )
        assert reply["text"].endswith(usage), (text, reply["text"])
    close_why = await slack.command("breaker acme/alice/rss-bot close it's fine now")
    assert close_why["text"] == f"`breaker close` takes no reason\n{usage}"
    help_text = (await slack.command("help"))["text"]
    assert (
        "`/agent breaker <scope> open [reason] | approve [calls] [$budget] | close"
        " · breaker <prefix>/* approve` — Force a breaker open" in help_text
    )
    for text in ("breakers some", "breakers all more", "breakers all acme more"):
        assert "usage: `/agent breakers [all] [scope]`" in (await slack.command(text))["text"]
    assert await audit_rows(slack.app) == []


async def test_breaker_by_a_non_admin_is_refused(slack_http):
    slack = await slack_http(POLICY)
    reply = await slack.command("breaker acme/alice/rss-bot open <!channel> now", user=STRANGER)
    assert reply["text"].startswith("Only admins can operate breakers.")
    assert "Every breaker is closed" in (await slack.command("breakers"))["text"]
    [(_, action, target, _, _, detail)] = await audit_rows(slack.app)
    assert (action, target) == ("refused", "operate breakers")
    # what was tried, as typed (audit9 L6); shown escaped (audit13 Slack L2)
    assert detail == "not an admin: breaker acme/alice/rss-bot open <!channel> now"
    shown = (await slack.command("audit 1"))["text"]
    assert "(not an admin: breaker acme/alice/rss-bot open &lt;!channel&gt; now)" in shown


# -- dedup --------------------------------------------------------------------------------


async def test_dedup_lists_recent_rejections(slack_http):
    slack = await slack_http(POLICY)
    assert "No output rejected in every namespace" in (await slack.command("dedup"))["text"]
    tok = await slack.app.token("acme/alice/rss-bot")
    items = ["Breaking: the river rose 2 m overnight", "Breaking: the river rose 2 m overnight"]
    r = await slack.app.request(
        "POST",
        "/v1/validations",
        token=tok,
        json={"scope": "acme/alice/rss-bot", "stream": "posts", "items": items},
    )
    assert r.status_code == 200 and r.json()["verdict"] == "partial", r.text
    reply = await slack.command("dedup acme/alice/rss-bot 24h")
    assert "*Rejected output* in `acme/alice/rss-bot`, last 24h: 1 duplicate" in reply["text"]
    assert "*duplicate* `acme/alice/rss-bot` posts — “Breaking: the river rose" in reply["text"]
    assert "1 duplicate" in (await slack.command("dedup"))["text"]
    assert "1 duplicate" in (await slack.command("dedup 1h acme"))["text"]
    unused = await slack.command("dedup acme/bob 24h")
    assert "under `acme/bob` yet (a typo?)" in unused["text"]


async def test_dedup_bad_arguments(slack_http):
    slack = await slack_http(POLICY)
    for text in ("dedup acme bob", "dedup acme 24h extra", "dedup 0s", "dedup acme/b@d"):
        reply = await slack.command(text)
        assert "usage: `/agent dedup [scope] [since" in reply["text"], text


# -- slow answers -------------------------------------------------------------------------


@pytest.fixture
def slow_subcommand():
    """A test-only ``/agent slowpoke`` that answers when the test lets it (removed afterwards)."""
    import asyncio

    from bot.commands import SUBCOMMANDS, Reply, subcommand

    done = asyncio.Event()

    @subcommand("slowpoke", usage="slowpoke")
    async def slowpoke(ctx, args):
        """Answers slowly."""
        await done.wait()
        return Reply.text_only("finally")

    yield done
    SUBCOMMANDS.pop("slowpoke", None)


async def test_a_slow_command_acks_at_once_and_answers_through_response_url(
    slack_http, fake_slack, monkeypatch, slow_subcommand
):
    import bot.slack.surface as surface

    monkeypatch.setattr(surface, "ACK_BUDGET", 0.05)
    slack = await slack_http(POLICY)
    ack = await slack.command("slowpoke", response_url=fake_slack.response_url("slow"))
    # acked while the command still runs (it answers only when the test lets it),
    # and answered later through the response_url
    assert fake_slack.responses["slow"] == []
    assert ack == {"text": "⏳ Working on it…", "response_type": "ephemeral"}
    slow_subcommand.set()
    await fake_slack.wait_for(lambda: fake_slack.responses["slow"])
    (answer,) = fake_slack.responses["slow"]
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == "finally" and answer["blocks"]


async def test_start_up_logs_no_warning_about_the_token_bolt_reads_itself(
    slack_http, monkeypatch, caplog
):
    from tests.fakes.slack_api import BOT_TOKEN

    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)  # as in production: Bolt reads it too
    await slack_http(POLICY)
    assert "will be unused" not in caplog.text
    assert not [r for r in caplog.records if r.levelname == "WARNING" and "slack_bolt" in r.name]


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("ack 99999999999999999999", "there is no alert #99999999999999999999"),
        ("silence 9999999999999999999999 1h", "there is no alert #"),
        ("ack ١٢", "is not an alert id"),
        ("ack 12", "there is no alert #12"),
        ("audit ١٢", "n is a number from 1 to"),
    ],
)
async def test_alert_ids_out_of_range_or_in_other_digits_get_a_clear_answer(
    slack_http, text, answer
):
    slack = await slack_http(POLICY)
    reply = await slack.command(text)
    assert answer in reply["text"], reply["text"]
    assert "went wrong" not in reply["text"]
    assert await slack.app.store.fetch("SELECT * FROM silences") == []


async def test_a_bot_token_slack_refuses_stops_start_up_saying_so(slack_http, fake_slack):
    """audit16 observability M2: a wrong or revoked bot token started cleanly and healthy;
    the first alert of the night failed to post, and nobody was paged."""
    from bot.slack.client import SlackTokenRefused

    fake_slack.fail("auth.test", status=200, retry_after=None, error="token_revoked")
    with pytest.raises(SlackTokenRefused) as refused:
        await slack_http(POLICY)
    assert "Slack refuses SLACK_BOT_TOKEN (token_revoked)" in str(refused.value)
    assert "copy the Bot User OAuth Token again" in str(refused.value)


async def test_slack_out_of_reach_at_start_is_a_warning_and_start_goes_on(
    slack_http, fake_slack, caplog
):
    fake_slack.fail("auth.test", status=500, retry_after=None, error="internal_error")
    with caplog.at_level(logging.WARNING, logger="bot.slack.client"):
        slack = await slack_http(POLICY)
    assert (await slack.app.client.get("/healthz")).status_code == 200
    said = [r.getMessage() for r in caplog.records if r.name == "bot.slack.client"]
    assert any("could not check SLACK_BOT_TOKEN" in m for m in said), said


async def test_an_answer_that_is_not_json_at_start_is_a_warning(caplog):
    """review16 H1: a proxy's text/plain 503 (or a 404 from a mistyped SLACK_API_URL) made
    the start-up check raise AttributeError: a valid setup did not start during an outage."""
    from aiohttp import web
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.client import check_bot_token

    async def proxy(request: web.Request) -> web.Response:
        if request.path.endswith("garbled"):
            return web.Response(text="{not json", content_type="application/json", status=502)
        return web.Response(text="upstream connect error", status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        for base in (f"http://127.0.0.1:{port}/api/", f"http://127.0.0.1:{port}/garbled/"):
            client = AsyncWebClient(token="xoxb-x", base_url=base, retry_handlers=[])
            with caplog.at_level(logging.WARNING, logger="bot.slack.client"):
                await check_bot_token(client, refuse=True)  # does not raise
    finally:
        await runner.cleanup()
    said = [r.getMessage() for r in caplog.records if r.name == "bot.slack.client"]
    assert len(said) == 2 and all("going on" in m for m in said), said


async def test_after_a_reload_a_refused_token_is_an_error_and_nothing_waits_for_it(
    fake_slack, caplog
):
    from bot.slack.client import check_at_start
    from bot.slack.client import web_client as make_client

    fake_slack.fail("auth.test", status=200, retry_after=None, error="invalid_auth")

    class Env:
        slack_api_url = fake_slack.url
        slack_bot_token = "xoxb-test-bot-token"

    client = make_client(Env())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="bot.slack.client"):
        task = await check_at_start(client, reloaded=True)  # returns at once
        assert task is not None
        await task
    said = [r.getMessage() for r in caplog.records if r.name == "bot.slack.client"]
    assert said and said[0].startswith("Slack refuses SLACK_BOT_TOKEN (invalid_auth)")


async def test_an_oversized_post_to_slack_events_says_the_body_is_too_large(slack_http):
    """audit19 hostile: it said "POST /slack/events is not part of the API"."""
    slack = await slack_http({})
    raw = await slack.app.request("POST", "/slack/events", content=b"x" * (2 * 1024 * 1024))
    assert raw.status_code == 413 and raw.json()["error"] == "body_too_large", raw.text
    assert "the body is larger than" in raw.json()["message"], raw.text
    assert "not part of the API" not in raw.json()["message"]


# -- what was typed, quoted back (audit20 slack L5) ----------------------------------------


async def test_a_refusal_quoting_a_typed_broadcast_mention_shows_it_without_sending_it(
    slack_http,
):
    slack = await slack_http({**POLICY, "oncall": {"rotations": [{"name": "p", "users": ["U01"]}]}})
    for command in (
        "budget <!channel>",
        "budget set acme/<!here> 5 day",
        "holds <!everyone>",
        "silence <!channel> 1h",
        "ack <!channel>",
        "pause <!channel>",
        "dedup <!channel>",
        "digest <!channel>",
        "oncall override <@U0ME> 1h <!channel>",
    ):
        text = (await slack.command(command))["text"]
        for broadcast in ("<!channel", "<!here", "<!everyone"):
            assert broadcast not in text, (command, text)
