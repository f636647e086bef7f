"""The pure routing decision: rules, floors, the budget cap and breaker fallbacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guards.config import PolicyError, Routing, parse_policy
from guards.errors import InvalidInput
from guards.routing.router import Floor, Router
from guards.routing.tiers import TIERS, rank
from guards.scopes import Scope

AGENT = Scope("acme/alice/rss-bot")
SMALL_TASK = "Translate this reply into Spanish."
LARGE_TASK = "Plan the migration of the monolith over two quarters, with phases and risks."
# the default tiers' models
HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"


def router(**routing: Any) -> Router:
    return Router(Routing.model_validate(routing))


def opened(*models: str) -> Callable[[str], bool]:
    return lambda model: model in models


# -- rules ------------------------------------------------------------------------------


def test_a_keyword_rule_beats_the_classifier_and_names_itself():
    r = router(rules=[{"name": "legal", "tier": "large", "keywords": ["contract", "terms of use"]}])
    d = r.decide(task="Translate these Terms  of Use into German.", scope=AGENT)
    assert (d.tier, d.model, d.source) == ("large", OPUS, "rule")
    assert d.reason == "rule 'legal' (keyword 'Terms  of Use') → large"


def test_keywords_match_whole_words_only():
    r = router(rules=[{"tier": "large", "keywords": ["contract"]}])
    assert r.decide(task="Translate the contractor's note.", scope=AGENT).tier == "small"


def test_a_pattern_rule_and_an_unnamed_rule_is_numbered():
    r = router(
        rules=[
            {"tier": "large", "keywords": ["never-matches"]},
            {"tier": "medium", "pattern": r"(?i)\bSKU-\d{4}\b"},
        ]
    )
    d = r.decide(task="Translate the label of sku-1234", scope=AGENT)
    assert (d.tier, d.reason) == (
        "medium",
        "rule #2 (pattern '(?i)\\\\bSKU-\\\\d{4}\\\\b') → medium",
    )


def test_every_condition_of_a_rule_must_hold_and_the_first_match_wins():
    r = router(
        rules=[
            {"tier": "large", "intent": "summary", "scope": "acme/bob"},
            {"tier": "medium", "intent": "summary"},
            {"tier": "large", "intent": "summary"},
        ]
    )
    d = r.decide(task="Summarize this thread.", scope=AGENT)
    assert (d.tier, d.reason) == ("medium", "rule #2 (intent summary) → medium")
    d = r.decide(task="Summarize this thread.", scope=Scope("acme/bob/bot/c1"))
    assert d.reason == "rule #1 (scope acme/bob, intent summary) → large"


def test_a_rule_can_define_an_intent_the_classifier_does_not_know():
    r = router(rules=[{"tier": "large", "intent": "legal_review"}])
    d = r.decide(task="Look at this.", scope=AGENT, intent="legal_review")
    assert (d.intent, d.tier, d.source) == ("legal_review", "large", "rule")


def test_a_known_request_intent_is_honoured():
    d = router().decide(task=SMALL_TASK, scope=AGENT, intent="code")
    assert (d.intent, d.tier, d.source) == ("code", "medium", "request")
    assert d.reason.startswith("request intent code")


def test_an_unknown_intent_is_refused_naming_the_field_and_listing_the_known_ones():
    r = router(rules=[{"tier": "large", "intent": "legal_review"}])
    with pytest.raises(InvalidInput) as caught:
        r.decide(task=SMALL_TASK, scope=AGENT, intent="planing")
    assert caught.value.field == "intent"
    known = (
        "analysis, classification, code, drafting, extraction, formatting, general, "
        "legal_review, planning, qa, reasoning, review, summary, tool_use, translation"
    )
    assert str(caught.value) == (
        f"intent: 'planing' is not a known intent; use one of {known} "
        "(or leave it out to classify the task)"
    )
    r.check_intent(None)
    r.check_intent("legal_review")
    with pytest.raises(InvalidInput):
        router().check_intent("legal_review")  # only known where a rule names it


# -- floors -----------------------------------------------------------------------------


def test_min_tiers_by_scope_prefix_and_the_request_min_tier_raise_the_tier():
    r = router(min_tiers={"acme/alice": "medium", "acme/alice/rss-bot": "large", "acme/b": "large"})
    d = r.decide(task=SMALL_TASK, scope=Scope("acme/alice/other"))
    assert (d.tier, d.reason.split("; ")[-1]) == ("medium", "min_tier medium for acme/alice")
    assert r.decide(task=SMALL_TASK, scope=AGENT).tier == "large"
    d = router().decide(task=SMALL_TASK, scope=AGENT, min_tier="medium")
    assert (d.tier, d.degraded) == ("medium", False)
    assert d.reason.endswith("; request min_tier medium")


def test_a_promotion_raises_the_intent_and_says_why():
    d = router().decide(
        task=SMALL_TASK,
        scope=AGENT,
        floor=lambda intent: (
            Floor("medium", "7 of the last 20 small calls failed")
            if intent == "translation"
            else None
        ),
    )
    assert (d.tier, d.wanted_tier) == ("medium", "medium")
    assert d.reason.endswith(
        "intent translation promoted to medium (7 of the last 20 small calls failed)"
    )


# -- budget -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remaining", "tier", "degraded"),
    [
        (None, "large", False),
        (1.0, "large", False),
        (0.20, "large", False),  # "under 20%" caps; exactly 20% does not
        (0.1999, "medium", True),
        (0.05, "medium", True),
        (0.0499, "small", True),
        (0.0, "small", True),
    ],
)
def test_the_budget_cap_at_the_default_thresholds(remaining, tier, degraded):
    d = router().decide(task=LARGE_TASK, scope=AGENT, remaining=remaining)
    assert (d.tier, d.degraded, d.wanted_tier) == (tier, degraded, "large")
    assert d.model == {"small": HAIKU, "medium": SONNET, "large": OPUS}[tier]
    if degraded:
        assert "left (under " in d.reason and d.reason.endswith(f"capped at {tier}")


def test_the_reason_gives_the_figures():
    d = router().decide(task=LARGE_TASK, scope=AGENT, remaining=0.12)
    assert d.reason.endswith("; budget 12% left (under 20%): capped at medium")


@pytest.mark.parametrize(
    ("remaining", "said"),
    [
        (1e-7, "0.00001%"),  # $9.999999 of $10 spent: not "0.000010%"
        (3e-7, "0.00003%"),  # not "0.00002%": 3e-7 * 100 * 10**5 is 2.99…
        (6e-7, "0.00006%"),
        (1.2e-6, "0.0001%"),  # rounded down
        (5e-5, "0.005%"),
        (0.0009999, "0.09%"),
    ],
)
def test_a_tiny_share_left_reads_without_float_noise(remaining, said):
    """recheck27 Kc L2: the share left under a threshold of 0.1% is figured as a decimal."""
    d = router(degrade={"medium": 0.125, "small": 0.001}).decide(
        task=LARGE_TASK, scope=AGENT, remaining=remaining
    )
    assert d.reason.endswith(f"; budget {said} left (under 0.1%): capped at small")


def test_a_task_already_under_the_cap_is_not_degraded():
    d = router().decide(task=SMALL_TASK, scope=AGENT, remaining=0.01)
    assert (d.tier, d.degraded) == ("small", False)
    assert "budget" not in d.reason


def test_thresholds_are_configurable_and_can_be_turned_off():
    r = router(degrade={"medium": 0.5})
    assert r.decide(task=LARGE_TASK, scope=AGENT, remaining=0.4).tier == "medium"
    assert r.decide(task=LARGE_TASK, scope=AGENT, remaining=0.01).tier == "medium"
    assert router(degrade={}).decide(task=LARGE_TASK, scope=AGENT, remaining=0.0).tier == "large"


def test_an_explicit_min_tier_holds_under_budget_pressure():
    d = router().decide(task=LARGE_TASK, scope=AGENT, remaining=0.01, min_tier="large")
    assert (d.tier, d.degraded) == ("large", False)
    assert d.reason.endswith("budget 1% left (under 5%), but min_tier large holds")
    d = router().decide(task=LARGE_TASK, scope=AGENT, remaining=0.01, min_tier="medium")
    assert (d.tier, d.degraded) == ("medium", True)
    assert d.reason.endswith("capped at medium, the min_tier")


def test_a_promotion_does_not_hold_under_budget_pressure():
    d = router().decide(
        task=SMALL_TASK, scope=AGENT, remaining=0.01, floor=lambda _: Floor("large", "learned")
    )
    assert (d.tier, d.wanted_tier, d.degraded) == ("small", "large", True)


# -- breakers ---------------------------------------------------------------------------


def test_an_open_model_falls_back_along_the_configured_chain():
    r = router(fallbacks={OPUS: ["gpt-5", "o3"]})
    d = r.decide(task=LARGE_TASK, scope=AGENT, model_open=opened(OPUS, "gpt-5"))
    assert (d.model, d.tier, d.degraded) == ("o3", "large", False)
    assert d.reason.endswith(f"{OPUS} breaker open → o3 (fallback)")


def test_without_a_chain_it_goes_up_a_tier_first_then_down():
    d = router().decide(task="Write a blog post about us.", scope=AGENT, model_open=opened(SONNET))
    assert (d.model, d.tier, d.degraded) == (OPUS, "large", False)
    d = router().decide(
        task="Write a blog post about us.", scope=AGENT, model_open=opened(SONNET, OPUS)
    )
    assert (d.model, d.tier, d.degraded) == (HAIKU, "small", True)
    assert d.reason.endswith(f"{SONNET} breaker open → {HAIKU} (next tier small)")


def test_a_fallback_that_is_a_tier_model_reports_that_tier():
    r = router(fallbacks={OPUS: [SONNET]})
    d = r.decide(task=LARGE_TASK, scope=AGENT, model_open=opened(OPUS))
    assert (d.model, d.tier, d.degraded) == (SONNET, "medium", True)


def test_fallback_does_not_climb_over_the_budget_cap_or_fall_under_min_tier():
    d = router().decide(task=LARGE_TASK, scope=AGENT, remaining=0.1, model_open=opened(SONNET))
    assert (d.model, d.tier) == (HAIKU, "small")
    d = router().decide(task=LARGE_TASK, scope=AGENT, min_tier="large", model_open=opened(OPUS))
    assert (d.model, d.tier, d.degraded) == (OPUS, "large", True)
    assert d.reason.endswith(f"{OPUS} breaker open; min_tier large allows no other model")


def test_an_open_model_goes_over_the_budget_cap_before_it_is_answered_broken():
    # review24 M1: the levels' budget cap is a preference; a broken model a certain refusal
    d = router().decide(
        task=LARGE_TASK, scope=AGENT, remaining=0.1, model_open=opened(SONNET, HAIKU)
    )
    assert (d.model, d.tier, d.degraded) == (OPUS, "large", True)
    assert d.reason.endswith(
        f"{SONNET} breaker open → {OPUS} (next tier large, over the budget cap at medium:"
        " taken, as no other model can serve)"
    )
    d = router().decide(
        task=LARGE_TASK,
        scope=AGENT,
        remaining=0.1,
        min_tier="medium",
        model_open=opened(SONNET),
    )
    assert (d.model, d.degraded) == (OPUS, True)
    # the floor is not a preference: nothing under it, even with the cap
    d = router().decide(
        task=LARGE_TASK,
        scope=AGENT,
        remaining=0.1,
        min_tier="medium",
        model_open=opened(SONNET, OPUS),
    )
    assert (d.model, d.degraded) == (SONNET, True)
    assert d.reason.endswith(f"{SONNET} breaker open; min_tier medium allows no other model")


def test_every_model_open_keeps_the_choice_says_so_and_is_degraded():
    d = router().decide(task=SMALL_TASK, scope=AGENT, model_open=lambda _: True)
    assert (d.model, d.tier, d.degraded) == (HAIKU, "small", True)
    assert d.reason.endswith(f"{HAIKU} breaker open and no fallback is closed")
    d = router().decide(task=LARGE_TASK, scope=AGENT, min_tier="large", model_open=lambda _: True)
    assert (d.model, d.degraded) == (OPUS, True)
    assert d.reason.endswith(f"{OPUS} breaker open and no fallback is closed")


# -- config -----------------------------------------------------------------------------


def test_the_design_md_keys_work_and_missing_tiers_keep_their_defaults():
    policy = parse_policy({"routing": {"tiers": {"small": {"model": "gpt-5-nano"}}}})
    assert {t: v.model for t, v in policy.routing.tiers.items()} == {
        "small": "gpt-5-nano",
        "medium": SONNET,
        "large": OPUS,
    }


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        ({"rules": [{"tier": "large"}]}, "routing.rules.0: a rule needs at least one of"),
        ({"rules": [{"tier": "huge", "intent": "x"}]}, "routing.rules.0.tier"),
        ({"rules": [{"tier": "large", "pattern": "("}]}, "is not a regular expression"),
        ({"min_tiers": {"acme//x": "large"}}, "routing.min_tiers"),
        ({"degrade": {"medium": 1.5}}, "degrade fractions are between 0 and 1"),
        ({"degrade": {"large": 0.1}}, "routing.degrade.large"),
        ({"fallbacks": {OPUS: []}}, "a fallback chain is a non-empty list"),
        ({"promote": {"min_calls": 30}}, "routing.promote.min_calls: cannot be larger than window"),
        ({"promote": {"rate": 0}}, "routing.promote.rate"),
    ],
)
def test_a_bad_routing_policy_names_the_key(routing, message):
    with pytest.raises(PolicyError) as caught:
        parse_policy({"routing": routing})
    assert message in str(caught.value)


# -- invariants -------------------------------------------------------------------------

TASKS = [SMALL_TASK, LARGE_TASK, "Write a blog post.", "Zebra marmalade.", "Audit the auth code."]


@given(
    task=st.sampled_from(TASKS),
    remaining=st.one_of(st.none(), st.floats(min_value=0, max_value=1)),
    min_tier=st.one_of(st.none(), st.sampled_from(TIERS)),
    open_models=st.sets(st.sampled_from([HAIKU, SONNET, OPUS])),
)
def test_the_tier_respects_the_floor_and_the_cap(task, remaining, min_tier, open_models):
    r = router()
    d = r.decide(
        task=task,
        scope=AGENT,
        remaining=remaining,
        min_tier=min_tier,
        model_open=opened(*open_models),
    )
    if min_tier is not None:
        assert rank(d.tier) >= rank(min_tier)
    floor = rank(min_tier) if min_tier is not None else 0
    cap = 0 if remaining is not None and remaining < 0.05 else 2
    cap = 1 if cap == 2 and remaining is not None and remaining < 0.2 else cap
    ceiling = max(cap, floor)
    if ceiling == 0 and HAIKU not in open_models:
        assert d.tier == "small"
    over_cap = rank(d.tier) > ceiling  # only when every model within the cap is open
    if over_cap:
        assert all(r.model_of(t) in open_models for t in TIERS if floor <= rank(t) <= ceiling)
    assert d.degraded == (rank(d.tier) < rank(d.wanted_tier) or d.model in open_models or over_cap)
    assert d.model == r.model_of(d.tier)
    if d.model in open_models:
        # either nothing is closed, or what is closed lies under the floor
        closed = {t for t in TIERS if r.model_of(t) not in open_models}
        assert all(rank(t) < floor for t in closed)
        if not closed:
            assert d.reason.endswith("breaker open and no fallback is closed")
        else:
            assert d.reason.endswith(f"min_tier {min_tier} allows no other model")
