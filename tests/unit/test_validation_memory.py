"""The validation index's memory: a byte budget, eviction, and reloading off the writer.

Real SQLite files in tmp_path (every migration) and the real Validator. A budget of a
few bytes makes every other stream's batch evict, so each reload is exercised.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import guards.validation.window as window
from guards.client_types import ValidationAnswer
from guards.clock import ManualClock
from guards.config import Validation
from guards.scopes import Scope
from guards.store import Store
from guards.tokens import create_token, hash_token
from guards.validation import Batch, Item, Validator
from tests.unit.test_validation_engine import AGENT, DAY, HOUR, distinct

NEWS = "Volcano erupts in Iceland for the fifth time since December"
NEWS_AGAIN = "Volcano erupts in Iceland for fifth time since December"  # a near-duplicate


def batch(*texts: str, stream: str = "posts") -> Batch:
    return Batch(scope=AGENT, stream=stream, items=[Item(t) for t in texts])


async def send(store: Store, v: Validator, b: Batch, *, warm: bool = True) -> ValidationAnswer:
    """One batch the way the HTTP handler sends it: warm-up off the writer, then the write."""
    prepared = v.prepare(b)
    if warm:
        await v.warm(store, prepared)
    out = await store.write(lambda tx: v.check(tx, scope=Scope.parse(b.scope), batch=prepared))
    return out.as_json()


def held(v: Validator, stream: str) -> bool:
    ids = {name: i for (_, name), i in v._stream_ids.items()}
    return (ids[stream], v.sketcher.kind) in v.indexes


async def test_a_near_duplicate_from_six_days_ago_is_caught_after_eviction_and_reload(env):
    store, v, clock = env
    first = await send(store, v, batch(NEWS))
    assert first["verdict"] == "ok"
    t0 = clock.now()
    clock.advance(6 * DAY)
    v.indexes.max_bytes = 1  # hold one stream at a time
    for i, text in enumerate(distinct(3, seed=5)):
        await send(store, v, batch(text, stream=f"other-{i}"))
    assert not held(v, "posts")
    assert v.evictions >= 3

    loads = v.loads
    out = await send(store, v, batch(NEWS_AGAIN, NEWS))
    assert v.loads == loads + 1  # read again, once
    near, same = out["rejected"]
    assert near["reason"] == "near_duplicate"
    assert near["matched_at"] == t0
    assert same["reason"] == "duplicate"
    assert held(v, "posts")

    clock.advance(1.5 * DAY)  # 7.5 days: out of the window, evicted or not
    for i, text in enumerate(distinct(2, seed=6)):
        await send(store, v, batch(text, stream=f"late-{i}"))
    assert (await send(store, v, batch(NEWS_AGAIN)))["verdict"] == "ok"


async def test_the_write_only_catches_up_when_the_window_was_read_ahead(env):
    store, v, _ = env
    texts = distinct(40, seed=1)
    await send(store, v, batch(*texts[:30]), warm=False)
    v.indexes.clear()  # as after a restart
    prepared = v.prepare(batch(texts[30]))
    await v.warm(store, prepared)
    assert v.loads == 2 and v.remembered() == 30
    index = v.indexes.keys()[0]
    assert v.indexes.peek(index).behind is not None  # read off the writer, not caught up yet
    out = await store.write(lambda tx: v.check(tx, scope=Scope(AGENT), batch=prepared))
    assert out.verdict == "ok"
    assert v.loads == 2  # the write did not read the window again
    assert v.indexes.peek(index).behind is None
    assert v.remembered() == 31


@pytest.mark.parametrize("by_id", [True, False])
async def test_rows_written_after_the_read_ahead_are_caught_up(env, monkeypatch, by_id):
    """Another writer adds to the stream between the read-ahead and the write."""
    store, v, clock = env
    if not by_id:  # the path for an index read ahead long ago
        monkeypatch.setattr(window, "CATCH_UP_BY_ID", 0)
    await send(store, v, batch(*distinct(5, seed=2)))
    v.indexes.clear()
    await v.warm(store, v.prepare(batch("anything at all")))
    assert v.remembered() == 5
    other = Validator(Validation())  # another process, say, or a write without a warm-up
    other.attach(store)
    clock.advance(60)
    assert (await send(store, other, batch(NEWS), warm=False))["verdict"] == "ok"
    out = await send(store, v, batch(NEWS_AGAIN), warm=False)
    assert out["rejected"][0]["reason"] == "near_duplicate"
    assert v.remembered() == 6


async def test_batches_of_a_cold_stream_share_one_read_ahead(env):
    store, v, _ = env
    await send(store, v, batch(*distinct(20, seed=3)))
    v.indexes.clear()
    loads = v.loads
    prepared = [v.prepare(batch(t)) for t in distinct(4, seed=4)]
    await asyncio.gather(*(v.warm(store, p) for p in prepared))
    assert v.loads == loads + 1
    await v.warm(store, prepared[0])  # warm now: nothing to do
    assert v.loads == loads + 1


async def test_a_warm_up_for_a_new_stream_or_a_bad_scope_reads_nothing(env):
    store, v, _ = env
    await v.warm(store, v.prepare(batch("first item of a new stream")))
    await v.warm(store, v.prepare(Batch(scope="acme", stream="posts", items=[Item("x y")])))
    assert v.loads == 0 and v.streams() == 0


async def test_memory_stays_within_the_budget_and_the_totals_match(env):
    store, v, clock = env
    texts = distinct(60, seed=7)
    await send(store, v, batch(*texts[:10], stream="s0"))
    one_stream = v.memory_bytes()
    v.indexes.max_bytes = 3 * one_stream
    for i in range(1, 6):
        clock.advance(HOUR)
        await send(store, v, batch(*texts[10 * i : 10 * i + 10], stream=f"s{i}"))
        assert v.memory_bytes() <= v.indexes.max_bytes
        assert (v.indexes.nbytes, v.indexes.items) == (v.memory_bytes(), v.remembered())
    assert v.streams() == 3 and v.remembered() == 30
    assert v.evictions == 3


async def test_prune_drops_the_index_of_a_stream_idle_past_the_window(env):
    store, v, clock = env
    await send(store, v, batch(*distinct(4, seed=8), stream="idle"))
    clock.advance(2 * DAY)
    await send(store, v, batch(*distinct(4, seed=9), stream="busy"))
    clock.advance(6 * DAY)
    await store.write(lambda tx: v.prune(tx, clock.now()))
    assert not held(v, "idle") and held(v, "busy")
    assert (v.indexes.nbytes, v.indexes.items) == (v.memory_bytes(), v.remembered())


async def test_a_budget_too_small_is_reported_at_most_hourly(env, caplog):
    store, v, clock = env
    v.indexes.max_bytes = 1
    texts = distinct(8, seed=30)
    for i in range(4):
        await send(store, v, batch(texts[i], stream=f"s{i}"))
    with caplog.at_level("WARNING", logger="guards.validation.streams"):
        await send(store, v, batch(texts[4], stream="s0"))  # evicted: read again
        await send(store, v, batch(texts[5], stream="s1"))
        clock.advance(HOUR)
        await send(store, v, batch(texts[6], stream="s2"))
    warnings = [r.getMessage() for r in caplog.records if "index_memory_mb" in r.getMessage()]
    assert len(warnings) == 2
    assert "raise validation.index_memory_mb" in warnings[0]


# -- the property: an index budget never changes a verdict --------------------------------

_POOL = distinct(8, seed=12)
# near-duplicates of pool texts: one word dropped, or one added
_VARIANTS = [t.rsplit(" ", 1)[0] for t in _POOL[:4]] + [t + " ka" for t in _POOL[4:]]
_TEXTS = _POOL + _VARIANTS
_step = st.tuples(
    st.integers(0, 3),  # stream
    st.lists(st.integers(0, len(_TEXTS) - 1), min_size=1, max_size=3),  # items
    st.sampled_from([0.0, HOUR, DAY, 3 * DAY]),  # time passing first
    st.booleans(),  # warm up off the writer first (the tight side)
    st.booleans(),  # prune first
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(_step, min_size=2, max_size=14))
def test_a_tight_budget_gives_the_same_verdicts_as_no_budget(tmp_path_factory, steps):
    async def scenario() -> None:
        clock = ManualClock()
        root = tmp_path_factory.mktemp("budget")
        roomy_store = await Store.open(root / "roomy.db", clock=clock)
        tight_store = await Store.open(root / "tight.db", clock=clock)
        roomy, tight = Validator(Validation()), Validator(Validation())
        roomy.attach(roomy_store)
        tight.attach(tight_store)
        tight.indexes.max_bytes = 1  # every other stream's batch evicts
        try:
            for stream, picks, wait, warm, prune in steps:
                clock.advance(wait)
                if prune:
                    await roomy_store.write(lambda tx: roomy.prune(tx, tx.clock.now()))
                    await tight_store.write(lambda tx: tight.prune(tx, tx.clock.now()))
                b = batch(*(_TEXTS[i] for i in picks), stream=f"s{stream}")
                expected = await send(roomy_store, roomy, b, warm=False)
                assert await send(tight_store, tight, b, warm=warm) == expected
            assert tight.streams() <= 1
        finally:
            await roomy_store.close()
            await tight_store.close()

    asyncio.run(scenario())


# -- the gauges -------------------------------------------------------------------------


def gauge(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} is not in /metrics"
    return float(match.group(1))


async def test_the_index_memory_is_in_the_metrics(app_factory, tmp_path):
    db = tmp_path / "m.db"
    app = await app_factory(clock=ManualClock(), db=db)
    text = (await app.client.get("/metrics")).text
    assert gauge(text, "nightshift_validation_index_items") == 0
    tok = await app.token(AGENT)
    for stream, texts in (("posts", distinct(3, seed=20)), ("replies", distinct(2, seed=21))):
        body = {"scope": AGENT, "stream": stream, "items": texts}
        assert (await app.request("POST", "/v1/validations", token=tok, json=body)).is_success
    text = (await app.client.get("/metrics")).text
    validator = app.ns.extras["validation"]
    assert gauge(text, "nightshift_validation_index_streams") == 2
    assert gauge(text, "nightshift_validation_index_items") == 5
    assert gauge(text, "nightshift_validation_index_bytes") == validator.memory_bytes() > 0
    assert gauge(text, "nightshift_validation_index_evictions_total") == 0
    assert "stream=" not in text and "agent=" not in text  # no per-stream series

    # a restarted process reads the window ahead of the write, and says so
    await app.ns.stop()
    again = await app_factory(clock=ManualClock(), db=db)
    body = {"scope": AGENT, "stream": "posts", "items": ["something new today"]}
    tok = await again.token(AGENT)
    assert (await again.request("POST", "/v1/validations", token=tok, json=body)).is_success
    text = (await again.client.get("/metrics")).text
    assert gauge(text, "nightshift_validation_index_loads_total") == 1
    assert gauge(text, "nightshift_validation_index_items") == 4


async def test_a_stranger_s_batch_reads_no_window(app_factory, tmp_path):
    """The read-ahead comes after the token check: a made-up token, or one for another
    subtree, gets its 401/403 without reading (and caching) anybody's window (review7 M3)."""
    db = tmp_path / "s.db"
    app = await app_factory(clock=ManualClock(), db=db)
    tok = await app.token(AGENT)
    body = {"scope": AGENT, "stream": "posts", "items": distinct(5, seed=30)}
    assert (await app.request("POST", "/v1/validations", token=tok, json=body)).is_success
    await app.ns.stop()
    again = await app_factory(clock=ManualClock(), db=db)  # the stream is cold again
    validator = again.ns.extras["validation"]
    other = await again.token("globex/bob/bot")
    probe = {"scope": AGENT, "stream": "posts", "items": ["anything"]}
    made_up = await again.request("POST", "/v1/validations", token="ns_made_up", json=probe)
    elsewhere = await again.request("POST", "/v1/validations", token=other, json=probe)
    assert (made_up.status_code, elsewhere.status_code) == (401, 403)
    assert validator.loads == 0 and validator.streams() == 0
    # review30 L1: an expired token reads none either
    _, expired = await again.store.write(lambda tx: create_token(tx, scope=AGENT))
    gone = hash_token(expired)
    await again.store.write(
        lambda tx: tx.execute(
            "UPDATE tokens SET expires_at = ? WHERE hash = ?", (tx.clock.now() - 1, gone)
        )
    )
    late = await again.request("POST", "/v1/validations", token=expired, json=probe)
    assert late.status_code == 401 and "expired at" in late.json()["message"]
    assert validator.loads == 0 and validator.streams() == 0
    mine = await again.token(AGENT)
    assert (await again.request("POST", "/v1/validations", token=mine, json=probe)).is_success
    assert validator.loads == 1
