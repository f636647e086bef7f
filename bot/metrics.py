"""Prometheus metrics of one process (own registry, so tests can run several apps)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bot.alerts.model import ALERT_TIERS
from bot.metrics_money import BudgetBook, CallSeconds, Spend

if TYPE_CHECKING:
    from guards.store import Store

disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series only double the output

__all__ = ["BudgetBook", "CallSeconds", "GroupCommit", "IndexMemory", "Metrics", "SocketState"]

NOT_CLOSED = ("open", "half_open_pending", "half_open", "forced_open")


class IndexMemory(Protocol):
    """What the validation index cache tells (:class:`guards.validation.Validator`)."""

    @property
    def loads(self) -> int: ...

    @property
    def evictions(self) -> int: ...

    def memory_bytes(self) -> int: ...

    def remembered(self) -> int: ...

    def streams(self) -> int: ...


class GroupCommit(Protocol):
    """What the group-commit writer counts (:class:`guards.store.Store`)."""

    batches: int
    batched_writes: int
    storage_refusals: int
    last_commit_at: float | None

    @property
    def waiting(self) -> int: ...


class SocketState(Protocol):
    """What the Socket Mode transport tells (:class:`bot.slack.socket_mode.SocketModeTransport`)."""

    @property
    def connected(self) -> bool: ...


class _SlackSocket:
    """``nightshift_slack_socket_connected``: only in Socket Mode (absent otherwise)."""

    def __init__(self) -> None:
        self.source: SocketState | None = None

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        if self.source is not None:
            yield GaugeMetricFamily(
                "nightshift_slack_socket_connected",
                "1 while the Slack Socket Mode websocket is connected; 0 while slash commands"
                " and buttons cannot reach Nightshift",
                value=1 if self.source.connected else 0,
            )


class _GroupCommitCounts:
    """The writer's counts since the start, read when /metrics is scraped."""

    def __init__(self) -> None:
        self.source: GroupCommit | None = None

    def describe(self) -> Iterator[Metric]:
        return self._families(None)

    def collect(self) -> Iterator[Metric]:
        return self._families(self.source)

    @staticmethod
    def _families(source: GroupCommit | None) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "nightshift_write_batches",
            "Write transactions committed by the group-commit writer",
            value=source.batches if source else 0,
        )
        yield CounterMetricFamily(
            "nightshift_batched_writes",
            "Write operations carried by those transactions",
            value=source.batched_writes if source else 0,
        )
        yield CounterMetricFamily(
            "nightshift_storage_refusals",
            "Write batches, or single writes, the database refused (disk full, lock held):"
            " each answered 503",
            value=source.storage_refusals if source else 0,
        )
        yield GaugeMetricFamily(
            "nightshift_write_waiting",
            "Writes waiting for the writer (it grows when the database stops answering)",
            value=source.waiting if source else 0,
        )
        yield GaugeMetricFamily(
            "nightshift_last_commit_timestamp_seconds",
            "When the writer last committed (the alerts tick commits every 2 s, even idle)",
            value=(source.last_commit_at or 0) if source else 0,
        )


class _ValidationIndex:
    """The validation index's size, read when /metrics is scraped (zeros until watched)."""

    def __init__(self) -> None:
        self.source: IndexMemory | None = None

    def describe(self) -> Iterator[Metric]:
        return self._families(None)

    def collect(self) -> Iterator[Metric]:
        return self._families(self.source)

    @staticmethod
    def _families(source: IndexMemory | None) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "nightshift_validation_index_bytes",
            "Bytes held by the in-memory near-duplicate indexes (capped by index_memory_mb)",
            value=source.memory_bytes() if source else 0,
        )
        yield GaugeMetricFamily(
            "nightshift_validation_index_streams",
            "Validation streams whose index is held in memory",
            value=source.streams() if source else 0,
        )
        yield GaugeMetricFamily(
            "nightshift_validation_index_items",
            "Items held in the in-memory near-duplicate indexes",
            value=source.remembered() if source else 0,
        )
        yield CounterMetricFamily(
            "nightshift_validation_index_loads",
            "Stream windows loaded from SQLite into memory (first use, or again after eviction)",
            value=source.loads if source else 0,
        )
        yield CounterMetricFamily(
            "nightshift_validation_index_evictions",
            "Stream indexes dropped to stay within validation.index_memory_mb",
            value=source.evictions if source else 0,
        )


