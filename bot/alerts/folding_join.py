"""Alerts that come just after a storm summary join it, rather than buzz again.

:mod:`bot.alerts.folding` folds a lane's pages (or posts) into one summary while earlier
ones still wait to go out there. A storm read over several watchdog ticks (a blip stops
200 heartbeats; the watchdog looks every 2 s) woke each person twice per tick: the first
summary went out within a second, so the next tick found the lane empty and began again
with a page and a summary (audit27 B2 L5). As Alertmanager's ``group_interval`` does for
a group already notified, a page (or post) due while a storm summary of its lane waits,
or within :data:`JOIN_SECONDS` of that summary's beginning (its first alert folded),
joins it (:func:`storm_to_join`):

- a summary still waiting is rebuilt with it (:func:`bot.alerts.folding.refresh`);
- one sent, or being sent, is edited through the outbox (:func:`join_sent`), as it is
  rebuilt while it waits: it lists what it holds, the new alerts with the rest, and its
  Acknowledge all takes them too; its thread, its nudges and its webhook page line stay
  (the page line is drawn again from its alerts, and once more after the joining alert's
  webhook step: :func:`bot.alerts.storm_page.follow_pages`). Its post row's args take
  what it shows now, so that the edit of its button into a line
  (:func:`bot.alerts.storm_sent.mark_storm`) starts from it, not from what was first sent
  (a post being sent goes out as the worker read it, a retry of it with the new list;
  the edit follows either way).

Not joined: a summary none of whose alerts is left open (its button became a line:
``done:<ref>``), one that failed, one Slack said was deleted (an edit of it answered
``message_not_found``: :mod:`bot.alerts.storm_gone`; the alert is posted on its own,
or begins a new summary), one that already holds the alert (an alert paged again,
after a lifted silence or at its chain's next round, is news: it buzzes), and Escalate
now (its callers never fold). After the window the lane begins a new storm:
a page of its own, then a new summary.

An edit wakes nobody. A P0 joining a sent page summary that held no P0 (a summary of
P1s) adds one reply in the summary's thread, shown in the DM (``reply_broadcast``),
so the phone buzzes once for it; later P0s join it without a sound (its head, 🔴,
counts them). A channel's summary takes P0s without a reply: the on-call person is
woken in their own DMs.

Every function taking ``tx`` runs inside ``store.write``.

Example:
    >>> # ref = storm_to_join(tx, policy, "U02", pages=True, alert_id=7, now=now)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.alerts.first_page import first_step, summary_page
from bot.alerts.model import Alert, tagged
from bot.alerts.render_storm import fold_message, storm_p0_note
from bot.alerts.storm_alone import note_joined
from bot.alerts.storm_gone import GONE, being_found_gone
from bot.alerts.storm_members import summary_holds
from bot.alerts.storm_names import seed_first_at, summary_parts
from bot.alerts.storm_sent import NOT_HANDLED, SummaryPost, keep_shown, storm_leads
from bot.outbox import ORDINARY, URGENT, enqueue, enqueue_edit
from guards.config import Policy
from guards.store import Tx

if TYPE_CHECKING:
    from bot.alerts.messages import AlertMessages

__all__ = [
    "JOIN_SECONDS",
    "first_pages",
    "fold_limit",
    "join_sent",
    "storm_to_join",
    "summary_args",
]

#: how long after a storm summary began (its first alert folded) alerts still join it
JOIN_SECONDS = 60

# A lane's storm summaries that may take an alert, newest first: waiting, being sent, or
# begun within the window; not handled (bot.alerts.storm_sent.handled), not deleted in
# Slack (bot.alerts.storm_gone).
# (Read by the ref's unique index: the outbox keeps weeks of rows.)
_JOINABLE = (
    "SELECT o.ref, o.state = 'pending' AND o.claimed_at IS NULL FROM outbox o"
    " WHERE o.ref > ? AND o.ref < ? AND o.method = 'chat.postMessage'"
    " AND (o.state = 'pending' OR (o.state = 'delivered' AND o.created_at > ?))"
    f" AND {NOT_HANDLED} AND NOT {GONE} ORDER BY o.id DESC LIMIT 3"
)


def fold_limit(policy: Policy, *, pages: bool) -> int:
    """How many alert messages may wait in a lane before the next folds (0: never):
    ``alerts.fold_after``, or for ``pages`` to a person ``fold_pages_after`` when lower."""
    limit = policy.alerts.fold_after
    if pages and policy.alerts.fold_pages_after:
        limit = min(limit, policy.alerts.fold_pages_after) if limit else 0
    return limit


def storm_to_join(
    tx: Tx, policy: Policy, lane: str, *, pages: bool, alert_id: int, now: float
) -> str | None:
    """The storm summary of ``lane`` that alert ``alert_id``'s page (``pages``) or post
    joins: the one waiting there, else one sent (or being sent) that began within
    :data:`JOIN_SECONDS`, still open and not holding that alert. None: it does not fold
    for a summary (it may for a full lane: :func:`bot.alerts.folding.lane_is_full`)."""
    if fold_limit(policy, pages=pages) <= 0:
        return None
    prefix = f"fold:{'pages' if pages else 'posts'}:{lane}:"
    for ref, waiting in tx.all(_JOINABLE, (prefix, prefix + "\uffff", now - JOIN_SECONDS)):
        if being_found_gone(str(ref)):  # (its refused edit is being failed: storm_alone)
            continue
        if waiting:
            return str(ref)  # (rebuilt, as a full lane's next alert would be)
        if not summary_holds(tx, str(ref), alert_id):
            return str(ref)
    return None


def first_pages(policy: Policy, tx: Tx, ref: str, *, now: float) -> list[Alert]:
    """The alerts of the pages that began page summary ``ref``'s storm, on their own,
    which its Acknowledge all takes too (:func:`bot.alerts.storm_sent.storm_leads` within
    :data:`JOIN_SECONDS`); none for a channel's summary."""
    limit = fold_limit(policy, pages=True)
    return storm_leads(tx, ref, limit=limit, window=JOIN_SECONDS, now=now)


