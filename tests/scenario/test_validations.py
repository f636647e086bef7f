"""``POST /v1/validations`` through HTTP against the whole app on a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import random
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from bot.alerts.render_summary import summary
from guards.clock import ManualClock
from tests.conftest import RunningApp

AGENT = "acme/alice/rss-bot"
PATH = "/v1/validations"


def distinct(n: int, seed: int = 0) -> list[str]:
    """``n`` texts no two of which are near-duplicates (made-up words)."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "su", "ta", "vo", "ri", "pe", "zu", "ga", "do"]
    return [
        " ".join("".join(rng.choice(syllables) for _ in range(3)) for _ in range(5))
        for _ in range(n)
    ]


async def post(
    app: RunningApp,
    token: str | None,
    items: Any,
    *,
    scope: str = AGENT,
    stream: str = "posts",
    **extra: Any,
) -> httpx.Response:
    body = {"scope": scope, "stream": stream, "items": items, **extra}
    return await app.request("POST", PATH, token=token, json=body)


async def stored(app: RunningApp) -> tuple[int, int]:
    items = await app.store.fetch("SELECT count(*) FROM validation_items")
    rejected = await app.store.fetch("SELECT count(*) FROM validation_rejections")
    return items[0][0], rejected[0][0]


async def events(app: RunningApp, kind: str) -> list[dict[str, Any]]:
    rows = await app.store.fetch("SELECT payload FROM events WHERE kind = ? ORDER BY id", (kind,))
    return [json.loads(r[0]) for r in rows]


async def test_the_rss_agent_that_published_47_duplicates(app_factory):
    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    item = {"id": "guid-1", "text": "Heavy snow closes schools across Vermont and New Hampshire"}
    first = await post(app, tok, [item])
    assert first.status_code == 200
    assert first.json() == {"verdict": "ok", "accepted": [0], "rejected": []}
    published = 1
    for _ in range(46):
        app.clock.advance(600)  # its job ran every 10 minutes
        r = await post(app, tok, [item["text"]])
        published += len(r.json()["accepted"])
    assert published == 1
    await app.ns.extras["alerts"].tick()  # auto-resolve runs: the storm is not over
    alerts = await app.store.fetch(
        "SELECT count, resolved_at FROM alerts WHERE kind = 'duplicate_burst'"
    )
    assert len(alerts) == 1  # one alert for the burst, not 46
    [(firings, resolved_at)] = [tuple(a) for a in alerts]
    assert resolved_at is None  # open for as long as duplicates keep coming
    assert firings == len(await events(app, "duplicate_burst")) < 46 // 2
    rows = await app.store.fetch(
        "SELECT reason, matched_ref FROM validation_rejections ORDER BY id LIMIT 1"
    )
    assert tuple(rows[0]) == ("duplicate", "guid-1")


async def test_each_rejection_kind(app_factory):
    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    await post(app, tok, ["Alert: error rate for checkout-service above threshold (5.2%)"])
    r = await post(
        app,
        tok,
        [
            "alert: ERROR rate for checkout-service above threshold (5.2%)",  # case only
            "Alert: error rate for checkout-service above threshold (5.2%) at 14:35",  # time
            "   \n\t ",
            "z" * 20_001,
            "Resolved: error rate for checkout-service back below threshold",
        ],
    )
    assert r.status_code == 200
    body = r.json()
    assert body["verdict"] == "partial"
    assert body["accepted"] == [4]
    reasons = {x["index"]: x["reason"] for x in body["rejected"]}
    assert reasons == {0: "duplicate", 1: "near_duplicate", 2: "empty", 3: "too_large"}
    near = body["rejected"][1]
    # the remembered item's name (it had no id): the same for both that matched it
    assert re.fullmatch(r"#[0-9a-f]{8}", near["duplicate_of"])
    assert body["rejected"][0]["duplicate_of"] == near["duplicate_of"]
    assert near["matched_at"] == app.clock.now()
    assert near["similarity"] == 0.99  # only a masked time changed; 1.0 means identical

    runaway = await post(app, tok, distinct(20), expected_count=4)
    assert runaway.status_code == 200
    assert runaway.json()["verdict"] == "rejected"
    assert {x["reason"] for x in runaway.json()["rejected"]} == {"runaway"}
    # and how many it may send (4 x runaway_factor 1.5), not only that it sent too many
    assert {x["max_items"] for x in runaway.json()["rejected"]} == {6}
    (event,) = await events(app, "runaway")
    assert (event["scope"], event["count"], event["expected_count"]) == (AGENT, 20, 4)
    assert await stored(app) == (2, 5)