class Metrics:
    """Every metric Nightshift exports; components add theirs to ``registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "nightshift_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "nightshift_http_request_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.reservations = Counter(
            "nightshift_reservations",
            "Reservation answers by result (granted, replayed, or the refusal code)",
            ["result"],
            registry=self.registry,
        )
        self.calls = CallSeconds(self.registry)  # a ledger gate (bot.app.Nightshift adds it)
        self._group_commit = _GroupCommitCounts()
        self.registry.register(self._group_commit)
        self.upkeep = Gauge(
            "nightshift_upkeep_last_success_timestamp_seconds",
            "When each upkeep job (sweep, breakers, alerts-tick, jobs-tick, digest, retention)"
            " last ran to its end",
            ["job"],
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)  # memory, open files, the process's start
        # A reload (SIGHUP) starts again in the same process (exec): every counter is back
        # at 0, and process_start_time_seconds does not move; this one does (audit21 L2).
        started = Gauge(
            "nightshift_start_time_seconds",
            "When this Nightshift started, a reload's restart in place included (Unix time)",
            registry=self.registry,
        )
        started.set(time.time())

        self._validation = _ValidationIndex()
        self.registry.register(self._validation)
        self._socket = _SlackSocket()
        self.registry.register(self._socket)
        self._spend = Spend()
        self.registry.register(self._spend)

        self._children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}
        self._results: dict[str, Counter] = {}

        # The guard engine's state, read from the database at each scrape (refresh_state):
        # what an operator alerts on (a breaker open for an hour, a P0 nobody took).
        self.breakers = Gauge(
            "nightshift_breakers",
            "Breakers that are not closed, by state",
            ["state"],
            registry=self.registry,
        )
        self.breaker_longest = Gauge(
            "nightshift_breaker_open_longest_seconds",
            "Seconds since the breaker away from closed the longest left it (0 when none)",
            registry=self.registry,
        )
        self.alerts_open = Gauge(
            "nightshift_alerts_open", "Open alerts, by tier", ["tier"], registry=self.registry
        )
        self.alerts_unacked = Gauge(
            "nightshift_alerts_unacknowledged",
            "Open alerts nobody acknowledged nor silenced, by tier",
            ["tier"],
            registry=self.registry,
        )
        self.holds = Gauge(
            "nightshift_holds", "Reservations holding money now", registry=self.registry
        )
        self.held = Gauge(
            "nightshift_held_micros",
            "Money held now by reservations, in micro-dollars",
            registry=self.registry,
        )
        self.state_errors = Counter(
            "nightshift_state_refresh_errors",
            "Scrapes whose read of the breakers, alerts, holds or outbox failed or was slow"
            " (their gauges keep the last values read)",
            registry=self.registry,
        )
        for state in NOT_CLOSED:
            self.breakers.labels(state=state)
        for tier in ALERT_TIERS:
            self.alerts_open.labels(tier=tier)
            self.alerts_unacked.labels(tier=tier)

    async def refresh_state(self, store: Store) -> None:
        """Read the breakers, alerts and holds now (``/metrics`` calls it at each scrape)."""
        now = store.clock.now()
        breakers = dict.fromkeys(NOT_CLOSED, 0)
        longest = 0.0
        for state, count, since in await store.fetch(
            # since it left closed (its state's own `since` restarts at every move)
            "SELECT b.state, COUNT(*), MIN(COALESCE((SELECT MAX(t.at) FROM breaker_transitions"
            " AS t WHERE t.scope = b.key AND t.from_state = 'closed'), b.since))"
            " FROM breakers AS b WHERE b.state != 'closed' GROUP BY b.state"
        ):
            breakers[state] = count
            longest = max(longest, now - since)
        for state, count in breakers.items():
            self.breakers.labels(state=state).set(count)
        self.breaker_longest.set(longest)
        alerts = {tier: [0, 0] for tier in ALERT_TIERS}
        for tier, count, unacked in await store.fetch(
            "SELECT tier, COUNT(*), SUM(acked_at IS NULL AND silence_id IS NULL) FROM alerts"
            " WHERE resolved_at IS NULL GROUP BY tier"
        ):
            alerts[tier] = [count, unacked or 0]
        for tier, (count, unacked) in alerts.items():
            self.alerts_open.labels(tier=tier).set(count)
            self.alerts_unacked.labels(tier=tier).set(unacked)
        count, held = (
            await store.fetch(
                "SELECT COUNT(*), TOTAL(held_micros) FROM reservations"  # TOTAL: no overflow
                " WHERE state = 'held' AND expires_at > ?",
                (now,),
            )
        )[0]
        self.holds.set(count)
        self.held.set(held)
        await self._spend.refresh(store, now)

    def watch_store(self, source: GroupCommit) -> None:
        """Export the writer's batch counts (``*_total`` counters) from ``source``."""
        self._group_commit.source = source

    def watch_validation(self, source: IndexMemory) -> None:
        """Export ``source``'s index memory (read at each scrape; no per-stream labels)."""
        self._validation.source = source

    def watch_budgets(self, source: BudgetBook) -> None:
        """Export each namespace's spend today and this month, and its limits, with
        ``source``'s time zones and policy limits (read at each scrape)."""
        self._spend.source = source

    def watch_socket(self, source: SocketState) -> None:
        """Export whether ``source``'s Slack socket is connected (Socket Mode only)."""
        self._socket.source = source

    def reservation(self, result: str) -> None:
        """Count one reservation answer by result."""
        child = self._results.get(result)
        if child is None:
            child = self._results[result] = self.reservations.labels(result=result)
        child.inc()

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        children = self._children.get((route, status))
        if children is None:  # labels() costs a lock and a lookup: once per pair is enough
            children = self._children[(route, status)] = (
                self.requests.labels(route=route, status=str(status)),
                self.latency.labels(route=route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
