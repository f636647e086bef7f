"""Budgets per model: what each namespace may spend on one model, per window.

The policy's ``budgets.models`` caps what **each** namespace spends on a model
(``claude-opus-4-1: {day: 50.00}``: at most $50 a day in acme, and $50 in globex),
in the namespace's time zone, as the levels' windows are. Every reservation that names
a model (``model``, else ``estimate.model``) counts under the model's undated,
lower-case name (:func:`counted_model`) in ``model_usage_daily``, whether or not a
limit exists for it; a reservation that names no model is not counted, nor checked.

The check is the levels' (:meth:`guards.budget_checks.BudgetChecks._check_budget`):
``spent + held + amount <= limit`` in every window of the model's limit, in the same
transaction. This module holds the pure parts: the name counted, one window's figures,
and which windows refuse.

Example:
    >>> counted_model("Claude-Opus-4-1-20250805")
    'claude-opus-4-1'
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guards.config import WINDOWS
from guards.prices import undated
from guards.store import Tx
from guards.usage import UsageCache, model_key, period_keys

if TYPE_CHECKING:
    from guards.budgets import Budgets

__all__ = [
    "MODEL_LEVEL",
    "ModelUsage",
    "counted_model",
    "has_room",
    "model_refusals",
    "model_standing",
    "model_usages",
    "tightest",
    "unknown_models",
]

MODEL_LEVEL = "model"  # the ``level`` of a 402 and of its event when a model's budget refused


@functools.lru_cache(maxsize=4096)
def _counted(name: str) -> str:
    return undated(name)


def counted_model(name: str | None) -> str | None:
    """The name a reservation's model is counted under (None: it names none)."""
    if not name or not name.strip():
        return None
    return _counted(name)


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """One model's window in one namespace: its limit, what was spent and is held."""

    namespace: str
    model: str
    window: str
    period: str
    limit_micros: int
    spent_micros: int
    held_micros: int

    @property
    def remaining_micros(self) -> int:
        return max(0, self.limit_micros - self.spent_micros - self.held_micros)

    @property
    def remaining_fraction(self) -> float:
        """The share of the limit left (0.0 for a $0 limit: it takes no call)."""
        return self.remaining_micros / self.limit_micros if self.limit_micros else 0.0

    def as_json(self) -> dict[str, Any]:
        """A line of ``GET /v1/budgets``'s ``models``."""
        return {
            "model": self.model,
            "window": self.window,
            "period": self.period,
            "limit_micros": self.limit_micros,
            "spent_micros": self.spent_micros,
            "held_micros": self.held_micros,
            "remaining_micros": self.remaining_micros,
        }


def model_refusals(
    tx: Tx,
    counters: UsageCache,
    *,
    namespace: str,
    model: str,
    limits: Mapping[str, int],
    period_of: Mapping[str, str],
    amount: int,
) -> list[tuple[int, ModelUsage]]:
    """The windows of ``model``'s limits that cannot take ``amount`` more, each with how
    far short it falls."""
    out = []
    key = model_key(namespace, model)
    for window, limit in limits.items():
        spent, held = counters.get(tx, key, window, period_of[window])
        short = spent + held + amount - limit
        if short > 0:
            usage = ModelUsage(namespace, model, window, period_of[window], limit, spent, held)
            out.append((short, usage))
    return out


def model_usages(
    tx: Tx,
    counters: UsageCache,
    *,
    namespace: str,
    models: Mapping[str, Mapping[str, int]],
    period_of: Mapping[str, str],
) -> list[ModelUsage]:
    """Every model with a limit, every limited window: where each stands in ``namespace``
    (by model name, then window in the order day, week, month, total)."""
    out = []
    for model in sorted(models):
        key = model_key(namespace, model)
        for window in WINDOWS:
            limit = models[model].get(window)
            if limit is None:
                continue
            spent, held = counters.get(tx, key, window, period_of[window])
            out.append(ModelUsage(namespace, model, window, period_of[window], limit, spent, held))
    return out


def model_standing(tx: Tx, budgets: Budgets, *, namespace: str, model: str) -> list[ModelUsage]:
    """Where the namespace's budget for ``model`` (any spelling: counted undated, in lower
    case) stands now, one entry per window it limits (``[]``: the policy limits it in none)."""
    counted = counted_model(model)
    limits = budgets.policy.budgets.models.get(counted) if counted is not None else None
    if not limits or counted is None:
        return []
    return model_usages(
        tx,
        budgets.counters,
        namespace=namespace,
        models={counted: limits},
        period_of=period_keys(budgets.periods(namespace, tx.clock.now())),
    )


def tightest(usages: Iterable[ModelUsage]) -> ModelUsage | None:
    """The window with the smallest share of its limit left (the first of equals, in
    window order); None when no window is limited.

    >>> day = ModelUsage("acme", "m", "day", "2026-11-28", 10, 5, 0)
    >>> month = ModelUsage("acme", "m", "month", "2026-11", 100, 90, 0)
    >>> tightest([day, month]).window
    'month'
    """
    return min(usages, key=lambda u: u.remaining_fraction, default=None)


def has_room(usages: Iterable[ModelUsage]) -> bool:
    """Whether a model's budget can take another call: every window it limits has money
    left (a $0 limit never has). No window limited: it has room."""
    return all(u.remaining_micros > 0 for u in usages)


def unknown_models(limited: Iterable[str], *, known: Iterable[str]) -> list[tuple[str, str | None]]:
    """The keys of ``budgets.models`` (as counted) naming none of the ``known`` models,
    each with the known name closest to it (None: none is close), in key order. A typo
    or a provider's prefix caps nothing: no reservation names that model.

    >>> unknown_models(["claude-opus-41", "gpt-4o"], known=["claude-opus-4-1", "GPT-4o"])
    [('claude-opus-41', 'claude-opus-4-1')]
    """
    names = {c for c in map(counted_model, known) if c is not None}
    out = []
    for key in sorted(limited):
        if key not in names:
            close = difflib.get_close_matches(key, sorted(names), n=1, cutoff=0.6)
            out.append((key, close[0] if close else None))
    return out
