"""A storm summary once it went out: what it held, and its button once all were handled.

:mod:`bot.alerts.folding` folds a lane's pages (or posts) into one summary. Once it went
out, what it holds is read from the ``folded_into`` columns
(:func:`bot.alerts.storm_members.summary_alerts`). Its post row (:func:`summary_post`)
says whether it still waits (it may change) or went out; :func:`sent_summary` checks
that it went out, and
:func:`mark_storm` edits it once its alerts (and, for pages, the first pages of its
storm: :func:`storm_leads`) were acknowledged
(``bot.alerts.operations.ack_storm``) or, one by one, all handled
(:func:`mark_if_handled`): its Acknowledge all becomes a line saying so (one edit, ref
``done:<summary ref>``: :func:`handled`, the one test of it, and :data:`NOT_HANDLED`,
the same in SQL). One of its alerts open again (``/agent unack``) gives it its button
back (:func:`reopen`). A summary deleted in Slack is edited no more
(:mod:`bot.alerts.storm_gone`).

Every function taking ``tx`` runs inside ``store.write``.

Example:
    >>> # lane, sent = sent_summary(tx, "fold:pages:U02:17")
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.alerts.first_page import summary_page, webhook_prefix
from bot.alerts.model import Alert
from bot.alerts.render_storm import storm_done_line, storm_reopened_line, with_page
from bot.alerts.storm_gone import summary_is_gone
from bot.alerts.storm_members import ALERT_COLUMNS_A
from bot.alerts.storm_names import OPEN_SUMMARY, summary_parts, summary_seed
from bot.blocks import context
from bot.outbox import enqueue_edit
from bot.slack.render import replace_actions
from guards.errors import Conflict, NotFound
from guards.store import Tx

if TYPE_CHECKING:
    from bot.alerts.messages import AlertMessages

__all__ = [
    "NOT_HANDLED",
    "SummaryPost",
    "handled",
    "keep_shown",
    "mark_if_handled",
    "mark_storm",
    "reopen",
    "sent_summary",
    "storm_leads",
    "summary_post",
]

_DONE = "done:"
_REOPENED = "reopened"  # the block_id of the line reopen draws above the button
#: SQL: the summary whose post row is ``o`` is not handled (:func:`handled`)
NOT_HANDLED = f"NOT EXISTS (SELECT 1 FROM outbox d WHERE d.ref = '{_DONE}' || o.ref)"
# The pages before a page summary's seed (the escalation that began it), newest first,
# a chunk at a time: by the primary key, back from the seed, whose ``at`` grows with it
# (bot.alerts.paging writes each page's row as it goes), so the read stops at the
# first chunk older than the window (no index on target or at is needed)
_BEFORE = (
    "SELECT id, alert_id, at, folded_into, target FROM escalations WHERE id < ?"
    " ORDER BY id DESC LIMIT ?"
)
_CHUNK = 512
_ALERTS = f"SELECT {ALERT_COLUMNS_A} FROM alerts a WHERE a.id IN (SELECT value FROM json_each(?))"


@dataclass(frozen=True, slots=True)
class SummaryPost:
    """A storm summary's post row: its id, lane, args (as it goes or went out), outbox
    state, and whether the worker marked it as being sent (``claimed``)."""

    id: int
    lane: str
    args: str
    state: str
    claimed: bool

    @property
    def waiting(self) -> bool:
        """Nobody has started sending it: it may still change (SQL: ``OPEN_SUMMARY``)."""
        return self.state == "pending" and not self.claimed

    @property
    def unseen(self) -> bool:
        """Surely on nobody's screen: never marked, waiting or failed."""
        return not self.claimed and self.state in ("failed", "pending")

    def sent(self) -> dict[str, Any]:
        """Its args: what it shows (or will), unless an edit since says otherwise."""
        return dict(json.loads(self.args))


def summary_post(tx: Tx, ref: str) -> SummaryPost | None:
    """The post row of storm summary ``ref`` (None: never written, or withdrawn)."""
    row = tx.one(
        "SELECT id, channel, args, state, claimed_at FROM outbox WHERE ref = ?"
        " AND method = 'chat.postMessage'",
        (ref,),
    )
    if row is None:
        return None
    return SummaryPost(int(row[0]), str(row[1]), str(row[2]), str(row[3]), row[4] is not None)


def keep_shown(tx: Tx, post_id: int, args: dict[str, Any]) -> None:
    """Keep ``args`` as what summary post ``post_id`` shows now (an edit of it went
    out): Acknowledge all's edit starts from them."""
    tx.execute(
        "UPDATE outbox SET args = ? WHERE id = ?",
        (json.dumps(args, separators=(",", ":")), post_id),
    )


def sent_summary(tx: Tx, ref: str) -> tuple[str, dict[str, Any]]:
    """The lane and the args of the storm summary ``ref``, which went out: as sent, or as
    alerts that joined it since made it (:func:`bot.alerts.folding_join.join_sent`).

    Raises:
        NotFound: no such summary (never made, withdrawn empty, or long gone).
        Conflict: it has not gone out (nobody saw it) or never reached Slack.
    """
    post = summary_post(tx, ref)
    if post is None:
        raise NotFound(
            "this alert storm summary is not known (any more); `/agent alerts`"
            " lists the open alerts"
        )
    if post.unseen:  # unmarked: nobody saw it
        raise Conflict(
            "this alert storm summary has not reached Slack; nothing changed", state=post.state
        )
    return post.lane, post.sent()


