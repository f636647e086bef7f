"""The validation operation on a real Store (SQLite file in tmp_path, every migration)."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guards.client_types import ValidationAnswer
from guards.clock import ManualClock
from guards.config import Validation
from guards.errors import AuthError, Conflict, InvalidInput, ScopeForbidden
from guards.scopes import Scope
from guards.store import Store
from guards.tokens import create_token
from guards.validation import Batch, Item, Validator, rejections

AGENT = "acme/alice/rss-bot"
HOUR = 3600.0
DAY = 86400.0


def distinct(n: int, seed: int = 0) -> list[str]:
    """``n`` texts no two of which are near-duplicates (made-up words)."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "su", "ta", "vo", "ri", "pe", "zu", "ga", "do"]
    return [
        " ".join("".join(rng.choice(syllables) for _ in range(3)) for _ in range(5))
        for _ in range(n)
    ]


def batch(
    *texts: str | tuple[str, str],
    stream: str = "posts",
    scope: str = AGENT,
    expected: int | None = None,
) -> Batch:
    items = [Item(t) if isinstance(t, str) else Item(t[1], t[0]) for t in texts]
    return Batch(scope=scope, stream=stream, items=items, expected_count=expected)


async def run(store: Store, validator: Validator, b: Batch) -> ValidationAnswer:
    out = await store.write(lambda tx: validator.check(tx, scope=Scope.parse(b.scope), batch=b))
    return out.as_json()


async def count(store: Store, table: str) -> int:
    rows = await store.fetch(f"SELECT count(*) FROM {table}")
    return int(rows[0][0])


async def events(store: Store, kind: str) -> list[dict[str, Any]]:
    rows = await store.fetch("SELECT payload FROM events WHERE kind = ? ORDER BY id", (kind,))
    return [json.loads(r[0]) for r in rows]


async def test_exact_duplicates_in_history_and_in_the_batch(env):
    store, v, clock = env
    first = await run(store, v, batch(("p1", "Storm leaves homes without power in Ireland")))
    assert first == {"verdict": "ok", "accepted": [0], "rejected": []}
    t0 = clock.now()
    clock.advance(60)
    out = await run(
        store,
        v,
        batch("STORM leaves homes  without power in Ireland", "Fresh news", "fresh NEWS"),
    )
    assert out["verdict"] == "partial"
    assert out["accepted"] == [1]
    old, inner = out["rejected"]
    assert old == {
        "index": 0,
        "reason": "duplicate",
        "duplicate_of": "p1",
        "matched_at": t0,
        "similarity": 1.0,
    }
    assert inner["reason"] == "duplicate"
    assert inner["matched_index"] == 1
    assert inner["duplicate_of"].startswith("#")
    assert await count(store, "validation_items") == 2


async def test_near_duplicates_name_the_item_they_match(env):
    store, v, clock = env
    await run(store, v, batch(("a1", "Server CPU at 97% on db-01 as of 03:14 UTC")))
    clock.advance(300)
    out = await run(store, v, batch("Server CPU at 98% on db-01 as of 03:19 UTC!"))
    (rej,) = out["rejected"]
    assert rej["reason"] == "near_duplicate"
    assert rej["duplicate_of"] == "a1"
    assert rej["matched_at"] == clock.now() - 300
    assert 0.7 <= rej["similarity"] <= 1.0
    out = await run(store, v, batch("Server CPU at 97% on db-02 as of 03:14 UTC"))
    assert out["verdict"] == "ok"  # another host is another message


async def test_only_accepted_items_are_remembered_and_every_rejection_is_stored(env):
    store, v, _ = env
    await run(store, v, batch("Gold prices hit record as investors seek safety"))
    out = await run(
        store, v, batch("Gold prices hit a record as investors seek safety", "", "x" * 20_001)
    )
    assert [r["reason"] for r in out["rejected"]] == ["near_duplicate", "empty", "too_large"]
    assert out["verdict"] == "rejected"
    assert await count(store, "validation_items") == 1
    rows = await rejections(store, scope=AGENT, since=0)
    assert [r.reason for r in rows] == ["too_large", "empty", "near_duplicate"]
    assert all(len(r.preview) <= 200 for r in rows)
    assert rows[0].preview.endswith("…")
    assert rows[2].matched_item_id is not None
    assert rows[2].similarity is not None


