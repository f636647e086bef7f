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

from guards.breaker_said import quoted_error
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


async def test_a_token_in_a_task_id_is_masked_wherever_people_read_it(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    tok = await app.token("acme/alice")  # the agent's own live token, as a trace header
    head = re.match(r"ns_tok_[0-9a-f]+_", tok)
    assert head is not None
    secret = tok[head.end() :]
    # glued to a word character, URL-encoded: masked all the same (review28 R4 M1)
    task = f"job_{tok} for%20xoxb-1234567890-abcdefghij"
    shown = f"job_{head.group()}… for%20xoxb-…"
    # a task whose id masks alike is another task: its attempts are its own
    twin = f"job_{head.group()}OTHERsecret0 for%20xoxb-1234567890-zzzzzzzzzz"
    for i in range(3):
        assert (await reserve(app, tok, "acme/alice/tk", f"t{i}", task_id=task)).status_code == 201
    assert (await reserve(app, tok, "acme/alice/tk", "w0", task_id=twin)).status_code == 201
    for i in (3, 4):
        r = await reserve(app, tok, "acme/alice/tk", f"t{i}", task_id=task)
        assert r.status_code == 429, r.text
        assert r.json()["task_id"] == task  # the caller's own words, to the caller
    counted = await app.store.fetch("SELECT task_id, attempts FROM breaker_attempts ORDER BY 2")
    assert [tuple(row) for row in counted] == [(twin, 1), (task, 3)]

    await app.ns.extras["alerts"].process()
    await fake.wait_for(lambda: len(fake.posts(ALERTS)) >= 2)
    posted = json.dumps([c.args for c in fake.posts(ALERTS)], ensure_ascii=False)
    assert f"task {shown} asked for attempt 3 of 3" in posted
    assert f"task {shown} asked past its 3 attempts" in posted
    # an agent's output, as /agent dedup shows it to any member: masked where shown only
    item = f"config Authorization: Bearer {tok} and xoxb-1234567890-abcdefghij"
    for _ in range(2):
        body = {"scope": "acme/alice/vd", "stream": "posts", "items": [item]}
        assert (
            await app.request("POST", "/v1/validations", token=tok, json=body)
        ).status_code == 200
    # a scope is an identity, shown as it is: one holding a Slack token is refused
    slack_tok = "xoxb-1234567890-2345678901-abcdefghijabcdefghijabcd"
    named = await reserve(app, tok, f"acme/alice/{slack_tok}", "s0")
    assert named.status_code == 400 and named.json()["field"] == "scope", named.text
    assert "looks like a Slack token" in named.json()["message"]
    assert "abcdefghij" not in named.text
    replies = [
        (await slack.command(words))["text"]
        for words in (
            "holds acme/alice/tk",
            "breakers",
            "status acme/alice/tk",
            "audit 50",
            "dedup acme/alice/vd",
        )
    ]
    assert "“config Authorization: Bearer … and xoxb-…”" in replies[4], replies[4]
    assert f"task `{shown}`" in replies[0], replies[0]
    assert f"task {shown} asked past its 3 attempts" in replies[1], replies[1]
    r = await app.request("GET", "/v1/breakers", token=tok)
    assert f"task {shown} asked past" in r.json()["breakers"][0]["reason"]
    kept = [
        json.dumps([tuple(row) for row in await app.store.fetch(f"SELECT * FROM {table}")])
        for table in ("audit", "events", "alerts", "breakers", "breaker_transitions", "outbox")
    ]
    for text in (posted, *replies, r.text, *kept):
        assert secret not in text and "abcdefghij" not in text, text


async def test_an_agent_named_like_a_slack_token_keeps_working(app_factory):
    """review28 R4 M2: ``svc-xapp-1`` holds no secret; refused as a Slack token after the
    upgrade, its reservations, heartbeats and budget read were 400s and its kill switch
    could not be lifted."""
    app = await app_factory()
    tok = await app.token("acme/alice")
    _, op = await operator_token(app, "acme")
    for agent in ("acme/alice/svc-xapp-1", "acme/alice/xoxb-2"):
        assert (await reserve(app, tok, agent, f"k-{agent}")).status_code == 201
        beat = await app.request("POST", "/v1/heartbeats", token=tok, json={"scope": agent})
        assert beat.status_code < 300, beat.text
        assert (await app.request("GET", f"/v1/budgets/{agent}", token=tok)).status_code == 200
        for action in ("open", "close"):
            r = await app.request("POST", f"/v1/breakers/{agent}/{action}", token=op, json={})
            assert r.status_code == 200, r.text
        assert (await reserve(app, tok, agent, f"k2-{agent}")).status_code == 201


async def test_a_failed_settles_error_is_quoted_before_its_write_not_on_the_writer(app_factory):
    """review28 R4 M3: the breaker gate quoted a failed settle's error (masking up to 2,000
    characters, ~1.7 ms) inside the settle's write, on the single writer every reservation
    waits for. The API edge quotes it before the write is queued; the gate's call there
    finds it made."""
    app = await app_factory()
    tok = await app.token("acme/alice")
    r = await reserve(app, tok, "acme/alice/slow", "q0")
    page = ("<html><title>502 Bad Gateway</title><body>cloudflare token=abc " * 40)[:2000]
    before = quoted_error.cache_info()
    body = {"actual_cost_micros": 0, "outcome": "failure", "error": page}
    path = f"/v1/reservations/{r.json()['reservation_id']}/settle"
    assert (await app.request("POST", path, token=tok, json=body)).status_code == 200
    after = quoted_error.cache_info()
    # made once at the edge (a miss), found made by the writer (a hit): the time that
    # saves is measured in 45c1506's message, not asserted here
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)


