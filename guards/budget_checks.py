"""The checks of a hold before it is taken: every level's budget, and the namespace's
budget for the call's model, in one step; and the most Nightshift can count.

:class:`BudgetChecks` is the part of :class:`guards.ledger.Ledger` that refuses a
reservation (a 402) or a settle (a 400) before anything is written. The limits and the
sums it reads are :class:`guards.budgets.Budgets`'.

Example:
    >>> # inside store.write, as Ledger.reserve does:
    >>> # ledger._check_budget(tx, scope=s, periods=p, amount=1_000, now=n, model="gpt-4o")
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from guards import budgets as books
from guards.budgets import Budgets
from guards.errors import BudgetExceeded, InvalidInput
from guards.events import BudgetExhausted, ModelBudgetExhausted
from guards.model_budgets import MODEL_LEVEL, ModelUsage, model_refusals
from guards.money import format_usd
from guards.scopes import LEVELS, Scope, ancestors_of
from guards.store import Tx
from guards.usage import Usage, period_keys
from guards.window_resets import resets_at

__all__ = ["BudgetChecks"]

# The depth a model's budget ranks at among levels short by as much: after the levels
# below the namespace (more specific), before the namespace (a raise of the namespace's
# would not let the call through while its model's budget is spent).
_MODEL_DEPTH = 0.5


def _entry(u: Usage | ModelUsage, *, amount: int, tz: ZoneInfo) -> dict[str, Any]:
    """One refusing window, as a 402's ``also`` lists it: the named level's fields
    (README), ``requested_micros`` and ``resets_at`` included (audit28 C2 L1, L2)."""
    if isinstance(u, ModelUsage):
        head: dict[str, Any] = {"level": MODEL_LEVEL, "scope": u.namespace, "model": u.model}
    else:
        head = {"level": u.level, "scope": u.scope}
    return {
        **head,
        "window": u.window,
        "limit_micros": u.limit_micros,
        "spent_micros": u.spent_micros,
        "held_micros": u.held_micros,
        "requested_micros": amount,
        "resets_at": resets_at(u.window, u.period, tz),
    }


class BudgetChecks(Budgets):
    """Refuse a hold a budget cannot take, or an amount past what Nightshift counts."""

    def _check_budget(
        self,
        tx: Tx,
        *,
        scope: Scope,
        periods: tuple[str, str, str],
        amount: int,
        now: float,
        model: str | None = None,
    ) -> None:
        """Refuse ``amount`` when a level's window, or a window of the namespace's budget
        for ``model`` (its counted name: :func:`guards.model_budgets.counted_model`),
        cannot take it, naming the one it overshoots most (the one a single raise must
        cover) and listing the others, so that one look shows every limit in the way."""
        period_of = period_keys(periods)
        refusing: list[tuple[int, float, Usage | ModelUsage]] = []
        for depth, path in enumerate(ancestors_of(scope.path)):
            for window, limit in self.limits(tx, path).items():
                spent, held = self.counters.get(tx, path, window, period_of[window])
                short = spent + held + amount - limit
                if short <= 0:
                    continue
                level = LEVELS[path.count("/")]
                usage = Usage(path, level, window, period_of[window], limit, spent, held)
                refusing.append((-short, -depth, usage))
        limits = self.policy.budgets.models.get(model) if model is not None else None
        if limits and model is not None:
            for short, by_model in model_refusals(
                tx,
                self.counters,
                namespace=scope.namespace,
                model=model,
                limits=limits,
                period_of=period_of,
                amount=amount,
            ):
                refusing.append((-short, -_MODEL_DEPTH, by_model))
        if not refusing:
            return
        refusing.sort(key=lambda r: (r[0], r[1]))
        worst = refusing[0][2]
        assert worst.limit_micros is not None
        if isinstance(worst, ModelUsage):
            level, where, named = MODEL_LEVEL, worst.namespace, worst.model
        else:
            level, where, named = worst.level, worst.scope, None
        tz = self.timezone(scope.namespace)  # a refusal's only: a granted hold pays nothing
        refusal = BudgetExceeded(
            level=level,
            scope=where,
            window=worst.window,
            limit_micros=worst.limit_micros,
            spent_micros=worst.spent_micros,
            held_micros=worst.held_micros,
            requested_micros=amount,
            also=[_entry(u, amount=amount, tz=tz) for _, _, u in refusing[1:]],
            model=named,
            resets_at=resets_at(worst.window, worst.period, tz),
            zone=tz,
            now=now,
        )
        if named is not None:
            tx.emit(ModelBudgetExhausted(at=now, **refusal.facts()))
        else:
            tx.emit(BudgetExhausted(at=now, **refusal.facts()))
        raise refusal

    def _check_room(self, tx: Tx, *, namespace: str, amount: int, now: float) -> None:
        """Refuse a hold that would take the namespace's books (spent and held, all time)
        past :data:`guards.budgets.MAX_BOOKED_MICROS` (a 402 naming the namespace, and its
        alert): only absurd amounts get there, as no limit does when no budget is set."""
        spent, held = self.counters.get(tx, namespace, "total", "all")
        most = books.MAX_BOOKED_MICROS  # read where it is defined (and where tests lower it)
        if spent + held + amount <= most:
            return
        refusal = BudgetExceeded(
            level="namespace",
            scope=namespace,
            window="total",
            limit_micros=most,
            spent_micros=spent,
            held_micros=held,
            requested_micros=amount,
            books_full=True,
        )
        tx.emit(BudgetExhausted(at=now, **refusal.facts()))
        raise refusal

    def _check_spend(self, tx: Tx, *, namespace: str, more: int, field: str) -> None:
        """Refuse a charge that would take the namespace's spend past
        :data:`guards.budgets.MAX_SPENT_MICROS`: no real spend comes near (a thousand settles of the
        largest amount reach $1 trillion), and more would corrupt every sum above it."""
        spent, _ = self.counters.get(tx, namespace, "total", "all")
        if spent + more <= books.MAX_SPENT_MICROS:
            return
        raise InvalidInput(
            field,
            f"{field}: {namespace} has {format_usd(spent)} spent in all, near the most"
            " Nightshift can count: only absurd reported costs get there (the overrun alerts"
            " name the agent; revoke its token), and this charge cannot be recorded"
            " (README: Limits)",
        )
