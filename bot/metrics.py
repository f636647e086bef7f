"""Prometheus metrics of one process (own registry, so tests can run several apps)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series only double the output

__all__ = ["Metrics"]


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
        self.write_batches = Gauge(
            "nightshift_write_batches",
            "Write transactions committed by the group-commit writer",
            registry=self.registry,
        )
        self.batched_writes = Gauge(
            "nightshift_batched_writes",
            "Write operations carried by those transactions",
            registry=self.registry,
        )

        self._children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}
        self._results: dict[str, Counter] = {}

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
