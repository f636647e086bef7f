"""The pure routing decision around a model whose namespace budget (``budgets.models``)
cannot take the call: spent, a $0 limit, or too little left for the model's tier under
``routing.degrade``; the same candidates and directions as around an open breaker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from guards.config import Routing
from guards.model_budgets import ModelUsage
from guards.routing.router import Router
from guards.routing.tiers import TIERS, rank
from guards.scopes import Scope

AGENT = Scope("acme/alice/rss-bot")
SMALL_TASK = "Translate this reply into Spanish."
LARGE_TASK = "Plan the migration of the monolith over two quarters, with phases and risks."
MEDIUM_TASK = "Write a blog post about us."
HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"
DOLLAR = 1_000_000
RAISE_OPUS = "raise budgets.models.claude-opus-4-5.day in the policy and reload it (SIGHUP)"


def router(**routing: Any) -> Router:
    return Router(Routing.model_validate(routing))


def left(**fractions: tuple[int, int, int]) -> Callable[[str], ModelUsage | None]:
    """Each model's day window: (limit, spent, held) micros; others unlimited."""
    by_model = {m.replace("_", "-"): v for m, v in fractions.items()}

    def budget(model: str) -> ModelUsage | None:
        figures = by_model.get(model)
        if figures is None:
            return None
        return ModelUsage("acme", model, "day", "2026-11-28", *figures)

    return budget


SPENT = (DOLLAR, DOLLAR, 0)


def test_a_spent_model_is_routed_around_like_a_broken_one_and_says_where_to_raise_it():
    d = router().decide(task=LARGE_TASK, scope=AGENT, model_budget=left(claude_opus_4_5=SPENT))
    assert (d.model, d.tier, d.wanted_tier, d.degraded) == (SONNET, "medium", "large", True)
    assert d.reason.endswith(
        f"acme's budget for {OPUS} is spent for today ($1.00 of $1.00): {RAISE_OPUS}"
        f" → {SONNET} (next tier medium)"
    )


def test_held_money_counts_and_the_figures_say_so():
    held = (DOLLAR, 400_000, 600_000)
    d = router().decide(task=LARGE_TASK, scope=AGENT, model_budget=left(claude_opus_4_5=held))
    assert d.model == SONNET
    assert f"is spent for today ($0.40 spent and $0.60 held of $1.00): {RAISE_OPUS}" in d.reason


def test_the_fallback_chain_comes_first_and_a_same_tier_fallback_is_still_degraded():
    r = router(fallbacks={OPUS: ["gpt-5"]})
    d = r.decide(task=LARGE_TASK, scope=AGENT, model_budget=left(claude_opus_4_5=SPENT))
    assert (d.model, d.tier, d.degraded) == ("gpt-5", "large", True)
    assert d.reason.endswith("→ gpt-5 (fallback)")


def test_a_fallback_whose_own_budget_is_spent_is_passed_over():
    r = router(fallbacks={OPUS: ["gpt-5"]})
    budget = left(claude_opus_4_5=SPENT, gpt_5=SPENT)
    d = r.decide(task=LARGE_TASK, scope=AGENT, model_budget=budget)
    assert (d.model, d.tier, d.degraded) == (SONNET, "medium", True)


def test_a_zero_dollar_budget_takes_no_call():
    d = router().decide(task=SMALL_TASK, scope=AGENT, model_budget=left(claude_haiku_4_5=(0, 0, 0)))
    assert (d.model, d.tier, d.degraded) == (SONNET, "medium", True)
    assert d.reason.endswith(
        f"acme's budget for {HAIKU} is spent for today (its limit is $0): raise"
        f" budgets.models.{HAIKU}.day in the policy and reload it (SIGHUP) → {SONNET}"
        " (next tier medium)"
    )


def test_too_little_left_for_the_tier_is_read_from_routing_degrade():
    # 10% left: under medium's 20%, so a large model is kept out; a medium one is not
    tenth = (DOLLAR, 900_000, 0)
    d = router().decide(task=LARGE_TASK, scope=AGENT, model_budget=left(claude_opus_4_5=tenth))
    assert (d.model, d.degraded) == (SONNET, True)
    assert d.reason.endswith(
        f"acme's budget for {OPUS} has 10% left for today, under routing.degrade.medium"
        f" (20%): too low for a large model; {RAISE_OPUS} → {SONNET} (next tier medium)"
    )
    d = router().decide(task=MEDIUM_TASK, scope=AGENT, model_budget=left(claude_sonnet_4_5=tenth))
    assert (d.model, d.degraded) == (SONNET, False)
    # 1% left: a small model still serves (only nothing left keeps it out)
    one = (DOLLAR, 990_000, 0)
    d = router().decide(task=SMALL_TASK, scope=AGENT, model_budget=left(claude_haiku_4_5=one))
    assert (d.model, d.degraded) == (HAIKU, False)
    # the operator's own thresholds are the ones read
    r = router(degrade={"medium": 0.05})
    d = r.decide(task=LARGE_TASK, scope=AGENT, model_budget=left(claude_opus_4_5=tenth))
    assert (d.model, d.degraded) == (OPUS, False)


