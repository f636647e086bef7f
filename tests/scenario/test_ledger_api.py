"""The ledger through HTTP on a real server: every flow of DESIGN.md's table."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from guards.clock import ManualClock
from guards.tokens import revoke_token

POLICY = {
    "budgets": {
        "defaults": {"agent": {"day": "10.00"}, "conversation": {"total": "2.00"}},
        "scopes": {"acme": {"day": "200.00"}, "acme/alice/rss-bot": {"day": "5.00"}},
    }
}


async def reserve(app, token, scope, key, micros, **extra):
    body = {"scope": scope, "idempotency_key": key, "max_cost_micros": micros, **extra}
    return await app.request("POST", "/v1/reservations", token=token, json=body)


async def post_raw(app, token, raw, path="/v1/reservations"):
    """POST ``raw`` bytes as a JSON body (malformed on purpose, as a test needs)."""
    headers = {"Content-Type": "application/json"}
    return await app.request("POST", path, token=token, content=raw, headers=headers)


async def tree(app, token, scope):
    r = await app.request("GET", f"/v1/budgets/{scope}", token=token)
    assert r.status_code == 200, r.text
    return r.json()


def window(body, scope, name="day"):
    for level in body["levels"]:
        if level["scope"] == scope:
            return level["windows"][name]
    raise AssertionError(f"{scope} not in {body}")


async def test_reserve_settle_release_and_replays(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice")
    r = await reserve(app, tok, "acme/alice/rss-bot/c1", "k1", 1_000_000)
    assert r.status_code == 201
    first = r.json()
    assert first["held_micros"] == 1_000_000 and first["state"] == "held"
    assert first["expires_at"].endswith("Z")
    again = await reserve(app, tok, "acme/alice/rss-bot/c1", "k1", 1_000_000)
    assert again.status_code == 201 and again.json()["reservation_id"] == first["reservation_id"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in r.headers
    other = await reserve(app, tok, "acme/alice/rss-bot/c1", "k1", 2_000_000)
    assert other.status_code == 409 and other.json()["error"] == "conflict"

    rid = first["reservation_id"]
    body = {"actual_cost_micros": 250_000, "outcome": "success"}
    s1 = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=body)
    assert s1.status_code == 200
    assert s1.json() | {} == s1.json()
    assert (
        s1.json()["charged_micros"],
        s1.json()["released_micros"],
        s1.json()["overrun_micros"],
    ) == (
        250_000,
        750_000,
        0,
    )
    s2 = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=body)
    assert s2.status_code == 200 and s2.json() == s1.json()
    s3 = await app.request(
        "POST",
        f"/v1/reservations/{rid}/settle",
        token=tok,
        json={"actual_cost_micros": 1, "outcome": "success"},
    )
    assert s3.status_code == 409
    rel = await app.request("POST", f"/v1/reservations/{rid}/release", token=tok)
    assert rel.status_code == 409

    r2 = await reserve(app, tok, "acme/alice/rss-bot/c1", "k2", 300_000)
    rid2 = r2.json()["reservation_id"]
    rel2 = await app.request("POST", f"/v1/reservations/{rid2}/release", token=tok)
    assert rel2.status_code == 200 and rel2.json()["released_micros"] == 300_000
    assert (
        await app.request("POST", f"/v1/reservations/{rid2}/release", token=tok)
    ).status_code == 200
    late = await app.request("POST", f"/v1/reservations/{rid2}/settle", token=tok, json=body)
    assert late.status_code == 409

    t = await tree(app, tok, "acme/alice/rss-bot")
    day = window(t, "acme/alice/rss-bot")
    assert (
        day["limit_micros"],
        day["spent_micros"],
        day["held_micros"],
        day["remaining_micros"],
    ) == (
        5_000_000,
        250_000,
        0,
        4_750_000,
    )


async def test_estimate_is_priced_and_rounded_up(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    body = {
        "scope": "acme/alice/bot",
        "idempotency_key": "e1",
        "estimate": {"model": "claude-haiku-4-5", "input_tokens": 1, "max_output_tokens": 1},
    }
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 201 and r.json()["held_micros"] == 6  # $1 + $5 per M → 6 micros
    shouted = dict(body, idempotency_key="e1b")
    shouted["estimate"] = {"model": "Claude-Haiku-4-5", "input_tokens": 1, "max_output_tokens": 1}
    r = await app.request("POST", "/v1/reservations", token=tok, json=shouted)
    assert r.status_code == 201 and r.json()["held_micros"] == 6  # a model name in any case
    estimate = {"model": "gpt-99", "input_tokens": 1, "max_output_tokens": 1}
    unknown = dict(body, idempotency_key="e2", estimate=estimate)
    r = await app.request("POST", "/v1/reservations", token=tok, json=unknown)
    assert r.status_code == 400 and r.json()["field"] == "estimate.model"
    rid = (
        await app.request(
            "POST", "/v1/reservations", token=tok, json=dict(body, idempotency_key="e3")
        )
    ).json()["reservation_id"]
    usage = {"usage": {"model": "claude-haiku-4-5", "input_tokens": 1000, "output_tokens": 100}}
    s = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=usage)
    assert s.status_code == 200
    assert s.json()["charged_micros"] == 1500 and s.json()["overrun_micros"] == 1494


async def test_a_fraction_of_a_micro_is_held_and_charged_as_a_whole_one(app_factory):
    """audit27 mutation F5: prices that come out between two micros round up, never down."""
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    # gpt-4o-mini: 10 x $0.15 + 10 x $0.60 per M tokens = 7.5 micros
    est = {"model": "gpt-4o-mini", "input_tokens": 10, "max_output_tokens": 10}
    body = {"scope": "acme/alice/bot", "idempotency_key": "half", "estimate": est}
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 201 and r.json()["held_micros"] == 8, r.text
    # gpt-5-nano: 1 x $0.05 per M tokens = 0.05 micros, charged as 1
    usage = {"model": "gpt-5-nano", "input_tokens": 1, "output_tokens": 0}
    settle = f"/v1/reservations/{r.json()['reservation_id']}/settle"
    s = await app.request("POST", settle, token=tok, json={"usage": usage})
    assert s.status_code == 200 and s.json()["charged_micros"] == 1, s.text
    assert s.json()["released_micros"] == 7
    spent = window(await tree(app, tok, "acme/alice/bot"), "acme/alice/bot")["spent_micros"]
    assert spent == 1


async def test_200_concurrent_reservations_against_room_for_50(app_factory):
    app = await app_factory({"budgets": {"scopes": {"acme/alice/bot": {"day": "0.50"}}}})
    tok = await app.token("acme/alice/bot")
    results = await asyncio.gather(
        *(reserve(app, tok, "acme/alice/bot", f"c{i}", 10_000) for i in range(200))
    )
    codes = [r.status_code for r in results]
    assert codes.count(201) == 50 and codes.count(402) == 150
    t = await tree(app, tok, "acme/alice/bot")
    assert window(t, "acme/alice/bot")["held_micros"] == 500_000


@pytest.mark.parametrize(
    ("scope", "level", "at"),
    [
        ("acme/alice/rss-bot/c1", "conversation", "acme/alice/rss-bot/c1"),
        ("acme/alice/rss-bot", "agent", "acme/alice/rss-bot"),
        ("acme/bob/bot", "namespace", "acme"),
    ],
)
async def test_402_names_the_tightest_level(app_factory, scope, level, at):
    policy = {
        "budgets": {
            "defaults": {"conversation": {"total": "2.00"}},
            "scopes": {"acme": {"day": "6.00"}, "acme/alice/rss-bot": {"day": "5.00"}},
        }
    }
    app = await app_factory(policy)
    tok = await app.token("acme")
    if level == "namespace":
        assert (await reserve(app, tok, "acme/carol/x", "fill", 5_500_000)).status_code == 201
    r = await reserve(app, tok, scope, "big", 3_000_000 if level == "conversation" else 5_500_000)
    assert r.status_code == 402
    body = r.json()
    assert body["error"] == "budget_exceeded"
    assert (body["level"], body["scope"]) == (level, at)
    assert {"window", "limit_micros", "spent_micros", "held_micros"} <= body.keys()
    assert "/agent budget set" in body["message"]


async def test_a_conversation_at_its_cap_does_not_stop_its_agent(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    assert (await reserve(app, tok, "acme/alice/rss-bot/c1", "a", 2_000_000)).status_code == 201
    refused = await reserve(app, tok, "acme/alice/rss-bot/c1", "b", 1)
    assert refused.status_code == 402 and refused.json()["level"] == "conversation"
    assert (await reserve(app, tok, "acme/alice/rss-bot/c2", "c", 1_000_000)).status_code == 201
    assert (await reserve(app, tok, "acme/alice/rss-bot", "d", 1_000_000)).status_code == 201


async def test_token_acts_only_in_its_subtree(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice")
    r = await reserve(app, tok, "acme/bob/bot", "x", 1000)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert (await app.request("GET", "/v1/budgets/acme", token=tok)).status_code == 403
    bob = await app.token("acme/bob")
    mine = (await reserve(app, tok, "acme/alice/bot", "y", 1000)).json()["reservation_id"]
    stolen = await app.request(
        "POST", f"/v1/reservations/{mine}/settle", token=bob, json={"actual_cost_micros": 0}
    )
    assert stolen.status_code == 403
    assert "acme/alice" not in stolen.text  # another tenant's id does not reveal its scope
    assert stolen.json()["scope"] == f"reservation {mine}"
    rows = await app.store.fetch("SELECT kind, scope FROM events WHERE kind = 'scope_violation'")
    assert [r["scope"] for r in rows] == ["acme/bob/bot", "acme", "acme/alice/bot"]
    assert (await reserve(app, None, "acme/alice/bot", "z", 1000)).status_code == 401
    assert (await reserve(app, "ns_tok_nope_x", "acme/alice/bot", "z", 1000)).status_code == 401


async def test_expired_hold_stops_counting_and_a_late_settle_is_charged_and_flagged(app_factory):
    app = await app_factory({"budgets": {"scopes": {"acme/a/bot": {"day": "1.00"}}}})
    tok = await app.token("acme")
    rid = (await reserve(app, tok, "acme/a/bot", "h", 900_000, ttl_seconds=1)).json()[
        "reservation_id"
    ]
    assert (await reserve(app, tok, "acme/a/bot", "h2", 200_000)).status_code == 402
    app.clock.advance(1.0)  # no sweeper has run: the hold stops counting at this instant
    assert window(await tree(app, tok, "acme/a/bot"), "acme/a/bot")["held_micros"] == 0
    s = await app.request(
        "POST", f"/v1/reservations/{rid}/settle", token=tok, json={"actual_cost_micros": 700_000}
    )
    assert s.status_code == 200
    assert s.json()["charged_micros"] == 700_000
    assert s.json()["overrun_micros"] == 700_000 and s.json()["late"] is True
    day = window(await tree(app, tok, "acme/a/bot"), "acme/a/bot")
    assert (day["spent_micros"], day["held_micros"]) == (700_000, 0)
    kinds = {r["kind"] for r in await app.store.fetch("SELECT kind FROM events")}
    assert {"hold_expired", "overrun"} <= kinds


async def test_charge_over_the_ceiling_is_kept_and_flagged(app_factory):
    app = await app_factory({"budgets": {"scopes": {"acme/a/bot": {"day": "1.00"}}}})
    tok = await app.token("acme")
    rid = (await reserve(app, tok, "acme/a/bot", "h", 900_000)).json()["reservation_id"]
    s = await app.request(
        "POST", f"/v1/reservations/{rid}/settle", token=tok, json={"actual_cost_micros": 1_300_000}
    )
    assert s.json()["charged_micros"] == 1_300_000 and s.json()["overrun_micros"] == 400_000
    day = window(await tree(app, tok, "acme/a/bot"), "acme/a/bot")
    assert day["spent_micros"] == 1_300_000 and day["remaining_micros"] == 0


GOOD = {"scope": "acme/alice/bot", "idempotency_key": "k", "max_cost_micros": 1000}
BAD_BODIES = [
    ({**GOOD, "max_cost_micros": -5}, "max_cost_micros"),
    ({**GOOD, "max_cost_micros": 0}, "max_cost_micros"),
    ({**GOOD, "max_cost_micros": "1000"}, "max_cost_micros"),
    ({**GOOD, "max_cost_micros": 1.5}, "max_cost_micros"),
    ({**GOOD, "max_cost_micros": 10**30}, "max_cost_micros"),
    ({**GOOD, "max_cost_micros": True}, "max_cost_micros"),
    ({k: v for k, v in GOOD.items() if k != "scope"}, "scope"),
    ({**GOOD, "scope": "acme/../etc"}, "scope"),
    ({**GOOD, "scope": "acme/alice"}, "scope"),
    ({**GOOD, "scope": "a/b/c/d/e"}, "scope"),
    ({**GOOD, "scope": "acme/al ice/bot"}, "scope"),
    ({**GOOD, "scope": 42}, "scope"),
    ({**GOOD, "idempotency_key": ""}, "idempotency_key"),
    ({k: v for k, v in GOOD.items() if k != "idempotency_key"}, "idempotency_key"),
    ({**GOOD, "surprise": 1}, "surprise"),
    ({**GOOD, "ttl_seconds": 0}, "ttl_seconds"),
    ({**GOOD, "ttl_seconds": 86_401}, "ttl_seconds"),
    ({**GOOD, "ttl_seconds": 10**30}, "ttl_seconds"),
    (
        {
            **GOOD,
            "estimate": {"model": "claude-haiku-4-5", "input_tokens": 1, "max_output_tokens": 1},
        },
        "body",
    ),
    ({"scope": "acme/alice/bot", "idempotency_key": "k"}, "body"),
    # audit24 L2: a null amount is the field's fault, not the body's
    ({**GOOD, "max_cost_micros": None}, "max_cost_micros"),
    ({**GOOD, "max_cost_micros": None, "estimate": None}, "max_cost_micros"),
    # a model name is shown to operators: nothing that could ping or forge a line (audit11)
    ({**GOOD, "model": "<!channel>"}, "model"),
    ({**GOOD, "model": "gpt-4o\nfake: all clear"}, "model"),
    ({**GOOD, "model": "gpt 4o"}, "model"),
    ({**GOOD, "model": "gpt-4o\n"}, "model"),
    ({**GOOD, "model": "\tgpt-4o"}, "model"),
    ({**GOOD, "model": "gpt-4o\x85"}, "model"),
    ({**GOOD, "model": "gpt-4o\u2028"}, "model"),
    ({**GOOD, "model": "-gpt-4o"}, "model"),
    ({**GOOD, "model": "x" * 201}, "model"),
    (
        {
            "scope": "acme/alice/bot",
            "idempotency_key": "k",
            "estimate": {"model": "<http://evil|x>", "input_tokens": 1, "max_output_tokens": 1},
        },
        "estimate.model",
    ),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
async def test_bad_reservation_input_is_a_400_naming_the_field_and_changes_nothing(
    app_factory, body, field
):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    before = await tree(app, tok, "acme")
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_input"
    assert r.json()["field"].startswith(field) if field != "body" else r.json()["message"]
    assert await tree(app, tok, "acme") == before
    assert (await app.store.fetch("SELECT COUNT(*) AS n FROM reservations"))[0]["n"] == 0


@pytest.mark.parametrize(
    "raw",
    [b"not json", b'{"scope": NaN}', b"[1, 2]", b"", b'{"max_cost_micros": Infinity}', b"\xff\xfe"],
)
async def test_non_json_bodies_are_400(app_factory, raw):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    r = await post_raw(app, tok, raw)
    assert r.status_code == 400 and r.json()["field"] == "body"


async def test_a_body_with_a_utf8_byte_order_mark_is_read(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    raw = b"\xef\xbb\xbf" + json.dumps(GOOD).encode()
    r = await post_raw(app, tok, raw)
    assert r.status_code == 201, r.text


async def test_oversized_body_is_refused(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    big = {**GOOD, "task_id": "x" * (2 * 1024 * 1024)}
    r = await app.request("POST", "/v1/reservations", token=tok, json=big)
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"


async def test_a_stop_does_not_wait_on_the_body_of_a_413(app_factory):
    """closing27 (H1 item 4): a connection refused 413 on its Content-Length, whose client
    sent a part of the body (or none) and waits, was read on by aiohttp, and a stop waited
    the server's whole shutdown grace (2.5 s) on it. The answer still comes first."""
    from bot.app import SHUTDOWN_SECONDS

    app = await app_factory(POLICY)
    tok = await app.token("acme")
    reader, writer = await asyncio.open_connection("127.0.0.1", app.ns.port)
    head = (
        "POST /v1/reservations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {tok}\r\nContent-Length: {2 * 1024 * 1024}\r\n\r\n"
    )
    writer.write(head.encode() + b'{"scope": "acme/' + b"x" * 1000)
    assert (await reader.readline()).startswith(b"HTTP/1.1 413 ")
    loop = asyncio.get_running_loop()
    began = loop.time()
    await app.ns.stop()
    assert loop.time() - began < SHUTDOWN_SECONDS / 2  # (0.1 s here; 2.5 s before)
    await reader.read()  # the server closed it: the rest of the body was not waited for
    writer.close()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"actual_cost_micros": -1}, "actual_cost_micros"),
        ({"actual_cost_micros": 10**30}, "actual_cost_micros"),
        ({"actual_cost_micros": 5, "outcome": "meh"}, "outcome"),
        ({}, "body"),
        ({"actual_cost_micros": None}, "actual_cost_micros"),
        ({"usage": None, "outcome": "success"}, "usage"),
        (
            {
                "actual_cost_micros": 5,
                "usage": {"model": "gpt-4o", "input_tokens": 1, "output_tokens": 1},
            },
            "body",
        ),
        (
            {"usage": {"model": "gpt-4o", "input_tokens": -1, "output_tokens": 1}},
            "usage.input_tokens",
        ),
        (
            {"usage": {"model": "<!here>", "input_tokens": 1, "output_tokens": 1}},
            "usage.model",
        ),
    ],
)
async def test_bad_settle_input_changes_nothing(app_factory, body, field):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    rid = (await reserve(app, tok, "acme/alice/bot", "k", 5000)).json()["reservation_id"]
    r = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=body)
    assert r.status_code == 400
    if field != "body":
        assert r.json()["field"] == field
    state = await app.store.fetch("SELECT state FROM reservations WHERE id = ?", (rid,))
    assert state[0]["state"] == "held"


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        " GPT-4o ",
        "anthropic/claude-3.5-sonnet",
        "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
        "llama3:8b",
        "ft:gpt-4o-mini:acme@bot",
        "meta-llama/Llama-3-70b-chat-hf",
    ],
)
async def test_every_provider_s_model_names_are_taken(app_factory, model):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    r = await app.request("POST", "/v1/reservations", token=tok, json={**GOOD, "model": model})
    assert r.status_code == 201, r.text


