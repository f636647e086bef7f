"""A storm summary someone deleted in Slack: it takes no more alerts and no more edits.

A summary is one Slack message (its post row, ref ``fold:<pages|posts>:<lane>:<seed>``),
edited as alerts join it, as its webhook page line changes and once its alerts were
handled. When an edit of it comes back ``message_not_found`` (or ``cant_update_message``:
:data:`GONE_MESSAGE`) the message is gone, and that failed edit, a durable outbox row,
says so from then on (:data:`GONE`, :func:`summary_is_gone`):

- no alert joins it any more (:func:`bot.alerts.folding_join.storm_to_join`): the
  lane's next alert is posted on its own, or begins a new summary once the lane is full,
  as after the join window. (review28 R3 M1: in the rest of its minute each alert that
  joined it was in no channel message, its only trace a join edit that failed.)
- nothing edits it any more (its page line, its handled line, its button back after
  ``/agent unack``): each was one more refused Slack call in the channel's lane.
- an edit of it queued before Slack said so (:func:`summary_gone`, the outbox's refusal
  hook) goes without a word when it carries no ref of its own; one that does (the
  ``done:<ref>`` edit: :func:`bot.alerts.storm_sent.handled` reads it) fails as any
  refused call and stays (review28 R3 H1: deleting it made a handled summary "not
  handled" again).

A summary is not posted again, as an alert's message is
(:func:`bot.alerts.refused.message_gone`): its alerts keep their own lines in
``/agent alerts``, their own buttons there.

Every function taking ``tx`` runs inside ``store.write``.

Example:
    >>> # summary_is_gone(tx, "fold:posts:C0ALERTS:4")
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from bot.outbox_delivery import Refused
from guards.store import Tx

__all__ = [
    "GONE",
    "GONE_MESSAGE",
    "being_found_gone",
    "found_gone",
    "summary_gone",
    "summary_is_gone",
    "turning_gone",
]

log = logging.getLogger(__name__)

#: chat.update errors that mean the message is no longer there to edit
GONE_MESSAGE = frozenset({"message_not_found", "cant_update_message"})

# (the outbox stores a refusal as "Slack error <error>"; a retried 5xx or 429 given up
# after a day ends "gave up after N attempts: ...", never with one of these)
_ENDS_GONE = " OR ".join(f"g.last_error LIKE '%{e}'" for e in sorted(GONE_MESSAGE))
#: SQL: the summary whose post row is ``o`` is gone from Slack: an edit of it failed so
#: (read by the failed rows' index, from the summary's post on)
GONE = (
    "EXISTS (SELECT 1 FROM outbox g WHERE g.state = 'failed' AND g.id > o.id"
    " AND g.channel = o.channel AND g.method = 'chat.update'"
    " AND json_extract(g.args, '$.ts') = '$ref:' || o.ref || '.ts'"
    f" AND ({_ENDS_GONE}))"
)
_IS_GONE = f"SELECT 1 FROM outbox o WHERE o.ref = ? AND o.method = 'chat.postMessage' AND {GONE}"
# an earlier edit of the summary whose ts a refused edit names failed: its message is gone
_GONE_BEFORE = (
    "SELECT 1 FROM outbox WHERE id < ? AND channel = ? AND state = 'failed'"
    " AND method = 'chat.update' AND json_extract(args, '$.ts') = ?"
    " AND last_error LIKE '%' || ? LIMIT 1"
)


# The summary whose first refused edit is being failed: the refusal hook runs before the
# row is marked failed (bot.outbox_outcomes), so :data:`GONE` does not hold yet for what
# that hook does (the alerts it never showed fold anew: bot.alerts.storm_alone)
_TURNING: ContextVar[str | None] = ContextVar("nightshift_summary_turning_gone", default=None)


@contextmanager
def turning_gone(ref: str) -> Iterator[None]:
    """Within it, summary ``ref`` is gone (:func:`summary_is_gone`, :func:`being_found_gone`)
    though the edit that says so is not failed yet (it is, as the transaction goes on)."""
    token = _TURNING.set(ref)
    try:
        yield
    finally:
        _TURNING.reset(token)


def being_found_gone(ref: str) -> bool:
    """Whether summary ``ref`` is the one found gone in this transaction (:func:`turning_gone`)."""
    return _TURNING.get() == ref


def summary_is_gone(tx: Tx, ref: str) -> bool:
    """Whether Slack said storm summary ``ref``'s message is gone (an edit of it failed
    with :data:`GONE_MESSAGE`): it is edited no more, and takes no alert."""
    return being_found_gone(ref) or tx.one(_IS_GONE, (ref,)) is not None


def found_gone(tx: Tx, refused: Refused) -> str | None:
    """The ref of the storm summary whose edit Slack refused because its message is gone,
    when this is the first such refusal (from now on it is gone: :func:`summary_is_gone`);
    None for any other refusal."""
    ts = str(refused.stored.get("ts") or "")
    if refused.error not in GONE_MESSAGE or not ts.startswith("$ref:fold:"):
        return None
    if tx.one(_GONE_BEFORE, (refused.row_id, refused.lane, ts, refused.error)) is not None:
        return None
    ref = ts[5:-3]
    return None if summary_is_gone(tx, ref) else ref


def summary_gone(tx: Tx, refused: Refused) -> bool:
    """A storm summary's edit Slack refused because its message is gone (deleted:
    ``message_not_found``); True when it was dropped quietly.

    The first such edit fails as any (the outbox logs it once); from then on the summary
    is edited no more (:func:`summary_is_gone`), and an edit of it queued before that is
    dropped without a word (it was one more WARNING each, about the same message), unless
    it carries a ref of its own (the ``done:`` edit, which says the summary was handled):
    that one fails as any and stays, as :func:`bot.alerts.refused.message_gone` keeps
    such an edit of an alert's message.
    """
    ts = str(refused.stored.get("ts") or "")
    if not ts.startswith("$ref:fold:"):
        return False
    gone = tx.one(_GONE_BEFORE, (refused.row_id, refused.lane, ts, refused.error))
    if gone is None:
        log.info(
            "alert storm summary %s is gone from Slack (%s); it takes no more alerts",
            ts[5:-3],
            refused.error,
        )
        return False
    drop = "DELETE FROM outbox WHERE id = ? AND ref IS NULL"
    return tx.execute(drop, (refused.row_id,)).rowcount > 0
