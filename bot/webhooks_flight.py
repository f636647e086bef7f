"""A webhook try in flight when its trigger's paging ended, and tries a crash cut short.

A try marks its row ``in_flight_at`` as it claims it, right before its request goes out
(:func:`bot.webhooks_rows.claim`), and the record of its answer clears the mark; so does
an unexpected error before that record (``bot.webhooks.WebhookSender._release``: the
answer is recorded on its own, or a try with none is counted and tried again after its
backoff; it held the row until a restart). While a trigger's try is in flight, a later
event of the same alert (or storm) at that webhook waits (the sender's due rows,
``bot.webhooks._DUE``): a resolve never reaches the receiver before the trigger it
closes (review26 R1 L2: the receiver took the resolve, then opened the incident, and
nothing closed it).

An alert acknowledged, silenced or resolved while a try of its trigger is in flight ends
the trigger's row at once (:func:`bot.webhooks_rows.end_pending_trigger`): withdrawn
unsent when no earlier try may have got there (no resolve written), else not tried again
(its resolve written; it waits for the try). :func:`record_ended` records that try's
answer as it went:

- delivered: the row says delivered (not "not tried again", nor "withdrawn unsent");
- no answer, or a 5xx: it may have got there, so a withdrawn row is not tried again;
- refused (a 4xx, never connected): kept as it was ended (a withdrawn one opened nothing);

and a withdrawn row that may have got there gets its resolve now, after the answer.

After a crash (``kill -9``) a row still marked had a try cut short, its request perhaps
out (:func:`recover_cut_tries`, before the sender's first try): a pending row may have
got there (``reached``; it is sent again, as before), and a trigger ended meanwhile is
recorded as a try that got no answer (a withdrawn one gets its resolve: delivery is
at-least-once).

Example:
    >>> # changed = record_ended(tx, row, Sent(200), now=now, engine=alerts.engine)
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from bot.webhook_storms import resolve_storm, storm_alerts
from bot.webhooks_rows import STOPPED, WITHDRAWN, enqueue_resolve
from bot.webhooks_send import Outcome, Sent, TryAgain, may_have_reached
from guards.errors import NotFound
from guards.store import Tx

if TYPE_CHECKING:
    from bot.alerts.engine import AlertEngine

__all__ = ["CUT_SHORT", "CUT_SHORT_RESULT", "cut_rows", "record_ended", "recover_cut_tries"]

#: the error of a try a stop or a crash cut short before its answer was recorded
CUT_SHORT = "cut short (a stop or a crash) before its answer came: it may have got there"
CUT_SHORT_RESULT = TryAgain(None, CUT_SHORT, reached=True)
# what a try's record reads of its row (as the sender's due rows do), and its state
_COLUMNS = (
    "id",
    "webhook",
    "alert_id",
    "event",
    "body",
    "created_at",
    "attempts",
    "escalation_id",
    "target",
    "storm_id",
    "last_status",
    "last_error",
    "reached",
    "state",
)


def cut_rows(tx: Tx) -> list[dict[str, Any]]:
    """The rows whose try was marked in flight and never recorded (a crash cut it)."""
    rows = tx.all(
        f"SELECT {', '.join(_COLUMNS)} FROM webhook_deliveries"  # (fixed names, no input)
        " WHERE in_flight_at IS NOT NULL ORDER BY id"
    )
    return [dict(zip(_COLUMNS, r, strict=True)) for r in rows]


def recover_cut_tries(tx: Tx, *, now: float, engine: AlertEngine | None) -> list[Any]:
    """Clear the marks of tries a crash cut short (none of this process is in flight
    yet); returns the ended triggers' rows whose record changed (their messages are
    redrawn by the caller). A pending row may have got there: ``reached``, sent again
    from its due time. An ended trigger: as a try that got no answer."""
    changed = []
    for row in cut_rows(tx):
        if row["state"] == "pending":
            tx.execute(
                "UPDATE webhook_deliveries SET reached = 1, in_flight_at = NULL WHERE id = ?",
                (row["id"],),
            )
        elif record_ended(tx, row, CUT_SHORT_RESULT, now=now, engine=engine):
            changed.append(row)
    return changed


def record_ended(
    tx: Tx, row: Any, result: Outcome | str, *, now: float, engine: AlertEngine | None
) -> bool:
    """Record the answer of ``row``'s try, which ended after the row was (the alert's
    or storm's paging ended meanwhile); True when the row changed. See the module's
    docstring."""
    delivery = int(row["id"])
    tx.execute("UPDATE webhook_deliveries SET in_flight_at = NULL WHERE id = ?", (delivery,))
    ended = tx.one(
        "SELECT last_error FROM webhook_deliveries WHERE id = ? AND state = 'failed'",
        (delivery,),
    )
    if row["event"] != "trigger" or ended is None or not may_have_reached(result):
        return False
    withdrawn = ended[0] == WITHDRAWN
    if not withdrawn and ended[0] != STOPPED:
        return False
    status = None if isinstance(result, str) else result.status
    if isinstance(result, Sent):  # it got through: said as delivered
        tx.execute(
            "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1,"
            " last_status = ?, last_error = NULL, reached = 1 WHERE id = ?",
            (status, delivery),
        )
    elif withdrawn:  # no answer, or a 5xx: it may have got there
        tx.execute(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = ?,"
            " last_error = ?, reached = 1 WHERE id = ?",
            (status, STOPPED, delivery),
        )
    else:
        return False  # not tried again already: its resolve is written, and goes now
    if withdrawn:
        _resolve(tx, row, now=now, engine=engine)
    return True


def _resolve(tx: Tx, row: Any, *, now: float, engine: AlertEngine | None) -> None:
    """The resolve of a trigger withdrawn while its try, which may have got there, was
    in flight: its storm's, or its alert's (whose step no longer says withdrawn)."""
    if row["storm_id"] is not None:
        storm = int(row["storm_id"])
        if tx.one(
            "SELECT 1 FROM webhook_deliveries WHERE storm_id = ? AND event = 'resolve'",
            (storm,),
        ):
            return  # another of its triggers got there: its resolve is written
        resolve_storm(
            tx,
            storm,
            webhook=str(row["webhook"]),
            trigger=int(row["id"]),
            members=storm_alerts(tx, storm),
            now=now,
        )
        return
    tx.execute("UPDATE escalations SET withdrawn_at = NULL WHERE id = ?", (row["escalation_id"],))
    if engine is None:
        return
    with contextlib.suppress(NotFound):  # (an alert gone by retention: nothing to close)
        alert = engine.get(tx, int(row["alert_id"]))
        enqueue_resolve(tx, alert, webhook=str(row["webhook"]), trigger=int(row["id"]), at=now)
