"""Alert storms: folding pages and posts into one message per lane; withdrawing stale pages.

When a network blip stops 240 heartbeats at once, every alert would post to the
channel and page the on-call person on its own: hundreds of messages, paced at one
per second, with a new and unrelated P0 waiting minutes behind them. Like
Alertmanager's grouping, Nightshift folds instead. A *lane* is an outbox channel key:
a person's DMs (pages) or an alerts channel (posts). When ``alerts.fold_after``
alert messages already wait to go out in a lane, a new page or post there joins one
summary message for that lane (outbox ref ``fold:<pages|posts>:<lane>:<n>``) instead
of queueing on its own. While the summary waits it is rebuilt: alerts join it, and
acknowledged, silenced or resolved ones leave it (it is withdrawn when none is
left). Once sent it lists what it held; alerts due within a minute of its beginning
still join it, by an edit (:mod:`bot.alerts.folding_join`: a storm the watchdog reads
over several ticks is one storm), and after that the next fold in that lane starts a
new one. When none of its alerts is left open, its button becomes a line saying how
they were handled (:mod:`bot.alerts.storm_sent`).
Every alert keeps its own row, count, escalation chain and ``/agent alerts`` line.

A summary carries an Acknowledge all button whose value is its ref
(:func:`bot.alerts.storm_names.storm_ref` checks a clicked value); what it holds once
sent, and its button once they were handled: :mod:`bot.alerts.storm_sent`.

A storm is hundreds of alerts in one batch of events: a summary is not rebuilt for each
(each time from all it holds: O(n²), review27 R1 M2). Within :func:`deferring` (a batch,
a tick, an Acknowledge all: :func:`bot.alerts.storm_batch.summaries_once`) a change marks
it (:func:`defer`), and it is redrawn once (:func:`redraw`) as the batch ends.

A page still waiting when its alert is acknowledged, silenced or resolved is
withdrawn (its outbox row and the edits queued for it are deleted, the escalation
row keeps ``withdrawn_at``), so "escalation stopped" is true on the person's phone.

Only rows nobody is sending change: the outbox worker marks the row it sends
(``claimed_at``; the mark stays through a retry that Slack may have shown, and only a
429 clears it: :mod:`bot.outbox_worker`) and sends its args as they are then. A
summary being sent is not rebuilt (an alert joining it edits it right after:
:mod:`bot.alerts.folding_join`); a page being sent is not withdrawn (it goes out, and
the acknowledgement edits it right after).

Every function taking ``tx`` runs inside ``store.write``.

Example:
    >>> # if folds_here(tx, policy, "U02", alert_id=alert.id, now=now, pages=True):
    >>> #     fold_page(engine, tx, lane="U02", esc_id=esc_id, now=now)
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.alerts.folding_join import fold_limit, join_sent, storm_to_join, summary_args
from bot.alerts.model import Alert
from bot.alerts.storm_members import storms_of_alert, summary_alerts
from bot.alerts.storm_names import OPEN_SUMMARY, summary_parts, summary_ref
from bot.alerts.storm_sent import mark_if_handled, summary_post
from bot.outbox import ORDINARY, URGENT, enqueue, enqueue_thread_reply
from guards.config import Policy
from guards.store import Tx

if TYPE_CHECKING:
    from bot.alerts.messages import AlertMessages

__all__ = [
    "Dirty",
    "defer",
    "deferring",
    "fold_page",
    "fold_post",
    "folds_here",
    "lane_is_full",
    "nudge_storm",
    "redraw",
    "refresh",
    "refresh_folds_of",
    "withdraw_pages",
]

_WAITING = (
    "SELECT COUNT(*) FROM outbox WHERE channel = ? AND state = 'pending'"
    " AND method = 'chat.postMessage' AND ref LIKE 'alert:%'"
)


@dataclass(slots=True)
class Dirty:
    """A summary to redraw once a batch ends (:func:`deferring`): the alerts that joined
    it after it went out (``joined``), and whether its webhook page line is to be drawn
    again (``page``: :func:`bot.alerts.storm_page.follow_pages`)."""

    joined: list[int] = field(default_factory=list)
    page: bool = False


# Inside deferring(): the summaries to redraw once it ends.
_DEFERRED: ContextVar[dict[str, Dirty] | None] = ContextVar("nightshift_fold_dirty", default=None)


def lane_is_full(
    tx: Tx, policy: Policy, lane: str, *, urgent: bool = False, pages: bool = False
) -> bool:
    """True when ``alerts.fold_after`` alert messages already wait in ``lane`` (for an
    urgent one, a P0's: it overtakes the others anyway); for ``pages`` to a person,
    ``alerts.fold_pages_after`` when it is lower."""
    limit = fold_limit(policy, pages=pages)
    # a P0's: URGENT alone (a post raised to AFTER_POST for its edit is not one)
    sql = _WAITING + (" AND priority = ?" if urgent else "")
    params = (lane, URGENT) if urgent else (lane,)
    return limit > 0 and int(tx.one(sql, params)[0]) >= limit


def folds_here(
    tx: Tx,
    policy: Policy,
    lane: str,
    *,
    alert_id: int,
    now: float,
    urgent: bool = False,
    pages: bool = False,
) -> bool:
    """True when alert ``alert_id``'s page (``pages``) or post in ``lane`` folds into a
    storm summary there: the lane is full (:func:`lane_is_full`), or a summary there
    still takes alerts (:func:`bot.alerts.folding_join.storm_to_join`)."""
    if lane_is_full(tx, policy, lane, urgent=urgent, pages=pages):
        return True
    return storm_to_join(tx, policy, lane, pages=pages, alert_id=alert_id, now=now) is not None


def fold_page(engine: AlertMessages, tx: Tx, *, lane: str, esc_id: int, now: float) -> str:
    """Carry escalation ``esc_id``'s page in a summary of the lane instead of its own DM:
    one it joins, else the lane's waiting one, else a new one."""
    alert_id = int(tx.one("SELECT alert_id FROM escalations WHERE id = ?", (esc_id,))[0])
    ref = storm_to_join(tx, engine.policy, lane, pages=True, alert_id=alert_id, now=now)
    ref = ref or summary_ref(tx, "pages", lane, seed=esc_id)
    # (folded_edit: set again if it joins a sent one; one a deleted summary never showed
    # folds anew: bot.alerts.storm_alone)
    tx.execute(
        "UPDATE escalations SET folded_into = ?, folded_edit = NULL WHERE id = ?", (ref, esc_id)
    )
    refresh(engine, tx, ref, now, joining=alert_id)
    return ref


def fold_post(engine: AlertMessages, tx: Tx, *, alert: Alert, lane: str, now: float) -> str:
    """Carry ``alert``'s channel post in a summary of the lane instead of its own message."""
    ref = storm_to_join(tx, engine.policy, lane, pages=False, alert_id=alert.id, now=now)
    ref = ref or summary_ref(tx, "posts", lane, seed=alert.id)
    tx.execute(
        "UPDATE alerts SET folded_into = ?, folded_edit = NULL WHERE id = ?", (ref, alert.id)
    )
    refresh(engine, tx, ref, now, joining=alert.id)
    return ref


def refresh(
    engine: AlertMessages, tx: Tx, ref: str, now: float, *, joining: int | None = None
) -> None:
    """Rebuild a waiting summary from what it still carries; withdraw it when empty. A
    sent one stays as it is until all its alerts are handled
    (:func:`~bot.alerts.storm_sent.mark_if_handled`), or alert ``joining`` joins it
    (:func:`bot.alerts.folding_join.join_sent`). Within :func:`deferring` (a batch of
    events, a tick) it is marked and redrawn once, as the batch ends; a summary not
    written yet is written now (the lane's next alerts find it and join it)."""
    exists = tx.one("SELECT 1 FROM outbox WHERE ref = ?", (ref,)) is not None
    if exists and defer(ref, joining=joining):
        return
    redraw(engine, tx, ref, now, joined=() if joining is None else (joining,))


def redraw(
    engine: AlertMessages, tx: Tx, ref: str, now: float, *, joined: Sequence[int] = ()
) -> bool:
    """Redraw summary ``ref`` as :func:`refresh` says, now; ``joined``: the alerts that
    joined it since it went out. True when it was rebuilt while waiting (or withdrawn)."""
    post = summary_post(tx, ref)
    if post is not None and not post.waiting:
        alerts = summary_alerts(tx, ref)
        if joined:  # sent, or being sent: edited right after
            join_sent(engine, tx, ref, post=post, alerts=alerts, joined=joined, now=now)
        mark_if_handled(engine, tx, ref, post.state, now, alerts=alerts)  # else it stays
        return False
    _, lane = summary_parts(ref)
    alerts = summary_alerts(tx, ref, carried=True)
    if not alerts:
        if post is not None:  # nothing left to say: it goes, with what waits on it
            tx.execute(
                f"DELETE FROM outbox WHERE channel = ? AND {OPEN_SUMMARY} AND instr(args, ?) > 0",
                (lane, f"$ref:{ref}."),
            )
            tx.execute("DELETE FROM outbox WHERE id = ?", (post.id,))
            tx.execute(
                "UPDATE escalations SET withdrawn_at = ? WHERE folded_into = ?"
                " AND withdrawn_at IS NULL",
                (now, ref),
            )
        return True
    args = summary_args(engine, tx, ref, alerts, now)
    urgent = any(a.tier == "P0" for a in alerts)
    if post is None:
        enqueue(tx, method="chat.postMessage", args=args, channel=lane, ref=ref, urgent=urgent)
    else:
        tx.execute(
            "UPDATE outbox SET args = ?, priority = MIN(priority, ?) WHERE id = ?",
            (json.dumps(args, separators=(",", ":")), URGENT if urgent else ORDINARY, post.id),
        )
    return True


@contextmanager
def deferring() -> Iterator[dict[str, Dirty] | None]:
    """Within it, summaries are marked (:func:`defer`) rather than redrawn: it yields
    what was marked, which its caller redraws once as it ends
    (:func:`bot.alerts.storm_batch.summaries_once`); None inside another one (the
    outer one redraws them)."""
    if _DEFERRED.get() is not None:
        yield None
        return
    dirty: dict[str, Dirty] = {}
    token = _DEFERRED.set(dirty)
    try:
        yield dirty
    finally:
        _DEFERRED.reset(token)


def defer(ref: str, *, joining: int | None = None, page: bool = False) -> bool:
    """Mark summary ``ref`` to be redrawn as the batch ends (alert ``joining`` joined it;
    ``page``: its webhook page line too). False outside :func:`deferring`: redraw it now."""
    dirty = _DEFERRED.get()
    if dirty is None:
        return False
    marks = dirty.setdefault(ref, Dirty())
    if joining is not None and joining not in marks.joined:
        marks.joined.append(joining)
    marks.page = marks.page or page
    return True


def refresh_folds_of(engine: AlertMessages, tx: Tx, alert: Alert, now: float) -> None:
    """Rebuild the waiting summaries that carry ``alert`` (its state changed)."""
    refs = set(storms_of_alert(tx, alert.id, "fold"))  # (not a webhook's: bot.webhook_storms)
    if alert.folded_into:
        refs.add(alert.folded_into)
    for ref in sorted(refs):
        if not defer(ref):
            redraw(engine, tx, ref, now)


def nudge_storm(
    tx: Tx,
    alert: Alert,
    position: int,
    *,
    now: float,
    every: int,
    text: str,
    manual: bool,
    alone: int | None = None,
) -> None:
    """The chain's channel step for a folded alert: one nudge per summary and step.

    It goes in the summary's thread (broadcast to the channel); for a summary deleted in
    Slack (``alone``: not None) in the channel on its own. The summary's other
    alerts reaching the same step within ``every`` seconds (``repeat_escalation_after``)
    add nothing, however their firings were spread over the storm; an Escalate now
    (``manual``) always nudges.
    """
    ref = alert.folded_into
    assert ref is not None
    prefix = f"nudge:{ref}:{position}:"
    recent = tx.one(
        "SELECT 1 FROM outbox WHERE ref > ? AND ref < ? AND created_at > ? LIMIT 1",
        (prefix, prefix + "\uffff", now - every),
    )
    if recent is not None and not manual:
        return
    _, lane = summary_parts(ref)
    if alone is not None:  # (its thread is gone with it: bot.alerts.storm_gone)
        args = {"channel": lane, "text": text}
        enqueue(tx, method="chat.postMessage", args=args, channel=lane, ref=f"{prefix}{int(now)}")
        return
    enqueue_thread_reply(tx, parent=ref, text=text, channel=lane, ref=f"{prefix}{int(now)}")


def withdraw_pages(tx: Tx, alert: Alert, now: float) -> int:
    """Delete ``alert``'s pages that still wait to go out (and edits queued for them).

    Returns how many were withdrawn; their escalation rows keep ``withdrawn_at``.
    """
    rows = tx.all(
        "SELECT e.id, e.target FROM escalations e JOIN outbox o"
        " ON o.ref = 'alert:' || e.alert_id || ':dm:' || e.id"
        " WHERE e.alert_id = ? AND o.state = 'pending' AND o.claimed_at IS NULL"
        " AND e.withdrawn_at IS NULL",
        (alert.id,),
    )
    # its pages in storm summaries not sent yet leave them (refresh_folds_of rebuilds them)
    folded = tx.execute(
        "UPDATE escalations SET withdrawn_at = ? WHERE alert_id = ? AND withdrawn_at IS NULL"
        f" AND folded_into IN (SELECT ref FROM outbox WHERE {OPEN_SUMMARY}"
        " AND ref LIKE 'fold:pages:%')",
        (now, alert.id),
    ).rowcount
    by_lane: dict[str, list[str]] = defaultdict(list)
    for esc_id, target in rows:
        by_lane[target].append(f"alert:{alert.id}:dm:{esc_id}")
    for lane, refs in by_lane.items():
        for ref in refs:
            tx.execute(
                "DELETE FROM outbox WHERE channel = ? AND state = 'pending'"
                " AND method = 'chat.update' AND instr(args, ?) > 0",
                (lane, f"$ref:{ref}."),
            )
            tx.execute("DELETE FROM outbox WHERE ref = ? AND state = 'pending'", (ref,))
    tx.executemany(
        "UPDATE escalations SET withdrawn_at = ? WHERE id = ?", [(now, r[0]) for r in rows]
    )
    return len(rows) + int(folded)
