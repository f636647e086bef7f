"""audit18 finding 2: an outage does not promote an intent, and promotions lapse.

Degraded decisions (the router knew the model's breaker was open, or the budget capped
the tier) are no evidence about the tier; an active promotion lapses
``routing.promote.review_after`` after it was made, audited as Nightshift's own action.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from guards.config import parse_policy
from guards.config_types import PolicyError
from guards.errors import NotFound
from guards.routing import RoutingService
from guards.store import Store
from tests.unit.test_routing_learning import advance, calls, promotions, route, rows

DAY = 86_400
PROMOTE = {"window_calls": 10, "min_calls": 10, "rate": 0.3}


def service(promote: dict[str, Any] | None = None, **kwargs: Any) -> RoutingService:
    ids = itertools.count(1)
    return RoutingService(
        policy=parse_policy({"routing": {"promote": {**PROMOTE, **(promote or {})}}}),
        new_id=lambda: f"rt_{next(ids)}",
        **kwargs,
    )


async def audit(store: Store, action: str) -> list[tuple[Any, ...]]:
    return await rows(
        store,
        "SELECT at, actor, target, before, after, detail FROM audit WHERE action = ? ORDER BY id",
        (action,),
    )


async def test_failures_of_degraded_calls_do_not_promote(store):
    outage = {"on": True}
    svc = service(is_model_open=lambda tx, model: outage["on"])
    routes = await calls(store, svc, ["timeout"] * 12, scope="acme/alice/summ0")
    assert {(r.decision.tier, r.decision.degraded) for r in routes} == {("small", True)}
    assert await promotions(store) == []
    assert (await route(store, svc, scope="acme/bob/other")).decision.tier == "small"

    # after the outage, only the calls made with a closed breaker are counted
    outage["on"] = False
    await calls(store, svc, ["success"] * 7 + ["failure"] * 2)
    assert await promotions(store) == []  # 2 of 9 (12 degraded timeouts left out)
    await calls(store, svc, ["failure"])
    assert [p[4:6] for p in await promotions(store)] == [(3, 10)]


async def test_a_budget_capped_call_is_no_evidence_either(store):
    svc = service(remaining_fraction=lambda tx, scope: 0.01)  # capped at small
    routes = await calls(store, svc, ["failure"] * 10, task="Plan the migration in phases.")
    assert {(r.decision.tier, r.decision.degraded) for r in routes} == {("small", True)}
    assert await promotions(store) == []


async def test_a_promotion_lapses_after_review_after_and_learning_restarts(store):
    svc = service({"window_calls": 4, "min_calls": 4, "rate": 0.5})
    await calls(store, svc, ["failure"] * 4)
    promoted_at = store.clock.now() - 1
    assert (await route(store, svc)).decision.tier == "medium"
    lines = (await store.write(lambda tx: svc.stats(tx, since=0, until=1e12))).lines()
    assert ", lapses 2026-01-08 00:00 UTC (" in lines[-1]

    advance(store, promoted_at + 7 * DAY - 1 - store.clock.now())  # a second before review
    assert (await route(store, svc)).decision.tier == "medium"
    assert await audit(store, "routing.lapse") == []
    advance(store, 1)
    after = await route(store, svc)
    assert (after.decision.tier, "promoted" in after.decision.reason) == ("small", False)
    assert await audit(store, "routing.lapse") == [
        (
            store.clock.now(),
            "nightshift",
            "acme summary",
            "medium",
            "small",
            "promoted 2026-01-01 00:00 UTC; lapsed after 7d (routing.promote.review_after):"
            " back to small, learning again",
        )
    ]
    lapsed = await rows(store, "SELECT reverted_at, reverted_by FROM routing_promotions")
    assert lapsed == [(promoted_at + 7 * DAY, "nightshift")]
    stats = await store.write(lambda tx: svc.stats(tx, since=0, until=1e12))
    assert stats.lines()[-1] == "promotions: none"

    # the failures before the lapse count no more: it learns again from here
    await calls(store, svc, ["failure"] * 3)
    assert len(await promotions(store)) == 1
    await calls(store, svc, ["failure"])
    assert [p[6] for p in await promotions(store)] == ["nightshift", None]
    assert len(await audit(store, "routing.lapse")) == 1
    with pytest.raises(NotFound):  # the lapsed one is not there to revert
        advance(store, 8 * DAY)
        await store.write(lambda tx: svc.revert_promotion(tx, intent="summary", actor="U0"))


async def test_a_climb_lapses_whole_when_its_latest_promotion_is_due(store):
    svc = service({"window_calls": 4, "min_calls": 4, "rate": 0.5})
    await calls(store, svc, ["failure"] * 4)
    advance(store, 3 * DAY)
    await calls(store, svc, ["failure"] * 4)  # medium → large
    assert (await route(store, svc)).decision.tier == "large"
    advance(store, 5 * DAY)  # the first is 8 days old, the second 5: still large
    assert (await route(store, svc)).decision.tier == "large"
    advance(store, 2 * DAY)
    # /agent routing lapses what is due even when no agent routes the intent
    stats = await store.write(lambda tx: svc.stats(tx, since=0, until=1e12))
    assert stats.promotions == []
    assert [(a[3], a[4]) for a in await audit(store, "routing.lapse")] == [("large", "small")]
    assert (await route(store, svc)).decision.tier == "small"


async def test_review_after_null_keeps_a_promotion_until_an_admin_reverts_it(store):
    svc = service({"window_calls": 4, "min_calls": 4, "rate": 0.5, "review_after": None})
    await calls(store, svc, ["failure"] * 4)
    advance(store, 365 * DAY)
    assert (await route(store, svc)).decision.tier == "medium"
    lines = (await store.write(lambda tx: svc.stats(tx, since=0, until=1e12))).lines()
    assert ", until reverted (" in lines[-1]


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, None), ("2h", 7200), ("30d", 30 * DAY), (600, 600)]
)
def test_review_after_is_a_duration_or_null(value, seconds):
    routing = parse_policy({"routing": {"promote": {"review_after": value}}}).routing
    assert routing.promote.review_after == seconds
    assert parse_policy({}).routing.promote.review_after == 7 * DAY


@pytest.mark.parametrize("value", [0, "soon", True, "400d"])
def test_a_bad_review_after_names_the_key(value):
    with pytest.raises(PolicyError, match=r"routing\.promote\.review_after: "):
        parse_policy({"routing": {"promote": {"review_after": value}}})
