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
they were handled (one edit, ref ``done:<summary ref>``).
Every alert keeps its own row, count, escalation chain and ``/agent alerts`` line.

A summary carries an Acknowledge all button whose value is its ref. What it holds
(:func:`storm_alerts`) is read from the ``folded_into`` columns: for pages, the
escalations folded into it and not withdrawn (what the sent message listed); for
posts, the alerts folded into it. :func:`storm_ref` checks a clicked value,
:func:`sent_summary` that the summary went out, and :func:`mark_storm` edits it
once its alerts were acknowledged (``bot.alerts.operations.ack_storm``).

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
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from bot import webhook_storms
from bot.alerts.folding_join import fold_limit, join_sent, storm_to_join, summary_args
from bot.alerts.model import ALERT_COLUMNS, Alert
from bot.alerts.render_storm import storm_done_line, with_page
from bot.alerts.storm_names import OPEN_SUMMARY, summary_parts, summary_ref
from bot.outbox import ORDINARY, URGENT, enqueue, enqueue_edit, enqueue_thread_reply
from bot.slack.render import replace_actions
from guards.config import Policy
from guards.errors import Conflict, NotFound
from guards.store import Tx

if TYPE_CHECKING:
    from bot.alerts.messages import AlertMessages

__all__ = [
    "fold_page",
    "fold_post",
    "folds_here",
    "lane_is_full",
    "mark_storm",
    "nudge_storm",
    "one_refresh_each",
    "refresh",
    "refresh_folds_of",
    "sent_summary",
    "storm_alerts",
    "withdraw_pages",
]

_WAITING = (
    "SELECT COUNT(*) FROM outbox WHERE channel = ? AND state = 'pending'"
    " AND method = 'chat.postMessage' AND ref LIKE 'alert:%'"
)
_ALERT_COLUMNS = ", ".join(f"a.{c.strip()}" for c in ALERT_COLUMNS.split(","))
# The alerts a summary carries, and still should: pages of open alerts nobody acknowledged
# or silenced; posts of alerts not resolved.
_FOLDED = {
    "pages": (
        f"SELECT {_ALERT_COLUMNS} FROM alerts a WHERE a.id IN (SELECT alert_id FROM escalations"
        " WHERE folded_into = ? AND withdrawn_at IS NULL) AND a.resolved_at IS NULL"
        " AND a.acked_at IS NULL AND a.silence_id IS NULL ORDER BY a.id"
    ),
    "posts": (
        f"SELECT {_ALERT_COLUMNS} FROM alerts a WHERE a.folded_into = ?"
        " AND a.resolved_at IS NULL ORDER BY a.id"
    ),
}


# What a storm summary held, whatever became of its alerts since.
_HELD = {
    "pages": (
        f"SELECT {_ALERT_COLUMNS} FROM alerts a WHERE a.id IN (SELECT alert_id FROM escalations"
        " WHERE folded_into = ? AND withdrawn_at IS NULL) ORDER BY a.id"
    ),
    "posts": f"SELECT {_ALERT_COLUMNS} FROM alerts a WHERE a.folded_into = ? ORDER BY a.id",
}
# Inside one_refresh_each: the summaries to rebuild once it ends.
_DEFERRED: ContextVar[set[str] | None] = ContextVar("nightshift_fold_refreshes", default=None)


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
    tx.execute("UPDATE escalations SET folded_into = ? WHERE id = ?", (ref, esc_id))
    refresh(engine, tx, ref, now, joining=alert_id)
    return ref


def fold_post(engine: AlertMessages, tx: Tx, *, alert: Alert, lane: str, now: float) -> str:
    """Carry ``alert``'s channel post in a summary of the lane instead of its own message."""
    ref = storm_to_join(tx, engine.policy, lane, pages=False, alert_id=alert.id, now=now)
    ref = ref or summary_ref(tx, "posts", lane, seed=alert.id)
    tx.execute("UPDATE alerts SET folded_into = ? WHERE id = ?", (ref, alert.id))
    refresh(engine, tx, ref, now, joining=alert.id)
    return ref


def refresh(
    engine: AlertMessages, tx: Tx, ref: str, now: float, *, joining: int | None = None
) -> None:
    """Rebuild a waiting summary from what it still carries; withdraw it when empty. A
    sent one stays as it is until all its alerts are handled (:func:`_mark_if_handled`),
    or alert ``joining`` joins it (:func:`bot.alerts.folding_join.join_sent`)."""
    row = tx.one("SELECT id, state, claimed_at FROM outbox WHERE ref = ?", (ref,))
    if row is not None and (row[1] != "pending" or row[2] is not None):
        if joining is not None:  # sent, or being sent: edited right after
            join_sent(engine, tx, ref, alerts=storm_alerts(tx, ref), alert_id=joining, now=now)
        else:
            _mark_if_handled(engine, tx, ref, row[1], now)  # it stays
        return
    what, lane = summary_parts(ref)
    alerts = [Alert.from_row(r) for r in tx.all(_FOLDED[what], (ref,))]
    if not alerts:
        if row is not None:  # nothing left to say: it goes, with what waits on it
            tx.execute(
                f"DELETE FROM outbox WHERE channel = ? AND {OPEN_SUMMARY} AND instr(args, ?) > 0",
                (lane, f"$ref:{ref}."),
            )
            tx.execute("DELETE FROM outbox WHERE id = ?", (row[0],))
            tx.execute(
                "UPDATE escalations SET withdrawn_at = ? WHERE folded_into = ?"
                " AND withdrawn_at IS NULL",
                (now, ref),
            )
        return
    args = summary_args(engine, tx, ref, alerts, now)
    urgent = any(a.tier == "P0" for a in alerts)
    if row is None:
        enqueue(tx, method="chat.postMessage", args=args, channel=lane, ref=ref, urgent=urgent)
    else:
        tx.execute(
            "UPDATE outbox SET args = ?, priority = MIN(priority, ?) WHERE id = ?",
            (json.dumps(args, separators=(",", ":")), URGENT if urgent else ORDINARY, row[0]),
        )


