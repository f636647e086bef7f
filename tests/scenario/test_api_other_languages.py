"""The HTTP API as an agent written in another language meets it (audit16, a Node agent).

JavaScript cuts strings in UTF-16 units, writes ``null`` for what it does not know, and
forwards a provider's usage object as it came; none of that may cost a settle.
"""

from __future__ import annotations

import json

from tests.scenario.test_ledger_api import POLICY, post_raw, reserve, tree, window

CUT_EMOJI = '"upstream 529: overloaded \\ud83d"'  # "…🙂".slice(0, 26) in JSON


async def test_an_error_text_cut_inside_a_character_is_kept_and_the_settle_charged(
    app_factory,
):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    rid = (await reserve(app, tok, "acme/alice/bot", "k", 5000)).json()["reservation_id"]
    raw = f'{{"actual_cost_micros": 4100, "outcome": "failure", "error": {CUT_EMOJI}}}'
    r = await post_raw(app, tok, raw.encode(), path=f"/v1/reservations/{rid}/settle")
    assert r.status_code == 200, r.text
    assert r.json()["charged_micros"] == 4100
    rows = await app.store.fetch("SELECT error FROM reservations WHERE id = ?", (rid,))
    assert rows[0]["error"] == "upstream 529: overloaded \ufffd"
    assert window(await tree(app, tok, "acme/alice/bot"), "acme/alice/bot")["spent_micros"] == 4100


