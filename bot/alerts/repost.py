"""Open alerts whose post Slack refused for good are posted again at start.

A wrong ``channels.alerts`` (``channel_not_found``, ``not_in_channel``) fails an alert's
post for good, and with it every update and the chain's ``channel`` step (a thread
reply to that post). The README's fix is to correct the channel (or invite the bot) and
reload: at that start, each alert still open whose post failed is posted again, in the
channel the policy names now, by putting its outbox row back in the queue (its ``ref``
is what later updates and thread replies refer to).

Example:
    >>> # n = await store.write(lambda tx: repost_failed(engine, tx, now=tx.clock.now()))
"""

from __future__ import annotations

import json
import logging

from bot.alerts.messages import AlertMessages
from bot.outbox_worker import wake_workers
from guards.store import Tx

__all__ = ["repost_failed"]

log = logging.getLogger(__name__)
MAX_REPOSTED = 200  # alerts posted again at one start (a storm's are folded anyway)


def repost_failed(engine: AlertMessages, tx: Tx, *, now: float) -> int:
    """Queue again the failed posts of open alerts, in today's channel; returns how many."""
    rows = tx.all(
        "SELECT a.id, o.id, o.channel, o.last_error FROM alerts a"
        " JOIN outbox o ON o.ref = 'alert:' || a.id || ':post'"
        " WHERE a.resolved_at IS NULL AND o.state = 'failed' AND o.method = 'chat.postMessage'"
        " ORDER BY a.id LIMIT ?",
        (MAX_REPOSTED,),
    )
    for alert_id, row_id, old_channel, error in rows:
        alert = engine.get(tx, alert_id)
        channel = engine.channel_for(alert.scope)
        tx.execute("UPDATE alerts SET channel = ? WHERE id = ?", (channel, alert_id))
        text, blocks = engine.render(tx, engine.get(tx, alert_id), now)
        args = {"channel": channel, "text": text, "blocks": blocks}
        tx.execute(
            "UPDATE outbox SET channel = ?, args = ?, state = 'pending', attempts = 0,"
            " due_at = 0, first_try_at = NULL, finished_at = NULL, last_error = NULL,"
            " claimed_at = NULL WHERE id = ?",
            (channel, json.dumps(args, separators=(",", ":")), row_id),
        )
        log.warning(
            "alert #%d: its post to %s failed (%s); posted again, to %s",
            alert_id,
            old_channel,
            error,
            channel,
        )
    if rows:
        tx.after_commit.append(wake_workers)
    return len(rows)
