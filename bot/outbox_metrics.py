"""The outbox worker's Prometheus metrics: delivered, retried and failed calls, and
what waits (the pending count, the oldest row's age, the last pass).

Example:
    >>> # metrics = OutboxMetrics(ns.metrics.registry)
    >>> # metrics.delivered.labels(method="chat.postMessage").inc()
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["OutboxMetrics"]

# the metrics' label values shown at 0 before anything happened
_USUAL_METHODS = ("chat.postMessage", "chat.update")
_RETRY_KINDS = ("ratelimited", "server_error", "network", "other")


class OutboxMetrics:
    """The worker's Prometheus counters and pending gauge."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.delivered = Counter(
            "nightshift_outbox_delivered",
            "Slack calls delivered by the outbox, by method",
            ["method"],
            registry=registry,
        )
        self.retried = Counter(
            "nightshift_outbox_retried",
            "Slack calls put back for a retry, by method and reason",
            ["method", "reason"],
            registry=registry,
        )
        self.failed = Counter(
            "nightshift_outbox_failed",
            "Slack calls given up for good, by method",
            ["method"],
            registry=registry,
        )
        self.pending = Gauge(
            "nightshift_outbox_pending", "Outbox rows not yet delivered", registry=registry
        )
        self.oldest = Gauge(
            "nightshift_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox row not yet delivered (0 when none waits)",
            registry=registry,
        )
        self.last_pass = Gauge(
            "nightshift_outbox_last_pass_timestamp_seconds",
            "When the outbox worker last looked for rows to deliver",
            registry=registry,
        )
        # the usual series exist at 0 from the start, so `increase(...) > 0` has a series
        for method in _USUAL_METHODS:
            self.delivered.labels(method=method)
            self.failed.labels(method=method)
            for reason in _RETRY_KINDS:
                self.retried.labels(method=method, reason=reason)