async def test_the_window_forgets(env):
    store, v, clock = env
    await run(store, v, batch("Weekly newsletter: what we shipped"))
    clock.advance(7 * DAY - 1)
    assert (await run(store, v, batch("Weekly newsletter: what we shipped")))["verdict"] == (
        "rejected"
    )
    clock.advance(2)
    assert (await run(store, v, batch("Weekly newsletter: what we shipped")))["verdict"] == "ok"


async def test_runaway_rejects_the_whole_batch_once(env):
    store, v, _ = env
    out = await run(store, v, batch(*distinct(16), expected=10))
    assert out["verdict"] == "rejected"
    assert out["accepted"] == []
    assert {r["reason"] for r in out["rejected"]} == {"runaway"}
    assert len(out["rejected"]) == 16
    assert await count(store, "validation_items") == 0
    (row,) = await rejections(store, scope=AGENT, since=0)
    assert (row.reason, row.batch_size, row.expected_count, row.item_index) == (
        "runaway",
        16,
        10,
        None,
    )
    (event,) = await events(store, "runaway")
    assert (event["count"], event["expected_count"], event["stream"]) == (16, 10, "posts")
    # 15 of 10 is within the factor 1.5
    ok = await run(store, v, batch(*distinct(15, seed=1), expected=10))
    assert ok["verdict"] == "ok"


async def test_runaway_beyond_max_items_is_still_a_runaway_but_plain_excess_is_a_400(env):
    store, v, _ = env
    huge = distinct(1001)
    out = await run(store, v, batch(*huge, expected=5))
    assert out["verdict"] == "rejected"
    with pytest.raises(InvalidInput) as err:
        await run(store, v, batch(*huge))
    assert err.value.field == "items"
    with pytest.raises(InvalidInput) as err:
        await run(store, v, batch(*huge, expected=1000))
    assert err.value.field == "items"
    assert await count(store, "validation_items") == 0
    assert await count(store, "validation_rejections") == 1


async def test_bad_batches_change_nothing(env):
    store, v, _ = env
    for b, field in [
        (Batch(scope=AGENT, stream="posts", items=[]), "items"),
        (batch("a", stream="no spaces please"), "stream"),
        (batch("a", expected=0), "expected_count"),
    ]:
        with pytest.raises(InvalidInput) as err:
            await run(store, v, b)
        assert err.value.field == field
    assert await count(store, "validation_streams") == 0


async def test_duplicate_burst_fires_once_then_each_quarter_window_while_it_goes_on(env):
    store, v, clock = env
    post = "The one post that keeps coming back"
    await run(store, v, batch(post))
    for _ in range(9):
        clock.advance(60)
        await run(store, v, batch(post))
    bursts = await events(store, "duplicate_burst")
    assert len(bursts) == 1  # not one per rejected batch
    assert bursts[0]["rejected"] == 5
    assert bursts[0]["scope"] == AGENT
    clock.advance(HOUR / 4)  # the storm goes on: its alert hears of it again
    await run(store, v, batch(post))
    assert [b["rejected"] for b in await events(store, "duplicate_burst")] == [5, 10]
    clock.advance(60)
    await run(store, v, batch(post))
    assert len(await events(store, "duplicate_burst")) == 2
    clock.advance(HOUR + 1)  # a quiet hour ends the burst
    for _ in range(4):
        clock.advance(60)
        await run(store, v, batch(post))
    assert len(await events(store, "duplicate_burst")) == 2  # 4 is under the threshold
    clock.advance(60)
    await run(store, v, batch(post))
    assert [b["rejected"] for b in await events(store, "duplicate_burst")] == [5, 10, 5]


async def test_duplicates_spread_out_make_no_burst(env):
    store, v, clock = env
    await run(store, v, batch("A post repeated slowly"))
    for _ in range(8):
        clock.advance(20 * 60)
        await run(store, v, batch("A post repeated slowly"))
    assert await events(store, "duplicate_burst") == []


