"""audit18 routing findings 6-8: long-context prices, the default large tier, tiers
checked against price."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from guards.config import PolicyError, parse_policy
from guards.config_routing import DEFAULT_ROUTE_MODELS
from guards.prices import DEFAULT_PRICES, LongContext, ModelPrice, PriceTable
from guards.routing.tiers import tier_problems

SONNET_LONG = LongContext(200_000, 6_000_000, 22_500_000)


def table(policy: dict[str, Any]) -> PriceTable:
    """The price table a process builds from ``policy`` (as bot.app does)."""
    prices = parse_policy({"prices": policy}).prices
    return PriceTable({name: p.model_price() for name, p in prices.items()})


def test_a_cost_between_two_micros_rounds_up():
    """audit27 mutation F5: every shipped price in the other tests comes out whole."""
    prices = PriceTable()
    assert prices.cost("gpt-4o-mini", input_tokens=10, output_tokens=10) == 8  # 7.5
    assert prices.cost("gpt-5-nano", input_tokens=1, output_tokens=0) == 1  # 0.05
    assert prices.cost("gpt-4o-mini", input_tokens=20, output_tokens=0) == 3  # exactly 3


# -- finding 6: long-context prices ------------------------------------------------------


def test_a_sonnet_prompt_over_200k_is_priced_whole_at_the_long_context_rates():
    prices = PriceTable()
    # the audit's repro: 500k x $6 + 10k x $22.50, not 500k x $3 + 10k x $15 ($1.65)
    assert prices.cost("claude-sonnet-4-5", input_tokens=500_000, output_tokens=10_000) == 3_225_000
    assert prices.cost("claude-sonnet-4", input_tokens=500_000, output_tokens=10_000) == 3_225_000
    # a dated snapshot costs what its model costs, long context included
    dated = prices.cost("claude-sonnet-4-5-20250929", input_tokens=500_000, output_tokens=0)
    assert dated == 3_000_000
    # the threshold is "more than 200,000": at 200,000 the normal rates still hold
    assert prices.cost("claude-sonnet-4-5", input_tokens=200_000, output_tokens=0) == 600_000
    assert prices.cost("claude-sonnet-4-5", input_tokens=200_001, output_tokens=0) == 1_200_006
    # models without a long-context price stay linear
    assert prices.cost("claude-haiku-4-5", input_tokens=500_000, output_tokens=0) == 500_000
    assert DEFAULT_PRICES["claude-sonnet-4-5"].long_context == SONNET_LONG


def test_the_threshold_can_be_the_prompts_whole_length_and_rounding_is_one_division():
    half = {"input": "0.5", "output": "0.5"}
    prices = table({"m": {**half, "long_context": {"above_input_tokens": 2, **half}}})
    # 3 x 0.5 + 1 x 0.5 = 2 micros: one ceiling of the total, not one per part (3)
    assert prices.cost("m", input_tokens=3, output_tokens=1) == 2
    sonnet = PriceTable()
    # a prompt counted apart from the priced input (cached tokens) decides the rates
    cost = sonnet.cost(
        "claude-sonnet-4-5", input_tokens=30_000, output_tokens=0, prompt_tokens=300_000
    )
    assert cost == 180_000


def test_the_policy_sets_long_context_prices_and_the_old_shape_stays_valid():
    prices = table(
        {
            "claude-sonnet-4-5": {"input": "2.40", "output": "12"},  # the old shape
            "my-model": {
                "input": 1,
                "output": 2,
                "long_context": {"above_input_tokens": 1000, "input": 2, "output": "4.50"},
            },
            "claude-sonnet-4": {
                "input": 3,
                "output": 15,
                "long_context": {"input": 9, "output": 30},
            },
        }
    )
    # an override without long_context keeps the shipped premium, as the same multiple of
    # its rates (2x input, 1.5x output): a 20% discount is 20% off there too (review18 M4)
    assert prices.price("claude-sonnet-4-5") == ModelPrice(
        2_400_000, 12_000_000, LongContext(200_000, 4_800_000, 18_000_000)
    )
    assert prices.cost("claude-sonnet-4-5", input_tokens=100, output_tokens=0) == 240
    assert prices.price("my-model").long_context == LongContext(1000, 2_000_000, 4_500_000)
    assert prices.cost("my-model", input_tokens=1000, output_tokens=1000) == 3000
    assert prices.cost("my-model", input_tokens=1001, output_tokens=1000) == 6502
    # the threshold defaults to Anthropic's 200,000
    assert prices.price("claude-sonnet-4").long_context == LongContext(
        200_000, 9_000_000, 30_000_000
    )


@pytest.mark.parametrize(
    ("long_context", "said"),
    [
        ({"input": 6}, "prices.m.long_context.output: Field required"),
        ({"input": 6, "output": 20, "above": 5}, "prices.m.long_context.above: unknown key"),
        ({"input": 6, "output": 20, "above_input_tokens": 0}, "above_input_tokens: Input should"),
        ({"input": "6,5", "output": 20}, "prices.m.long_context.input: '6,5' is not an amount"),
    ],
)
def test_a_bad_long_context_price_is_refused_naming_the_key(long_context: Any, said: str):
    with pytest.raises(PolicyError) as refused:
        parse_policy({"prices": {"m": {"input": 1, "output": 2, "long_context": long_context}}})
    assert said in str(refused.value)


async def test_estimates_and_settles_through_the_api_pay_the_long_context_rates(app_factory):
    long_context = {"above_input_tokens": 10, "input": 3, "output": 3}
    policy = {
        "prices": {"my-long": {"input": 1, "output": 1, "long_context": long_context}},
        "breakers": {"spend_rate": {"max": "100.00"}},  # the holds here pass $2 in 10 minutes
    }
    app = await app_factory(policy)
    tok = await app.token("acme")

    async def hold(key: str, model: str, tokens: int, output: int) -> dict[str, Any]:
        estimate = {"model": model, "input_tokens": tokens, "max_output_tokens": output}
        body = {"scope": "acme/alice/bot", "idempotency_key": key, "estimate": estimate}
        r = await app.request("POST", "/v1/reservations", token=tok, json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    held = await hold("m1", "claude-sonnet-4-5", 500_000, 10_000)
    assert held["held_micros"] == 3_225_000  # was 1,650,000: half of what is billed
    usage = {"model": "claude-sonnet-4-5", "input_tokens": 500_000, "output_tokens": 10_000}
    settle = f"/v1/reservations/{held['reservation_id']}/settle"
    s = await app.request("POST", settle, token=tok, json={"usage": usage})
    assert s.status_code == 200, s.text
    assert (s.json()["charged_micros"], s.json()["overrun_micros"]) == (3_225_000, 0)

    # cache writes (1.25x) and reads (0.1x) at the long-context input rate:
    # 210,000 + 5,000 + 1,000 = 216,000 input at $6, 1,000 output at $22.50
    held = await hold("m2", "claude-sonnet-4-5", 220_000, 1_000)
    usage = {
        "model": "claude-sonnet-4-5",
        "input_tokens": 210_000,
        "output_tokens": 1_000,
        "cache_creation_input_tokens": 4_000,
        "cache_read_input_tokens": 10_000,
    }
    settle = f"/v1/reservations/{held['reservation_id']}/settle"
    s = await app.request("POST", settle, token=tok, json={"usage": usage})
    assert s.json()["charged_micros"] == 216_000 * 6 + 22_500

    # a prompt read mostly from the cache: 50,000 + 300,000 cached tokens is over 200K, as
    # Anthropic counts it, though the priced input (50,000 + 30,000) is not
    held = await hold("m5", "claude-sonnet-4-5", 350_000, 1_000)
    usage = {
        "model": "claude-sonnet-4-5",
        "input_tokens": 50_000,
        "output_tokens": 1_000,
        "cache_read_input_tokens": 300_000,
    }
    settle = f"/v1/reservations/{held['reservation_id']}/settle"
    s = await app.request("POST", settle, token=tok, json={"usage": usage})
    assert s.json()["charged_micros"] == 80_000 * 6 + 22_500  # not 80,000 * 3 + 15,000

    # the policy's own long-context price reaches the process
    assert (await hold("m3", "my-long", 10, 1))["held_micros"] == 11
    assert (await hold("m4", "my-long", 11, 1))["held_micros"] == 36


# -- finding 7: the default large tier -----------------------------------------------------


def test_the_default_large_tier_is_opus_4_5_a_third_of_opus_4_1():
    assert DEFAULT_ROUTE_MODELS["large"] == "claude-opus-4-5"
    assert parse_policy({}).routing.tiers["large"].model == "claude-opus-4-5"
    kept = parse_policy({"routing": {"tiers": {"small": {"model": "gpt-5-nano"}}}})
    assert kept.routing.tiers["large"].model == "claude-opus-4-5"


# -- finding 8: tiers checked against price -------------------------------------------------


def problems(routing: dict[str, Any]) -> list[str]:
    r = parse_policy({"routing": routing}).routing
    return tier_problems(
        tiers={t: spec.model for t, spec in r.tiers.items()},
        fallbacks=r.fallbacks,
        prices=PriceTable(),
        input_share=r.blend_input_share,
    )


def test_the_default_tiers_are_in_price_order():
    assert problems({}) == []


def test_a_lower_tier_dearer_than_a_higher_one_is_named():
    # the audit's policy: small and large swapped
    said = problems(
        {"tiers": {"small": {"model": "claude-opus-4-1"}, "large": {"model": "claude-haiku-4-5"}}}
    )
    assert said == [
        "routing.tiers.small (claude-opus-4-1, $30.00 per million tokens blended) costs more"
        " than routing.tiers.medium (claude-sonnet-4-5, $6.00): small tasks pay more than"
        " medium ones, and degrading under budget pressure raises the cost (models swapped?)",
        "routing.tiers.small (claude-opus-4-1, $30.00 per million tokens blended) costs more"
        " than routing.tiers.large (claude-haiku-4-5, $2.00): small tasks pay more than"
        " large ones, and degrading under budget pressure raises the cost (models swapped?)",
        "routing.tiers.medium (claude-sonnet-4-5, $6.00 per million tokens blended) costs more"
        " than routing.tiers.large (claude-haiku-4-5, $2.00): medium tasks pay more than"
        " large ones, and degrading under budget pressure raises the cost (models swapped?)",
    ]
    # the blend follows routing.blend_input_share: all input, gpt-4.1 ($2) is dearer than
    # gpt-5 ($1.25); all output, it is cheaper ($8 against $10)
    tiers = {"small": {"model": "gpt-4.1"}, "medium": {"model": "gpt-5"}}
    assert problems({"tiers": tiers, "blend_input_share": 1.0}) == [
        "routing.tiers.small (gpt-4.1, $2.00 per million tokens blended) costs more than"
        " routing.tiers.medium (gpt-5, $1.25): small tasks pay more than medium ones, and"
        " degrading under budget pressure raises the cost (models swapped?)"
    ]
    assert problems({"tiers": tiers, "blend_input_share": 0.0}) == []


def test_two_tiers_on_one_model_and_a_model_its_own_fallback_are_named():
    said = problems(
        {
            "tiers": {"medium": {"model": "claude-haiku-4-5-20251001"}},
            "fallbacks": {"claude-opus-4-5": ["gpt-5", "Claude-Opus-4-5"]},
        }
    )
    assert said == [
        "routing.tiers.small and routing.tiers.medium both name claude-haiku-4-5: a task sent"
        " to either costs the same, and degrading from medium to small saves nothing",
        "routing.fallbacks.claude-opus-4-5.1 names Claude-Opus-4-5, the model itself: when its"
        " breaker is open, so is this fallback's, so it never helps",
    ]


async def test_the_process_warns_at_start_naming_the_keys(app_factory, caplog):
    swapped = {"small": {"model": "claude-opus-4-1"}, "large": {"model": "claude-haiku-4-5"}}
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        app = await app_factory({"routing": {"tiers": swapped}})
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    routing = [w for w in warned if w.startswith("routing: ")]
    assert len(routing) == 3, warned
    assert routing[1].startswith(
        "routing: routing.tiers.small (claude-opus-4-1, $30.00 per million tokens blended)"
        " costs more than routing.tiers.large (claude-haiku-4-5, $2.00)"
    )
    assert routing[1].endswith("(the policy is used as written)")
    # not a refusal: it routes as written
    r = await app.request(
        "POST",
        "/v1/route",
        token=await app.token("acme"),
        json={"scope": "acme/alice/bot", "task": "Translate this reply into Spanish."},
    )
    assert (r.status_code, r.json()["model"]) == (200, "claude-opus-4-1"), r.text


async def test_the_default_policy_starts_without_a_routing_warning(app_factory, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        await app_factory({})
    assert not [r for r in caplog.records if r.getMessage().startswith("routing: ")]


def test_the_aliases_and_models_agents_name_most_have_a_price():
    """audit18 routing L: `claude-sonnet-4-0`, `claude-opus-4-0`, `claude-opus-4-20250514`,
    `claude-3-7-sonnet-latest` and `o3-mini` were each a 400 at the agent's first estimate."""
    table = PriceTable()
    million = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    assert table.cost("claude-opus-4-0", **million) == 90_000_000
    assert table.cost("claude-opus-4-20250514", **million) == 90_000_000
    assert table.cost("claude-3-7-sonnet-latest", **million) == 18_000_000
    assert table.cost("o3-mini", **million) == 5_500_000
    short = {"input_tokens": 1_000, "output_tokens": 1_000}
    assert table.cost("claude-sonnet-4-0", **short) == table.cost("claude-sonnet-4", **short)


def test_a_model_priced_free_stays_free_past_the_long_context_threshold():
    """review18 M4: `claude-sonnet-4-5: {input: 0, output: 0}` (a flat-rate gateway) held 1
    micro-dollar for an estimate, then charged $6/$22.50 a million for a long prompt."""
    prices = table({"claude-sonnet-4-5": {"input": 0, "output": 0}})
    assert prices.free("claude-sonnet-4-5")
    assert prices.cost("claude-sonnet-4-5", input_tokens=250_000, output_tokens=1_000) == 0