async def test_a_model_name_is_kept_without_the_spaces_around_it(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    r = await app.request("POST", "/v1/reservations", token=tok, json={**GOOD, "model": " gpt-4o "})
    assert r.status_code == 201, r.text
    rows = await app.store.fetch("SELECT model FROM reservations")
    assert [row[0] for row in rows] == ["gpt-4o"]  # audit13 fuzz F5


async def test_a_field_given_twice_is_a_400_naming_it(app_factory):
    """audit13 fuzz F3: json kept the last of two, so the ledger held 7777 for "1"."""
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    before = await tree(app, tok, "acme")
    for raw, field in (
        (
            b'{"scope": "acme/a/bot", "idempotency_key": "k", "max_cost_micros": 1,'
            b' "max_cost_micros": 7777}',
            "max_cost_micros",
        ),
        (
            b'{"scope": "acme/a/bot", "scope": "acme/b/bot", "idempotency_key": "k",'
            b' "max_cost_micros": 1}',
            "scope",
        ),
        (
            b'{"scope": "acme/a/bot", "idempotency_key": "k", "estimate": {"model": "gpt-4o",'
            b' "model": "o3", "input_tokens": 1, "max_output_tokens": 1}}',
            "estimate.model",  # where it is (review13 L5)
        ),
        (b'{"items": [{"id": "a", "id": "b"}]}', "items.0.id"),
    ):
        r = await post_raw(app, tok, raw)
        assert r.status_code == 400, r.text
        assert r.json()["field"] == field
        assert r.json()["message"] == f"{field}: given twice; send each field once"
    assert await tree(app, tok, "acme") == before


async def test_a_compressed_body_is_refused_not_inflated(app_factory):
    """audit13 fuzz F1: a body labelled gzip but plain was a 500 with two tracebacks."""
    import gzip

    app = await app_factory(POLICY)
    tok = await app.token("acme")
    before = await tree(app, tok, "acme")
    plain = json.dumps(GOOD).encode()
    for encoding, raw in (
        ("gzip", plain),
        ("gzip", gzip.compress(plain)),
        ("br", plain),
        ("deflate", b"[" * 400_000),
    ):
        for path in ("/v1/reservations", "/v1/heartbeats", "/v1/reservations/res_x/release"):
            headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
            r = await app.request("POST", path, token=tok, content=raw, headers=headers)
            assert r.status_code == 415, (encoding, path, r.text)
            assert r.json()["error"] == "unsupported_encoding"
            assert "send the body uncompressed" in r.json()["message"]
    assert await tree(app, tok, "acme") == before
    gz = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    r = await app.request("POST", "/v1/reservations", token="nope", content=plain, headers=gz)
    assert r.status_code == 401  # a bad token learns nothing of what the API checks
    headers = {"Content-Type": "application/json", "Content-Encoding": "identity"}
    r = await app.request("POST", "/v1/reservations", token=tok, content=plain, headers=headers)
    assert r.status_code == 201, r.text


async def test_two_authorization_headers_are_refused(app_factory):
    """audit13 fuzz F4: the first of two was used without a word."""
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    for first, second in ((tok, "Bearer nope"), ("Bearer nope", tok)):
        headers = [
            ("Authorization", f"Bearer {first}" if first == tok else first),
            ("Authorization", f"Bearer {second}" if second == tok else second),
        ]
        r = await app.client.post("/v1/reservations", json=GOOD, headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["message"].startswith("two Authorization headers: send one")
    assert await app.store.fetch("SELECT id FROM reservations") == []


async def test_unknown_reservation_and_routes(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    r = await app.request(
        "POST", "/v1/reservations/res_nope/settle", token=tok, json={"actual_cost_micros": 1}
    )
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await app.request("GET", "/v1/nothing-here", token=tok)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await app.request("GET", "/v1/budgets/acme/al%20ice", token=tok)
    assert r.status_code == 400 and r.json()["field"] == "scope"


async def test_healthz_and_metrics(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    await reserve(app, tok, "acme/alice/bot", "m", 1000)
    assert (await app.client.get("/healthz")).json()["status"] == "ok"
    text = (await app.client.get("/metrics")).text
    assert 'nightshift_reservations_total{result="granted"} 1.0' in text
    assert "nightshift_http_request_seconds_bucket" in text
    # the writer's counts since the start are counters, read at the scrape (audit10 L3)
    assert "# TYPE nightshift_write_batches_total counter" in text
    batches = [line for line in text.splitlines() if line.startswith("nightshift_write_batches_")]
    assert batches and float(batches[0].split()[-1]) >= 1  # the reservation's batch, at least
    assert "# TYPE nightshift_batched_writes_total counter" in text
    # what says Nightshift itself is unwell (audit11 day-2 M3)
    assert "nightshift_write_waiting 0.0" in text
    assert "nightshift_storage_refusals_total 0.0" in text
    last = [line for line in text.splitlines() if line.startswith("nightshift_last_commit_")]
    assert last and float(last[0].split()[-1]) > 1.7e9
    assert "process_resident_memory_bytes" in text and "process_open_fds" in text


async def test_a_deeply_nested_body_is_a_400_not_a_crash(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    raw = b'{"scope": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for path in ("/v1/reservations", "/v1/validations", "/v1/route", "/v1/heartbeats"):
        r = await post_raw(app, tok, raw, path)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["field"] == "body" and "nested" in r.json()["message"]


async def test_a_request_without_a_token_is_401_before_its_body_is_read(app_factory):
    app = await app_factory(POLICY)
    for path in ("/v1/reservations", "/v1/reservations/res_x/settle", "/v1/validations"):
        r = await post_raw(app, None, b"junk", path)
        assert r.status_code == 401, (path, r.text)
        assert "nightshift token create" in r.json()["message"]
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="nightshift"'  # RFC 9110


async def test_edge_inputs_of_audit10_get_a_400_that_helps(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    huge = b'{"scope": "acme/a/b", "idempotency_key": "k", "max_cost_micros": ' + b"9" * 5000 + b"}"
    r = await post_raw(app, tok, huge)
    assert r.status_code == 400 and r.json()["field"] == "body"
    assert "too long" in r.json()["message"] and "sys." not in r.json()["message"]
    for said, status in (("banana", 400), ("0", 200), ("true", 200), ("1", 200)):
        r = await app.request("GET", f"/v1/breakers?all={said}", token=tok)
        assert r.status_code == status, (said, r.text)
    assert (await app.request("GET", "/v1/breakers?all=2", token=tok)).json()["field"] == "all"
    r = await app.request("GET", "/v1/budgets/acme/alice/%0a", token=tok)
    assert r.status_code == 400 and r.json()["field"] == "scope", r.text


async def test_wrong_method_is_405_with_allow_and_a_message_that_helps(app_factory):
    app = await app_factory(POLICY)
    r = await app.client.put("/v1/reservations")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    assert r.headers["Allow"] == "POST" and "takes POST" in r.json()["message"]
    r = await app.client.get("/v1/nothing")
    assert r.status_code == 404 and "DESIGN" not in r.json()["message"]


async def test_an_estimate_that_prices_to_nothing_names_the_estimate(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    est = {"model": "claude-haiku-4-5", "input_tokens": 0, "max_output_tokens": 0}
    body = {"scope": "acme/alice/bot", "idempotency_key": "z", "estimate": est}
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 400 and r.json()["field"] == "estimate", r.text
    assert "max_cost_micros" in r.json()["message"]  # what to send instead


async def test_an_estimate_of_a_free_model_holds_one_micro(app_factory):
    """audit16 money L2: a routed model priced at $0 (a local one) could not be reserved by
    estimate, so the README's route, estimate, reserve flow broke for it."""
    app = await app_factory({**POLICY, "prices": {"llama3:8b": {"input": 0, "output": 0}}})
    tok = await app.token("acme")
    est = {"model": "llama3:8b", "input_tokens": 1000, "max_output_tokens": 1000}
    body = {"scope": "acme/alice/bot", "idempotency_key": "free", "estimate": est}
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["held_micros"] == 1
    usage = {"model": "llama3:8b", "input_tokens": 900, "output_tokens": 700}
    rid = r.json()["reservation_id"]
    s = await app.request(
        "POST", f"/v1/reservations/{rid}/settle", token=tok, json={"usage": usage}
    )
    assert s.status_code == 200 and s.json()["charged_micros"] == 0, s.text


async def test_a_402_message_shows_why_when_cents_would_hide_it(app_factory):
    app = await app_factory({"budgets": {"scopes": {"acme/bob": {"day": "1.00"}}}})
    tok = await app.token("acme")
    assert (await reserve(app, tok, "acme/bob/x", "a", 102)).status_code == 201
    r = await reserve(app, tok, "acme/bob/x", "b", 999_899)
    assert r.status_code == 402 and r.json()["held_micros"] == 102
    message = r.json()["message"]
    assert "$0.999899" in message and "$0.999898 left" in message, message
    # the $0.0001 held, and the day's end (audit28 C2 L1)
    assert (
        "wait for running calls to settle or until it resets at 00:00 UTC (in 24h), or" in message
    )
    r = await reserve(app, tok, "acme/bob/x", "c", 2_000_000)
    assert "more than its whole limit of $1.00" in r.json()["message"]
    assert "wait" not in r.json()["message"]  # no settle can make $2.00 fit in $1.00
    assert "raise it with /agent budget set acme/bob <amount> day" in r.json()["message"]


async def test_every_refused_reservation_is_counted_in_the_metrics(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    for body in (b"junk", b"[]", json.dumps({**GOOD, "max_cost_micros": -1}).encode()):
        r = await post_raw(app, tok, body)
        assert r.status_code == 400
    # a bad token with a bad body is answered 401, and counted so (audit16 observability L1)
    r = await post_raw(app, "ns_tok_nope_nope", b"{}")
    assert r.status_code == 401
    text = (await app.client.get("/metrics")).text
    assert 'nightshift_reservations_total{result="invalid_input"} 3.0' in text
    assert 'nightshift_reservations_total{result="unauthorized"} 1.0' in text


async def test_conflicts_say_what_happened_and_what_to_do(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    rid = (await reserve(app, tok, "acme/alice/bot", "k", 5000)).json()["reservation_id"]
    settle = f"/v1/reservations/{rid}/settle"
    await app.request("POST", settle, token=tok, json={"actual_cost_micros": 4300})
    r = await app.request("POST", settle, token=tok, json={"actual_cost_micros": 1})
    assert r.status_code == 409 and r.json()["state"] == "settled"
    assert "charged 4300 micros, outcome success" in r.json()["message"]
    assert "reserve again" in r.json()["message"]
    # the same amount with another outcome is another settle, not a replay (audit27 F3)
    failed = {"actual_cost_micros": 4300, "outcome": "failure", "error": "boom"}
    r = await app.request("POST", settle, token=tok, json=failed)
    assert r.status_code == 409 and r.json()["state"] == "settled", r.text
    assert "charged 4300 micros, outcome success" in r.json()["message"]
    # and so is the same usage with another outcome
    rid = (await reserve(app, tok, "acme/alice/bot", "u", 5000)).json()["reservation_id"]
    settle = f"/v1/reservations/{rid}/settle"
    usage = {"model": "claude-haiku-4-5", "input_tokens": 1000, "output_tokens": 100}
    s = await app.request("POST", settle, token=tok, json={"usage": usage})
    assert s.status_code == 200 and s.json()["charged_micros"] == 1500, s.text
    again = {"usage": usage, "outcome": "failure", "error": "boom"}
    r = await app.request("POST", settle, token=tok, json=again)
    assert r.status_code == 409 and r.json()["state"] == "settled", r.text
    assert "charged 1500 micros, outcome success" in r.json()["message"]


async def test_sending_the_default_ttl_is_the_same_request_as_leaving_it_out(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    first = await reserve(app, tok, "acme/alice/bot", "t", 1000)
    again = await reserve(app, tok, "acme/alice/bot", "t", 1000, ttl_seconds=600)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true", again.text
    assert again.json()["reservation_id"] == first.json()["reservation_id"]
    other = await reserve(app, tok, "acme/alice/bot", "t", 1000, ttl_seconds=60)
    assert other.status_code == 409


async def test_long_headers_and_paths_still_get_json_errors(app_factory):
    app = await app_factory(POLICY)
    r = await app.client.get("/v1/budgets/acme", headers={"Authorization": "Bearer " + "x" * 9000})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized", r.text
    tok = await app.token("acme")
    r = await app.request("GET", "/v1/budgets/acme/" + "a" * 9000, token=tok)
    assert r.status_code == 400 and r.json()["field"] == "scope"


async def test_a_key_names_one_call_of_its_token(app_factory):
    """Issue 2: idempotency per token + key (audit24 H1: a key was shared by every token
    of a scope, so a second token's call got the first one's hold, and its settle of
    money really spent was refused 409)."""
    app = await app_factory(POLICY)
    parent, child = await app.token("acme"), await app.token("acme/alice")
    first = await reserve(app, child, "acme/alice/bot", "call-1", 500)
    assert first.status_code == 201
    again = await reserve(app, child, "acme/alice/bot", "call-1", 500)  # a retry
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["reservation_id"] == first.json()["reservation_id"]
    assert (await reserve(app, child, "acme/alice/bot", "call-1", 900)).status_code == 409
    # the same key from another token is another call, with its own hold and settle
    other = await reserve(app, parent, "acme/alice/bot", "call-1", 700)
    assert other.status_code == 201 and "Idempotent-Replayed" not in other.headers, other.text
    assert other.json()["reservation_id"] != first.json()["reservation_id"]
    for tok, r, cost in ((child, first, 100), (parent, other, 600)):
        rid = r.json()["reservation_id"]
        body = {"actual_cost_micros": cost, "outcome": "success"}
        settled = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=body)
        assert settled.status_code == 200 and settled.json()["charged_micros"] == cost
    assert (
        window(await tree(app, parent, "acme/alice/bot"), "acme/alice/bot")["spent_micros"] == 700
    )
    # a key names one call of a token: the same token may not reuse it in another scope
    reused = await reserve(app, child, "acme/alice/other", "call-1", 500)
    assert reused.status_code == 409
    assert "used by this token for a call in acme/alice/bot" in reused.json()["message"]
    # a rotated token's retry is a call of the new token: a hold of its own (the old
    # one's runs out at its TTL, or is released by whoever holds its id)
    rid = first.json()["reservation_id"]
    old_id = (await app.store.fetch("SELECT token_id FROM reservations WHERE id = ?", (rid,)))[0][0]
    await app.store.write(lambda tx: revoke_token(tx, token_id=old_id))
    app.tokens.pop("acme/alice")
    fresh = await app.token("acme/alice")
    retry = await reserve(app, fresh, "acme/alice/bot", "call-1", 500)
    assert retry.status_code == 201 and retry.json()["reservation_id"] not in (
        rid,
        other.json()["reservation_id"],
    )


@pytest.mark.parametrize(
    ("method", "path", "bodies"),
    [
        (
            "POST",
            "/v1/reservations",
            [{}, {"scope": "acme", "idempotency_key": "k", "max_cost_micros": 1}],
        ),
        ("POST", "/v1/reservations/res_x/settle", [{}]),
        ("POST", "/v1/validations", [{}, {"scope": "acme/a/b", "stream": "s", "items": [5]}]),
        ("POST", "/v1/route", [{}, {"scope": "acme", "task": "x"}]),
        ("POST", "/v1/heartbeats", [{}, {"scope": "acme"}]),
        ("GET", "/v1/budgets/acme/not%20a%20scope", [None]),
    ],
)
async def test_a_bad_token_with_bad_input_is_401_and_learns_nothing(
    app_factory, method, path, bodies
):
    app = await app_factory(POLICY)
    good = await app.token("acme")
    for body in bodies:
        r = await app.request(method, path, token="not-a-token", json=body)
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "unauthorized"
        assert "claude" not in r.text and "field" not in r.json()
        assert (await app.request(method, path, token=good, json=body)).status_code == 400


async def test_a_ttl_past_the_policys_most_is_refused_in_one_words_whatever_its_size(app_factory):
    """audit19 hostile: 86401 read "may be at most 86400", 10^9 "Input should be less than
    or equal to 31622400"."""
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    for ttl in (86_401, 10**9, 10**30):
        r = await app.request(
            "POST", "/v1/reservations", token=tok, json={**GOOD, "ttl_seconds": ttl}
        )
        assert r.status_code == 400 and r.json()["field"] == "ttl_seconds", r.text
        assert r.json()["message"] == (
            "ttl_seconds may be at most 86400 (the policy's reservations.max_ttl_seconds)"
        )


async def test_a_retry_after_the_default_ttl_changed_is_still_the_same_request(
    app_factory, tmp_path
):
    """audit21 money M2: the default TTL was folded into the fingerprint, so a reload
    that changed it made a byte-identical retry a 409 (and an unused hold sat there)."""
    db, clock = tmp_path / "ttl.db", ManualClock()
    app = await app_factory({**POLICY, "reservations": {"ttl_seconds": 601}}, db=db, clock=clock)
    tok = await app.token("acme")
    first = await reserve(app, tok, "acme/alice/bot", "t", 1000, ttl_seconds=601)
    assert first.status_code == 201
    await app.ns.stop()
    app = await app_factory({**POLICY, "reservations": {"ttl_seconds": 600}}, db=db, clock=clock)
    again = await reserve(app, tok, "acme/alice/bot", "t", 1000, ttl_seconds=601)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true", again.text
    assert again.json()["reservation_id"] == first.json()["reservation_id"]
    # without it, the call asks for today's default TTL: another request
    assert (await reserve(app, tok, "acme/alice/bot", "t", 1000)).status_code == 409
    # and the other way (review22 L6): left out when the default was 600, now 601 aloud
    # asks another TTL; 600 aloud asks the same
    plain = await reserve(app, tok, "acme/alice/bot", "u", 1000)
    await app.ns.stop()
    app = await app_factory({**POLICY, "reservations": {"ttl_seconds": 601}}, db=db, clock=clock)
    assert (
        await reserve(app, tok, "acme/alice/bot", "u", 1000, ttl_seconds=601)
    ).status_code == 409
    same = await reserve(app, tok, "acme/alice/bot", "u", 1000, ttl_seconds=600)
    assert same.status_code == 201 and same.json() == plain.json()


async def settled_by_usage_then_restarted(
    app_factory: Any, tmp_path: Any, model: str, before: dict[str, Any], after: dict[str, Any]
) -> tuple[Any, str, str, dict[str, Any], dict[str, Any]]:
    """A call settled by its usage under the policy ``before``, then the app restarted
    under ``after``: (the app, the token, the settle's path, the usage body, its answer)."""
    db, clock = tmp_path / "usage.db", ManualClock()
    app = await app_factory({**POLICY, **before}, db=db, clock=clock)
    tok = await app.token("acme")
    rid = (await reserve(app, tok, "acme/alice/bot", "k", 10_000)).json()["reservation_id"]
    usage = {"usage": {"model": model, "input_tokens": 1000, "output_tokens": 500}}
    settle = f"/v1/reservations/{rid}/settle"
    first = await app.request("POST", settle, token=tok, json=usage)
    assert first.status_code == 200, first.text
    await app.ns.stop()
    app = await app_factory({**POLICY, **after}, db=db, clock=clock)
    return app, tok, settle, usage, first.json()


async def test_the_same_usage_settle_after_a_price_change_gets_the_same_answer(
    app_factory, tmp_path
):
    """audit21 money M1: the settle's replay compared the priced amount, so the resend of
    a settle whose answer was lost, after a price change, was a 409 for a call charged once."""
    haiku = "claude-haiku-4-5"
    app, tok, settle, usage, first = await settled_by_usage_then_restarted(
        app_factory,
        tmp_path,
        haiku,
        {"prices": {haiku: {"input": "0.8", "output": "4"}}},
        {"prices": {haiku: {"input": "0.9", "output": "4"}}},
    )
    assert first["charged_micros"] == 2800
    again = await app.request("POST", settle, token=tok, json=usage)
    assert again.status_code == 200 and again.json() == first, again.text
    # another usage, or the same as micros of another amount, is another settle
    other = {"usage": {**usage["usage"], "output_tokens": 501}}
    assert (await app.request("POST", settle, token=tok, json=other)).status_code == 409
    micros = {"actual_cost_micros": 2900}
    assert (await app.request("POST", settle, token=tok, json=micros)).status_code == 409
    same = {"actual_cost_micros": 2800}  # what it was charged, as micros: the same settle
    assert (await app.request("POST", settle, token=tok, json=same)).status_code == 200


async def test_the_same_usage_settle_after_its_model_lost_its_price_gets_the_same_answer(
    app_factory, tmp_path
):
    """review22 L7: with the model's price gone from the policy, the resend was a 400."""
    local = {"prices": {"my-local-llm": {"input": "1", "output": "2"}}}
    app, tok, settle, usage, first = await settled_by_usage_then_restarted(
        app_factory, tmp_path, "my-local-llm", local, {}
    )
    assert first["charged_micros"] == 2000
    again = await app.request("POST", settle, token=tok, json=usage)
    assert again.status_code == 200 and again.json() == first, again.text
    other = {"usage": {**usage["usage"], "output_tokens": 501}}  # another: no price for it
    r = await app.request("POST", settle, token=tok, json=other)
    assert r.status_code == 400 and r.json()["field"] == "usage.model"


async def spent_then_asked_after_a_restart(
    app_factory: Any, tmp_path: Any, window_name: str, spent_at: float, asked_at: float
) -> tuple[Any, str, Any]:
    """$0.80 spent at ``spent_at`` under a $1.00 ``window_name`` limit of acme/a; the app
    restarted (the sums reload from the day rows) and $0.30 asked at ``asked_at``:
    (the app, the token, the answer)."""
    policy = {"timezone": "UTC", "budgets": {"scopes": {"acme/a": {window_name: "1.00"}}}}
    db, clock = tmp_path / f"{window_name}.db", ManualClock(spent_at)
    app = await app_factory(policy, db=db, clock=clock)
    tok = await app.token("acme")
    rid = (await reserve(app, tok, "acme/a/bot", "k1", 800_000)).json()["reservation_id"]
    body = {"actual_cost_micros": 800_000}
    s = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=body)
    assert s.status_code == 200, s.text
    await app.ns.stop()
    clock.set(asked_at)
    app = await app_factory(policy, db=db, clock=clock)
    return app, tok, await reserve(app, tok, "acme/a/bot", "k2", 300_000)


async def test_a_month_s_spend_on_its_31st_still_counts_after_a_restart(app_factory, tmp_path):
    """audit27 mutation F1: the month's sum reloads from its days; the 31st is one of them."""
    jan_31_noon = 1_769_860_800.0  # Sat 2026-01-31T12:00Z
    app, tok, r = await spent_then_asked_after_a_restart(
        app_factory, tmp_path, "month", jan_31_noon, jan_31_noon + 3600
    )
    assert r.status_code == 402, r.text
    assert (r.json()["scope"], r.json()["window"]) == ("acme/a", "month")
    assert r.json()["spent_micros"] == 800_000
    month = window(await tree(app, tok, "acme/a"), "acme/a", "month")
    assert (month["period"], month["spent_micros"]) == ("2026-01", 800_000)


async def test_a_week_across_new_year_keeps_its_spend_after_a_restart(app_factory, tmp_path):
    """audit27 mutation F2: Mon 29 Dec 2025 is in ISO week 2026-W01, not 2025-W01."""
    mon_dec_29_noon = 1_767_009_600.0  # 2025-12-29T12:00Z
    app, tok, r = await spent_then_asked_after_a_restart(
        app_factory, tmp_path, "week", mon_dec_29_noon, mon_dec_29_noon + 86_400
    )
    assert r.status_code == 402, r.text
    assert (r.json()["scope"], r.json()["window"]) == ("acme/a", "week")
    assert r.json()["spent_micros"] == 800_000
    week = window(await tree(app, tok, "acme/a"), "acme/a", "week")
    assert (week["period"], week["spent_micros"]) == ("2026-W01", 800_000)
