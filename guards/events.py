"""Typed events the guards announce; the bot turns them into alerts.

Every event is written to the ``events`` table in the same transaction as the
state change that caused it (so none is lost), then published on the in-process
:class:`EventBus` once that transaction has committed.

Example:
    >>> ev = BreakerOpened(at=0.0, scope="acme/a/bot", trip="spend", reason="spend rate")
    >>> ev.kind, ev.payload()["reason"]
    ('breaker_opened', 'spend rate')
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "NIGHTSHIFT",
    "AttemptsExhausted",
    "BreakerClosed",
    "BreakerOpened",
    "BudgetExhausted",
    "BudgetThreshold",
    "DuplicateBurst",
    "Event",
    "EventBus",
    "HalfOpenRequested",
    "HeartbeatMissed",
    "HeartbeatRestored",
    "HoldExpired",
    "HoldHanging",
    "JobRunCapReached",
    "ModelBudgetExhausted",
    "ModelBudgetThreshold",
    "Overrun",
    "RoutingPromoted",
    "RunawayDetected",
    "ScopeViolation",
    "SpentWhileOpen",
    "TrialAnswered",
]

log = logging.getLogger(__name__)
# The actor of what Nightshift did on its own (an audit row, an event, a trial it started),
# as opposed to a person's Slack id or a CLI user (``cli:…``)
NIGHTSHIFT = "nightshift"


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of all events: when it happened and which scope it is about."""

    kind: ClassVar[str] = "event"
    at: float
    scope: str

    def payload(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class BudgetExhausted(Event):
    """A reservation was refused because a level's window is spent."""

    kind: ClassVar[str] = "budget_exhausted"
    level: str
    window: str
    limit_micros: int
    spent_micros: int
    held_micros: int
    requested_micros: int
    # the other levels that refused it too: {level, scope, window, limit/spent/held micros}
    also: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    books_full: bool = False  # refused at the most Nightshift counts, not a limit set


@dataclass(frozen=True, kw_only=True)
class ModelBudgetExhausted(Event):
    """A reservation was refused because its namespace's budget for its model is spent
    (``budgets.models``): ``scope`` is the namespace, ``level`` is ``model``. Its own
    kind, so that its alert is not the namespace's own budget alert."""

    kind: ClassVar[str] = "model_budget_exhausted"
    level: str
    model: str
    window: str
    limit_micros: int
    spent_micros: int
    held_micros: int
    requested_micros: int
    # the levels (and other windows) that refused it too, as BudgetExhausted's
    also: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class BudgetThreshold(Event):
    """A level's window passed a warning fraction (e.g. 80%) of its limit."""

    kind: ClassVar[str] = "budget_threshold"
    level: str
    window: str
    fraction: float
    limit_micros: int
    spent_micros: int
    period: str = ""  # the window's period (2026-05-31, 2026-W22, ...): a late charge's may be past


@dataclass(frozen=True, kw_only=True)
class ModelBudgetThreshold(Event):
    """A window of a namespace's budget for one model (``budgets.models``) passed a warning
    fraction of its limit: ``scope`` is the namespace, ``level`` is ``model``. Its own
    kind, so that its alert is not the namespace's own budget warning."""

    kind: ClassVar[str] = "model_budget_threshold"
    level: str
    model: str
    window: str
    fraction: float
    limit_micros: int
    spent_micros: int
    period: str


@dataclass(frozen=True, kw_only=True)
class Overrun(Event):
    """A settle charged more than an active hold covered (late or over the ceiling)."""

    kind: ClassVar[str] = "overrun"
    reservation_id: str
    held_micros: int
    charged_micros: int
    overrun_micros: int
    late: bool


@dataclass(frozen=True, kw_only=True)
class HoldExpired(Event):
    """A hold passed its TTL without a settle or release."""

    kind: ClassVar[str] = "hold_expired"
    reservation_id: str
    held_micros: int


@dataclass(frozen=True, kw_only=True)
class HoldHanging(Event):
    """A hold has been open longer than ``alerts.hanging_after`` without a settle or
    release: its call may hang on a stalled stream, its ceiling kept from its siblings.
    ``created_at``: when it was taken; ``model``: the model its reservation named."""

    kind: ClassVar[str] = "hold_hanging"
    reservation_id: str
    held_micros: int
    created_at: float
    model: str | None = None


@dataclass(frozen=True, kw_only=True)
class BreakerOpened(Event):
    """A breaker opened; ``trip``: ``spend``, ``failures``, ``attempts``, ``trial``, ``manual``."""

    kind: ClassVar[str] = "breaker_opened"
    trip: str
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)
    cooldown_seconds: int = 0
    actor: str | None = None