async def test_streams_and_agents_do_not_affect_each_other(env):
    store, v, _ = env
    text = "Same words in different places"
    await run(store, v, batch(text))
    assert (await run(store, v, batch(text, stream="replies")))["verdict"] == "ok"
    assert (await run(store, v, batch(text, scope="acme/alice/ops-bot")))["verdict"] == "ok"
    assert (await run(store, v, batch(text, scope="acme/bob/rss-bot")))["verdict"] == "ok"
    # a conversation writes into its agent's stream
    out = await run(store, v, batch(text, scope=AGENT + "/c42"))
    assert out["rejected"][0]["reason"] == "duplicate"


async def test_tokens_act_only_inside_their_subtree(env):
    store, v, _ = env
    _, raw = await store.write(lambda tx: create_token(tx, scope=AGENT))
    b = batch("hello there", scope="acme/alice/other-bot")
    with pytest.raises(ScopeForbidden):
        await store.write(lambda tx: v.validate(tx, token=raw, batch=b))
    assert len(await events(store, "scope_violation")) == 1
    with pytest.raises(AuthError):
        await store.write(lambda tx: v.validate(tx, token="ns_nope", batch=batch("hi")))
    with pytest.raises(InvalidInput) as err:
        await store.write(lambda tx: v.validate(tx, token=raw, batch=batch("hi", scope="acme")))
    assert err.value.field == "scope"
    out = await store.write(lambda tx: v.validate(tx, token=raw, batch=batch("hi")))
    assert out.verdict == "ok"
    assert await count(store, "validation_rejections") == 0


async def test_the_index_is_rebuilt_from_rows_after_a_restart(tmp_path):
    clock = ManualClock()
    store = await Store.open(tmp_path / "r.db", clock=clock)
    v = Validator(Validation())
    v.attach(store)
    await run(
        store, v, batch(("n1", "Volcano erupts in Iceland for the fifth time since December"))
    )
    await store.close()
    store = await Store.open(tmp_path / "r.db", clock=clock)
    fresh = Validator(Validation())
    fresh.attach(store)
    out = await run(store, fresh, batch("Volcano erupts in Iceland for fifth time since December"))
    assert out["rejected"][0]["reason"] == "near_duplicate"
    assert out["rejected"][0]["duplicate_of"] == "n1"
    assert fresh.remembered() == 1
    await store.close()


async def test_a_rolled_back_batch_leaves_nothing_in_the_database_or_the_cache(env):
    store, v, _ = env
    await run(store, v, batch("Something already known"))
    b = batch("Brand new text about the harbour", "Something already known")

    def fails_after_validating(tx):
        v.check(tx, scope=Scope.parse(AGENT), batch=b)
        raise RuntimeError("the caller failed later in the same transaction")

    with pytest.raises(RuntimeError):
        await store.write(fails_after_validating)
    assert await count(store, "validation_items") == 1
    assert await count(store, "validation_rejections") == 0
    out = await run(store, v, batch("Brand new text about the harbour"))
    assert out["verdict"] == "ok"  # the cache did not keep the rolled-back item


async def test_prune_follows_the_window_and_the_rejection_retention(env):
    store, v, clock = env
    await run(store, v, batch("An old post about gardens", "An old post about bridges"))
    await run(store, v, batch("An old post about gardens"))  # one rejection
    clock.advance(8 * DAY)
    await run(store, v, batch("recent item"))
    pruned = await store.write(lambda tx: v.prune(tx, clock.now()))
    assert (pruned.items, pruned.rejections) == (2, 0)
    assert await count(store, "validation_items") == 1
    assert v.remembered() == 1  # the index shrank once most of it was dead
    clock.advance(30 * DAY)
    pruned = await store.write(lambda tx: v.prune(tx, clock.now()))
    assert pruned.rejections == 1


