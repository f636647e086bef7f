"""The outbox worker's Prometheus metrics: delivered, retried and failed calls, and
what waits (the pending count, the oldest row's age, the last pass); and the WARNING
while a message waits too long.

Example:
    >>> # metrics = OutboxMetrics(ns.metrics.registry)
    >>> # metrics.delivered.labels(method="chat.postMessage").inc()
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from bot.logs import Throttle
from guards.config_types import format_seconds
from guards.words import plural

__all__ = ["STUCK_SECONDS", "OutboxMetrics", "say_if_stuck"]

log = logging.getLogger("bot.outbox")  # the outbox's log lines keep one logger name
STUCK_SECONDS = 300.0  # a message retried this long after its first try: a WARNING (a minute)

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

    def count(self, outcome: str, method: str, reason: str | None = None) -> None:
        """One call ``delivered``, ``retried`` (for ``reason``) or ``failed``."""
        if outcome == "retried":
            self.retried.labels(method=method, reason=reason or "other").inc()
        else:
            getattr(self, outcome).labels(method=method).inc()


def say_if_stuck(
    heads: list[Any], now: float, *, throttle: Throttle, max_age_seconds: float
) -> None:
    """A WARNING, once a minute, while a message Slack was first offered
    :data:`STUCK_SECONDS` ago or more still waits (retries back off to minutes apart:
    every pass looks, not only a retry)."""
    tried = [(row["first_try_at"], row) for row in heads if row["first_try_at"]]
    if not tried:
        return
    first, row = min(tried, key=lambda t: t[0])
    if now - first < STUCK_SECONDS:
        return
    if throttle.let_through("", now) is None:  # (a pass is not an event: no count)
        return
    log.warning(
        "Slack has not taken a message for %s (outbox row %s, %s; %s waiting;"
        " the last error is on the row and in /agent status); it is tried again until %s"
        " after its first try (said once a minute)",
        format_seconds(now - first),
        row["id"],
        row["method"],
        plural(len(tried), "channel"),
        format_seconds(max_age_seconds),
    )
