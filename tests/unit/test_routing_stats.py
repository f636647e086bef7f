"""The routing mix for the digest and /agent routing."""

from __future__ import annotations

from functools import partial
from typing import Any

from guards.config import parse_policy
from guards.prices import PriceTable
from guards.routing import RouteRequest, RoutingService, RoutingStats
from guards.routing.stats import blended_price
from guards.store import Store

SMALL = "Translate this reply into Spanish."
MEDIUM = "Write a blog post about our new Slack integration."
LARGE = "Plan the migration of the monolith over two quarters, with phases and risks."


async def mix(store: Store, svc: RoutingService, scope: str, counts: list[tuple[str, int]]) -> None:
    for task, n in counts:
        for _ in range(n):
            req = RouteRequest.parse(scope=scope, task=task)
            await store.write(partial(svc.route, req=req))


async def stats(store: Store, svc: RoutingService, **kw: Any) -> RoutingStats:
    now = store.clock.now()
    return await store.write(lambda tx: svc.stats(tx, since=now - 3600, until=now + 1, **kw))


def test_the_blended_price_mixes_input_and_output():
    prices = PriceTable()
    assert blended_price(prices, "claude-haiku-4-5", input_share=0.75) == 2_000_000
    assert blended_price(prices, "claude-opus-4-1", input_share=0.75) == 30_000_000
    assert blended_price(prices, "claude-opus-4-1", input_share=1.0) == 15_000_000
    assert blended_price(prices, "no-such-model", input_share=0.75) is None


async def test_mix_blended_price_and_saving_against_always_largest(store):
    svc = RoutingService(policy=parse_policy({}))
    await mix(store, svc, "acme/alice/bot", [(SMALL, 6), (MEDIUM, 3), (LARGE, 1)])
    await mix(store, svc, "globex/bob/bot", [(LARGE, 5)])
    s = await stats(store, svc, scope="acme")
    assert s.calls == 10
    assert s.tier_shares == {"small": 0.6, "medium": 0.3, "large": 0.1}
    # (6 x $2 + 3 x $6 + 1 x $30) / 10 = $6 per million tokens, against $30
    assert (s.blended_micros_per_mtok, s.largest_micros_per_mtok) == (6_000_000, 30_000_000)
    assert s.saving == 0.8
    assert s.lines() == [
        "routing under acme: 10 calls: small 60% · medium 30% · large 10%",
        "blended $6.00 per million tokens; always claude-opus-4-1: $30.00 "
        "(saving 80%, 5.0x cheaper)",
        "promotions: none",
    ]
    everything = await stats(store, svc)
    assert (everything.calls, everything.tier_shares["large"]) == (15, 0.4)
    assert s.as_json()["saving"] == 0.8


async def test_old_decisions_are_pruned_after_the_retention(store):
    svc = RoutingService(policy=parse_policy({"routing": {"retention_days": 2}}))
    await mix(store, svc, "acme/alice/bot", [(SMALL, 2)])
    store.clock.advance(86400)
    await mix(store, svc, "acme/alice/bot", [(LARGE, 1)])
    store.clock.advance(86400 + 1)
    assert await store.write(svc.prune) == 2
    assert await store.write(svc.prune) == 0
    now = store.clock.now()
    s = await store.write(lambda tx: svc.stats(tx, since=0, until=now))
    assert (s.calls, s.tier_shares) == (1, {"large": 1.0})


async def test_the_period_bounds_the_mix(store):
    svc = RoutingService(policy=parse_policy({}))
    await mix(store, svc, "acme/alice/bot", [(SMALL, 2)])
    store.clock.advance(7200)
    await mix(store, svc, "acme/alice/bot", [(LARGE, 1)])
    s = await stats(store, svc)
    assert (s.calls, s.tier_shares) == (1, {"large": 1.0})


async def test_an_empty_period_and_an_unpriced_model_are_said(store):
    # A policy routes only to priced models; decisions recorded under an earlier policy (or
    # a price table without the model, as here: the service gets no prices) can still name one.
    policy = {
        "routing": {"tiers": {"small": {"model": "local-llama"}}},
        "prices": {"local-llama": {"input": "1", "output": "1"}},
    }
    svc = RoutingService(policy=parse_policy(policy))
    empty = await stats(store, svc)
    assert empty.lines() == ["routing: no decisions in this period", "promotions: none"]
    await mix(store, svc, "acme/alice/bot", [(SMALL, 1), (MEDIUM, 1)])
    s = await stats(store, svc)
    assert s.unpriced == ["local-llama"]
    assert s.blended_micros_per_mtok == 6_000_000  # the priced calls only
    assert "no price for local-llama: left out of the blend" in s.lines()


async def test_degraded_calls_and_promotions_are_listed(store):
    svc = RoutingService(
        policy=parse_policy({"routing": {"promote": {"window_calls": 2, "min_calls": 2}}}),
        remaining_fraction=lambda tx, scope: 0.01 if scope.path.endswith("poor") else None,
    )
    await mix(store, svc, "acme/alice/poor", [(LARGE, 2)])
    for _ in range(2):
        req = RouteRequest.parse(scope="acme/alice/bot", task=SMALL)
        r = await store.write(lambda tx, req=req: svc.route(tx, req))
        await store.write(
            lambda tx, r=r: svc.on_settle(
                tx, route_id=r.route_id, outcome="failure", now=tx.clock.now()
            )
        )
    lines = (await stats(store, svc)).lines()
    assert "degraded (budget pressure or open breakers): 2 calls" in lines
    assert lines[-1] == (
        "promoted: translation in acme small → medium since 2026-01-01 00:00 UTC "
        "(2 of 2 calls failed or were rejected by validation); "
        "revert: /agent routing revert translation"
    )