async def test_rejections_query_matches_the_subtree_newest_first(env):
    store, v, clock = env
    await run(store, v, batch("repeat me"))
    for scope in (AGENT, AGENT + "/c1", "acme/alicex/rss-bot", "acme/bob/bot"):
        clock.advance(10)
        await run(store, v, batch("repeat me", scope=scope))
        await run(store, v, batch("repeat me", scope=scope))
    rows = await rejections(store, scope="acme/alice", since=0)
    assert [r.scope for r in rows] == [AGENT + "/c1", AGENT + "/c1", AGENT, AGENT]
    assert rows[0].at >= rows[-1].at
    assert len(await rejections(store, scope="acme", since=0, limit=3)) == 3
    start = clock.now() - 10
    recent = await rejections(store, scope="acme", since=start, until=clock.now() - 1)
    assert {r.scope for r in recent} == {"acme/alicex/rss-bot"}


async def test_simhash_works_too_and_the_kinds_do_not_mix(env):
    store, _, _ = env
    minhash_v = Validator(Validation())
    await run(store, minhash_v, batch("Heavy snow closes schools across Vermont today"))
    simhash_v = Validator(Validation.model_validate({"near_duplicate": {"method": "simhash"}}))
    simhash_v.attach(store)
    out = await run(store, simhash_v, batch("heavy snow closes  schools across VERMONT today"))
    assert out["rejected"][0]["reason"] == "duplicate"  # exact checks do not need the sketch
    await run(store, simhash_v, batch("Fed holds rates steady as inflation cools"))
    out = await run(store, simhash_v, batch("FED HOLDS RATES STEADY AS INFLATION COOLS, again"))
    assert out["rejected"][0]["reason"] == "near_duplicate"
    assert simhash_v.remembered() == 1


async def test_near_duplicates_can_be_switched_off(env):
    store, _, _ = env
    v = Validator(Validation.model_validate({"near_duplicate": {"enabled": False}}))
    v.attach(store)
    await run(store, v, batch("Heavy snow closes schools across Vermont"))
    out = await run(store, v, batch("Heavy snow closes schools across Vermont today"))
    assert out["verdict"] == "ok"
    out = await run(store, v, batch("heavy snow closes schools across vermont"))
    assert out["verdict"] == "rejected"


_texts = st.one_of(
    st.sampled_from(["Storm hits Ireland", "storm  HITS ireland", "Storm hits Ireland!", ""]),
    st.text(max_size=60),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=st.lists(_texts, min_size=1, max_size=12), second=st.lists(_texts, max_size=6))
def test_any_batch_is_decided_whole_and_recorded_once(tmp_path_factory, first, second):
    async def scenario() -> None:
        clock = ManualClock()
        store = await Store.open(tmp_path_factory.mktemp("h") / "h.db", clock=clock)
        v = Validator(Validation())
        v.attach(store)
        try:
            out = await run(store, v, batch(*first))
            rejected = [r["index"] for r in out["rejected"]]
            assert sorted(out["accepted"] + rejected) == list(range(len(first)))
            assert await count(store, "validation_items") == len(out["accepted"])
            assert await count(store, "validation_rejections") == len(rejected)
            replay = [first[i] for i in out["accepted"]]
            if replay or second:
                again = await run(store, v, batch(*replay, *second))
                # what was accepted once is never accepted again
                assert all(i >= len(replay) for i in again["accepted"])
        finally:
            await store.close()

    asyncio.run(scenario())


# -- audit G: retries, ids, previews, similarity (findings 1, 4, 6, 17) -----------------


async def test_a_batch_sent_again_with_its_key_gets_the_first_answer_and_counts_nothing(env):
    store, v, clock = env
    texts = distinct(5, seed=11)
    items = [(f"post-{i}", t) for i, t in enumerate(texts)]
    sent = replace(batch(*items, stream="retry"), idempotency_key="run-7")
    first = await run(store, v, sent)
    assert first["verdict"] == "ok"
    clock.advance(5)
    again = await run(store, v, sent)  # the client saw a timeout and sent it again
    assert again == first
    assert await count(store, "validation_items") == 5
    assert await count(store, "validation_rejections") == 0
    assert await events(store, "duplicate_burst") == []
    other = replace(batch("something else entirely", stream="retry"), idempotency_key="run-7")
    with pytest.raises(Conflict, match="use a new key for a new batch"):
        await run(store, v, other)
    # without the key it is a repeat: each item a duplicate of its own id
    repeat = await run(store, v, batch(*items, stream="retry"))
    assert repeat["verdict"] == "rejected"
    assert [r["duplicate_of"] for r in repeat["rejected"]] == [f"post-{i}" for i in range(5)]