def test_every_candidate_over_budget_answers_the_tier_s_model_degraded_with_each_reason():
    budget = left(claude_opus_4_5=SPENT, claude_sonnet_4_5=SPENT, claude_haiku_4_5=(0, 0, 0))
    d = router().decide(task=LARGE_TASK, scope=AGENT, model_budget=budget)
    assert (d.model, d.tier, d.degraded) == (OPUS, "large", True)
    assert d.reason.endswith(
        f"acme's budget for {OPUS} is spent for today ($1.00 of $1.00): {RAISE_OPUS}; no other"
        f" model can serve: acme's budget for {SONNET} is spent, acme's budget for {HAIKU}"
        " is spent"
    )


def test_a_broken_model_and_a_spent_one_together():
    d = router().decide(
        task=LARGE_TASK,
        scope=AGENT,
        model_open=lambda m: m == OPUS,
        model_budget=left(claude_sonnet_4_5=SPENT),
    )
    assert (d.model, d.tier, d.degraded) == (HAIKU, "small", True)
    assert d.reason.endswith(f"{OPUS} breaker open → {HAIKU} (next tier small)")
    d = router().decide(
        task=LARGE_TASK,
        scope=AGENT,
        model_open=lambda m: m != OPUS,
        model_budget=left(claude_opus_4_5=SPENT),
    )
    assert (d.model, d.degraded) == (OPUS, True)
    assert d.reason.endswith(
        f"; no other model can serve: {SONNET} breaker open, {HAIKU} breaker open"
    )


def test_the_floor_bounds_the_way_round_and_the_level_budget_cap_gives_way_to_a_spent_model():
    d = router().decide(
        task=LARGE_TASK, scope=AGENT, min_tier="large", model_budget=left(claude_opus_4_5=SPENT)
    )
    assert (d.model, d.degraded) == (OPUS, True)
    assert d.reason.endswith("; min_tier large allows no other model")
    # the levels leave 10%: capped at medium; sonnet spent, and opus is over the cap
    d = router().decide(
        task=LARGE_TASK, scope=AGENT, remaining=0.1, model_budget=left(claude_sonnet_4_5=SPENT)
    )
    assert (d.model, d.tier, d.degraded) == (HAIKU, "small", True)
    # with haiku spent too, opus (over the cap, but with money) beats a certain 402
    d = router().decide(
        task=LARGE_TASK,
        scope=AGENT,
        remaining=0.1,
        model_budget=left(claude_sonnet_4_5=SPENT, claude_haiku_4_5=SPENT),
    )
    assert (d.model, d.tier, d.degraded) == (OPUS, "large", True)
    assert d.reason.endswith(
        f"is spent for today ($1.00 of $1.00): raise budgets.models.{SONNET}.day in the policy"
        f" and reload it (SIGHUP) → {OPUS} (next tier large, over the budget cap at medium:"
        " taken, as no other model can serve)"
    )


THIN = (100, 97, 0)  # 3% left: money, but too little for a medium or a large model


def test_a_model_too_low_for_its_tier_serves_before_a_spent_one():
    """review24 M1: with opus and haiku spent, sonnet (3% left) is answered, not a 402."""
    budget = left(claude_opus_4_5=SPENT, claude_sonnet_4_5=THIN, claude_haiku_4_5=SPENT)
    d = router().decide(task=LARGE_TASK, scope=AGENT, model_budget=budget)
    assert (d.model, d.tier, d.degraded) == (SONNET, "medium", True)
    assert d.reason.endswith(
        f"{RAISE_OPUS} → {SONNET} (next tier medium, though acme's budget for {SONNET} has 3%"
        " left for today, too low for a medium model: taken, as no other model can serve)"
    )
    d = router().decide(task=SMALL_TASK, scope=AGENT, model_budget=budget)
    assert (d.model, d.tier, d.degraded) == (SONNET, "medium", True)
    # one over the levels' budget cap and too low for its tier serves too
    budget = left(claude_opus_4_5=THIN, claude_sonnet_4_5=SPENT, claude_haiku_4_5=SPENT)
    d = router().decide(task=SMALL_TASK, scope=AGENT, remaining=0.01, model_budget=budget)
    assert (d.model, d.tier, d.degraded) == (OPUS, "large", True)
    assert d.reason.endswith(
        f"→ {OPUS} (next tier large, over the budget cap at small, though acme's budget for"
        f" {OPUS} has 3% left for today, too low for a large model: taken, as no other model"
        " can serve)"
    )


