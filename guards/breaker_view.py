"""What an operator sees of a breaker: :class:`BreakerRow`, and which breakers a list shows.

``GET /v1/breakers`` and ``/agent breakers`` show the same rows: the state, why, since
when, when a refused caller may retry (null while a call would go through), the figures
of the trip, the trial in progress, the recent failures, and whose limits hold for it
(``limits_from``: a ``breakers.scopes`` prefix, or ``breakers``).

Example:
    >>> from guards.breaker import Breaker, BreakerConfig
    >>> row = row_of(Breaker("acme/alice/bot", BreakerConfig()), "agent", 0.0)
    >>> row.as_json()["state"], row.as_json()["failures"]
    ('closed', {'consecutive': 0, 'recent': 0, 'calls': 0})
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from guards.breaker import CLOSED, HALF_OPEN, Breaker
from guards.breaker_said import without_last_error
from guards.client_types import BreakerInfo
from guards.scopes import Scope
from guards.store import Tx

__all__ = ["BreakerRow", "listed", "row_of", "shared"]


@dataclass(frozen=True, slots=True)
class BreakerRow:
    """One breaker as ``GET /v1/breakers`` and ``/agent breakers`` show it."""

    scope: str
    kind: str
    state: str
    reason: str
    trip: str | None
    since: float | None
    retry_after: int | None
    cooldown_ends_at: float | None
    cooldown_seconds: int
    reopens: int
    figures: dict[str, Any]
    trial: dict[str, int] | None
    consecutive_failures: int
    recent_failures: int
    recent_calls: int
    # the `breakers.scopes` prefix whose limits hold for it, or "breakers" (the top level)
    limits_from: str = "breakers"

    def as_json(self) -> BreakerInfo:
        """The wire shape (the client's :class:`~guards.client_types.BreakerInfo`)."""
        return {
            "scope": self.scope,
            "kind": self.kind,
            "state": self.state,
            "reason": self.reason,
            "trip": self.trip,
            "since": self.since,
            "retry_after": self.retry_after,
            "cooldown_ends_at": self.cooldown_ends_at,
            "cooldown_seconds": self.cooldown_seconds,
            "reopens": self.reopens,
            "figures": self.figures,
            "trial": self.trial,
            "failures": {
                "consecutive": self.consecutive_failures,
                "recent": self.recent_failures,
                "calls": self.recent_calls,
            },
            "limits_from": self.limits_from,
        }


def row_of(b: Breaker, kind: str, now: float) -> BreakerRow:
    """The row of breaker ``b`` (of ``kind``) as of ``now``."""
    trial = None
    if b.state == HALF_OPEN:
        trial = {
            "calls": b.trial_calls,
            "admitted": len(b.trial_holds),
            "succeeded": b.trial_succeeded,
            "budget_micros": b.trial_budget_micros,
            "held_micros": b.trial_held_micros,
            "charged_micros": b.trial_charged_micros,
        }
    return BreakerRow(
        scope=b.key,
        kind=kind,
        state=b.state,
        reason=b.reason,
        trip=b.trip if b.state != CLOSED else None,
        since=b.since or None,
        # null while it refuses nothing now: closed, or a trial with room (audit27 B1 L1)
        retry_after=b.retry_after(now) or None,
        cooldown_ends_at=b.deadline(),
        cooldown_seconds=b.cooldown_seconds,
        # a closed breaker keeps its re-opens while on probation only (past it, a trip
        # starts over: review22 L4)
        reopens=b.reopens if b.state != CLOSED or now < (b.probation_until or 0) else 0,
        figures=dict(b.figures) if b.state != CLOSED else {},
        trial=trial,
        consecutive_failures=b.window.consecutive,
        recent_failures=b.window.failures,
        recent_calls=len(b.window.items),
        limits_from=b.config.limits_from,
    )


_TRIAL_CALL = re.compile(r"\btrial call res_\w+")


def shared(row: BreakerRow) -> BreakerRow:
    """``row`` as a namespace's token sees it: a model's breaker is shared by every
    tenant, and what its calls said (another team's error text, its reservation's id)
    and what its trial's calls cost are theirs (audit23 tenants F1). Operators see it
    whole in Slack."""
    if row.kind != "model":
        return row
    reason = _TRIAL_CALL.sub("a trial call", without_last_error(row.reason))
    figures = {k: v for k, v in row.figures.items() if k != "reservation_id"}
    trial = row.trial and {
        k: v for k, v in row.trial.items() if k not in ("held_micros", "charged_micros")
    }
    return replace(row, reason=reason, figures=figures, trial=trial)


def listed(tx: Tx, *, include_closed: bool, within: str | None) -> list[tuple[str, str]]:
    """The ``(key, kind)`` of the breakers a list shows, by key (see ``Breakers.list``)."""
    if include_closed:
        rows = tx.all("SELECT key, kind FROM breakers ORDER BY key")
    else:
        rows = tx.all("SELECT key, kind FROM breakers WHERE state != 'closed' ORDER BY key")
    found = {key: kind for key, kind in rows}
    if include_closed:
        for (path,) in tx.all("SELECT path FROM scopes WHERE depth = 3"):
            found.setdefault(path, "agent")
    if within is not None:
        node = Scope.parse(within)
        found = {
            key: kind
            for key, kind in found.items()
            if kind == "model" or Scope(key).within(node.path) or node.within(key)
        }
    return sorted(found.items())
