"""Budget warnings: each mark of ``budgets.warn_at`` warns once per scope, window and period.

A charge that carries a window past a mark warns (``budget_threshold``). So does the first
charge that finds a mark of the window's current period already passed with no warning
given: the limit was lowered (``/agent budget set``, the policy file) or a fraction added
since the spend passed it, and the operator would otherwise hear nothing until the budget
is exhausted. The warnings given are kept in ``budget_warnings`` (restarts do not warn
again); the rows of the scopes a process has seen are cached, and dropped when writes are
rolled back.

A namespace's budget for one model (``budgets.models``) warns the same way, once per
namespace, model, window and period (``model_budget_threshold``, kept in
``model_budget_warnings``): the charge of a hold that counted that model moves it.

Example:
    >>> # inside store.write, for one charge:
    >>> # if warnings.due(tx, ("acme", "day", "2026-05-31"), 0.8, crossed=False): ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from guards.events import BudgetThreshold, ModelBudgetThreshold
from guards.reservation import Reservation
from guards.scopes import LEVELS, ancestors_of
from guards.store import Tx
from guards.usage import model_key, period_keys

if TYPE_CHECKING:
    from guards.budgets import Budgets

__all__ = [
    "KEEP_SECONDS",
    "BudgetWarnings",
    "WarningKey",
    "past_mark",
    "prune_model_warnings",
    "prune_warnings",
]

MAX_CACHED = 100_000  # (scope, window, period) keys kept in memory (then it starts over)
# A warning row outlives its period: the longest (a month, DST included) is under 32 days.
KEEP_SECONDS = 40 * 86400

WarningKey = tuple[str, str, str]  # (scope, window, period)
ModelWarningKey = tuple[str, str, str, str]  # (namespace, model, window, period)

_LEVEL_GIVEN = "SELECT fraction FROM budget_warnings WHERE scope = ? AND window = ? AND period = ?"
_LEVEL_GIVE = (
    "INSERT INTO budget_warnings (scope, window, period, fraction, at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET at = excluded.at"
)
_LEVEL_TAKE_BACK = (
    "DELETE FROM budget_warnings WHERE scope = ? AND window = ? AND period = ? AND fraction = ?"
)
_MODEL_GIVEN = (
    "SELECT fraction FROM model_budget_warnings WHERE namespace = ? AND model = ?"
    " AND window = ? AND period = ?"
)
_MODEL_GIVE = (
    "INSERT INTO model_budget_warnings (namespace, model, window, period, fraction, at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET at = excluded.at"
)
_MODEL_TAKE_BACK = (
    "DELETE FROM model_budget_warnings WHERE namespace = ? AND model = ? AND window = ?"
    " AND period = ? AND fraction = ?"
)


class _Given:
    """The marks given per key, read through to one table (``given``: its fractions of
    a key; ``give``: records one, the key's columns then fraction and at; ``take_back``:
    deletes one, the key's columns then fraction)."""

    def __init__(self, *, given: str, give: str, take_back: str) -> None:
        self._sql_given, self._sql_give, self._sql_take_back = given, give, take_back
        self._given: dict[tuple[str, ...], set[float]] = {}

    def forget(self) -> None:
        self._given.clear()

    def due(self, tx: Tx, key: tuple[str, ...], fraction: float, *, crossed: bool) -> bool:
        given = self._given.get(key)
        if given is None:
            if len(self._given) >= MAX_CACHED:  # conversations come and go
                self._given.clear()
            given = self._given[key] = {row[0] for row in tx.all(self._sql_given, key)}
        if not crossed and fraction in given:
            return False
        given.add(fraction)
        tx.execute(self._sql_give, (*key, fraction, tx.clock.now()))
        return True

    def back_under(self, tx: Tx, key: tuple[str, ...], *, spent: int, limit: int | None) -> None:
        """Forget the marks of ``key`` that ``spent`` is under at ``limit`` (None: the
        window has no limit now, every mark): passed again, each warns again."""
        given = {float(row[0]) for row in tx.all(self._sql_given, key)}
        under = {
            f for f in given if limit is None or not past_mark(spent=spent, limit=limit, fraction=f)
        }
        for fraction in sorted(under):
            tx.execute(self._sql_take_back, (*key, fraction))
        cached = self._given.get(key)
        if cached is not None:
            cached -= under


class BudgetWarnings:
    """Which marks of which windows have warned, read through to ``budget_warnings`` (and
    ``model_budget_warnings`` for the budgets per model)."""

    def __init__(self) -> None:
        self._levels = _Given(given=_LEVEL_GIVEN, give=_LEVEL_GIVE, take_back=_LEVEL_TAKE_BACK)
        self._models = _Given(given=_MODEL_GIVEN, give=_MODEL_GIVE, take_back=_MODEL_TAKE_BACK)

    def forget(self) -> None:
        """Drop the cache (writes were rolled back); it reloads from the database."""
        self._levels.forget()
        self._models.forget()

    def check(self, tx: Tx, budgets: Budgets, reservation: Reservation, now: float) -> None:
        """Emit BudgetThreshold for each mark the charge of ``reservation`` carried a window
        of its scope or an ancestor past, or found passed without a warning this period;
        and ModelBudgetThreshold likewise for the namespace's budget for its hold's model."""
        fractions = budgets.policy.budgets.warn_at
        if not fractions:
            return
        keys = period_keys(reservation.periods)
        namespace = reservation.scope.split("/", 1)[0]
        current: Mapping[str, str] | None = None

        def late_ok(window: str) -> bool:
            """A mark passed before this charge warns only in the window's current period."""
            nonlocal current
            if current is None:
                current = period_keys(budgets.periods(namespace, now))
            return keys[window] == current[window]

        for path in ancestors_of(reservation.scope):
            for window, limit in budgets.limits(tx, path).items():
                spent, _ = budgets.counters.get(tx, path, window, keys[window])
                for fraction in _passed(fractions, limit, spent):
                    crossed = spent - reservation.charged_micros < limit * fraction
                    if not crossed and not late_ok(window):
                        continue
                    if not self.due(tx, (path, window, keys[window]), fraction, crossed=crossed):
                        continue
                    tx.emit(
                        BudgetThreshold(
                            at=now,
                            scope=path,
                            level=LEVELS[path.count("/")],
                            window=window,
                            fraction=fraction,
                            limit_micros=limit,
                            spent_micros=spent,
                            period=keys[window],
                        )
                    )
        if reservation.counted_model is not None:
            self._check_model(tx, budgets, reservation, now, namespace=namespace, late_ok=late_ok)

    def _check_model(
        self,
        tx: Tx,
        budgets: Budgets,
        reservation: Reservation,
        now: float,
        *,
        namespace: str,
        late_ok: Callable[[str], bool],
    ) -> None:
        """The marks of the namespace's budget for the model the hold counted."""
        model = reservation.counted_model
        limits = budgets.policy.budgets.models.get(model) if model is not None else None
        if not limits or model is None:
            return
        fractions = budgets.policy.budgets.warn_at
        keys = period_keys(reservation.periods)
        cell = model_key(namespace, model)
        for window, limit in limits.items():
            spent, _ = budgets.counters.get(tx, cell, window, keys[window])
            for fraction in _passed(fractions, limit, spent):
                crossed = spent - reservation.charged_micros < limit * fraction
                if not crossed and not late_ok(window):
                    continue
                key = (namespace, model, window, keys[window])
                if not self._models.due(tx, key, fraction, crossed=crossed):
                    continue
                tx.emit(
                    ModelBudgetThreshold(
                        at=now,
                        scope=namespace,
                        level="model",
                        model=model,
                        window=window,
                        fraction=fraction,
                        limit_micros=limit,
                        spent_micros=spent,
                        period=keys[window],
                    )
                )

    def due(self, tx: Tx, key: WarningKey, fraction: float, *, crossed: bool) -> bool:
        """Whether ``fraction`` of the level window ``key`` warns now, which records it if so.

        ``crossed``: this charge carried the spend past the mark, which always warns (a
        mark passed again after the limit was raised is news). Otherwise the mark was
        passed before, and warns only when it has not warned in this period yet.
        """
        return self._levels.due(tx, key, fraction, crossed=crossed)

    def back_under(self, tx: Tx, key: WarningKey, *, spent: int, limit: int | None) -> None:
        """The level window ``key`` is back under some marks it warned of (a raise, a
        credit, a limit removed: ``limit`` None): those are no longer given, so a charge
        or a lowered limit that passes one again warns again this period (h3: the mark,
        given once, never warned again). Its alert resolving is what says so; an alert
        resolved by hand forgets nothing."""
        self._levels.back_under(tx, key, spent=spent, limit=limit)

    def model_back_under(
        self, tx: Tx, key: ModelWarningKey, *, spent: int, limit: int | None
    ) -> None:
        """:meth:`back_under` for a namespace's budget for a model: ``key`` is
        (namespace, model, window, period)."""
        self._models.back_under(tx, key, spent=spent, limit=limit)


def past_mark(*, spent: int, limit: int, fraction: float) -> bool:
    """Whether ``spent`` is at or past the mark ``fraction`` of ``limit``: the one test of
    a mark, where a warning is given and where an alert asks whether it still holds, so
    the two agree to the micro-dollar."""
    return spent >= limit * fraction


def _passed(fractions: list[float], limit: int, spent: int) -> list[float]:
    """The fractions of a limit (above $0: a $0 limit is refused, never warned) that
    ``spent`` has reached."""
    return [f for f in fractions if limit > 0 and past_mark(spent=spent, limit=limit, fraction=f)]


def prune_warnings(tx: Tx, *, before: float, limit: int) -> int:
    """Delete at most ``limit`` warnings given before ``before``, oldest first, but never
    a ``total`` window's (its period never ends); returns how many."""
    cur = tx.execute(
        "DELETE FROM budget_warnings WHERE (scope, window, period, fraction) IN"
        " (SELECT scope, window, period, fraction FROM budget_warnings"
        " WHERE at < ? AND window != 'total' ORDER BY at LIMIT ?)",
        (before, limit),
    )
    return cur.rowcount


def prune_model_warnings(tx: Tx, *, before: float, limit: int) -> int:
    """:func:`prune_warnings` for the budgets per model's warnings."""
    cur = tx.execute(
        "DELETE FROM model_budget_warnings WHERE (namespace, model, window, period, fraction) IN"
        " (SELECT namespace, model, window, period, fraction FROM model_budget_warnings"
        " WHERE at < ? AND window != 'total' ORDER BY at LIMIT ?)",
        (before, limit),
    )
    return cur.rowcount