def storm_leads(tx: Tx, ref: str, *, limit: int, window: float, now: float) -> list[Alert]:
    """The alerts of the pages that began page summary ``ref``'s storm, as they are now:
    every page to its person that went out on its own within ``window`` seconds before
    it began (a page from earlier is no part of this storm). Its Acknowledge all takes
    them too, and it says so: with ``fold_pages_after: 1`` a storm is the first page,
    then the summary of the rest, and a person who acknowledged all of "🔴 Alert storm ·
    199 alerts" was still paged for the first one five minutes later. Not only the last
    ``limit`` (``alerts.fold_pages_after``: what filled the lane, so that the next
    folded): a storm the watchdog reads over two ticks, one agent on the first, is two
    pages on their own, then the summary (recheck27 Kb M1), and the person's "all" is
    all of them; not those before a page of the lane folded into an earlier summary
    (they began that storm). ``limit`` 0 (pages never fold): none. None for a channel's summary:
    the posts before it are there with their own buttons. ``now``: when it begins, if
    it is not written yet.

    Example:
        >>> # storm_leads(tx, "fold:pages:U01:2", limit=1, window=60, now=now)  # [#1]
    """
    what, lane = summary_parts(ref)
    if what != "pages" or limit <= 0:
        return []
    row = tx.one("SELECT created_at FROM outbox WHERE ref = ?", (ref,))
    began = now if row is None else float(row[0])
    below = summary_seed(ref)
    ids: list[int] = []
    while True:
        rows = tx.all(_BEFORE, (below, _CHUNK))
        for _, alert_id, at, folded_into, target in rows:
            if target != lane:
                continue
            if folded_into is not None:  # the lane's earlier storm: older pages are its
                rows = []
                break
            if began - window <= float(at) <= began:
                ids.append(int(alert_id))
        if len(rows) < _CHUNK or float(rows[-1][2]) < began - window:
            break
        below = int(rows[-1][0])
    if not ids:
        return []
    return [Alert.from_row(r) for r in tx.all(_ALERTS + " ORDER BY a.id", (json.dumps(ids),))]


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
    if summary_is_gone(tx, ref):  # deleted in Slack: nothing to edit (storm_gone)
        return
    sent = with_page(sent, "")
    blocks = replace_actions(_unopened(sent.get("blocks")), "storm", line)
    text = f"{sent.get('text') or ''} [{line}]"
    # the first edit says the storm was handled (see mark_if_handled); in the summary's
    # lane, after it (an urgent edit could overtake it)
    done = None if handled(tx, ref) else f"{_DONE}{ref}"
    enqueue_edit(tx, ref, text=text, blocks=blocks, channel=lane, edit_ref=done)


def handled(tx: Tx, ref: str) -> bool:
    """Whether the sent summary ``ref`` says its alerts were handled (its button became a
    line: :func:`mark_storm`, whose first edit is named ``done:<ref>``)."""
    return tx.one("SELECT 1 FROM outbox WHERE ref = ?", (f"{_DONE}{ref}",)) is not None


def mark_if_handled(
    engine: AlertMessages, tx: Tx, ref: str, state: str, now: float, *, alerts: list[Alert]
) -> None:
    """A summary that went out, once none of its ``alerts`` waits for anyone: its button
    becomes a line saying so, as a single alert's messages show its acknowledgement.
    One handled whose alert is open again (``/agent unack``: it pages again) gets its
    button back (:func:`reopen`)."""
    if state == "failed":
        return  # nothing to edit
    if handled(tx, ref):
        if any(a.state == "open" for a in alerts):
            reopen(engine, tx, ref, alerts=alerts, now=now)
        return  # (else edited already)
    if not alerts or any(a.state == "open" for a in alerts):
        return
    try:
        lane, sent = sent_summary(tx, ref)
    except (NotFound, Conflict):  # not sent after all: nothing to edit (never fails an ack)
        return
    mark_storm(tx, ref, lane=lane, sent=sent, line=storm_done_line(alerts, tz=engine.tz, now=now))


def reopen(engine: AlertMessages, tx: Tx, ref: str, *, alerts: list[Alert], now: float) -> None:
    """The handled summary ``ref`` holds an open alert again (an acknowledgement taken
    back): it shows its Acknowledge all again, as before its button became a line (its
    post row's args: :func:`mark_storm` left them as they were), with its webhook page
    line drawn as it is now, and it is no longer handled (its ``done:`` edit keeps no
    ref): it may take alerts again in its minute, and say so again once all are handled.
    review28 R3 L4: it kept "✅ 8 acknowledged" with no button while #5 paged again. Not
    a summary deleted in Slack.
    """
    post = summary_post(tx, ref)
    if post is None or post.unseen or summary_is_gone(tx, ref):
        return
    tx.execute("UPDATE outbox SET ref = NULL WHERE ref = ?", (f"{_DONE}{ref}",))
    page = summary_page(engine, tx, alerts, now) if summary_parts(ref)[0] == "posts" else None
    drawn = with_page(post.sent(), webhook_prefix(page) if page is not None else "")
    text, blocks = str(drawn.get("text") or ""), _unopened(drawn.get("blocks"))
    # what is still handled, above its button (recheck28 Kb L1); kept in its post's
    # args, which its page line's redraws start from (mark_storm takes it out)
    from bot.alerts.folding_join import first_pages  # (it imports this module)

    line = storm_reopened_line(alerts, leads=first_pages(engine.policy, tx, ref, now=now))
    at = next((i for i, b in enumerate(blocks) if b.get("block_id") == "storm"), len(blocks))
    blocks.insert(at, {**context(line), "block_id": _REOPENED})
    keep_shown(tx, post.id, {**post.sent(), "text": text, "blocks": blocks})
    enqueue_edit(tx, ref, text=text, blocks=blocks, channel=post.lane)


def _unopened(blocks: Any) -> list[dict[str, Any]]:
    """A summary's blocks without the line :func:`reopen` drew above its button."""
    return [b for b in blocks or [] if b.get("block_id") != _REOPENED]