async def test_streams_agents_and_namespaces_do_not_affect_each_other(app_factory):
    app = await app_factory(clock=ManualClock())
    text = "Our spring sale starts today, 20% off all plants"
    alice = await app.token("acme/alice")
    bob = await app.token("acme/bob/rss-bot")
    other = await app.token("globex/alice/rss-bot")
    assert (await post(app, alice, [text])).json()["verdict"] == "ok"
    for token, scope, stream in [
        (alice, AGENT, "replies"),
        (alice, "acme/alice/ops-bot", "posts"),
        (bob, "acme/bob/rss-bot", "posts"),
        (other, "globex/alice/rss-bot", "posts"),
    ]:
        r = await post(app, token, [text], scope=scope, stream=stream)
        assert r.json()["verdict"] == "ok", (scope, stream)
    again = await post(app, alice, [text], scope=AGENT + "/c7")
    assert again.json()["rejected"][0]["reason"] == "duplicate"  # same agent, same stream


async def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(app_factory):
    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    cases = [
        ({"scope": AGENT, "stream": "posts", "items": []}, "items"),
        ({"scope": AGENT, "stream": "posts", "items": distinct(10_000)}, "items"),
        ({"scope": AGENT, "stream": "posts", "items": ["ok", 42]}, "items.1"),
        ({"scope": AGENT, "stream": "posts", "items": ["ok", None]}, "items.1"),
        ({"scope": AGENT, "stream": "posts", "items": [["nested"]]}, "items.0"),
        ({"scope": AGENT, "stream": "posts", "items": [{"id": "x"}]}, "items.0.text"),
        ({"scope": AGENT, "stream": "posts", "items": [{"text": "t", "id": True}]}, "items.0.id"),
        ({"scope": AGENT, "stream": "posts", "items": [{"text": "t", "x": 1}]}, "items.0.x"),
        ({"scope": AGENT, "stream": "posts", "items": "just a string"}, "items"),
        ({"scope": AGENT, "stream": "posts"}, "items"),
        ({"scope": AGENT, "items": ["a"]}, "stream"),
        ({"scope": AGENT, "stream": "has spaces", "items": ["a"]}, "stream"),
        ({"scope": AGENT, "stream": "", "items": ["a"]}, "stream"),
        ({"scope": "acme/alice", "stream": "posts", "items": ["a"]}, "scope"),
        ({"scope": "acme//x", "stream": "posts", "items": ["a"]}, "scope"),
        (
            {"scope": AGENT, "stream": "posts", "items": ["a"], "expected_count": 0},
            "expected_count",
        ),
        (
            {"scope": AGENT, "stream": "posts", "items": ["a"], "expected_count": "3"},
            "expected_count",
        ),
        ({"scope": AGENT, "stream": "posts", "items": ["a"], "extra": 1}, "extra"),
    ]
    for body, field in cases:
        r = await app.request("POST", PATH, token=tok, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"] == "invalid_input"
        assert r.json()["field"] == field, (field, r.json())
    r = await app.request("POST", PATH, token=tok, content=b"{not json")
    assert r.status_code == 400
    assert await stored(app) == (0, 0)


async def test_huge_items_are_rejected_per_item_and_huge_bodies_refused(app_factory):
    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    r = await post(app, tok, ["w" * 600_000, "a normal short post about rivers"])
    assert r.status_code == 200
    assert r.json()["accepted"] == [1]
    assert r.json()["rejected"] == [{"index": 0, "reason": "too_large"}]
    preview = await app.store.fetch("SELECT length(preview) FROM validation_rejections")
    assert preview[0][0] <= 200
    r = await post(app, tok, ["w" * 1_100_000])
    assert r.status_code == 413
    assert await stored(app) == (1, 1)


async def test_auth_is_checked_and_violations_recorded(app_factory):
    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    r = await post(app, None, ["a"])
    assert r.status_code == 401
    r = await post(app, "ns_tok_nope_secret", ["a"])
    assert r.status_code == 401
    r = await post(app, tok, ["a"], scope="acme/alice/ops-bot")
    assert r.status_code == 403
    assert len(await events(app, "scope_violation")) == 1
    assert await stored(app) == (0, 0)


async def test_concurrent_batches_with_the_same_item_accept_it_once(app_factory):
    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    text = "Ukraine and Russia exchange prisoners in UAE-brokered deal"
    answers = await asyncio.gather(*(post(app, tok, [text]) for _ in range(12)))
    accepted = sum(len(r.json()["accepted"]) for r in answers)
    assert accepted == 1
    assert await stored(app) == (1, 11)


async def test_a_restart_keeps_what_was_remembered(app_factory, tmp_path):
    db = tmp_path / "keep.db"
    app = await app_factory(clock=ManualClock(), db=db)
    tok = await app.token(AGENT)
    await post(app, tok, [{"id": "n-9", "text": "Mars rover finds signs of ancient river delta"}])
    await app.client.aclose()
    await app.ns.stop()
    again = await app_factory(clock=ManualClock(), db=db)
    r = await post(again, tok, ["Mars rover finds signs of an ancient river delta - NASA"])
    assert r.json()["rejected"][0]["duplicate_of"] == "n-9"


async def test_lone_surrogates_in_json_are_handled(app_factory):
    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    headers = {"Content-Type": "application/json"}

    def body(items: list[Any]) -> bytes:  # json escapes a lone surrogate as \ud800
        return json.dumps({"scope": AGENT, "stream": "posts", "items": items}).encode()

    r = await app.request("POST", PATH, token=tok, content=body(["a\ud800b"] * 2), headers=headers)
    assert r.status_code == 200
    assert [x["reason"] for x in r.json()["rejected"]] == ["duplicate"]
    bad_id = body([{"id": "\udc00", "text": "t"}])
    r = await app.request("POST", PATH, token=tok, content=bad_id, headers=headers)
    assert r.status_code == 400
    assert r.json()["field"] == "items.0.id"


async def test_a_rejected_batch_counts_against_the_routed_call_that_wrote_it(app_factory):
    app = await app_factory()
    tok = await app.token("acme/alice/rss-bot")
    scope = "acme/alice/rss-bot"
    route = await app.request(
        "POST", "/v1/route", token=tok, json={"scope": scope, "task": "Summarize this article"}
    )
    route_id = route.json()["route_id"]
    held = await app.request(
        "POST",
        "/v1/reservations",
        token=tok,
        json={
            "scope": scope,
            "idempotency_key": "r1",
            "max_cost_micros": 1000,
            "route_id": route_id,
        },
    )
    rid = held.json()["reservation_id"]
    await app.request(
        "POST", f"/v1/reservations/{rid}/settle", token=tok, json={"actual_cost_micros": 900}
    )
    body = {"scope": scope, "stream": "posts", "items": ["Rates held at 3.5% as inflation cools"]}
    first = await app.request("POST", "/v1/validations", token=tok, json=body)
    assert first.json()["verdict"] == "ok"
    rows = await app.store.fetch("SELECT outcome FROM routing_decisions WHERE id = ?", (route_id,))
    assert rows[0]["outcome"] == "success"
    # a duplicate says the input came again, not that the model failed (audit18 finding 1)
    again = await app.request(
        "POST", "/v1/validations", token=tok, json={**body, "route_id": route_id}
    )
    assert again.json()["verdict"] == "rejected"
    rows = await app.store.fetch("SELECT outcome FROM routing_decisions WHERE id = ?", (route_id,))
    assert rows[0]["outcome"] == "success"
    blank = {**body, "items": ["   "], "route_id": route_id}
    empty = await app.request("POST", "/v1/validations", token=tok, json=blank)
    assert [r["reason"] for r in empty.json()["rejected"]] == ["empty"]
    rows = await app.store.fetch("SELECT outcome FROM routing_decisions WHERE id = ?", (route_id,))
    assert rows[0]["outcome"] == "rejected"


async def test_a_client_retry_with_its_key_is_safe_over_http(app_factory):
    app = await app_factory()
    tok = await app.token(AGENT)
    items = [
        {"id": "post-100", "text": "Volcano erupts in Iceland, flights grounded across Europe"},
        {"id": "post-101", "text": "Scientists discover new species of deep sea octopus"},
    ]
    replayed = []
    for _ in range(2):
        r = await post(app, tok, items, stream="retry", expected_count=2, idempotency_key="r1")
        assert r.json() == {"verdict": "ok", "accepted": [0, 1], "rejected": []}, r.text
        replayed.append(r.headers.get("Idempotent-Replayed"))
    assert replayed == [None, "true"]
    assert await stored(app) == (2, 0)
    other = await post(app, tok, items[:1], stream="retry", idempotency_key="r1")
    assert other.status_code == 409 and other.json()["error"] == "conflict", other.text
    bad = await post(app, tok, items, stream="retry", idempotency_key="")
    assert bad.status_code == 400 and bad.json()["field"] == "idempotency_key"
    assert await stored(app) == (2, 0)
    clash = [{"id": "a", "text": "Same text"}, {"id": "a", "text": "Different text entirely"}]
    r = await post(app, tok, clash)
    assert r.status_code == 400 and r.json()["field"] == "items.1.id", r.text
    assert await stored(app) == (2, 0)


async def test_a_key_names_one_batch_of_its_token(app_factory):
    """recheck24 M2: a key was shared by every token of the stream, so a second token's
    batch under the first one's key got its "ok, accepted" replayed, though the same items
    sent fresh are duplicates: that agent was told to publish them again."""
    app = await app_factory()
    first, second = await app.token(AGENT), await app.token("acme/alice")
    items = ["Volcano erupts in Iceland, flights grounded across Europe"]
    r = await post(app, first, items, stream="feed", idempotency_key="run-7")
    assert r.json()["verdict"] == "ok", r.text
    again = await post(app, second, items, stream="feed", idempotency_key="run-7")
    assert again.status_code == 200 and "Idempotent-Replayed" not in again.headers, again.text
    assert again.json()["verdict"] == "rejected"
    assert again.json()["rejected"][0]["reason"] == "duplicate"
    replay = await post(app, first, items, stream="feed", idempotency_key="run-7")
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["verdict"] == "ok"


async def test_runaway_digits_are_judged_not_a_500(app_factory):
    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    r = await post(app, tok, ["Bitcoin hits $" + "9" * 400 + " today"])
    assert r.status_code == 200, r.text
    assert r.json()["verdict"] == "ok"


async def test_a_re_post_in_capitals_with_a_bang_is_a_near_duplicate_with_designs_simhash(
    app_factory,
):
    """audit10 M1: with DESIGN's example (simhash, 3 bits), a case change plus a '!' got
    through, because a capital's name weight moved the sketch."""
    policy = {"validation": {"near_duplicate": {"method": "simhash", "max_distance": 3}}}
    app = await app_factory(policy)
    tok = await app.token("acme")
    text = (
        "Apple unveils new MacBook Pro with M5 chip, promising twice the battery life"
        " and faster graphics for creative professionals"
    )
    for n, variant in enumerate((text.upper() + "!", text.title() + "!")):
        stream = f"s{n}"
        assert (await post(app, tok, [text], stream=stream)).json()["verdict"] == "ok"
        out = (await post(app, tok, [variant], stream=stream)).json()
        assert out["verdict"] == "rejected", (variant, out)
        assert out["rejected"][0]["reason"] == "near_duplicate"


async def test_a_feed_re_rendered_as_html_markdown_or_another_link_is_stopped(app_factory):
    """audit13 incidents M2: the same post as HTML, Markdown, http:// or www. got through."""
    app = await app_factory()
    tok = await app.token(AGENT)
    post_ = "Fed holds rates steady as inflation cools https://news.example/2026/fed-holds"
    first = await post(app, tok, [{"id": "guid-1", "text": post_}])
    assert first.json()["verdict"] == "ok"
    for i, rendering in enumerate(
        [
            '<p>Fed holds rates steady as inflation cools <a href="http://news.example/2026/'
            'fed-holds?utm_source=rss">link</a></p>',
            "[Fed holds rates steady as inflation cools](https://www.news.example/2026/fed-holds/)",
            "Fed holds rates steady as inflation cools http://news.example/2026/fed-holds#top",
        ]
    ):
        r = await post(app, tok, [{"id": "guid-1", "text": rendering}], stream="posts")
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["verdict"] == "rejected", (i, answer)
        assert answer["rejected"][0]["reason"] == "near_duplicate"
        assert answer["rejected"][0]["duplicate_of"] == "guid-1"
    other = "Fed holds rates steady as inflation cools https://news.example/2026/ecb-holds"
    assert (await post(app, tok, [other])).json()["verdict"] == "ok"  # another article


# -- items remembered by a version before links and markup were read as shown ------------

OLD_KIND = "minhash32"  # the MinHash kind before 2026-11-27 15:00


async def remembered_by_an_older_version(
    app: RunningApp, texts: list[str], *, at: float, old_features: bool = True
) -> None:
    """Rows as the older version wrote them: its kind, sketched with its features (or,
    ``old_features=False``, with today's, as the same kind held for a few hours)."""
    from guards.validation import repo
    from guards.validation.features import features
    from guards.validation.normalize import exact_fingerprint, prepare
    from guards.validation.sketchers import MinHashSketcher

    sketcher = MinHashSketcher(threshold=0.7)

    def write(tx: Any) -> None:
        stream = repo.stream_row(tx, agent=AGENT, name="posts", now=at)
        for text in texts:
            prepared = prepare(text)
            repo.add_item(
                tx,
                stream_id=stream.id,
                at=at,
                exact=exact_fingerprint(prepared.casefold()),
                kind=OLD_KIND,
                sketch=sketcher.sketch(features(prepared, legacy=old_features)),
                ref=None,
            )

    await app.store.write(write)


async def test_items_remembered_before_the_upgrade_still_stop_their_near_duplicates(app_factory):
    """audit14 upgrade F1: a link's identity changed (no scheme, www., trailing /), so an
    item remembered with the old sketch looked 0.56-0.69 alike to its own re-post with
    the time changed: every remembered item with a link let its near-duplicates through
    for the whole window."""
    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    now = app.clock.now()
    await remembered_by_an_older_version(
        app,
        [
            "CI build 4821 failed on main at 03:17 https://ci.example/builds/4821",
            "Backup report: all volumes healthy https://www.status.example/backups/",
        ],
        at=now - 3600,
    )
    await remembered_by_an_older_version(
        app,
        ["Heavy snow closes schools https://news.example/snow"],
        at=now - 60,
        old_features=False,
    )
    r = await post(
        app,
        tok,
        [
            "CI build 4821 failed on main at 04:02 https://ci.example/builds/4821",
            "Backup report: all volumes healthy today https://www.status.example/backups/",
            "Heavy snow closes schools at 9:00 https://news.example/snow",
            "CI build 4822 passed on main https://ci.example/builds/4822",  # news
        ],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == [3]
    assert [(x["index"], x["reason"]) for x in body["rejected"]] == [
        (0, "near_duplicate"),
        (1, "near_duplicate"),
        (2, "near_duplicate"),
    ]
    # the exact text is still the exact duplicate it was
    again = await post(
        app, tok, ["CI build 4821 failed on main at 03:17 https://ci.example/builds/4821"]
    )
    assert again.json()["rejected"][0]["reason"] == "duplicate"


async def test_once_the_older_items_left_the_window_they_are_not_looked_for(app_factory):
    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    window = 7 * 86400
    await remembered_by_an_older_version(
        app,
        ["CI build 4821 failed on main at 03:17 https://ci.example/builds/4821"],
        at=app.clock.now() - window - 1,
    )
    r = await post(
        app, tok, ["CI build 4821 failed on main at 04:02 https://ci.example/builds/4821"]
    )
    assert r.json()["verdict"] == "ok"  # as before: past the window, nothing is remembered


async def test_the_older_rows_are_read_and_sketched_off_the_writer(app_factory):
    """review14 M2: the second sketch and the older rows' index were made inside the
    write, holding every reservation behind them."""
    from bot.api_validation import ensure_validation
    from guards.validation.types import Batch, Item

    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    await remembered_by_an_older_version(
        app, ["CI build 4821 failed on main https://ci.example/builds/4821"], at=app.clock.now()
    )
    validator = ensure_validation(app.ns)
    batch = Batch(AGENT, "posts", [Item("CI build 4821 failed again https://ci.example/b/4821")])
    prepared = validator.prepare(batch)
    assert prepared.items[0].legacy_sketch  # sketched both ways before the write
    await validator.warm(app.store, prepared)
    stream_id = (await app.store.fetch("SELECT id FROM validation_streams"))[0][0]
    assert validator.indexes.get((stream_id, OLD_KIND)) is not None  # read ahead
    writes = app.ns.store.batches
    r = await post(
        app, tok, ["CI build 4821 failed on main at 5:00 https://ci.example/builds/4821"]
    )
    assert r.json()["rejected"][0]["reason"] == "near_duplicate"
    assert app.ns.store.batches == writes + 1
    # a week on, the older rows have left the window: one sketch again
    app.clock.advance(7 * 86400 + 1)
    assert (await post(app, tok, ["Something else entirely new"])).json()["verdict"] == "ok"
    assert not validator.prepare(batch).items[0].legacy_sketch


async def test_a_database_with_no_older_rows_sketches_once(app_factory):
    from bot.api_validation import ensure_validation
    from guards.validation.types import Batch, Item

    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    assert (await post(app, tok, ["First post https://ex.example/1"])).json()["verdict"] == "ok"
    validator = ensure_validation(app.ns)
    batch = Batch(AGENT, "posts", [Item("Second post https://ex.example/2")])
    assert not validator.prepare(batch).items[0].legacy_sketch


async def test_a_stream_with_no_older_rows_is_read_ahead_once(app_factory, monkeypatch):
    """review of b4159cc: an empty index is falsy, so a stream with no older rows (while
    another has some) was read again before every batch."""
    from bot.api_validation import ensure_validation
    from guards.validation.types import Batch, Item
    from guards.validation.window import read_window

    reads: list[str | None] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(kwargs.get("kind"))
        return read_window(*args, **kwargs)

    monkeypatch.setattr("guards.validation.streams.read_window", counted)

    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    await remembered_by_an_older_version(app, ["Old post https://ex.example/o"], at=app.clock.now())
    assert (await post(app, tok, ["News one"], stream="other")).json()["verdict"] == "ok"
    validator = ensure_validation(app.ns)
    read_before = len(reads)
    for i in range(3):
        batch = Batch(AGENT, "other", [Item(f"News number {i} of many, all new")])
        await validator.warm(app.store, validator.prepare(batch))
    assert len(reads) == read_before  # both indexes of "other" stay in memory


async def test_markup_with_nothing_in_it_is_empty(app_factory):
    """audit18 routing finding 4: `<p></p>`, `<p>&nbsp;</p>` and `<div><br/></div>` were
    accepted as new posts (each variant once): a template wrapping an empty answer."""
    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    blank = ["<p></p>", "<div><br/></div>", "<p>&nbsp;</p>", "&nbsp;", "<b> </b>", "\x00"]
    r = await post(app, tok, [*blank, "<p>Fed holds rates</p>", "<img src='chart.png'>"])
    assert r.status_code == 200
    body = r.json()
    assert {x["index"]: x["reason"] for x in body["rejected"]} == dict.fromkeys(
        range(len(blank)), "empty"
    )
    assert body["accepted"] == [len(blank), len(blank) + 1]  # a text, an image


NEWSLETTER_HEAD = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><style>'
    + "body{margin:0;padding:0;font-family:Helvetica,Arial,sans-serif}.btn{display:inline-block;"
    "padding:10px 18px;border-radius:4px;background:#0a66c2;color:#fff}"
    * 26
    + '</style></head><body><!-- header --><table role="presentation" width="100%"><tr><td>'
    '<a href="https://news.example.com/"><img src="https://news.example.com/logo.png"'
    ' alt="Example News"></a></td><td><a href="https://news.example.com/world">World</a> |'
    ' <a href="https://news.example.com/tech">Tech</a></td></tr></table>'
)


async def test_two_articles_behind_one_long_html_header_are_not_alike(app_factory):
    """audit21 guards F1: only the first 4,000 characters were read, markup included: two
    articles behind a 4.3 KB header (a style sheet, a logo, a navigation table) were
    rejected as near-duplicates at 0.99, and the agent dropped a real new post."""
    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    assert len(NEWSLETTER_HEAD) > 4000
    first = NEWSLETTER_HEAD + "<h1>Apple announces new MacBook Pro with M5 chip</h1>"
    first += "<p>Available next week in stores worldwide, starting at $1,599.</p></body></html>"
    other = NEWSLETTER_HEAD + "<h1>Heavy snowfall closes schools across Minnesota</h1>"
    other += "<p>Temperatures drop to record lows overnight; buses cancelled.</p></body></html>"
    assert (await post(app, tok, [{"id": "p1", "text": first}])).json()["verdict"] == "ok"
    assert (await post(app, tok, [{"id": "p2", "text": other}])).json()["verdict"] == "ok"
    # the same article again, its header's style changed: still caught
    again = first.replace("#0a66c2", "#0b77d3")
    [rejected] = (await post(app, tok, [{"id": "p3", "text": again}])).json()["rejected"]
    assert (rejected["reason"], rejected["duplicate_of"]) == ("near_duplicate", "p1")
    # what /agent dedup shows of them is their text, not their style sheet
    [(shown, matched)] = await app.store.fetch(
        "SELECT preview, matched_preview FROM validation_rejections"
    )
    assert "Apple announces new MacBook Pro" in shown and "{" not in shown
    assert matched.startswith("https://news.example.com/ World"), matched


async def test_long_texts_that_share_only_their_opening_are_not_alike(app_factory):
    """audit21 guards F1: two 9,800-character texts, the same first 4,200 characters and
    different bodies, were near-duplicates at 0.99."""
    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    opening = " ".join(distinct(120, seed=1))
    body_a, body_b = " ".join(distinct(160, seed=2)), " ".join(distinct(160, seed=3))
    assert len(opening) > 4000 and len(body_a) > 5000
    a, b = f"{opening}. {body_a}", f"{opening}. {body_b}"
    assert (await post(app, tok, [{"id": "a", "text": a}])).json()["verdict"] == "ok"
    assert (await post(app, tok, [{"id": "b", "text": b}])).json()["verdict"] == "ok"
    # the whole of a long text, a few words changed here and there: still one text
    edited = a.replace(body_a[:40], "an edited start of the body here") + " Updated."
    [rejected] = (await post(app, tok, [{"id": "c", "text": edited}])).json()["rejected"]
    assert (rejected["reason"], rejected["duplicate_of"]) == ("near_duplicate", "a")


async def test_a_burst_on_a_second_stream_keeps_the_first_in_its_alert(app_factory):
    """audit21 guards F5: a burst on stream feed2 rewrote the agent's alert about stream
    rss, which then named feed2 alone; and the alert said nothing of what to do."""
    policy = {"validation": {"burst": {"count": 3, "window_seconds": "1h"}}}
    app = await app_factory(policy, clock=ManualClock())
    tok = await app.token(AGENT)
    for stream, sent in (("rss", 4), ("feed2", 5), ("cities", 4)):
        for _ in range(sent):
            await post(app, tok, ["Heavy snow closes schools across Vermont"], stream=stream)
            app.clock.advance(1)
        if stream == "feed2":  # a quarter window on: its burst fires again, with 4
            app.clock.advance(900)
            await post(app, tok, ["Heavy snow closes schools across Vermont"], stream=stream)
    await app.ns.extras["alerts"].process()
    [(facts,)] = await app.store.fetch("SELECT facts FROM alerts WHERE kind = 'duplicate_burst'")
    said = summary("duplicate_burst", json.loads(facts), ZoneInfo("UTC"))
    # the total and each stream's, not the last stream's 3 as if it were all (audit26 A3 L5)
    assert said.startswith("11 duplicates in 3 streams (rss 3, feed2 5, cities 3) rejected in 1h")
    assert f"`/agent dedup {AGENT}` shows them" in said


def prose(size: int) -> str:
    """About ``size`` characters of real sentences (the routing corpus's tasks, in order)."""
    tasks = [json.loads(line)["task"] for line in ROUTING_TASKS.read_text().splitlines()]
    text = " ".join(tasks)
    return text[: text.rindex(" ", 0, size)]


ROUTING_TASKS = Path(__file__).resolve().parent.parent / "data" / "routing_eval.jsonl"
UPDATE = (
    " UPDATE 10:40: The company has since confirmed the outage affected customers in three"
    " regions and said a full report will follow next week. A spokesperson apologised and"
    " said that refunds would be issued automatically to every affected account within"
    " five business days, with no action needed."
)


@pytest.mark.parametrize(
    ("size", "change"),
    [(6000, "end"), (9000, "end"), (15000, "end"), (9000, "cut"), (9000, "lede")],
)
async def test_a_long_article_re_posted_with_a_paragraph_added_or_cut_is_a_near_duplicate(
    app_factory, size, change
):
    """recheck22 N1: passages read at even places moved with the length, so an article
    re-posted with an update paragraph added (or one cut) passed as new."""
    app = await app_factory(clock=ManualClock())
    tok = await app.token(AGENT)
    article = prose(size)
    again = {
        "end": article + UPDATE,
        "lede": article[:600] + UPDATE + article[600:],
        "cut": article[: size * 3 // 10] + article[size * 3 // 10 + 600 :],
    }[change]
    assert (await post(app, tok, [{"id": "a", "text": article}])).json()["verdict"] == "ok"
    [rejected] = (await post(app, tok, [{"id": "b", "text": again}])).json()["rejected"]
    assert (rejected["reason"], rejected["duplicate_of"]) == ("near_duplicate", "a")
