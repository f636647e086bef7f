"""Budgets: the limits of every scope and window, and how much of each is used.

A scope's limit in a window comes from, in order: a run-time override (``/agent
budget set``, the ``budget_limits`` table), the policy's ``budgets.scopes``, the
policy's ``budgets.defaults`` for its level. An override set for a while (``budget set
... for 2h``) stops counting at its ``until``, the instant it ends, whether or not the
sweeper has deleted its row yet (:meth:`Budgets.end_limits`, every few seconds). Usage
is read from the cached window sums (:class:`guards.usage.UsageCache`), so answering
costs no query once warm.
:class:`Budgets` is the part of the :class:`guards.ledger.Ledger` that answers "where
does every level (and model: :mod:`guards.model_budgets`) stand?"; ``budget_checks`` refuses.

Example:
    >>> # inside store.write:
    >>> # ledger.usage_tree(tx, Scope("acme/alice"))["levels"][0]["windows"]["day"]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from guards.budget_warnings import BudgetWarnings
from guards.config import WINDOWS, Policy
from guards.errors import InvalidInput
from guards.model_budgets import model_usages
from guards.reservation import iso
from guards.scopes import LEVELS, Scope
from guards.store import Tx
from guards.usage import UPSERT_DAY, PeriodClock, Usage, UsageCache, period_keys

__all__ = [
    "MAX_BOOKED_MICROS",
    "MAX_CHILDREN",
    "MAX_SPENT_MICROS",
    "Budgets",
    "EndedLimit",
    "SlackLimit",
]

INF = float("inf")
MAX_CACHED_LIMITS = 100_000  # scopes whose limits are kept in memory (then it starts over)
MAX_CHILDREN = 200  # children listed by usage_tree: those that spent + held most today
# A namespace's books stay within SQLite's integers (9.2 * 10^18; past that a sum would
# be stored as an inexact REAL): a reservation finds at most $1 trillion spent and held in
# all (then a 402), a settle at most $8 trillion spent (then a 400). So holds stay under
# 10^18 and spend under 8 * 10^18, and nobody's holds ever refuse another call's spend.
MAX_BOOKED_MICROS = 10**18
MAX_SPENT_MICROS = 8 * 10**18
# A scope's direct children, busiest today first, with how many there are. ``depth`` and
# ``path`` between "<parent>/" and "<parent>0" ("0" follows "/") walk only the children
# in the scopes_depth index, not the conversations below them.
_CHILDREN_BY_DAY = (
    "SELECT s.path, COUNT(*) OVER () FROM scopes AS s"
    " LEFT JOIN usage_daily AS u ON u.scope = s.path AND u.day = ?"
    " WHERE s.depth = ? AND s.path > ? AND s.path < ? AND s.parent = ?"
    " ORDER BY COALESCE(u.spent_micros + u.held_micros, 0) DESC, s.path LIMIT ?"
)


@dataclass(frozen=True, slots=True)
class SlackLimit:
    """A limit set at run time (``/agent budget set``, Raise budget) that differs from the
    policy file's (``policy``), until changed or until ``until``."""

    scope: str
    window: str
    limit_micros: int
    policy: int | None
    set_by: str
    set_at: float
    until: float | None


@dataclass(frozen=True, slots=True)
class EndedLimit:
    """A limit set in Slack for a while, ended: the policy's (``policy``) applies again."""

    scope: str
    window: str
    limit_micros: int
    set_by: str
    set_at: float
    until: float
    policy: int | None


