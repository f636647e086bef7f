"""Why routing may not pick a model: its breaker is open, or its namespace's budget for it
(``budgets.models``) cannot take the call.

A model's budget keeps it out when its tightest window has nothing left (spent and held
up to the limit, or a limit of $0): the reservation would be a ``402``. It keeps it out
too when the share left is too low for the task: under the ``routing.degrade`` fraction
that would cap a task below the model's tier, the thresholds budget pressure on the
levels already uses (with the default ``{medium: 0.20, small: 0.05}``, a large model
with under 20% of its budget left, a medium one with under 5%; a small model only when
nothing is left). That second block is a preference (``soft``): the model can still take
the call, and routing answers it when every other candidate is spent or broken. Pure:
the figures come in as :class:`~guards.model_budgets.ModelUsage`.

Example:
    >>> from guards.model_budgets import ModelUsage
    >>> spent = ModelUsage("acme", "claude-opus-4-1", "day", "2026-11-28", 10**6, 10**6, 0)
    >>> budget_block(spent, tier="large", cap=lambda f: None).short
    "acme's budget for claude-opus-4-1 is spent"
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from guards.model_budgets import ModelUsage
from guards.money import usd_for
from guards.routing.tiers import TierName, rank

__all__ = [
    "Block",
    "BudgetCap",
    "breaker_block",
    "budget_block",
    "percent",
    "percent_under",
    "threshold_percent",
]

# the tier a remaining fraction allows, with the threshold that set it (None: no cap)
BudgetCap = Callable[[float], tuple[TierName, float] | None]

_PERIODS = {"day": "for today", "week": "for this week", "month": "for this month"}


@dataclass(frozen=True, slots=True)
class Block:
    """What keeps a model out: ``long`` for the model routing wanted (with what to do),
    ``short`` for a candidate it passed over; ``budget``: its budget, not its breaker;
    ``soft``: only a preference (it has money left, under the share its tier wants), so
    it still serves when no model can otherwise."""

    long: str
    short: str
    budget: bool
    soft: bool = False


def percent(fraction: float) -> str:
    """A share to the nearest whole percent ("under 1%" for a little over nothing)."""
    return f"{fraction * 100:.0f}%" if fraction >= 0.01 or fraction <= 0 else "under 1%"


def threshold_percent(fraction: float) -> str:
    """A configured threshold as it was written: 0.2 is "20%", 0.125 "12.5%", never in
    exponent notation (review27 R3 L3: 1e-7 read "1e-05%").

    >>> threshold_percent(0.2), threshold_percent(0.125), threshold_percent(1e-7)
    ('20%', '12.5%', '0.00001%')
    """
    written = format(Decimal(repr(fraction)) * 100, "f")  # the decimal written, no float noise
    return (written.rstrip("0").rstrip(".") if "." in written else written) + "%"


def percent_under(fraction: float, threshold: float) -> str:
    """``fraction``, which is under ``threshold``, written so it reads under it.

    The nearest whole percent when that is under the threshold; else rounded down to a
    tenth (19.9999% left under 20% is "19.9%", never "20%"), or "under 0.1%"; under a
    threshold of 0.1% or less, rounded down to as many decimals as a figure takes
    (review27 R3 L3: 0.01% left under 0.015% read "under 0.1%"). Figured on the share as
    a decimal, not a float's product, so no float noise shows: 1e-7 is "0.00001%", not
    "0.000010%", and 3e-7 "0.00003%", not "0.00002%" (recheck27 Kc L2).

    Example:
        >>> percent_under(0.199999, 0.2), percent_under(0.12, 0.2), percent_under(0.004, 0.01)
        ('19.9%', '12%', '0.4%')
        >>> percent_under(0.0004, 0.01), percent_under(0.0001, 0.00015)
        ('under 0.1%', '0.01%')
        >>> percent_under(1e-7, 0.001), percent_under(3e-7, 0.001)
        ('0.00001%', '0.00003%')
    """
    near = percent(fraction)
    if fraction <= 0 or fraction >= threshold:
        return near
    if fraction >= 0.01 and float(f"{fraction * 100:.0f}") < float(f"{threshold * 100:g}"):
        return near  # compared as written: 0.2 * 100 is 20.000000000000004
    if fraction < 0.01 and threshold > 0.01:
        return near  # "under 1%", under a threshold of more than 1%
    share = Decimal(repr(fraction)) * 100  # the percentage, exact: 1e-7 * 100 is 9.99…e-06
    tenths = math.floor(share * 10)
    if tenths > 0:
        return f"{tenths / 10:.1f}%"
    if threshold > 0.001:
        return "under 0.1%"
    for decimals in range(2, 11):  # rounded down: never reads as the threshold or over it
        shown = math.floor(share.scaleb(decimals))  # one digit, 1-9: the places above are 0
        if shown > 0:
            return f"{shown / 10**decimals:.{decimals}f}%"
    return "under 0.0000000001%"


def breaker_block(model: str) -> Block:
    said = f"{model} breaker open"
    return Block(said, said, budget=False)


def budget_block(usage: ModelUsage | None, *, tier: TierName, cap: BudgetCap) -> Block | None:
    """Why the budget ``usage`` (the model's tightest window, None: unlimited) keeps a
    model of ``tier`` out, or None when it may be picked."""
    if usage is None:
        return None
    budget = f"{usage.namespace}'s budget for {usage.model}"
    period = _PERIODS.get(usage.window, "in total")
    raise_it = (
        f"raise budgets.models.{usage.model}.{usage.window} in the policy and reload it (SIGHUP)"
    )
    limit, spent, held = usage.limit_micros, usage.spent_micros, usage.held_micros
    usd = usd_for(limit, spent, held)
    if usage.remaining_micros <= 0:
        if limit == 0:
            figures = "its limit is $0"
        elif held:
            figures = f"{usd(spent)} spent and {usd(held)} held of {usd(limit)}"
        else:
            figures = f"{usd(spent)} of {usd(limit)}"
        long = f"{budget} is spent {period} ({figures}): {raise_it}"
        return Block(long, f"{budget} is spent", budget=True)
    capped = cap(usage.remaining_fraction)
    if capped is None or rank(capped[0]) >= rank(tier):
        return None
    tier_cap, threshold = capped
    left = f"{budget} has {percent_under(usage.remaining_fraction, threshold)} left {period}"
    long = (
        f"{left}, under routing.degrade.{tier_cap} ({threshold_percent(threshold)}): too low"
        " for a"
        f" {tier} model; {raise_it}"
    )
    return Block(long, f"{left}, too low for a {tier} model", budget=True, soft=True)
