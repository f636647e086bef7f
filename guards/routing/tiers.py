"""The three tiers, smallest first, arithmetic on them, and a check of their models.

Example:
    >>> shift("small", 1), shift("large", 1), higher("small", "medium")
    ('medium', 'large', 'medium')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeGuard

from guards.config_routing import ROUTE_TIERS as TIERS
from guards.config_routing import RouteTierName as TierName
from guards.money import format_usd
from guards.prices import PriceTable, undated

__all__ = ["TIERS", "TierName", "higher", "is_tier", "lower", "rank", "shift", "tier_problems"]


def is_tier(value: object) -> TypeGuard[TierName]:
    return value in TIERS


def rank(tier: TierName) -> int:
    return TIERS.index(tier)


def shift(tier: TierName, steps: int) -> TierName:
    """Move ``steps`` tiers up (positive) or down, stopping at the ends."""
    return TIERS[max(0, min(len(TIERS) - 1, rank(tier) + steps))]


def higher(a: TierName, b: TierName) -> TierName:
    return a if rank(a) >= rank(b) else b


def lower(a: TierName, b: TierName) -> TierName:
    return a if rank(a) <= rank(b) else b


def tier_problems(
    *,
    tiers: Mapping[TierName, str],
    fallbacks: Mapping[str, Sequence[str]],
    prices: PriceTable,
    input_share: float,
) -> list[str]:
    """What looks wrong in the tiers' models, one sentence each naming the policy keys:
    a lower tier whose model costs more than a higher tier's (on the blended price, at
    ``input_share``), two tiers naming one model, a fallback naming the model itself.

    Nothing here is refused: an operator may mean it, but a typo usually does this.

    >>> tier_problems(tiers={"small": "gpt-5", "large": "gpt-5-mini"}, fallbacks={},
    ...               prices=PriceTable(), input_share=0.75)  # doctest: +ELLIPSIS
    ['routing.tiers.small (gpt-5, $3.44 per million tokens blended) costs more than ...']
    """
    named = [(t, tiers[t]) for t in TIERS if t in tiers]
    problems = []
    for i, (low, low_model) in enumerate(named):
        for high, high_model in named[i + 1 :]:
            if undated(low_model) == undated(high_model):
                problems.append(
                    f"routing.tiers.{low} and routing.tiers.{high} both name {low_model}: a"
                    f" task sent to either costs the same, and degrading from {high} to {low}"
                    " saves nothing"
                )
                continue
            low_price = prices.blended(low_model, input_share=input_share)
            high_price = prices.blended(high_model, input_share=input_share)
            if low_price is not None and high_price is not None and low_price > high_price:
                problems.append(
                    f"routing.tiers.{low} ({low_model}, {format_usd(low_price)} per million"
                    f" tokens blended) costs more than routing.tiers.{high} ({high_model},"
                    f" {format_usd(high_price)}): {low} tasks pay more than {high} ones, and"
                    " degrading under budget pressure raises the cost (models swapped?)"
                )
    for model, chain in fallbacks.items():
        problems.extend(
            f"routing.fallbacks.{model}.{i} names {fallback}, the model itself: when its"
            " breaker is open, so is this fallback's, so it never helps"
            for i, fallback in enumerate(chain)
            if undated(fallback) == undated(model)
        )
    return problems
