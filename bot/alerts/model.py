"""The alert row and the mapping from guard events to alert kinds and fingerprints.

An alert is a *group*: every firing with the same fingerprint (``kind:scope``) while
the group is open bumps its count instead of making a new alert.

Example:
    >>> alert_kind("breaker_opened", {"trip": "spend"})
    'breaker_opened_spend'
    >>> fingerprint("heartbeat_missed", "acme/a/bot")
    'heartbeat_missed:acme/a/bot'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from guards.config_people import ALERT_KINDS
from guards.config_types import Tier

__all__ = [
    "AFTER_CALLS",
    "AFTER_MICROS",
    "ALERT_COLUMNS",
    "ALERT_TIERS",
    "CLEARED_BY",
    "CONDITION_KINDS",
    "MODEL_BUDGET_KIND",
    "MODEL_THRESHOLD_KIND",
    "OPENED_FOR",
    "OPENED_KINDS",
    "STREAMS",
    "STREAM_COUNTS",
    "TAG_DIGITS",
    "Alert",
    "alert_kind",
    "button_tag",
    "fingerprint",
    "kinds_named",
    "tagged",
]

ALERT_COLUMNS = (
    "id, fingerprint, kind, scope, tier, count, first_at, last_at, facts, silence_id,"
    " was_silenced, channel, posted_at, updated_at, updates, dirty, oncall_user, esc_step,"
    " esc_at, acked_at, acked_by, resolved_at, resolved_by, resolve_reason, folded_into"
)
#: the alert tiers, the most urgent first
ALERT_TIERS: tuple[Tier, ...] = ("P0", "P1", "P2")

BREAKER_KINDS = (
    "breaker_opened_spend",
    "breaker_opened_failures",
    "breaker_opened_manual",
    "half_open_requested",
)

# The alerts of a breaker that opened (a charge that lands after the trip is added to them).
OPENED_KINDS = BREAKER_KINDS[:3]
# Their facts for what the trip did not stop: charges of calls granted before it.
AFTER_MICROS, AFTER_CALLS = "after_trip_micros", "after_trip_calls"
# What a breaker first opened for, kept when a failed trial opens it again (audit23
# forensics L4: the spend that paged was gone from the message once the trial failed)
OPENED_FOR = "opened_for"
# An overrun alert's firings, summed (each firing's facts are the latest overrun's)
OVERRUN_TOTAL = "overrun_total_micros"
# The streams an output alert (runaway, duplicate_burst) fired for, in its firings so far
STREAMS = "streams"
# A duplicate burst's count per stream, each counted from the rejections in the window at
# the alert's latest firing (bot.alerts.bursts; their sum is the burst's; a firing's own
# ``rejected`` is its stream's alone)
STREAM_COUNTS = "stream_counts"

# Events that clear a condition: they resolve the open alerts of these kinds at their scope.
CLEARED_BY: dict[str, tuple[str, ...]] = {
    "breaker_closed": BREAKER_KINDS,
    "heartbeat_restored": ("heartbeat_missed",),
    # a new opening is the answer to a trial request (refused, or the trial failed)
    "breaker_opened": ("half_open_requested",),
    # an operator approved the trial or kept the breaker open: the request is answered
    "trial_answered": ("half_open_requested",),
}

# A namespace's budget for one model refused a call (budgets.models): its own kind, so its
# alert (kind:namespace) is never the namespace's own budget alert. One per namespace:
# its facts name the model and window of the latest refusal, as a budget alert's do.
MODEL_BUDGET_KIND = "model_budget_exhausted"
# Its warning (budgets.warn_at), likewise its own kind and one per namespace.
MODEL_THRESHOLD_KIND = "model_budget_threshold"
# Kinds that resolve when a condition clears; the others resolve after a quiet period.
CONDITION_KINDS = frozenset(
    {
        *BREAKER_KINDS,
        "heartbeat_missed",
        "budget_exhausted",
        "budget_threshold",
        "hold_hanging",
        MODEL_BUDGET_KIND,
        MODEL_THRESHOLD_KIND,
    }
)

# Events that only clear conditions and never raise an alert themselves.
_NOT_ALERTS = frozenset(
    {"breaker_closed", "heartbeat_restored", "trial_answered", "spent_while_open"}
)


def alert_kind(event_kind: str, payload: dict[str, Any]) -> str | None:
    """The alert kind of an event (None: the event raises no alert).

    A breaker opening is ``breaker_opened_spend`` when it tripped on spend rate,
    ``breaker_opened_manual`` when an operator forced it, else ``breaker_opened_failures``.
    """
    if event_kind in _NOT_ALERTS:
        return None
    if event_kind == "breaker_opened":
        trip = payload.get("trip")
        if trip == "spend":
            return "breaker_opened_spend"
        if trip == "manual":
            return "breaker_opened_manual"
        return "breaker_opened_failures"
    return event_kind


def fingerprint(kind: str, scope: str) -> str:
    return f"{kind}:{scope}"


TAG_DIGITS = 13  # a tag's most digits: milliseconds up to the year 2286


def button_tag(first_at: float) -> str:
    """What ties a button to its alert, after its number: the instant the alert first
    fired, in milliseconds. A database restored from a backup gives the numbers of the
    alerts made since to new ones, and an old message's click must not act on those
    (audit23 backup 1)."""
    return str(round(first_at * 1000))


def tagged(value: str, first_at: float) -> str:
    """A button's ``value`` with its alert's tag: ``"20~1767225611123"``."""
    return f"{value}~{button_tag(first_at)}"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert group as stored."""

    id: int
    fingerprint: str
    kind: str
    scope: str
    tier: str
    count: int
    first_at: float
    last_at: float
    facts: dict[str, Any]
    silence_id: int | None
    was_silenced: bool
    channel: str | None
    posted_at: float | None
    updated_at: float | None
    updates: int
    dirty: bool
    oncall_user: str | None
    esc_step: int | None
    esc_at: float | None
    acked_at: float | None
    acked_by: str | None
    resolved_at: float | None
    resolved_by: str | None
    resolve_reason: str | None
    folded_into: str | None = None  # the storm summary that carried it instead of a post

    @classmethod
    def from_row(cls, row: Any) -> Alert:
        return cls(
            id=row[0],
            fingerprint=row[1],
            kind=row[2],
            scope=row[3],
            tier=row[4],
            count=row[5],
            first_at=row[6],
            last_at=row[7],
            facts=json.loads(row[8]),
            silence_id=row[9],
            was_silenced=bool(row[10]),
            channel=row[11],
            posted_at=row[12],
            updated_at=row[13],
            updates=row[14],
            dirty=bool(row[15]),
            oncall_user=row[16],
            esc_step=row[17],
            esc_at=row[18],
            acked_at=row[19],
            acked_by=row[20],
            resolved_at=row[21],
            resolved_by=row[22],
            resolve_reason=row[23],
            folded_into=row[24],
        )

    @property
    def state(self) -> str:
        """``resolved``, ``silenced``, ``acked`` or ``open``."""
        if self.resolved_at is not None:
            return "resolved"
        if self.silence_id is not None:
            return "silenced"
        if self.acked_at is not None:
            return "acked"
        return "open"

    @property
    def post_ref(self) -> str:
        """The outbox ref of the channel message."""
        return f"alert:{self.id}:post"

    @property
    def mtta(self) -> float | None:
        """Seconds from the first firing to the acknowledgement."""
        return None if self.acked_at is None else max(0.0, self.acked_at - self.first_at)


def kinds_named(text: str) -> tuple[str, ...]:
    """The alert kinds ``text`` names, in any case: one kind, or a family of them.

    A family is the start of kind names up to an underscore: ``breaker_opened`` names
    the three breaker kinds, ``budget`` both budget kinds. Nothing: no kind.

    Example:
        >>> kinds_named("HEARTBEAT_MISSED"), kinds_named("budget"), kinds_named("beat")
        (('heartbeat_missed',), ('budget_exhausted', 'budget_threshold'), ())
    """
    text = text.lower()
    if text in ALERT_KINDS:
        return (text,)
    return tuple(k for k in ALERT_KINDS if k.startswith(text + "_"))  # a family
