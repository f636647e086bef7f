"""The three tiers, smallest first, and arithmetic on them.

Example:
    >>> shift("small", 1), shift("large", 1), higher("small", "medium")
    ('medium', 'large', 'medium')
"""

from __future__ import annotations

from typing import Literal, TypeGuard

__all__ = ["TIERS", "TierName", "higher", "is_tier", "lower", "rank", "shift"]

TierName = Literal["small", "medium", "large"]
TIERS: tuple[TierName, ...] = ("small", "medium", "large")


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
