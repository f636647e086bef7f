"""Hanging holds: a call holding its ceiling longer than ``alerts.hanging_after``.

A call stalled on its stream keeps its hold for its whole TTL (10 minutes by default, up
to a day): its siblings are refused "held", and the hold's expiry tells nobody until
the next day's digest. :func:`sweep` (the alerts component runs it every
``SWEEP_SECONDS``) raises a :class:`~guards.events.HoldHanging` event for each hold open
longer than ``hanging_after`` and than half its own TTL (a call that asked for a long TTL
is taken at its word for half of it, review30 M2); the engine groups them per agent as
``hold_hanging`` (P1 by default). Each hold is told once: the sweep keeps the holds it
told while they are open (``hanging_told``), restarts and a changed ``hanging_after``
included. An alert resolves at the first sweep that finds no hold of its agent hanging
any more. Until then it names one hold to release: when that one ends while others
hang, the one hanging longest.

Both queries read the open holds only (the partial index ``reservations_due``, as
:data:`guards.holds.HELD_COUNT_SQL` does): a million settled reservations are never read.

Example:
    >>> # await store.write(lambda tx: sweep(engine, tx))
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from bot.alerts.messages import OPEN_ALERTS
from bot.alerts.model import Alert
from guards.config_types import format_seconds
from guards.events import HoldHanging
from guards.scopes import subtree
from guards.store import Tx

if TYPE_CHECKING:
    from bot.alerts.engine import AlertEngine

__all__ = ["HANGING_SQL", "STILL_HANGING_SQL", "SWEEP_SECONDS", "sweep"]

SWEEP_SECONDS = 30
LIMIT = 1000  # holds told per sweep at most (the next sweep tells the rest)
# When an open hold hangs: past hanging_after and past half its own TTL (a call that asked
# for a long TTL is taken at its word for half of it): (hanging_after, ...).
_DUE = "created_at + MAX(?, (expires_at - created_at) / 2.0)"
# Open holds that hang now and were not told yet: (now, hanging_after, now, limit).
HANGING_SQL = (
    "SELECT id, scope, model, held_micros, created_at FROM reservations"
    f" INDEXED BY reservations_due WHERE state = 'held' AND expires_at > ? AND {_DUE} <= ?"
    " AND NOT EXISTS (SELECT 1 FROM hanging_told t WHERE t.reservation_id = reservations.id)"
    " ORDER BY created_at, id LIMIT ?"
)
# The longest hanging hold at a scope or below, if one hangs now:
# (now, hanging_after, now, scope, *subtree(scope)).
STILL_HANGING_SQL = (
    "SELECT id, scope, model, held_micros, created_at FROM reservations"
    f" INDEXED BY reservations_due WHERE state = 'held' AND expires_at > ? AND {_DUE} <= ?"
    " AND (scope = ? OR (scope > ? AND scope < ?)) ORDER BY created_at, id LIMIT 1"
)
# The told holds that are no longer open (settled, released, expired): forgotten.
_FORGET = (
    "DELETE FROM hanging_told WHERE NOT EXISTS (SELECT 1 FROM reservations r"
    " WHERE r.id = hanging_told.reservation_id AND r.state = 'held')"
)
# Whether a told hold at a scope or below is still open: (scope, *subtree(scope)).
_TOLD_UNDER = "SELECT 1 FROM hanging_told WHERE scope = ? OR (scope > ? AND scope < ?) LIMIT 1"
CLEARED = "no hold of it hangs any more (settled, released or expired)"
# its told holds still open hang no longer by the rule now (a restart with a longer
# hanging_after): not "settled" (recheck30 L3)
WITHIN = (
    "its open holds no longer count as hanging: alerts.hanging_after, or half their TTL"
    " if longer, is"
)
TURNED_OFF = "alerts.hanging_after is off"


def sweep(engine: AlertEngine, tx: Tx) -> int:
    """Raise an event for each hold that began to hang and was not told yet, and resolve
    the ``hold_hanging`` alerts whose agent has none left; returns how many were raised."""
    now = tx.clock.now()
    after = engine.policy.alerts.hanging_after
    tx.execute(_FORGET)
    rows = tx.all(HANGING_SQL, (now, after, now, LIMIT)) if after > 0 else []
    for res_id, scope, model, held, created_at in rows:
        tx.emit(
            HoldHanging(
                at=now,
                scope=scope,
                reservation_id=res_id,
                held_micros=held,
                created_at=created_at,
                model=model,
            )
        )
    tx.executemany(
        "INSERT INTO hanging_told (reservation_id, scope, told_at) VALUES (?, ?, ?)",
        [(res_id, scope, now) for res_id, scope, *_ in rows],
    )
    for row in tx.all(f"{OPEN_ALERTS} AND kind = 'hold_hanging'"):
        alert = Alert.from_row(row)
        reason = TURNED_OFF
        if after > 0:
            args = (now, after, now, alert.scope, *subtree(alert.scope))
            if (still := tx.one(STILL_HANGING_SQL, args)) is not None:
                _name_one_still_hanging(engine, tx, alert, still, now)
                continue
            told = tx.one(_TOLD_UNDER, (alert.scope, *subtree(alert.scope)))
            reason = CLEARED if told is None else f"{WITHIN} {format_seconds(after)} now"
        engine.resolve_alert(tx, alert, now, by=None, reason=reason)
    return len(rows)


def _name_one_still_hanging(
    engine: AlertEngine, tx: Tx, alert: Alert, hold: tuple[Any, ...], now: float
) -> None:
    """The alert names a hold to release: once that one has ended while another still
    hangs, it names the one hanging longest instead (recheck30 L2: its message said to
    release a hold that was gone)."""
    res_id, scope, model, held, created_at = hold
    if alert.facts.get("reservation_id") == res_id:
        return
    named = tx.one(
        "SELECT 1 FROM reservations WHERE id = ? AND state = 'held' AND expires_at > ?",
        (alert.facts.get("reservation_id"), now),
    )
    if named is not None:
        return  # the one it names still holds (it hangs by the rule, or its turn comes)
    facts = {k: v for k, v in alert.facts.items() if k != "conversation"}
    facts.update(
        reservation_id=res_id, held_micros=held, created_at=created_at, model=model, at=now
    )
    if scope != alert.scope:
        facts["conversation"] = scope
    tx.execute("UPDATE alerts SET facts = ? WHERE id = ?", (json.dumps(facts), alert.id))
    engine.touch(tx, dataclasses.replace(alert, facts=facts), now)