async def test_a_token_split_by_an_invisible_character_is_masked_where_people_read_it(
    slack_http,
):
    """recheck28 Kc L1: a ZWJ (or U+FE0F) inside a token in a task id stopped the mask in
    the alert, the breaker's reason, the 503 and the audit; a zero-width space inside one
    was kept by `/agent alert <id>` (out of attempts) and `/agent dedup`, the secret
    readable past it. Masked through them, the marks inside it gone."""
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    tok = await app.token("acme/alice")
    head = re.match(r"ns_tok_[0-9a-f]+_", tok)
    assert head is not None
    secret = tok[head.end() :]
    task = f"run {tok[:12]}\u200d{tok[12:25]}\ufe0f{tok[25:]}"
    for i in range(5):  # two asks past the limit: two failures open the agent's breaker
        r = await reserve(app, tok, "acme/alice/tz", f"z{i}", task_id=task)
        assert r.status_code == (201 if i < 3 else 429), r.text
    sibling = await reserve(app, tok, "acme/alice/tz/c2", "z9")
    assert sibling.status_code == 503, sibling.text
    assert f"task run {head.group()}… asked past its 3 attempts" in sibling.json()["reason"]
    item = f"config {tok[:20]}\u200b{tok[20:30]}\u2060{tok[30:]}"
    for _ in range(2):
        body = {"scope": "acme/alice/vz", "stream": "posts", "items": [item]}
        r = await app.request("POST", "/v1/validations", token=tok, json=body)
        assert r.status_code == 200, r.text
    await app.ns.extras["alerts"].process()
    await fake.wait_for(lambda: len(fake.posts(ALERTS)) >= 2)
    [(alert_id,)] = await app.store.fetch("SELECT id FROM alerts WHERE kind = 'attempts_exhausted'")
    replies = [
        (await slack.command(words))["text"]
        for words in (f"alert {alert_id}", "dedup acme/alice/vz", "breakers", "audit 50")
    ]
    assert f"task run {head.group()}… asked for attempt 3 of 3" in replies[0], replies[0]
    assert f"“config {head.group()}…”" in replies[1], replies[1]
    posted = json.dumps([c.args for c in fake.posts(ALERTS)], ensure_ascii=False)
    r = await app.request("GET", "/v1/breakers", token=tok)
    kept = [
        json.dumps([tuple(row) for row in await app.store.fetch(f"SELECT * FROM {table}")])
        for table in ("audit", "events", "alerts", "breakers")
    ]
    for text in (posted, *replies, sibling.text, r.text, *kept):
        assert secret[:8] not in text and secret[-8:] not in text, text
