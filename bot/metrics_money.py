"""The metrics about money and calls: spend and limits per namespace, and each call's time.

``nightshift_spent_micros`` and ``nightshift_budget_limit_micros`` are read when
``/metrics`` is scraped (:class:`Spend`); ``nightshift_call_seconds`` is observed as each
settle commits (:class:`CallSeconds`, a ledger gate). Both belong to
:class:`bot.metrics.Metrics`, which registers them.

Example:
    >>> # ns.ledger.gates.append(ns.metrics.calls)   # bot.app.Nightshift does it
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from guards.reservation import Gate

if TYPE_CHECKING:
    from guards.reservation import Reservation
    from guards.store import Store, Tx

__all__ = ["BudgetBook", "CallSeconds", "Spend"]


class BudgetBook(Protocol):
    """What the spend gauges need of the policy (:class:`guards.budgets.Budgets`)."""

    def periods(self, namespace: str, now: float) -> tuple[str, str, str]: ...

    def policy_limits(self, path: str) -> dict[str, int]: ...


class Spend:
    """``nightshift_spent_micros`` and ``nightshift_budget_limit_micros`` per namespace and
    window (``day``, ``month``), as the last scrape read them; absent until watched.

    Read from the daily usage counters (``usage_daily``, by its key: scope, day) in each
    namespace's own day and month, as its budgets count them. The first
    ``MAX_NAMESPACES`` namespaces by name get series; the others none.
    """

    MAX_NAMESPACES = 200
    _NAMESPACES = "SELECT path FROM scopes WHERE depth = 1 ORDER BY path LIMIT ?"
    _DAYS = (
        "SELECT scope, day, spent_micros FROM usage_daily WHERE day >= ? AND scope IN"
        " (SELECT path FROM scopes WHERE depth = 1 ORDER BY path LIMIT ?)"
    )
    _SET_LIMITS = (  # set in Slack (/agent budget set), over the policy's; not ended
        "SELECT scope, window, limit_micros FROM budget_limits WHERE window IN ('day', 'month')"
        " AND instr(scope, '/') = 0 AND (until IS NULL OR until > ?)"
    )

    def __init__(self) -> None:
        self.source: BudgetBook | None = None
        self.spent: list[tuple[str, str, int]] = []
        self.limits: list[tuple[str, str, int]] = []

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        if self.source is None:
            return
        spent = GaugeMetricFamily(
            "nightshift_spent_micros",
            "Money charged per namespace today and this month (window), in micro-dollars,"
            f" in the namespace's time zone as its budgets count it (the first"
            f" {self.MAX_NAMESPACES} namespaces by name)",
            labels=["namespace", "window"],
        )
        for namespace, window, micros in self.spent:
            spent.add_metric([namespace, window], micros)
        yield spent
        limits = GaugeMetricFamily(
            "nightshift_budget_limit_micros",
            "A namespace's day or month budget limit, in micro-dollars, where one is set"
            " (policy file or /agent budget set)",
            labels=["namespace", "window"],
        )
        for namespace, window, micros in self.limits:
            limits.add_metric([namespace, window], micros)
        yield limits

    async def refresh(self, store: Store, now: float) -> None:
        source = self.source
        if source is None:
            return
        cap = self.MAX_NAMESPACES
        periods = {
            ns: source.periods(ns, now) for (ns,) in await store.fetch(self._NAMESPACES, (cap,))
        }
        if not periods:
            self.spent, self.limits = [], []
            return
        sums = {ns: {"day": 0, "month": 0} for ns in periods}
        first = min(month for _, _, month in periods.values()) + "-01"  # zones differ
        for ns, day, micros in await store.fetch(self._DAYS, (first, cap)):
            today, _, month = periods[ns]
            if day == today:
                sums[ns]["day"] += micros
            if day.startswith(month + "-"):
                sums[ns]["month"] += micros
        limits = {
            ns: {w: v for w, v in source.policy_limits(ns).items() if w in ("day", "month")}
            for ns in periods
        }
        for ns, window, micros in await store.fetch(self._SET_LIMITS, (now,)):
            if ns in limits:
                limits[ns][window] = micros
        self.spent = [(ns, w, v) for ns, by in sums.items() for w, v in by.items()]
        self.limits = [(ns, w, v) for ns, by in limits.items() for w, v in sorted(by.items())]


class CallSeconds(Gate):
    """``nightshift_call_seconds{model}``: each settled call's time from reserve to settle.

    A ledger gate (``ledger.gates``): its ``after_settle`` runs for a settle that charged,
    not for a replayed one, and the observation is made once the settle has committed.
    Per settle: one closure kept for the commit, then one label lookup and one observe.
    The model is what the agent named, so the labels are capped: the first
    ``MAX_MODELS`` models seen (``unknown`` for none named) get their own, the rest
    ``other``.
    """

    MAX_MODELS = 50
    BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)

    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram(
            "nightshift_call_seconds",
            "Time from reserve to settle of each settled call, by model (the first"
            f" {self.MAX_MODELS} models seen; the others as other)",
            ["model"],
            buckets=self.BUCKETS,
            registry=registry,
        )
        self._models: dict[str, Histogram] = {}
        self._other: Histogram | None = None

    def observe(self, model: str | None, seconds: float) -> None:
        child = self._models.get(model or "unknown")
        if child is None:
            if len(self._models) < self.MAX_MODELS:
                label = model or "unknown"
                child = self._models[label] = self.histogram.labels(model=label)
            else:
                child = self._other = self._other or self.histogram.labels(model="other")
        child.observe(max(0.0, seconds))  # (a step of the wall clock back: not below 0)

    def after_settle(self, tx: Tx, *, reservation: Reservation, now: float) -> None:
        model, seconds = reservation.model, now - reservation.created_at
        tx.after_commit.append(lambda: self.observe(model, seconds))