def summary_args(
    engine: AlertMessages,
    tx: Tx,
    ref: str,
    alerts: list[Alert],
    now: float,
    *,
    joined: bool = False,
) -> dict[str, Any]:
    """The chat.postMessage args of summary ``ref`` listing ``alerts`` (``joined``: some
    came after it went out). A channel's summary of open P0s mentions the person their
    chain pages first, or says how their webhook page goes, as a P0's own post does."""
    what, lane = summary_parts(ref)
    mention = page = None
    leads: list[int] = []
    if what == "pages":  # the storm's first pages, which its Acknowledge all takes too
        began = first_pages(engine.policy, tx, ref, now=now)
        leads = [a.id for a in began if a.state == "open"]
    if what == "posts" and any(a.tier == "P0" and a.state == "open" for a in alerts):
        first = first_step(engine, tx, now) or ""  # as a P0's own post (bot.alerts.first_page)
        if first.startswith("webhook:"):  # (redrawn once it went: bot.alerts.storm_page)
            page = summary_page(engine, tx, alerts, now)
        elif first != "channel":  # (a channel or webhook first pages no person)
            mention = engine.first_responder(tx, now)
    first_at = seed_first_at(tx, ref)
    text, blocks = fold_message(
        alerts,
        paged=what == "pages",
        mention=mention,
        page=page,
        tz=engine.tz,
        now=now,
        # tagged as an alert's own buttons are (review23 M2: bot.alerts.folding._tagged)
        ref=tagged(ref, first_at) if first_at is not None else ref,
        joined=joined,
        leads=leads,
    )
    return {"channel": lane, "text": text, "blocks": blocks}


def join_sent(
    engine: AlertMessages,
    tx: Tx,
    ref: str,
    *,
    post: SummaryPost,
    alerts: list[Alert],
    joined: Sequence[int],
    now: float,
) -> None:
    """Alerts ``joined`` joined summary ``ref`` (its post row ``post``), which went out
    (or is going): edit it once to list ``alerts`` (all it holds), and keep that as what
    its post row shows. A P0 joining a page summary that held none says so once in its
    thread (the phone buzzes). (A batch's alerts join it together: one edit, review27 R1 M2.)"""
    what, lane = summary_parts(ref)
    ids = set(joined)
    came = [a for a in alerts if a.id in ids]
    if not came:  # (its joining was undone with the event that made it)
        return
    args = summary_args(engine, tx, ref, alerts, now, joined=True)
    keep_shown(tx, post.id, args)
    p0 = [a for a in came if a.tier == "P0"]
    edit = enqueue_edit(
        tx, ref, text=args["text"], blocks=args["blocks"], channel=lane, urgent=bool(p0)
    )
    note_joined(tx, ref, [a.id for a in came], edit=edit)  # (shown once it goes: storm_alone)
    if what != "pages" or not p0 or any(a.tier == "P0" and a.id not in ids for a in alerts):
        return
    note = {
        "channel": f"$ref:{ref}.channel",
        "thread_ts": f"$ref:{ref}.ts",
        "reply_broadcast": True,
        "text": storm_p0_note(p0[0]),
    }
    # urgent only once the summary is out: an urgent row waiting for it would hold the lane
    priority = URGENT if post.state == "delivered" else ORDINARY
    enqueue(
        tx,
        method="chat.postMessage",
        args=note,
        channel=lane,
        ref=f"nudge:{ref}:p0",  # one per summary; gone with its nudges once it is handled
        priority=priority,
    )