async def test_a_heartbeat_detail_cut_inside_a_character_is_taken(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/bot")
    raw = f'{{"scope": "acme/alice/bot", "status": "ok", "detail": {CUT_EMOJI}}}'
    r = await post_raw(app, tok, raw.encode(), path="/v1/heartbeats")
    assert r.status_code == 204, r.text
    rows = await app.store.fetch("SELECT detail FROM heartbeats")
    assert rows[0]["detail"] == "upstream 529: overloaded \ufffd"


async def test_a_lone_surrogate_where_text_names_something_is_a_400_that_says_so(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    raw = '{"scope": "acme/alice/bot", "idempotency_key": "k\\ud83d", "max_cost_micros": 5}'
    r = await post_raw(app, tok, raw.encode())
    assert r.status_code == 400
    assert r.json()["field"] == "idempotency_key"
    assert "lone surrogate" in r.json()["message"], r.text
    assert await app.store.fetch("SELECT id FROM reservations") == []


async def test_null_outcome_is_success_as_every_other_optional_null(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    rid = (await reserve(app, tok, "acme/alice/bot", "k", 5000)).json()["reservation_id"]
    body = {"actual_cost_micros": 10, "outcome": None, "error": None}
    r = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=body)
    assert r.status_code == 200, r.text
    rows = await app.store.fetch("SELECT outcome FROM reservations WHERE id = ?", (rid,))
    assert rows[0]["outcome"] == "success"
    # the same settle said with the default spelled out is the same settle, not a 409
    spelled = {"actual_cost_micros": 10, "outcome": "success"}
    again = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=spelled)
    assert again.status_code == 200, again.text


async def test_anthropic_prompt_cache_tokens_are_priced_as_input(app_factory):
    """claude-haiku-4-5: $1 per million input tokens, $5 per million output (the table)."""
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    rid = (await reserve(app, tok, "acme/alice/bot", "k", 50_000)).json()["reservation_id"]
    usage = {
        "model": "claude-haiku-4-5",
        "input_tokens": 100,
        "output_tokens": 50,
        "cache_creation_input_tokens": 1000,  # 1.25x: 1,250 input tokens' worth
        "cache_read_input_tokens": 5001,  # 0.1x, rounded up: 501
    }
    r = await app.request(
        "POST", f"/v1/reservations/{rid}/settle", token=tok, json={"usage": usage}
    )
    assert r.status_code == 200, r.text
    # (100 + 1,250 + 501) input tokens at $1/M + 50 output at $5/M = 1,851 + 250 micros
    assert r.json()["charged_micros"] == 2101


async def test_usage_with_a_bad_cache_count_is_a_400_naming_it(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    rid = (await reserve(app, tok, "acme/alice/bot", "k", 50_000)).json()["reservation_id"]
    usage = {
        "model": "claude-haiku-4-5",
        "input_tokens": 1,
        "output_tokens": 1,
        "cache_read_input_tokens": -5,
    }
    r = await app.request(
        "POST", f"/v1/reservations/{rid}/settle", token=tok, json={"usage": usage}
    )
    assert r.status_code == 400
    assert r.json()["field"] == "usage.cache_read_input_tokens"
    rows = await app.store.fetch("SELECT state FROM reservations WHERE id = ?", (rid,))
    assert rows[0]["state"] == "held"


async def test_a_doubled_or_trailing_slash_gets_a_404_that_says_so(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    body = json.dumps({"scope": "acme/alice/bot", "idempotency_key": "k", "max_cost_micros": 5})
    for path in ("/v1//reservations", "/v1/reservations/", "/v1/breakers/"):
        r = await app.request("POST", path, token=tok, content=body)
        assert r.status_code in (404, 405), (path, r.text)
        if r.status_code == 404:
            assert "trailing '/'" in r.json()["message"], r.text
    plain = await app.request("GET", "/v1/nothing-here", token=tok)
    assert "trailing" not in plain.json()["message"]
    assert await app.store.fetch("SELECT id FROM reservations") == []


async def test_a_release_with_a_body_is_refused_and_the_hold_is_kept(app_factory):
    """audit25 wire M2: a release carrying `actual_cost_micros` released the whole hold,
    and the settle after it was a 409: the money the agent reported was booked nowhere."""
    app = await app_factory()
    tok = await app.token("acme")
    body = {"scope": "acme/a/bot", "idempotency_key": "k", "max_cost_micros": 10_000}
    rid = (await app.request("POST", "/v1/reservations", token=tok, json=body)).json()[
        "reservation_id"
    ]
    r = await app.request(
        "POST", f"/v1/reservations/{rid}/release", token=tok, json={"actual_cost_micros": 4300}
    )
    assert r.status_code == 400 and r.json()["field"] == "actual_cost_micros", r.text
    assert "POST /v1/reservations/{id}/settle" in r.json()["message"]
    for junk in (b"[1]", b'"x"', b"not json"):
        r = await app.request("POST", f"/v1/reservations/{rid}/release", token=tok, content=junk)
        assert r.status_code == 400 and r.json()["field"] == "body", r.text
    settled = await app.request(
        "POST",
        f"/v1/reservations/{rid}/settle",
        token=tok,
        json={"actual_cost_micros": 4300, "outcome": "success"},
    )
    assert settled.status_code == 200 and settled.json()["charged_micros"] == 4300
    # what clients send for a call with no body still releases
    for nothing in (None, b"{}", b"null", b" "):
        key = f"k-{nothing!r}"
        body = {"scope": "acme/a/bot", "idempotency_key": key, "max_cost_micros": 10}
        rid = (await app.request("POST", "/v1/reservations", token=tok, json=body)).json()[
            "reservation_id"
        ]
        r = await app.request("POST", f"/v1/reservations/{rid}/release", token=tok, content=nothing)
        assert r.status_code == 200 and r.json()["state"] == "released", (nothing, r.text)


async def test_another_scheme_and_a_body_not_utf8_say_what_to_send(app_factory):
    """audit25 wire L1, L4, L5: `Authorization: Token <t>` was "missing token"; a latin-1
    body got Python's codec message; a 5,000-digit id spoke of amounts."""
    app = await app_factory()
    tok = await app.token("acme")
    for header in (f"Token {tok}", tok, f"Basic {tok}"):
        r = await app.request("GET", "/v1/breakers", headers={"Authorization": header})
        assert r.status_code == 401, r.text
        assert "read only as `Bearer <token>`" in r.json()["message"]
        assert tok.split("_", 3)[3] not in r.text
    assert (await app.request("GET", "/v1/breakers", token=tok)).status_code == 200
    for typo in ("All=1", "include_closed=1", "all=1&foo=1"):  # audit25 wire L2
        r = await app.request("GET", f"/v1/breakers?{typo}", token=tok)
        assert r.status_code == 400 and "takes one query parameter, all" in r.text, r.text
    r = await app.request("GET", "/v1/breakers?all=0&all=1", token=tok)
    assert r.status_code == 400 and r.json()["field"] == "all", r.text
    latin = '{"scope": "acme/a/bot", "stream": "caf\xe9", "items": ["x"]}'.encode("latin-1")
    r = await app.request("POST", "/v1/validations", token=tok, content=latin)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == (
        "the body is not UTF-8: send JSON encoded as UTF-8 (no other charset is read)"
    )
    long_id = (
        b'{"scope": "acme/a/bot", "stream": "s", "items": [{"id": '
        + b"9" * 5000
        + b', "text": "x"}]}'
    )
    r = await app.request("POST", "/v1/validations", token=tok, content=long_id)
    assert r.status_code == 400 and "amounts" not in r.text, r.text
    assert "4,300 digits or more" in r.json()["message"]