def sent_summary(tx: Tx, ref: str) -> tuple[str, dict[str, Any]]:
    """The lane and the args of the storm summary ``ref``, which went out: as sent, or as
    alerts that joined it since made it (:func:`bot.alerts.folding_join.join_sent`).

    Raises:
        NotFound: no such summary (never made, withdrawn empty, or long gone).
        Conflict: it has not gone out (nobody saw it) or never reached Slack.
    """
    row = tx.one(
        "SELECT channel, args, state, claimed_at FROM outbox WHERE ref = ?"
        " AND method = 'chat.postMessage'",
        (ref,),
    )
    if row is None:
        raise NotFound(
            "this alert storm summary is not known (any more); `/agent alerts`"
            " lists the open alerts"
        )
    lane, args, state, claimed_at = row
    if claimed_at is None and state in ("failed", "pending"):  # unmarked: nobody saw it
        raise Conflict(
            "this alert storm summary has not reached Slack; nothing changed", state=str(state)
        )
    return str(lane), dict(json.loads(args))


def storm_alerts(tx: Tx, ref: str) -> list[Alert]:
    """The alerts folded into summary ``ref`` (for pages, those not withdrawn before it
    went out: what it listed), as they are now."""
    what, _ = summary_parts(ref)
    return [Alert.from_row(r) for r in tx.all(_HELD[what], (ref,))]


def mark_storm(tx: Tx, ref: str, *, lane: str, sent: dict[str, Any], line: str) -> None:
    """Edit the sent summary ``ref``: its buttons become ``line`` (who acknowledged what),
    and its line on its webhook page goes, as an acknowledged P0's own post drops its own.

    Its channel nudges still waiting to go out go: nobody need be woken for it now.
    """
    prefix = f"nudge:{ref}:"
    tx.execute(  # the ones nobody is sending yet
        f"DELETE FROM outbox WHERE ref > ? AND ref < ? AND {OPEN_SUMMARY}",
        (prefix, prefix + "\uffff"),
    )
    sent = with_page(sent, "")
    blocks = replace_actions(list(sent.get("blocks") or []), "storm", line)
    text = f"{sent.get('text') or ''} [{line}]"
    done = _done_ref(ref)  # the first edit says the storm was handled (see _mark_if_handled)
    first = tx.one("SELECT 1 FROM outbox WHERE ref = ?", (done,)) is None
    # in the summary's lane, after it (an urgent edit could overtake it)
    enqueue_edit(tx, ref, text=text, blocks=blocks, channel=lane, edit_ref=done if first else None)


def _done_ref(ref: str) -> str:
    return f"done:{ref}"


def _mark_if_handled(engine: AlertMessages, tx: Tx, ref: str, state: str, now: float) -> None:
    """A summary that went out, once none of its alerts waits for anyone: its button
    becomes a line saying so, as a single alert's messages show its acknowledgement."""
    if state == "failed" or tx.one("SELECT 1 FROM outbox WHERE ref = ?", (_done_ref(ref),)):
        return  # nothing to edit, or edited already
    alerts = storm_alerts(tx, ref)
    if not alerts or any(a.state == "open" for a in alerts):
        return
    try:
        lane, sent = sent_summary(tx, ref)
    except (NotFound, Conflict):  # not sent after all: nothing to edit (never fails an ack)
        return
    mark_storm(tx, ref, lane=lane, sent=sent, line=storm_done_line(alerts, tz=engine.tz, now=now))


@contextmanager
def one_refresh_each(engine: AlertMessages, tx: Tx) -> Iterator[None]:
    """Within it, a waiting summary whose alerts change is rebuilt once, at the end.

    Acknowledging a storm's 240 alerts one after the other would rebuild the other
    lane's waiting summary 240 times (each time from all it still holds); this
    rebuilds it once, to the same result. So a webhook's storm carrying them is checked
    once, at the end, for whether it ends (:func:`bot.webhook_storms.one_end_check_each`).
    """
    refs: set[str] = set()
    token = _DEFERRED.set(refs)
    try:
        with webhook_storms.one_end_check_each(tx):
            yield
    finally:
        _DEFERRED.reset(token)
    now = tx.clock.now()  # not after a failure: its writes are rolled back anyway
    for ref in sorted(refs):
        refresh(engine, tx, ref, now)


def refresh_folds_of(engine: AlertMessages, tx: Tx, alert: Alert, now: float) -> None:
    """Rebuild the waiting summaries that carry ``alert`` (its state changed)."""
    refs = {
        r[0]
        for r in tx.all(
            "SELECT DISTINCT folded_into FROM escalations WHERE alert_id = ?"
            " AND folded_into LIKE 'fold:%'",  # (not a webhook's storm: bot.webhook_storms)
            (alert.id,),
        )
    }
    if alert.folded_into:
        refs.add(alert.folded_into)
    deferred = _DEFERRED.get()
    if deferred is not None:
        deferred.update(refs)
        return
    for ref in sorted(refs):
        refresh(engine, tx, ref, now)


def nudge_storm(
    tx: Tx, alert: Alert, position: int, *, now: float, every: int, text: str, manual: bool
) -> None:
    """The chain's channel step for a folded alert: one nudge per summary and step.

    It goes in the summary's thread (broadcast to the channel). The summary's other
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
