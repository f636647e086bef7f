"""The shapes of the agent API's answers, as the Python client returns them.

They are ``TypedDict``s: the answers stay the plain dicts the JSON decodes to, and a
type checker knows their keys (``decision["model"]`` is a ``str``; a misspelled key is
an error), so agents checked with ``mypy --strict`` need no casts.

Example:
    >>> answer: RouteDecision = {"model": "claude-haiku-4-5", "tier": "small",
    ...     "reason": "short extraction", "degraded": False, "route_id": "rt_1",
    ...     "intent": "extraction"}
    >>> answer["tier"]
    'small'
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "BreakerFailures",
    "BreakerInfo",
    "BreakersAnswer",
    "RejectedItem",
    "ReleaseAnswer",
    "ReservationAnswer",
    "RouteDecision",
    "SettleAnswer",
    "ValidationAnswer",
]


class ReservationAnswer(TypedDict):
    """``POST /v1/reservations``: ``201``."""

    reservation_id: str
    scope: str
    held_micros: int
    expires_at: str  # ISO 8601, UTC
    state: str  # held (or, replayed, what the reservation is now)


class SettleAnswer(TypedDict):
    """``POST /v1/reservations/{id}/settle``: ``200``."""

    reservation_id: str
    state: str
    outcome: str | None
    charged_micros: int
    released_micros: int
    overrun_micros: int
    late: bool  # the hold had expired: all of it is an overrun


class ReleaseAnswer(TypedDict):
    """``POST /v1/reservations/{id}/release``: ``200``."""

    reservation_id: str
    state: str  # released, or expired (then its expiry gave the hold back)
    released_micros: int


class RejectedItem(TypedDict):
    """One rejected item of a validation batch."""

    index: int
    reason: Literal["duplicate", "near_duplicate", "runaway", "empty", "too_large"]
    duplicate_of: NotRequired[str]
    matched_at: NotRequired[float]
    similarity: NotRequired[float]
    matched_index: NotRequired[int]
    max_items: NotRequired[int]  # of a runaway batch: the most its expected_count allows


class ValidationAnswer(TypedDict):
    """``POST /v1/validations``: ``200``."""

    verdict: Literal["ok", "partial", "rejected"]
    accepted: list[int]
    rejected: list[RejectedItem]


class RouteDecision(TypedDict):
    """``POST /v1/route``: ``200``."""

    model: str
    tier: str
    reason: str
    degraded: bool
    route_id: str
    intent: str


class BreakerFailures(TypedDict):
    consecutive: int
    recent: int
    calls: int


class BreakerInfo(TypedDict):
    """One breaker of ``GET /v1/breakers``."""

    scope: str  # an agent, user or namespace scope, or model:<name>
    kind: str
    state: str  # closed, open, half_open_pending, half_open, forced_open
    reason: str
    trip: str | None
    since: float | None  # Unix seconds
    retry_after: int | None
    cooldown_ends_at: float | None
    cooldown_seconds: int
    reopens: int
    figures: dict[str, Any]
    trial: dict[str, int] | None
    failures: BreakerFailures
    limits_from: str  # the `breakers.scopes` prefix whose limits hold, or "breakers"


class BreakersAnswer(TypedDict):
    """``GET /v1/breakers``: the token's node, and the breakers it may see."""

    scope: str
    enabled: bool  # false while the policy disables breakers: none stops a call
    breakers: list[BreakerInfo]
