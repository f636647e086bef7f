"""Budget warnings: each mark of ``budgets.warn_at`` warns once per scope, window and period.

A charge that carries a window past a mark warns (``budget_threshold``). So does the first
charge that finds a mark of the window's current period already passed with no warning
given: the limit was lowered (``/agent budget set``, the policy file) or a fraction added
since the spend passed it, and the operator would otherwise hear nothing until the budget
is exhausted. The warnings given are kept in ``budget_warnings`` (restarts do not warn
again); the rows of the scopes a process has seen are cached, and dropped when writes are
rolled back.

Example:
    >>> # inside store.write, for one charge:
    >>> # if warnings.due(tx, ("acme", "day", "2026-05-31"), 0.8, crossed=False): ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from guards.events import BudgetThreshold
from guards.reservation import Reservation
from guards.scopes import LEVELS, ancestors_of
from guards.store import Tx
from guards.usage import period_keys

if TYPE_CHECKING:
    from guards.budgets import Budgets

__all__ = ["KEEP_SECONDS", "BudgetWarnings", "WarningKey", "prune_warnings"]

MAX_CACHED = 100_000  # (scope, window, period) keys kept in memory (then it starts over)
# A warning row outlives its period: the longest (a month, DST included) is under 32 days.
KEEP_SECONDS = 40 * 86400

WarningKey = tuple[str, str, str]  # (scope, window, period)


class BudgetWarnings:
    """Which marks of which windows have warned, read through to ``budget_warnings``."""

    def __init__(self) -> None:
        self._given: dict[WarningKey, set[float]] = {}

    def forget(self) -> None:
        """Drop the cache (writes were rolled back); it reloads from the database."""
        self._given.clear()

    def check(self, tx: Tx, budgets: Budgets, reservation: Reservation, now: float) -> None:
        """Emit BudgetThreshold for each mark the charge of ``reservation`` carried a window
        of its scope or an ancestor past, or found passed without a warning this period."""
        fractions = budgets.policy.budgets.warn_at
        if not fractions:
            return
        keys = period_keys(reservation.periods)
        current: Mapping[str, str] | None = None
        for path in ancestors_of(reservation.scope):
            for window, limit in budgets.limits(tx, path).items():
                if limit <= 0:
                    continue
                spent, _ = budgets.counters.get(tx, path, window, keys[window])
                before = spent - reservation.charged_micros
                for fraction in fractions:
                    mark = limit * fraction
                    if spent < mark:
                        continue
                    crossed = before < mark
                    if not crossed:  # passed before: only the current period warns late
                        if current is None:
                            namespace = reservation.scope.split("/", 1)[0]
                            current = period_keys(budgets.periods(namespace, now))
                        if keys[window] != current[window]:
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

    def due(self, tx: Tx, key: WarningKey, fraction: float, *, crossed: bool) -> bool:
        """Whether ``fraction`` of the window ``key`` warns now, which records it if so.

        ``crossed``: this charge carried the spend past the mark, which always warns (a
        mark passed again after the limit was raised is news). Otherwise the mark was
        passed before, and warns only when it has not warned in this period yet.
        """
        given = self._given_of(tx, key)
        if not crossed and fraction in given:
            return False
        given.add(fraction)
        tx.execute(
            "INSERT INTO budget_warnings (scope, window, period, fraction, at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET at = excluded.at",
            (*key, fraction, tx.clock.now()),
        )
        return True

    def _given_of(self, tx: Tx, key: WarningKey) -> set[float]:
        given = self._given.get(key)
        if given is None:
            if len(self._given) >= MAX_CACHED:  # conversations come and go
                self._given.clear()
            rows = tx.all(
                "SELECT fraction FROM budget_warnings WHERE scope = ? AND window = ?"
                " AND period = ?",
                key,
            )
            given = self._given[key] = {row[0] for row in rows}
        return given


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
