"""The outbox: every outgoing Slack call is a row, delivered by one worker.

Writers call :func:`enqueue` inside their own transaction, so a message exists
exactly when the change that caused it does. One :class:`OutboxWorker` (a process
component) delivers the rows through a :class:`Deliverer`: the Slack Web API, or the
terminal in shell mode.

- order: per ``channel`` key, rows go out one after another, in id order;
- pacing: one call per channel key every ``pace_seconds`` (Slack allows ~1 msg/s);
- ``429`` waits ``Retry-After``; 5xx and network errors retry with backoff; other
  Slack errors (``channel_not_found``, ``invalid_blocks``...) fail the row for good;
- restart-safe: the state is in the rows; a restarted worker resumes where it stopped.

A row may name itself with ``ref``; later rows may use ``$ref:<ref>.ts`` and
``$ref:<ref>.channel`` in their args (e.g. a chat.update of an alert posted
earlier). They are substituted at delivery; a row waits until its reference is
delivered, and fails if the reference failed.

Delivery is at-least-once: a crash after Slack accepted a call but before the row
was marked delivered sends it again after the restart (a one-round-trip window).

This module holds the queue side: writing rows (:func:`enqueue`) and reading what
became of them (:func:`delivered`, :func:`outbox_health`). The rest lives beside it
and is re-exported here:

- :mod:`bot.outbox_delivery`: the deliverer's answers and the pacing/backoff policy;
- :mod:`bot.outbox_refs`: ``$ref:`` references between rows;
- :mod:`bot.outbox_worker`: the :class:`OutboxWorker` component.

Example:
    >>> # inside store.write:
    >>> # enqueue(tx, method="chat.postMessage", args={"channel": "C1", "text": "hi"}, ref="hi")
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from bot.outbox_delivery import (
    MAX_AGE_SECONDS,
    MAX_BACKOFF_SECONDS,
    PACE_SECONDS,
    Delivered,
    Deliverer,
    DeliveryFailed,
    RetryLater,
    backoff,
)
from bot.outbox_worker import DRAIN_SECONDS, POLL_SECONDS, OutboxWorker, wake_workers
from guards.store import Store, Tx

__all__ = [
    "DRAIN_SECONDS",
    "MAX_AGE_SECONDS",
    "MAX_BACKOFF_SECONDS",
    "PACE_SECONDS",
    "POLL_SECONDS",
    "Delivered",
    "Deliverer",
    "DeliveryFailed",
    "OutboxHealth",
    "OutboxWorker",
    "RetryLater",
    "backoff",
    "delivered",
    "enqueue",
    "enqueue_edit",
    "enqueue_thread_reply",
    "outbox_health",
]

_METHOD = re.compile(r"[a-z]+(\.[A-Za-z]+)+|response_url")


# A lane's rows go out by priority, then in order. Rows that refer to another row wait
# for it (an edit for its message), so an edit is urgent only once its message is out.
URGENT = -1  # a P0 page, an acknowledgement shown on a message already posted
# a post being retried (maybe on a screen) with a person's edit of it behind, and that edit:
# before the lane's posts, behind its pages and acknowledgements (review24 trial H1)
AFTER_POST = 0
ORDINARY = 1  # posts, thread replies, a click's update (the column's default)
ROUTINE = 2  # an alert message redrawn (a count, an age): behind the lane's new posts


def enqueue(
    tx: Tx,
    *,
    method: str,
    args: dict[str, Any],
    channel: str | None = None,
    ref: str | None = None,
    urgent: bool = False,
    priority: int | None = None,
) -> int:
    """Write one outgoing Slack call in the caller's transaction; returns the row id.

    ``method`` is a Web API method (``chat.postMessage``, ``chat.update``,
    ``chat.postEphemeral``), ``files.upload`` (args: channel, filename, title,
    initial_comment, content_b64) or ``response_url`` (args: url, payload).
    ``channel`` is the ordering/pacing key (default: ``args["channel"]``).
    Enqueueing an existing ``ref`` again returns the existing row and adds nothing.
    Rows go out in order per channel, except that an ``urgent`` row (a P0 page)
    overtakes the ordinary ones still waiting there (``priority``: :data:`URGENT`,
    :data:`AFTER_POST`, :data:`ORDINARY`, :data:`ROUTINE`, when ``urgent`` does not say it).

    Raises:
        ValueError: an unknown method shape or no channel key.
    """
    if not _METHOD.fullmatch(method):
        raise ValueError(f"{method!r} is not a Slack Web API method")
    key = channel or _default_channel(method, args)
    if ref is not None:
        row = tx.one("SELECT id FROM outbox WHERE ref = ?", (ref,))
        if row is not None:
            return int(row[0])
    cur = tx.execute(
        "INSERT INTO outbox (ref, method, channel, args, created_at, priority)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            ref,
            method,
            key,
            json.dumps(args, separators=(",", ":")),
            tx.clock.now(),
            _priority(method, urgent, priority),
        ),
    )
    tx.after_commit.append(wake_workers)
    return int(cur.lastrowid or 0)


def _priority(method: str, urgent: bool, priority: int | None) -> int:
    if priority is not None:
        return priority
    if urgent:
        return URGENT
    return ROUTINE if method == "chat.update" else ORDINARY


def enqueue_edit(
    tx: Tx,
    ref: str,
    *,
    text: str,
    blocks: list[dict[str, Any]],
    channel: str | None,
    edit_ref: str | None = None,
    urgent: bool = False,
) -> int:
    """Queue an in-place edit (chat.update) of the message the outbox posted as ``ref``;
    it waits until that message is delivered. ``channel``: the lane to queue it in;
    ``edit_ref``: the edit's own ref, if it needs one; ``urgent``: a change a person made
    or waits for (acknowledged, resolved), as opposed to a routine redraw.

    An edit of the same message still waiting (not being sent) takes the new text in
    its place instead: the message shows only its latest state, so a lane holds at most
    one waiting edit per message, however often an alert changes. (Each new edit was a
    row of its own: thirty alerts firing every 30 s filled a channel's lane faster than
    its one message a second, and its posts and acknowledgements fell minutes behind.)
    A redraw waits behind the lane's new posts (:data:`ROUTINE`, as a click's update
    does); an urgent edit of a message already posted goes before them (:data:`URGENT`),
    unless a click's update of that message waits: nothing overtakes that, or its older
    blocks would be what stays shown. An urgent edit of a message still waiting to be
    posted is its text instead: the post goes out showing it. So is one of a post waiting
    for its retry after a 429 (unmarked: Slack surely showed nothing). A post marked as
    being sent (on its way, or retried after a 5xx or a network error: maybe on a screen
    already) goes out as it was, and the urgent edit goes right behind it: both
    :data:`AFTER_POST`, ahead of the lane's other posts (audit24 B L1: a resolution waited
    behind every post queued after its message while the message showed live buttons), and
    behind its P0 pages and acknowledgements (review24 trial H1: raised to URGENT, a post
    Slack kept refusing held them back for its backoff, up to 24 h).
    """
    args = {
        "channel": f"$ref:{ref}.channel",
        "ts": f"$ref:{ref}.ts",
        "text": text,
        "blocks": blocks,
    }
    posted = tx.one("SELECT result_ts FROM outbox WHERE ref = ? AND state = 'delivered'", (ref,))
    ts = posted[0] if posted is not None else None
    clicked = ts is not None and _updated_after(tx, ts, 0)
    priority = URGENT if urgent and ts is not None and not clicked else ROUTINE
    if urgent and ts is None and (post := _pending_post(tx, ref)) is not None:
        post_id, post_args, being_sent, post_priority = post
        if not being_sent and edit_ref is None:
            return _rewrite_post(tx, (post_id, post_args), args)
        # its post is being sent (or retried): the edit goes right behind it, never before
        # it, or the lane's head would wait for a post queued behind it. A marked post
        # moves up to AFTER_POST with it (its args stay: what Slack gets is what may be
        # shown), so the lane's waiting posts do not come between (audit24 B L1), while
        # its pages and acknowledgements still do not wait for it (review24 trial H1)
        if being_sent:
            tx.execute(
                "UPDATE outbox SET priority = MIN(priority, ?) WHERE id = ?",
                (AFTER_POST, post_id),
            )
            post_priority = min(post_priority, AFTER_POST)
        priority = min(ROUTINE, post_priority)
    if edit_ref is None:
        waiting = tx.one(
            _WAITING_EDIT, (channel or _default_channel("chat.update", args), args["ts"])
        )
        if waiting is not None:
            # (no click's update waits at all: none waits after this row either)
            if not clicked or ts is None or not _updated_after(tx, ts, int(waiting[0])):
                tx.execute(
                    "UPDATE outbox SET args = ?, priority = MIN(priority, ?) WHERE id = ?",
                    (json.dumps(args, separators=(",", ":")), priority, waiting[0]),
                )
                return int(waiting[0])
            # superseded, and a click's update waits after it: the new edit goes after both
            tx.execute("DELETE FROM outbox WHERE id = ?", (waiting[0],))
    return enqueue(
        tx, method="chat.update", args=args, channel=channel, ref=edit_ref, priority=priority
    )


def _pending_post(tx: Tx, ref: str) -> tuple[int, str, bool, int] | None:
    """The post ``ref`` while it is not delivered: (row id, args, being sent, priority)."""
    row = tx.one(
        "SELECT id, args, claimed_at IS NOT NULL, priority FROM outbox WHERE ref = ?"
        " AND method = 'chat.postMessage' AND state = 'pending'",
        (ref,),
    )
    return (int(row[0]), str(row[1]), bool(row[2]), int(row[3])) if row is not None else None


def _rewrite_post(tx: Tx, post: tuple[int, str], edit: dict[str, Any]) -> int:
    """A change a person made before the message went out: the post goes out showing it,
    and the edits of it still waiting (older states) go (audit23 races 1: an urgent edit
    of a message not yet posted waited as a redraw behind the whole lane, and the channel
    showed an acknowledged P0 as unowned for minutes)."""
    row_id, said = post
    args = {**json.loads(said), "text": edit["text"], "blocks": edit["blocks"]}
    tx.execute(
        "UPDATE outbox SET args = ? WHERE id = ?",
        (json.dumps(args, separators=(",", ":")), row_id),
    )
    tx.execute(
        "DELETE FROM outbox WHERE state = 'pending' AND method = 'chat.update'"
        " AND claimed_at IS NULL AND ref IS NULL AND json_extract(args, '$.ts') = ?",
        (edit["ts"],),
    )
    return row_id


def _updated_after(tx: Tx, ts: str, row_id: int) -> bool:
    """Whether a chat.update queued after row ``row_id`` edits the message ``ts`` by its
    own ``ts`` (a button click's): an edit merged into the earlier row, or sent before it,
    would go out first, and the click's older blocks would be what stays shown."""
    later = tx.one(
        "SELECT 1 FROM outbox WHERE id > ? AND state = 'pending' AND method = 'chat.update'"
        " AND json_extract(args, '$.ts') = ? LIMIT 1",
        (row_id, ts),
    )
    return later is not None


# the waiting edit of one message in a lane; the worker reads a row's args again as it
# marks it, so a row changed before that goes out as changed (bot.outbox_worker)
_WAITING_EDIT = (
    "SELECT id FROM outbox WHERE channel = ? AND state = 'pending' AND method = 'chat.update'"
    " AND claimed_at IS NULL AND ref IS NULL AND json_extract(args, '$.ts') = ?"
    " ORDER BY id DESC LIMIT 1"
)


def enqueue_thread_reply(
    tx: Tx, *, parent: str, text: str, channel: str, ref: str | None = None
) -> int:
    """Queue a reply in the thread of the message posted as ``parent``, also shown in
    the channel (``reply_broadcast``); it waits until the parent is delivered."""
    return enqueue(
        tx,
        method="chat.postMessage",
        args={
            "channel": f"$ref:{parent}.channel",
            "thread_ts": f"$ref:{parent}.ts",
            "reply_broadcast": True,
            "text": text,
        },
        channel=channel,
        ref=ref,
    )


def _default_channel(method: str, args: dict[str, Any]) -> str:
    if method == "response_url" and isinstance(args.get("url"), str):
        return "response:" + hashlib.sha1(args["url"].encode()).hexdigest()[:12]
    channel = args.get("channel")
    if not isinstance(channel, str) or not channel:
        raise ValueError(f"{method}: give a channel (args['channel'] or channel=)")
    return channel


async def delivered(store: Store, ref: str) -> tuple[str, str] | None:
    """``(channel, ts)`` of the row named ``ref`` once it is delivered, else None."""
    rows = await store.fetch(
        "SELECT result_channel, result_ts FROM outbox WHERE ref = ? AND state = 'delivered'",
        (ref,),
    )
    if not rows or rows[0][1] is None:
        return None
    return (rows[0][0], rows[0][1])


@dataclass(frozen=True)
class OutboxHealth:
    """What ``status`` shows about delivery."""

    pending: int
    failed: int
    oldest_pending_at: float | None
    last_error: str | None

    @property
    def ok(self) -> bool:
        return self.failed == 0


async def outbox_health(store: Store) -> OutboxHealth:
    """Pending and failed rows, the oldest pending row's time, the last failure."""
    rows = await store.fetch(
        "SELECT (SELECT COUNT(*) FROM outbox WHERE state = 'pending'),"
        " (SELECT COUNT(*) FROM outbox WHERE state = 'failed'),"
        " (SELECT MIN(created_at) FROM outbox WHERE state = 'pending'),"
        " (SELECT method || ' to ' || channel || ': ' || last_error FROM outbox"
        "  WHERE state = 'failed' ORDER BY id DESC LIMIT 1)"
    )
    pending, failed, oldest, last = rows[0]
    return OutboxHealth(int(pending), int(failed), oldest, last)