async def test_a_feed_guid_sent_on_every_run_is_stopped_on_the_second(env):
    store, v, clock = env
    post = ("guid-1", "Heavy snow closes schools across Vermont and New Hampshire")
    published = 0
    for _ in range(47):
        out = await run(store, v, batch(post))
        published += len(out["accepted"])
        clock.advance(600)
    assert published == 1
    assert len(await events(store, "duplicate_burst")) >= 1


async def test_the_same_text_under_another_id_or_none_is_still_a_duplicate(env):
    store, v, _ = env
    await run(store, v, batch(("a", "Volcano erupts in Iceland, flights grounded")))
    out = await run(
        store,
        v,
        batch(
            ("b", "Volcano erupts in Iceland, flights grounded"),
            "Volcano erupts in Iceland, flights grounded",
        ),
    )
    assert [(r["reason"], r["duplicate_of"]) for r in out["rejected"]] == [
        ("duplicate", "a"),
        ("duplicate", "a"),
    ]
    no_id = "Scientists discover new species of deep sea octopus"
    await run(store, v, batch(no_id))
    resent = await run(store, v, batch(no_id))  # without an id a retry is a repeat
    assert resent["verdict"] == "rejected"


async def test_one_id_for_two_texts_in_a_batch_is_a_400_naming_the_item(env):
    store, v, _ = env
    bad = batch(("a", "Same text"), ("b", "Other"), ("a", "Different text entirely here"))
    with pytest.raises(InvalidInput) as exc:
        await run(store, v, bad)
    assert exc.value.field == "items.2.id"
    assert "items.0" in str(exc.value)
    assert await count(store, "validation_items") == 0
    same_twice = await run(store, v, batch(("a", "Same text"), ("a", "same  text")))
    assert same_twice["accepted"] == [0]  # one id, one text: the second is its duplicate
    assert same_twice["rejected"][0]["matched_index"] == 0
    assert await count(store, "validation_items") == 1


async def test_rejections_keep_what_they_matched_and_near_is_never_1(env):
    store, v, _ = env
    long_text = "Storm leaves homes without power in Ireland " + "and more words " * 20
    await run(store, v, batch(long_text, "Bitcoin hits $70,000 for the first time"))
    items = await store.fetch("SELECT preview FROM validation_items ORDER BY id")
    assert len(items[0][0]) == 120 and items[0][0].endswith("…")
    out = await run(store, v, batch("bitcoin hits $70,000 for the first time!!", long_text))
    near, same = out["rejected"]
    assert near["reason"] == "near_duplicate" and near["similarity"] <= 0.99
    assert same["reason"] == "duplicate" and same["similarity"] == 1.0
    found = await rejections(store, scope=AGENT, since=0)
    by_reason = {r.reason: r for r in found}
    assert by_reason["near_duplicate"].matched_preview == "Bitcoin hits $70,000 for the first time"
    assert by_reason["duplicate"].matched_preview == items[0][0]


async def test_numbers_that_carry_the_news_are_new_output(env):
    store, v, _ = env
    out = await run(
        store,
        v,
        batch(
            "Bitcoin hits $70,000 for the first time",
            "Bitcoin hits $50,000 for the first time",
            "Stocks fall 3% as tech sells off",
            "Stocks fall 10% as tech sells off",
            "Stocks fall 3% as tech sells off, 14:35",  # a timestamp is not news
        ),
    )
    assert out["accepted"] == [0, 1, 2, 3]
    assert [(r["index"], r["matched_index"]) for r in out["rejected"]] == [(4, 2)]
