"""A storm summary once it went out: what it held, and its button once all were handled.

:mod:`bot.alerts.folding` folds a lane's pages (or posts) into one summary. Once it went
out, what it holds (:func:`storm_alerts`) is read from the ``folded_into`` columns: for
pages, the escalations folded into it and not withdrawn (what the sent message listed);
for posts, the alerts folded into it. :func:`sent_summary` checks that it went out, and
:func:`mark_storm` edits it once its alerts (and, for pages, the first pages of its
storm: :func:`storm_leads`) were acknowledged
(``bot.alerts.operations.ack_storm``) or, one by one, all handled
(:func:`mark_if_handled`): its Acknowledge all becomes a line saying so (one edit, ref
``done:<summary ref>``: :func:`handled`).

Every function taking ``tx`` runs inside ``store.write``.

Example:
    >>> # lane, sent = sent_summary(tx, "fold:pages:U02:17")
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bot.alerts.model import ALERT_COLUMNS, Alert
from bot.alerts.render_storm import storm_done_line, with_page
from bot.alerts.storm_names import OPEN_SUMMARY, summary_parts
from bot.outbox import enqueue_edit
from bot.slack.render import replace_actions
from guards.errors import Conflict, NotFound
from guards.store import Tx

if TYPE_CHECKING:
    from bot.alerts.messages import AlertMessages

__all__ = [
    "handled",
    "mark_if_handled",
    "mark_storm",
    "sent_summary",
    "storm_alerts",
    "storm_leads",
]

_ALERT_COLUMNS = ", ".join(f"a.{c.strip()}" for c in ALERT_COLUMNS.split(","))
# What a storm summary held, whatever became of its alerts since.
_HELD = {
    "pages": (
        f"SELECT {_ALERT_COLUMNS} FROM alerts a WHERE a.id IN (SELECT alert_id FROM escalations"
        " WHERE folded_into = ? AND withdrawn_at IS NULL) ORDER BY a.id"
    ),
    "posts": f"SELECT {_ALERT_COLUMNS} FROM alerts a WHERE a.folded_into = ? ORDER BY a.id",
}
# The pages before a page summary's seed (the escalation that began it), newest first,
# a chunk at a time: by the primary key, back from the seed, whose ``at`` grows with it
# (bot.alerts.paging writes each page's row as it goes), so the read stops at the
# first chunk older than the window (no index on target or at is needed)
_BEFORE = (
    "SELECT id, alert_id, at, folded_into, target FROM escalations WHERE id < ?"
    " ORDER BY id DESC LIMIT ?"
)
_CHUNK = 512
_ALERTS = f"SELECT {_ALERT_COLUMNS} FROM alerts a WHERE a.id IN (SELECT value FROM json_each(?))"


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
    below = int(ref.rsplit(":", 1)[1].partition("-")[0])  # the seed
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
    sent = with_page(sent, "")
    blocks = replace_actions(list(sent.get("blocks") or []), "storm", line)
    text = f"{sent.get('text') or ''} [{line}]"
    done = _done_ref(ref)  # the first edit says the storm was handled (see mark_if_handled)
    first = tx.one("SELECT 1 FROM outbox WHERE ref = ?", (done,)) is None
    # in the summary's lane, after it (an urgent edit could overtake it)
    enqueue_edit(tx, ref, text=text, blocks=blocks, channel=lane, edit_ref=done if first else None)


def _done_ref(ref: str) -> str:
    return f"done:{ref}"


def handled(tx: Tx, ref: str) -> bool:
    """Whether the sent summary ``ref`` says its alerts were handled (its button became a
    line: :func:`mark_storm`)."""
    return tx.one("SELECT 1 FROM outbox WHERE ref = ?", (_done_ref(ref),)) is not None


def mark_if_handled(
    engine: AlertMessages, tx: Tx, ref: str, state: str, now: float, *, alerts: list[Alert]
) -> None:
    """A summary that went out, once none of its ``alerts`` waits for anyone: its button
    becomes a line saying so, as a single alert's messages show its acknowledgement."""
    if state == "failed" or handled(tx, ref):
        return  # nothing to edit, or edited already
    if not alerts or any(a.state == "open" for a in alerts):
        return
    try:
        lane, sent = sent_summary(tx, ref)
    except (NotFound, Conflict):  # not sent after all: nothing to edit (never fails an ack)
        return
    mark_storm(tx, ref, lane=lane, sent=sent, line=storm_done_line(alerts, tz=engine.tz, now=now))