@dataclass(frozen=True, kw_only=True)
class SpentWhileOpen(Event):
    """A call granted before its breaker opened settled with a charge while the breaker
    refuses: money the trip did not stop (it was already in flight)."""

    kind: ClassVar[str] = "spent_while_open"
    reservation_id: str
    charged_micros: int


@dataclass(frozen=True, kw_only=True)
class HalfOpenRequested(Event):
    """A breaker's cool-down ended and it waits for a human to approve a trial."""

    kind: ClassVar[str] = "half_open_requested"
    reason: str
    trial_calls: int
    trial_budget_micros: int


@dataclass(frozen=True, kw_only=True)
class BreakerClosed(Event):
    """A breaker closed (clean trial, or forced by an operator)."""

    kind: ClassVar[str] = "breaker_closed"
    reason: str
    actor: str | None = None


@dataclass(frozen=True, kw_only=True)
class AttemptsExhausted(Event):
    """A task asked for more attempts than allowed."""

    kind: ClassVar[str] = "attempts_exhausted"
    task_id: str
    attempts: int
    limit: int


@dataclass(frozen=True, kw_only=True)
class RunawayDetected(Event):
    """A validation batch had far more items than expected."""

    kind: ClassVar[str] = "runaway"
    stream: str
    count: int
    expected_count: int


@dataclass(frozen=True, kw_only=True)
class DuplicateBurst(Event):
    """A stream's duplicate rejections passed the burst threshold."""

    kind: ClassVar[str] = "duplicate_burst"
    stream: str
    rejected: int
    window_seconds: int


@dataclass(frozen=True, kw_only=True)
class HeartbeatMissed(Event):
    """An agent missed ``misses`` heartbeats in a row; ``detail``: what its last one said."""

    kind: ClassVar[str] = "heartbeat_missed"
    last_seen: float | None
    misses: int
    detail: str | None = None


@dataclass(frozen=True, kw_only=True)
class HeartbeatRestored(Event):
    """An agent that had missed heartbeats is back (``status``: its heartbeat's, which may
    say it stopped)."""

    kind: ClassVar[str] = "heartbeat_restored"
    status: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScopeViolation(Event):
    """A token tried to act outside its subtree.

    ``scope`` is the node it reached for; ``tried`` what the caller named, when that was
    not the scope itself (a reservation's id: its scope is not the caller's to learn).
    """

    kind: ClassVar[str] = "scope_violation"
    token_id: str
    token_scope: str
    path: str
    tried: str | None = None


@dataclass(frozen=True, kw_only=True)
class RoutingPromoted(Event):
    """An intent's small-tier calls failed too often; it now routes one tier up."""

    kind: ClassVar[str] = "routing_promoted"
    intent: str
    from_tier: str
    to_tier: str
    failure_rate: float


@dataclass(frozen=True, kw_only=True)
class JobRunCapReached(Event):
    """A scheduled job hit its ``max_runs_per_hour``; further runs this hour are skipped."""

    kind: ClassVar[str] = "job_run_cap"
    job: str
    runs: int
    limit: int


Handler = Callable[[int, Event], Awaitable[None]]


class EventBus:
    """In-process publish/subscribe; handlers get ``(event_id, event)`` after commit."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def publish(self, items: list[tuple[int, Event]]) -> None:
        """Schedule every handler for every item; a failing handler is logged, not fatal."""
        for event_id, event in items:
            for handler in self._handlers:
                task = asyncio.ensure_future(handler(event_id, event))
                task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("event handler failed", exc_info=task.exception())


@dataclass(frozen=True, kw_only=True)
class TrialAnswered(Event):
    """A half-open request was answered. ``decision`` is ``approved`` (a trial), ``kept open``,
    or :data:`~guards.breaker_records.AUTO_STARTED` (a reload that turned on automatic
    trials started it). ``trial_calls`` / ``trial_budget_micros``: the size of a trial the
    approver gave a size other than the policy's (``/agent breaker <scope> approve 1
    $0.10``), both set; None for the policy's."""

    kind: ClassVar[str] = "trial_answered"
    decision: str
    actor: str
    # a trial approved with a size of its own (not the policy's): its calls and budget
    trial_calls: int | None = None
    trial_budget_micros: int | None = None
