"""The person who approved a trial that failed is told, in the alert's thread.

Example:
    >>> # tell_approver(engine, tx, alert_id, scope, payload, at, event_id)
"""

from __future__ import annotations

import json
from typing import Any

from bot.alerts.messages import AlertMessages
from bot.alerts.render_time import clock_time, duration
from bot.escape import member_or_name, operator_mentions, slack_text
from bot.outbox import enqueue_thread_reply
from guards.events import NIGHTSHIFT
from guards.store import Tx

__all__ = ["tell_approver"]


def tell_approver(
    engine: AlertMessages,
    tx: Tx,
    alert_id: int,
    scope: str,
    payload: dict[str, Any],
    at: float,
    event_id: int,
) -> None:
    """The trial someone approved failed: say so in the alert's thread, to them (they
    were told "trial running"; the alert's message is edited far up the channel, and
    the next request comes a doubled cool-down later: audit21 guards F3). Only an
    approval of this trial counts: one since the breaker last opened (a trial the
    breaker started by itself has none: review22 M3)."""
    row = tx.one(
        "SELECT payload FROM events WHERE kind = 'trial_answered' AND scope = ?1"
        " AND id > (SELECT coalesce(max(id), 0) FROM events"
        "  WHERE kind = 'breaker_opened' AND scope = ?1 AND id < ?2)"
        " ORDER BY id DESC LIMIT 1",
        (scope, event_id),
    )
    answered = json.loads(row[0]) if row is not None else {}
    actor = answered.get("actor")
    if answered.get("decision") != "approved" or not actor or actor == NIGHTSHIFT:
        return
    alert = engine.get(tx, alert_id)
    if alert.posted_at is None or alert.channel is None:
        return  # its first post says it
    cooldown = int(payload.get("cooldown_seconds") or 0)
    ends = clock_time(at + cooldown, engine.tz, now=at)
    failed = str(payload.get("reason") or "a trial call failed")
    enqueue_thread_reply(
        tx,
        parent=alert.post_ref,
        text=f"⚠️ {member_or_name(str(actor))}, the trial you approved on `{scope}` failed:"
        f" {operator_mentions(slack_text(failed, 300))}. The"
        f" breaker is open again for {duration(cooldown)}, until {ends}.",
        channel=alert.channel,
    )