def test_the_tier_s_own_model_too_low_for_its_tier_is_kept_before_another_one():
    budget = left(claude_opus_4_5=THIN, claude_sonnet_4_5=THIN, claude_haiku_4_5=SPENT)
    d = router().decide(task=LARGE_TASK, scope=AGENT, model_budget=budget)
    assert (d.model, d.tier, d.degraded) == (OPUS, "large", True)
    assert d.reason.endswith(
        f"too low for a large model; {RAISE_OPUS}; kept, as no other model fits better:"
        f" acme's budget for {SONNET} has 3% left for today, too low for a medium model,"
        f" acme's budget for {HAIKU} is spent"
    )
    d = router().decide(
        task=LARGE_TASK, scope=AGENT, min_tier="large", model_budget=left(claude_opus_4_5=THIN)
    )
    assert (d.model, d.degraded) == (OPUS, True)
    assert d.reason.endswith(f"{RAISE_OPUS}; kept: min_tier large allows no other model")


def test_a_broken_model_is_never_taken_for_a_preference():
    budget = left(claude_opus_4_5=SPENT, claude_haiku_4_5=SPENT)
    d = router().decide(
        task=LARGE_TASK, scope=AGENT, model_open=lambda m: m == SONNET, model_budget=budget
    )
    assert (d.model, d.degraded) == (OPUS, True)
    assert d.reason.endswith(
        f"; no other model can serve: {SONNET} breaker open, acme's budget for {HAIKU} is spent"
    )


def test_a_model_with_room_is_untouched():
    roomy = (DOLLAR, 100_000, 0)
    d = router().decide(task=LARGE_TASK, scope=AGENT, model_budget=left(claude_opus_4_5=roomy))
    assert (d.model, d.degraded) == (OPUS, False)
    assert "budget" not in d.reason


STATES = {
    "spent": (100, 100, 0),
    "thin": THIN,  # too low for a medium or a large model, enough for a small one
    "tenth": (100, 90, 0),  # too low for a large model only
}


@given(
    task=st.sampled_from([SMALL_TASK, LARGE_TASK, MEDIUM_TASK]),
    states=st.fixed_dictionaries(
        {m: st.sampled_from([None, *STATES]) for m in (HAIKU, SONNET, OPUS)}
    ),
    broken=st.sets(st.sampled_from([HAIKU, SONNET, OPUS])),
    min_tier=st.one_of(st.none(), st.sampled_from(TIERS)),
    remaining=st.one_of(st.none(), st.sampled_from([0.01, 0.1, 0.5])),
)
def test_a_model_that_cannot_serve_is_answered_only_when_no_model_above_the_floor_can(
    task, states, broken, min_tier, remaining
):
    r = router()

    def budget(model: str) -> ModelUsage | None:
        state = states[model]
        return None if state is None else ModelUsage("acme", model, "day", "d", *STATES[state])

    d = r.decide(
        task=task,
        scope=AGENT,
        min_tier=min_tier,
        remaining=remaining,
        model_open=lambda m: m in broken,
        model_budget=budget,
    )
    floor = rank(min_tier) if min_tier is not None else 0
    assert rank(d.tier) >= floor

    def can_serve(model: str) -> bool:
        usage = budget(model)
        return model not in broken and (usage is None or usage.remaining_micros > 0)

    if not can_serve(d.model):
        # neither the budget cap nor a share too low for a tier keeps out a model with money
        assert d.degraded
        assert not any(can_serve(r.model_of(t)) for t in TIERS if rank(t) >= floor)
    wanted = budget(r.model_of(d.wanted_tier))
    if wanted is not None and wanted.remaining_micros == 0 and wanted.model not in broken:
        assert d.degraded  # passed over for its budget (its breaker, when open, is said first)
