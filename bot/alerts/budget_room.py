"""Whether a raised budget has room for the call its alert refused, and what made room.

A refusal's alert (``budget_exhausted``) clears at a raise only when the call it refused
fits under the new limit on top of what its window has spent and holds now, as the
reserve counts it (review28 R2 M2). A raise judged short when it was set
(:func:`note_short`) that fits later, at a tick, fits because money the window held
was released since (a call settled or released, a hold expired): the resolution says
so (review28 R6 L5), not only that the budget was raised, hours before perhaps.

Example:
    >>> facts = {"window": "day", SHORT_AT: 60_000}  # raised to $0.06: short then
    >>> raised_reason(facts, "day", 60_000, 50_000)[36:]
    'and the held money that kept it short of the refused call was released'
    >>> raised_reason(facts, "day", 70_000, 50_000)  # raised again: that was enough
    'the day budget was raised to $0.07'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.alerts.model import Alert
from guards.ledger import Ledger
from guards.money import usd_for
from guards.scopes import Scope
from guards.store import Tx
from guards.usage import period_keys

__all__ = ["SHORT_AT", "note_short", "raised_reason", "still_short"]

# the alert's facts key: the limit a person set that still left the refused call short
SHORT_AT = "short_at_limit_micros"


def still_short(
    tx: Tx, ledger: Ledger, *, alert: Alert, scope: Scope, limit: int, now: float
) -> bool:
    """Whether a refusal's alert (``budget_exhausted``) still holds under ``limit``: the
    call it refused, what it asked on top of what its window has spent and holds now,
    would be refused again (a raise of $20 to $20.000001 for a call asking $25). The
    held money counts as the reserve counts it (review28 R2 M2: $20 held of a $20 day,
    raised to $21, resolved the alert of a $5 call that a retry got refused again)."""
    asked = alert.facts.get("requested_micros")
    if alert.kind != "budget_exhausted" or not isinstance(asked, int):
        return False
    window = str(alert.facts.get("window"))
    period = period_keys(ledger.periods(scope.namespace, now))[window]
    spent, held = ledger.counters.get(tx, scope.path, window, period)
    return spent + held + asked > limit


def note_short(tx: Tx, alert: Alert, *, limit: int) -> None:
    """A limit just set leaves the alert's refused call short: note it on the alert, so
    the tick that later finds room says what made it."""
    if alert.facts.get(SHORT_AT) == limit:
        return
    facts = {**alert.facts, SHORT_AT: limit}
    tx.execute(
        "UPDATE alerts SET facts = ? WHERE id = ?",
        (json.dumps(facts, separators=(",", ":")), alert.id),
    )


def raised_reason(facts: Mapping[str, Any], window: str, limit_now: int, limit_then: int) -> str:
    """Why a raise resolved the alert: the new limit, and when that same limit was judged
    short when it was set, that held money released since made room."""
    usd = usd_for(limit_now, limit_then)  # as set: $2.505 is not "$2.51"
    said = f"the {window} budget was raised to {usd(limit_now)}"
    if facts.get(SHORT_AT) == limit_now:
        said += ", and the held money that kept it short of the refused call was released"
    return said
