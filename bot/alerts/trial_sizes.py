"""A waiting trial request shows the trial an approval starts now, after a reload too.

A ``half_open_requested`` alert says the size of the trial it asks for ("approve a trial
of 3 calls within $0.50"), as the policy said it when the cool-down ended. A SIGHUP that
changes ``breakers.half_open.trial_calls`` / ``trial_budget`` (or a ``breakers.scopes``
prefix's) is a restart, and an approval then starts a trial of the new size: at start,
:func:`resize_trial_requests` writes the new size into each open request whose breaker
still waits, and redraws its posted message in place (through the outbox, as every
update), so nobody approves "3 calls" and gets 10.

Example:
    >>> # await store.write(lambda tx: resize_trial_requests(engine, tx, ns.breakers))
"""

from __future__ import annotations

import json
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


def resize_trial_requests(engine: AlertEngine, tx: Tx, breakers: Breakers) -> list[int]:
    """Give each open trial request whose breaker still waits the trial size its policy
    says now, redrawing the messages that showed another; returns those alerts' ids."""
    now = tx.clock.now()
    resized: list[int] = []
    for row in tx.all(f"{OPEN_ALERTS} AND kind = ?", (REQUEST_KIND,)):
        alert = Alert.from_row(row)
        try:
            key, kind = parse_key(str(alert.facts.get("scope") or alert.scope))
        except InvalidInput:
            continue  # (no breaker's scope: nothing to size)
        if breakers.get(tx, key).state != HALF_OPEN_PENDING:
            continue  # answered or moved on: its alert resolves by its own event
        config = breakers.limits.config(key, kind)
        size = {
            "trial_calls": config.trial_calls,
            "trial_budget_micros": config.trial_budget_micros,
        }
        if all(alert.facts.get(name) == value for name, value in size.items()):
            continue
        facts = {**alert.facts, **size}
        tx.execute(
            "UPDATE alerts SET facts = ? WHERE id = ?",
            (json.dumps(facts, separators=(",", ":")), alert.id),
        )
        engine.touch(tx, engine.get(tx, alert.id), now, urgent=True)
        resized.append(alert.id)
    return resized
