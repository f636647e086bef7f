"""``POST /v1/route`` through the real server with budgets per model (``budgets.models``):
a model whose namespace budget cannot take the call is routed around, so the agent's next
reservation is not a 402; with every candidate over budget the answer is what routing
answers when nothing can serve (the tier's model, ``degraded``, saying why)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import RunningApp
from tests.scenario.test_ledger_api import reserve
from tests.scenario.test_route import LARGE, SMALL, route

AGENT = "acme/alice/rss-bot"
OPUS, SONNET, HAIKU = "claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"
DAY = 86_400


async def spend(app: RunningApp, token: str, key: str, micros: int, model: str) -> None:
    r = await reserve(app, token, AGENT, key, micros, model=model)
    assert r.status_code == 201, r.text
    path = f"/v1/reservations/{r.json()['reservation_id']}/settle"
    s = await app.request("POST", path, token=token, json={"actual_cost_micros": micros})
    assert s.status_code == 200, s.text


async def test_a_model_whose_budget_is_spent_is_routed_around_and_the_reserve_fits(
    app_factory: Any, tmp_path: Path
) -> None:
    policy: dict[str, Any] = {"budgets": {"models": {OPUS: {"day": "1.00"}}}}
    db = tmp_path / "route.db"
    app = await app_factory(policy, db=db)
    token = await app.token(AGENT)
    assert (await route(app, token, LARGE)).json()["model"] == OPUS
    await spend(app, token, "k1", 850_000, OPUS)  # 15% left: too low for a large model
    body = (await route(app, token, LARGE)).json()
    assert (body["model"], body["tier"], body["degraded"]) == (SONNET, "medium", True)
    assert body["reason"].endswith(
        f"acme's budget for {OPUS} has 15% left for today, under routing.degrade.medium"
        f" (20%): too low for a large model; raise budgets.models.{OPUS}.day in the policy"
        f" and reload it (SIGHUP) → {SONNET} (next tier medium)"
    )
    await spend(app, token, "k2", 150_000, OPUS)  # spent
    body = (await route(app, token, LARGE)).json()
    assert (body["model"], body["degraded"]) == (SONNET, True)
    assert f"acme's budget for {OPUS} is spent for today ($1.00 of $1.00)" in body["reason"]
    # the model routed to takes the call; the one routed around would have refused it
    assert (await reserve(app, token, AGENT, "k3", 10_000, model=body["model"])).status_code == 201
    assert (await reserve(app, token, AGENT, "k4", 10_000, model=OPUS)).status_code == 402
    # another namespace's budget for the model is its own
    other = await app.token("globex/x/bot")
    assert (await route(app, other, LARGE, scope="globex/x/bot")).json()["model"] == OPUS

    # a reload raising the model's limit (the restart on the edited file): routed there again
    await app.ns.stop()
    raised = {"budgets": {"models": {OPUS: {"day": "5.00"}}}}
    app = await app_factory(raised, db=db)
    body = (await route(app, token, LARGE)).json()
    assert (body["model"], body["degraded"]) == (OPUS, False)
    app.clock.advance(DAY)  # and the next day is fresh anyway
    assert (await route(app, token, LARGE)).json()["model"] == OPUS


async def test_a_model_budget_just_under_the_threshold_does_not_read_as_it(
    app_factory: Any,
) -> None:
    """audit27 B3 L1: 19.9999% left is "19.9%" under routing.degrade.medium (20%), not "20%"."""
    app = await app_factory({"budgets": {"models": {OPUS: {"day": "1.00"}}}})
    token = await app.token(AGENT)
    await spend(app, token, "k1", 800_001, OPUS)
    body = (await route(app, token, LARGE)).json()
    assert (body["model"], body["degraded"]) == (SONNET, True)
    assert (
        f"acme's budget for {OPUS} has 19.9% left for today, under routing.degrade.medium"
        " (20%): too low for a large model"
    ) in body["reason"]


async def test_every_candidate_over_budget_is_the_tier_s_model_degraded_with_a_200(
    app_factory: Any,
) -> None:
    zero = {"day": "0"}  # $0: every call naming the model is refused
    policy = {"budgets": {"models": {OPUS: zero, SONNET: zero, HAIKU: zero}}}
    app = await app_factory(policy)
    token = await app.token(AGENT)
    r = await route(app, token, SMALL)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model"], body["tier"], body["degraded"]) == (HAIKU, "small", True)
    assert body["reason"].endswith(
        f"acme's budget for {HAIKU} is spent for today (its limit is $0): raise"
        f" budgets.models.{HAIKU}.day in the policy and reload it (SIGHUP); no other model"
        f" can serve: acme's budget for {SONNET} is spent, acme's budget for {OPUS} is spent"
    )
    decisions = await app.store.fetch("SELECT model, degraded FROM routing_decisions")
    assert [tuple(d) for d in decisions] == [(HAIKU, 1)]


async def test_a_model_with_money_but_too_little_for_its_tier_beats_a_spent_one(
    app_factory: Any,
) -> None:
    """review24 M1: opus and haiku spent, sonnet at 3% left: the route is sonnet, which
    takes the call, not a spent model whose reservation is a certain 402."""
    dime = {"day": "0.10"}  # small sums: the spend-rate breaker stays closed
    policy = {"budgets": {"models": {OPUS: dime, SONNET: dime, HAIKU: dime}}}
    app = await app_factory(policy)
    token = await app.token(AGENT)
    await spend(app, token, "o", 100_000, OPUS)
    await spend(app, token, "s", 97_000, SONNET)
    await spend(app, token, "h", 100_000, HAIKU)
    for task in (LARGE, SMALL):
        body = (await route(app, token, task)).json()
        assert (body["model"], body["tier"], body["degraded"]) == (SONNET, "medium", True)
        assert body["reason"].endswith(
            f"(next tier medium, though acme's budget for {SONNET} has 3% left for today, too"
            " low for a medium model: taken, as no other model can serve)"
        )
    assert (await reserve(app, token, AGENT, "k", 1_000, model=SONNET)).status_code == 201
    assert (await reserve(app, token, AGENT, "k2", 1_000, model=OPUS)).status_code == 402


async def test_a_dated_tier_and_an_unpriced_budgeted_model(app_factory: Any) -> None:
    """A tier naming a snapshot counts under the undated name of its budget; a budget of a
    model Nightshift has no price for (routing never hands it out) changes no route."""
    policy = {
        "routing": {"tiers": {"large": {"model": "claude-opus-4-1-20250805"}}},
        "budgets": {"models": {"claude-opus-4-1": {"day": "0"}, "brand-new-model": {"day": "0"}}},
    }
    app = await app_factory(policy)
    token = await app.token(AGENT)
    body = (await route(app, token, LARGE)).json()
    assert (body["model"], body["degraded"]) == (SONNET, True)
    assert "acme's budget for claude-opus-4-1 is spent" in body["reason"]
    body = (await route(app, token, SMALL)).json()
    assert (body["model"], body["degraded"]) == (HAIKU, False)
