"""A model's budget warnings: one ``model_budget_threshold`` alert per namespace holds them all.

Each warning of a namespace's budget for one model (``budgets.models``, a mark of
``budgets.warn_at``) fires the namespace's one warning alert. Its facts are the latest
warning's, and ``warned`` lists every warning it holds, one per model and window (the
latest of each). A warning holds while its window's period is the current one, the policy
still limits that window, and the spend is at or past its mark of the limit now. The
alert resolves only once none holds (recheck24 M1: a reload raising another model's limit
resolved it, and the model still past its mark was never warned of again that period);
while some still hold, the ones that no longer do leave it and its message becomes the
latest that holds.

Example:
    >>> first = {"model": "opus", "window": "day", "fraction": 0.8, "period": "2026-11-29"}
    >>> later = {**first, "model": "sonnet"}
    >>> [w["model"] for w in merged(merged({}, first), later)[WARNED]]
    ['opus', 'sonnet']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from guards.budget_warnings import past_mark
from guards.model_budgets import ModelUsage
from guards.money import usd_for

__all__ = ["WARNED", "cleared_why", "holding", "merged", "warned_of"]

WARNED = "warned"  # the facts key: the warnings the alert holds


def warned_of(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """The warnings an alert's facts hold (an alert from before ``warned`` was kept: its
    latest warning alone)."""
    entries = facts.get(WARNED)
    if isinstance(entries, list):
        return [e for e in entries if isinstance(e, dict)]
    return [{k: v for k, v in facts.items() if k != WARNED}] if facts else []


def merged(before: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """The facts of a warning firing into the alert whose facts are ``before`` (``{}``: a
    new alert): the new warning's, with ``warned`` listing it after the ones held, less
    an earlier one of the same model and window (the latest replaces it)."""
    latest = {k: v for k, v in facts.items() if k != WARNED}
    kept = [e for e in warned_of(before) if _key(e) != _key(latest)]
    return {**latest, WARNED: [*kept, latest]}


def holding(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The facts of an alert left holding ``entries`` (not empty): the latest of them, as
    a warning's, with ``warned`` listing them."""
    return {**entries[-1], WARNED: list(entries)}


def cleared_why(entry: dict[str, Any], standing: Sequence[ModelUsage]) -> str | None:
    """Why the warning ``entry`` no longer holds (None: it still does), ``standing`` being
    where its model's budget in the namespace stands now (one per window limited)."""
    model, window = str(entry.get("model")), str(entry.get("window"))
    usage = next((u for u in standing if u.window == window), None)
    if usage is None:
        return f"the policy no longer limits {model} per {window}"
    if usage.period != entry.get("period"):
        return f"a new {window} began"
    fraction, limit_then = entry.get("fraction"), entry.get("limit_micros")
    if not isinstance(fraction, int | float) or past_mark(
        spent=usage.spent_micros, limit=usage.limit_micros, fraction=fraction
    ):
        return None
    if isinstance(limit_then, int) and usage.limit_micros > limit_then:
        usd = usd_for(usage.limit_micros, limit_then)  # as set: $2.505 is not "$2.51"
        return f"the policy raised the {window} budget for {model} to {usd(usage.limit_micros)}"
    return f"the {window} budget for {model} is back under the mark"


def _key(entry: dict[str, Any]) -> tuple[str, str]:
    return str(entry.get("model")), str(entry.get("window"))
