"""What /agent routing reports: decisions, the calls that followed them, money, promotions.

Calls go through the real ledger (reserve with the ``route_id``, settle), on a real store.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import Any

from guards.config import Policy, parse_policy
from guards.ledger import Estimate, Ledger, ReserveRequest, SettleRequest
from guards.prices import PriceTable
from guards.routing import Route, RouteRequest, RoutingService, RoutingStats
from guards.routing.stats import blended_price
from guards.store import Store
from guards.tokens import authenticate, create_token

SMALL = "Translate this reply into Spanish."
MEDIUM = "Write a blog post about our new Slack integration."
LARGE = "Plan the migration of the monolith over two quarters, with phases and risks."
# the tiers named, so that a change of the shipped defaults does not move these figures
TIERS = {
    "small": {"model": "claude-haiku-4-5"},
    "medium": {"model": "claude-sonnet-4-5"},
    "large": {"model": "claude-opus-4-1"},
}
_keys = itertools.count()


def policy(routing: dict[str, Any] | None = None, **more: Any) -> Policy:
    return parse_policy({"routing": {"tiers": TIERS, **(routing or {})}, **more})


async def mix(
    store: Store, svc: RoutingService, scope: str, counts: list[tuple[str, int]]
) -> list[Route]:
    """Route ``n`` tasks of each kind; no call follows them."""
    routes = []
    for task, n in counts:
        for _ in range(n):
            req = RouteRequest.parse(scope=scope, task=task)
            routes.append(await store.write(partial(svc.route, req=req)))
    return routes


async def call(
    store: Store,
    ledger: Ledger,
    route: Route | None,
    *,
    scope: str,
    model: str | None = None,
    named: str | None = None,
    tokens: tuple[int, int] = (3000, 1000),
    cost: int | None = None,
    outcome: str = "success",
    settle: bool = True,
) -> str:
    """One call through the ledger: reserve naming the route, then settle.

    With ``model`` it reserves an estimate and settles the same usage (charged from the
    price table); without, it reserves and settles ``cost`` micros, naming the model
    ``named`` (which need not have a price) or none.
    """
    _, raw = await store.write(lambda tx: create_token(tx, scope=scope.split("/")[0]))
    estimate = Estimate(model, *tokens) if model else None
    reserve = ReserveRequest(
        scope=scope,
        idempotency_key=f"k{next(_keys)}",
        max_cost_micros=None if model else cost,
        estimate=estimate,
        route_id=route.route_id if route else None,
        model=named,
    )
    _, answer = await store.write(
        lambda tx: ledger.reserve(tx, token=authenticate(tx, raw), req=reserve)
    )
    rid = str(answer["reservation_id"])
    if settle:
        done = SettleRequest(
            outcome=outcome,
            actual_cost_micros=None if model else cost,
            usage_model=model,
            input_tokens=tokens[0] if model else None,
            output_tokens=tokens[1] if model else None,
        )
        await store.write(
            lambda tx: ledger.settle(tx, token=authenticate(tx, raw), res_id=rid, req=done)
        )
    return rid


def wired(pol: Policy, **kw: Any) -> tuple[RoutingService, Ledger]:
    svc = RoutingService(policy=pol, **kw)
    ledger = Ledger(policy=pol)
    ledger.gates.append(svc.gate)
    return svc, ledger


async def stats(store: Store, svc: RoutingService, **kw: Any) -> RoutingStats:
    now = store.clock.now()
    return await store.write(lambda tx: svc.stats(tx, since=now - 3600, until=now + 1, **kw))


def test_the_blended_price_mixes_input_and_output():
    prices = PriceTable()
    assert blended_price(prices, "claude-haiku-4-5", input_share=0.75) == 2_000_000
    assert blended_price(prices, "claude-opus-4-1", input_share=0.75) == 30_000_000
    assert blended_price(prices, "claude-opus-4-1", input_share=1.0) == 15_000_000
    assert blended_price(prices, "no-such-model", input_share=0.75) is None


async def test_decisions_and_the_calls_that_followed_them_are_counted_apart(store):
    svc, ledger = wired(policy())
    agent = "acme/alice/bot"
    routes = await mix(store, svc, agent, [(SMALL, 6), (MEDIUM, 3), (LARGE, 1)])
    await mix(store, svc, "globex/bob/bot", [(LARGE, 5)])
    small, medium, large = routes[0], routes[6], routes[9]
    # two small calls (one a retry of the same decision), one medium, one large: each on
    # the model it was routed to, 3000 tokens in and 1000 out
    await call(store, ledger, small, scope=agent, model="claude-haiku-4-5", outcome="timeout")
    await call(store, ledger, small, scope=agent, model="claude-haiku-4-5")
    await call(store, ledger, medium, scope=agent + "/c1", model="claude-sonnet-4-5")
    await call(store, ledger, large, scope=agent, model="claude-opus-4-1")
    # not calls of these decisions: a hold never settled, another tenant naming the route
    await call(store, ledger, routes[1], scope=agent, model="claude-haiku-4-5", settle=False)
    await call(store, ledger, routes[2], scope="globex/x/y", model="claude-haiku-4-5")

    s = await stats(store, svc, scope="acme")
    assert (s.decisions, s.followed, s.degraded) == (10, 3, 0)
    assert s.decision_shares == {"small": 0.6, "medium": 0.3, "large": 0.1}
    assert (s.calls, s.failed, s.off_route, s.unnamed) == (4, 1, 0, 0)
    assert s.call_shares == {"small": 0.5, "medium": 0.25, "large": 0.25}
    # haiku 3000/1000: $0.008 each; sonnet $0.024; opus $0.12; all on opus: 4 x $0.12
    assert s.charged_micros == 2 * 8_000 + 24_000 + 120_000
    assert (s.priced_charged_micros, s.would_cost_micros) == (160_000, 480_000)
    assert s.saving is not None and round(s.saving, 4) == 0.6667
    assert s.lines() == [
        "routing under acme: 10 route decisions (small 60% · medium 30% · large 10%),"
        " 3 followed by a call",
        "4 calls, by model charged: small 50% · medium 25% · large 25%",
        "charged $0.16; all on claude-opus-4-1: about $0.48 (saving 67%)",
        "1 call failed or timed out",
        "promotions: none",
    ]
    everything = await stats(store, svc)
    assert (everything.decisions, everything.calls) == (15, 4)  # still not globex's call
    assert s.as_json()["saving"] == s.saving


async def test_the_saving_comes_from_the_model_charged_not_the_one_routed(store):
    """audit18 finding 3: routed to haiku, called and charged on opus: no saving."""
    svc, ledger = wired(policy())
    agent = "globex/u/agent"
    routes = await mix(
        store, svc, agent, [(f"Translate reply {n} into French", 1) for n in range(5)]
    )
    assert {r.decision.model for r in routes} == {"claude-haiku-4-5"}
    for r in routes:
        await call(store, ledger, r, scope=agent, model="claude-opus-4-1")
    await mix(store, svc, agent, [(SMALL, 3)])  # asked, never called

    s = await stats(store, svc, scope="globex")
    assert (s.decisions, s.followed, s.calls, s.off_route) == (8, 5, 5, 5)
    assert s.charged_micros == 5 * 120_000
    assert s.saving == 0.0
    assert s.lines() == [
        "routing under globex: 8 route decisions (small 100% · medium 0% · large 0%),"
        " 5 followed by a call",
        "5 calls, by model charged: small 0% · medium 0% · large 100%",
        "charged $0.60; all on claude-opus-4-1: about $0.60 (saving 0%)",
        "5 calls charged another model than routed to",
        "promotions: none",
    ]


async def test_calls_dearer_than_the_large_tier_say_so_plainly(store):
    """audit27 B3 L6: calls on claude-opus-4-1 ($30/MTok) with the large tier on
    claude-opus-4-5 ($10/MTok) read "(saving -200%)"."""
    tiers = {**TIERS, "large": {"model": "claude-opus-4-5"}}
    svc, ledger = wired(parse_policy({"routing": {"tiers": tiers}}))
    agent = "globex/u/agent"
    for r in await mix(store, svc, agent, [(SMALL, 2)]):
        await call(store, ledger, r, scope=agent, model="claude-opus-4-1")
    s = await stats(store, svc, scope="globex")
    assert (s.priced_charged_micros, s.would_cost_micros) == (240_000, 80_000)
    assert (
        "charged $0.24; all on claude-opus-4-5: about $0.08 (no saving: the calls cost 3.0x that)"
    ) in s.lines()


async def test_old_decisions_are_pruned_after_the_retention(store):
    svc, _ = wired(policy({"retention_days": 2}))
    await mix(store, svc, "acme/alice/bot", [(SMALL, 2)])
    store.clock.advance(86400)
    await mix(store, svc, "acme/alice/bot", [(LARGE, 1)])
    store.clock.advance(86400 + 1)
    assert await store.write(svc.prune) == 2
    assert await store.write(svc.prune) == 0
    now = store.clock.now()
    s = await store.write(lambda tx: svc.stats(tx, since=0, until=now))
    assert (s.decisions, s.decision_shares) == (1, {"large": 1.0})


async def test_the_period_bounds_the_decisions_and_their_calls(store):
    svc, ledger = wired(policy())
    old = await mix(store, svc, "acme/alice/bot", [(SMALL, 2)])
    store.clock.advance(7200)
    await mix(store, svc, "acme/alice/bot", [(LARGE, 1)])
    # a call now that follows a decision made before the period is not in the period
    await call(store, ledger, old[0], scope="acme/alice/bot", model="claude-haiku-4-5")
    s = await stats(store, svc)
    assert (s.decisions, s.decision_shares, s.calls, s.followed) == (1, {"large": 1.0}, 0, 0)
    assert s.lines()[0].endswith(", none followed by a call")


async def test_an_empty_period_unpriced_and_unnamed_models_are_said(store):
    svc, ledger = wired(policy())
    empty = await stats(store, svc)
    assert empty.lines() == ["routing: no route decisions in this period", "promotions: none"]
    routes = await mix(store, svc, "acme/alice/bot", [(SMALL, 3)])
    await call(store, ledger, routes[0], scope="acme/alice/bot", model="claude-haiku-4-5")
    # a model the price table does not know (an agent's own), and no model at all
    await call(store, ledger, routes[1], scope="acme/alice/bot", named="mystery-1", cost=5_000)
    await call(store, ledger, routes[2], scope="acme/alice/bot", cost=5_000)
    s = await stats(store, svc)
    assert (s.calls, s.unnamed, s.unpriced) == (3, 1, ["mystery-1"])
    assert (s.priced_charged_micros, s.would_cost_micros) == (8_000, 120_000)
    lines = s.lines()
    assert lines[1] == (
        "3 calls, by model charged: small 33% · medium 0% · large 0% · other 33% · unnamed 33%"
    )
    assert "1 call named no model: left out of the saving" in lines
    assert "no price for mystery-1: left out of the saving" in lines


async def test_degraded_decisions_and_promotions_are_listed(store):
    svc = RoutingService(
        policy=policy({"promote": {"window_calls": 2, "min_calls": 2}}),
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
    assert "2 decisions degraded (budget pressure, model budgets or open breakers)" in lines
    assert lines[-1] == (
        "promoted: translation in acme small → medium since 2026-01-01 00:00 UTC,"
        " lapses 2026-01-08 00:00 UTC (2 of 2 calls failed or were rejected by validation);"
        " revert: /agent routing revert translation"
    )