class Budgets:
    """Limits per scope and window, usage per level, and the budget check of a hold."""

    def __init__(self, *, policy: Policy) -> None:
        self.policy = policy
        self._tz: dict[str, ZoneInfo] = {}
        self._period_clocks: dict[str, PeriodClock] = {}
        # (scope, window) -> (limit, until or None), as set at run time
        self._overrides: dict[tuple[str, str], tuple[int, float | None]] | None = None
        self._limits: dict[str, dict[str, int]] = {}
        self._limits_until = INF  # the cached limits hold until then (an override ends)
        self.counters = UsageCache()
        self.warnings = BudgetWarnings()

    def forget(self) -> None:
        """Drop the cached limits and sums; they reload from the database."""
        self._overrides = None
        self._limits.clear()
        self.counters.clear()
        self.warnings.forget()

    # -- limits -------------------------------------------------------------------------

    def timezone(self, namespace: str) -> ZoneInfo:
        tz = self._tz.get(namespace)
        if tz is None:
            tz = self._tz[namespace] = ZoneInfo(self.policy.namespace_timezone(namespace))
        return tz

    def periods(self, namespace: str, now: float) -> tuple[str, str, str]:
        """The (day, week, month) periods of ``now`` in the namespace's time zone."""
        clock = self._period_clocks.get(namespace)
        if clock is None:
            clock = self._period_clocks[namespace] = PeriodClock(self.timezone(namespace))
        return clock(now)

    def _load_overrides(self, tx: Tx) -> dict[tuple[str, str], tuple[int, float | None]]:
        if self._overrides is None:
            rows = tx.all("SELECT scope, window, limit_micros, until FROM budget_limits")
            self._overrides = {(r[0], r[1]): (r[2], r[3]) for r in rows}
            self._limits.clear()
            self._limits_until = INF
        return self._overrides

    def limits(self, tx: Tx, path: str) -> dict[str, int]:
        """The limits of one scope per window: run-time overrides, then policy, then defaults."""
        until = self._limits_until
        if until < INF and until <= tx.clock.now():  # an override set for a while ended
            self._limits.clear()
            self._limits_until = INF
        cached = self._limits.get(path)
        if cached is None:
            if len(self._limits) >= MAX_CACHED_LIMITS:  # conversations come and go
                self._limits.clear()
            cached = self._limits[path] = self._compute_limits(tx, path)
        return cached

    def limits_anything(self, tx: Tx) -> bool:
        """Whether any budget limits any scope (the policy's, or one set at run time).
        With none, nothing refuses a call before it starts. Reads no cache: any
        connection may ask."""
        budgets = self.policy.budgets
        if any(budgets.defaults.values()) or any(b.limits() for b in budgets.scopes.values()):
            return True
        return tx.one("SELECT 1 FROM budget_limits LIMIT 1") is not None

    def policy_limits(self, path: str) -> dict[str, int]:
        """The limits the policy file gives one scope per window (its level's defaults,
        then its own entry), before any set at run time."""
        depth = path.count("/") + 1
        limits = dict(self.policy.budgets.defaults.get(LEVELS[depth - 1], {}))
        configured = self.policy.budgets.scopes.get(path)
        if configured is not None:
            limits.update(configured.limits())
        return limits

    def _compute_limits(self, tx: Tx, path: str) -> dict[str, int]:
        limits = self.policy_limits(path)
        now = tx.clock.now()
        for (scope, window), (micros, until) in self._load_overrides(tx).items():
            if scope != path:
                continue
            if until is not None:
                if until <= now:  # ended: the policy's applies (the sweeper deletes the row)
                    continue
                self._limits_until = min(self._limits_until, until)
            limits[window] = micros
        return limits

    def set_limit(
        self,
        tx: Tx,
        *,
        scope: str,
        window: str,
        limit_micros: int,
        actor: str,
        until: float | None = None,
    ) -> int | None:
        """Set a run-time limit (``/agent budget set``), until changed or until ``until``;
        returns the limit it replaced."""
        node = Scope.parse(scope)
        _check_window(window)
        if not 0 <= limit_micros <= 10**15:
            raise InvalidInput("amount", "the amount must be between $0 and $1,000,000,000")
        now = tx.clock.now()
        if until is not None and until <= now:
            raise InvalidInput("until", "a limit set for a while must end in the future")
        before = self.limits(tx, node.path).get(window)
        tx.execute(
            "INSERT INTO budget_limits (scope, window, limit_micros, set_by, set_at, until)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, window) DO UPDATE SET"
            " limit_micros = excluded.limit_micros, set_by = excluded.set_by,"
            " set_at = excluded.set_at, until = excluded.until",
            (node.path, window, limit_micros, actor, now, until),
        )
        tx.audit(
            actor=actor,
            action="budget.set",
            target=f"{node.path} {window}",
            before=str(before) if before is not None else None,
            after=str(limit_micros),
            detail=f"until {iso(until)}" if until is not None else None,
        )
        self._load_overrides(tx)[(node.path, window)] = (limit_micros, until)
        self._limits.clear()
        return before

    def end_limits(self, tx: Tx, *, actor: str = "nightshift") -> list[EndedLimit]:
        """Delete the limits set for a while that have ended (the sweeper's job: they
        stopped counting at their ``until`` already), each audited; returns them."""
        now = tx.clock.now()
        rows = tx.all(
            "SELECT scope, window, limit_micros, set_by, set_at, until FROM budget_limits"
            " WHERE until IS NOT NULL AND until <= ? ORDER BY until, scope, window",
            (now,),
        )
        ended = []
        for scope, window, micros, by, at, until in rows:
            detail = f"set by {by} until {iso(until)}; back to the policy's"
            policy = self._drop_limit(
                tx, scope, window, before=micros, actor=actor, action="budget.end", detail=detail
            )
            ended.append(EndedLimit(scope, window, micros, by, at, until, policy))
        return ended

    def _drop_limit(
        self, tx: Tx, scope: str, window: str, *, before: int, actor: str, action: str, detail: str
    ) -> int | None:
        """Delete one limit set at run time, audited: the policy's applies again (returned)."""
        tx.execute("DELETE FROM budget_limits WHERE scope = ? AND window = ?", (scope, window))
        self._load_overrides(tx).pop((scope, window), None)
        self._limits.clear()
        policy = self.policy_limits(scope).get(window)
        tx.audit(
            actor=actor,
            action=action,
            target=f"{scope} {window}",
            before=str(before),
            after=str(policy) if policy is not None else None,
            detail=detail,
        )
        return policy

    def clear_limit(
        self, tx: Tx, *, scope: str, window: str, actor: str
    ) -> tuple[int, int | None] | None:
        """Drop a limit set at run time, so the policy's applies again (``budget set
        <scope> default <window>``). Returns (the limit it was, the policy's), or None
        when none was set at run time (nothing changes)."""
        node = Scope.parse(scope)
        _check_window(window)
        set_here = self._load_overrides(tx).get((node.path, window))
        if set_here is None:
            return None
        before = set_here[0]
        after = self._drop_limit(
            tx,
            node.path,
            window,
            before=before,
            actor=actor,
            action="budget.set",
            detail="back to the policy's",
        )
        return before, after

    def run_time_overrides(self, tx: Tx, *, under: str | None = None) -> list[SlackLimit]:
        """Limits set at run time that differ from the policy file's and still count (at
        ``under`` and below, if given), the most recent first."""
        rows = tx.all(
            "SELECT scope, window, limit_micros, set_by, set_at, until FROM budget_limits"
            " WHERE until IS NULL OR until > ? ORDER BY set_at DESC, scope, window",
            (tx.clock.now(),),
        )
        out = []
        for scope, window, micros, by, at, until in rows:
            if under is not None and scope != under and not scope.startswith(under + "/"):
                continue
            policy = self.policy_limits(scope).get(window)
            if policy != micros:
                out.append(SlackLimit(scope, window, micros, policy, by, at, until))
        return out

    # -- usage --------------------------------------------------------------------------

    def usage(self, tx: Tx, scope: Scope, *, now: float) -> list[Usage]:
        """Every level from the namespace down to ``scope``, every window with a limit (and day)."""
        periods = period_keys(self.periods(scope.namespace, now))
        out = []
        for path in scope.ancestors():
            out.extend(self._node_usage(tx, path, periods))
        return out

    def _node_usage(self, tx: Tx, path: str, periods: Mapping[str, str]) -> list[Usage]:
        """One scope's windows: every window with a limit, and ``day`` always."""
        limits = self.limits(tx, path)
        level = LEVELS[path.count("/")]
        out = []
        for window in WINDOWS:
            if window not in limits and window != "day":
                continue
            spent, held = self.counters.get(tx, path, window, periods[window])
            out.append(Usage(path, level, window, periods[window], limits.get(window), spent, held))
        return out

    def remaining_fraction(self, tx: Tx, scope: Scope) -> float | None:
        """The smallest remaining/limit over all levels and limited windows (None: no limits)."""
        limited = [
            u for u in self.usage(tx, scope, now=tx.clock.now()) if u.limit_micros is not None
        ]
        if not limited:
            return None
        return min(
            (u.remaining_micros or 0) / u.limit_micros if u.limit_micros else 0.0 for u in limited
        )

    def usage_tree(self, tx: Tx, scope: Scope) -> dict[str, Any]:
        """The usage of ``scope`` and its ancestors, and of its busiest direct children;
        and its namespace's budgets per model (``models``: those the policy limits).

        ``children`` lists at most :data:`MAX_CHILDREN`, those that spent + hold most in
        today's window first (then by path); ``children_total`` counts them all and
        ``children_truncated`` says whether some are left out.
        """
        now = tx.clock.now()
        levels: dict[str, dict[str, Any]] = {}
        for u in self.usage(tx, scope, now=now):
            node = levels.setdefault(u.scope, {"scope": u.scope, "level": u.level, "windows": {}})
            node["windows"][u.window] = u.as_json()
        periods = period_keys(self.periods(scope.namespace, now))
        busiest, total = self._busiest_children(tx, scope.path, day=periods["day"])
        children = [
            {
                "scope": child,
                "level": LEVELS[scope.depth],
                "windows": {u.window: u.as_json() for u in self._node_usage(tx, child, periods)},
            }
            for child in busiest
        ]
        limits = self.policy.budgets.models
        models = model_usages(
            tx, self.counters, namespace=scope.namespace, models=limits, period_of=periods
        )
        return {
            "scope": scope.path,
            "timezone": self.timezone(scope.namespace).key,
            "levels": list(levels.values()),
            "children": children,
            "children_total": total,
            "children_truncated": len(children) < total,
            "models": [m.as_json() for m in models],
        }

    def _busiest_children(
        self, tx: Tx, parent: str, *, day: str, limit: int = MAX_CHILDREN
    ) -> tuple[list[str], int]:
        """The ``limit`` children of ``parent`` that spent + hold most on ``day``, and the count.

        One query ranks them on the written daily rows. Counter additions of this batch
        are not written yet (:meth:`Tx.unwritten`), so the children they touch are ranked
        again here on the exact cached sums, with as many extra rows from the query: a
        child the query left out then spent no more than each of ``limit`` others.
        """
        touched = {
            key[0]
            for key, _ in tx.unwritten(UPSERT_DAY)
            if key[1] == day and key[0].rpartition("/")[0] == parent
        }
        rows = tx.all(
            _CHILDREN_BY_DAY,
            (day, parent.count("/") + 2, parent + "/", parent + "0", parent, limit + len(touched)),
        )
        if not rows:
            return [], 0
        total = int(rows[0][1])
        candidates = {row[0] for row in rows} | touched

        def busiest_first(path: str) -> tuple[int, str]:
            spent, held = self.counters.get(tx, path, "day", day)
            return -(spent + held), path

        return sorted(candidates, key=busiest_first)[:limit], total


def _check_window(window: str) -> None:
    if window not in WINDOWS:
        raise InvalidInput("window", f"window is one of {', '.join(WINDOWS)}, not {window!r}")
