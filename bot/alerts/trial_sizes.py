"""A waiting trial request shows the trial an approval starts now, after a reload too.

A ``half_open_requested`` alert says the size of the trial it asks for ("approve a trial
of 3 calls within $0.50"), as the policy said it when the cool-down ended. A SIGHUP that
changes ``breakers.half_open.trial_calls`` / ``trial_budget`` (or a ``breakers.scopes``
prefix's) is a restart, and an approval then starts a trial of the new size: at start,
:func:`resize_trial_requests` writes the new size into each open request whose breaker
still waits, and redraws its posted message and the DMs that paged it in place (through
the outbox, as every update), so nobody approves "3 calls" and gets 10. One request
that cannot be redrawn is logged and left as it was; the others are redrawn.

Example:
    >>> # await store.write(lambda tx: resize_trial_requests(engine, tx, ns.breakers))
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from bot.alerts.messages import OPEN_ALERTS
from bot.alerts.model import Alert
from guards.breaker import HALF_OPEN_PENDING
from guards.breakers import Breakers, parse_key
from guards.errors import InvalidInput
from guards.store import Tx

if TYPE_CHECKING:
    from bot.alerts.engine import AlertEngine

__all__ = ["resize_trial_requests"]

REQUEST_KIND = "half_open_requested"
log = logging.getLogger(__name__)


def resize_trial_requests(engine: AlertEngine, tx: Tx, breakers: Breakers) -> list[int]:
    """Give each open trial request whose breaker still waits the trial size its policy
    says now, redrawing the messages that showed another (the channel's and the paged
    DMs); returns those alerts' ids.

    Each request is its own savepoint: one that cannot be sized or drawn is logged and
    keeps its old size, and the others (and the start's catching up after them) go on
    (review25 L4: one failure rolled every redraw back and skipped the start's tick).
    """
    now = tx.clock.now()
    resized: list[int] = []
    for row in tx.all(f"{OPEN_ALERTS} AND kind = ?", (REQUEST_KIND,)):
        alert = Alert.from_row(row)
        tx.execute("SAVEPOINT trial_size")
        try:
            if _resize(engine, tx, breakers, alert, now):
                resized.append(alert.id)
        except Exception:
            log.exception("alert #%d: its trial request could not be redrawn", alert.id)
            tx.execute("ROLLBACK TO trial_size")
        tx.execute("RELEASE trial_size")
    return resized


def _resize(engine: AlertEngine, tx: Tx, breakers: Breakers, alert: Alert, now: float) -> bool:
    """Size one request as its policy says now; True when that changed its size."""
    try:
        key, kind = parse_key(str(alert.facts.get("scope") or alert.scope))
    except InvalidInput:
        return False  # (no breaker's scope: nothing to size)
    if breakers.get(tx, key).state != HALF_OPEN_PENDING:
        return False  # answered or moved on: its alert resolves by its own event
    config = breakers.limits.config(key, kind)
    size = {
        "trial_calls": config.trial_calls,
        "trial_budget_micros": config.trial_budget_micros,
    }
    if all(alert.facts.get(name) == value for name, value in size.items()):
        return False
    facts = {**alert.facts, **size}
    tx.execute(
        "UPDATE alerts SET facts = ? WHERE id = ?",
        (json.dumps(facts, separators=(",", ":")), alert.id),
    )
    fresh = engine.get(tx, alert.id)
    engine.touch(tx, fresh, now, urgent=True)
    engine.update_pages(tx, fresh, now)  # the on-call's DM says the size it asks for too
    return True
