"""A channel's storm summary follows its alerts' webhook page, as their own posts do.

A P0 whose chain pages a webhook first mentions nobody: its post says how that page
goes (:mod:`bot.alerts.first_page`), "📟 Paging via webhook pager…", then "📟 Paged via
webhook pager:" or "⚠️ The page via webhook pager failed (HTTP 400); <@U01> is next:".
In a storm most such P0s are not posted on their own: a channel's summary carries their
posts (:mod:`bot.alerts.folding`) and one storm trigger their pages
(:mod:`bot.webhook_storms`). The summary says the same words of them
(:func:`~bot.alerts.first_page.summary_page`), and once a trigger carrying its alerts'
pages is answered (:meth:`bot.webhooks_record.DeliveryRecords._record_one`) it is
redrawn (:func:`follow_pages`): rebuilt while it waits, else edited through the outbox;
a failure at once (it names who is next), the rest as a routine redraw. recheck26 Kc M1:
a sent summary kept "📟 Paging via webhook pager…" after the storm's trigger had failed
for good, or got through. It is redrawn too when the chain's next step pages a person
for one of its alerts (:meth:`bot.alerts.paging.AlertPaging.escalate`), to say so:
"⚠️ The page via webhook pager failed (HTTP 400); paged <@U01>:" (review27 R1 L2: it
kept "<@U01> is next" after U01 was paged). A chain paging a person first: its mention
becomes the person that step paged for all its open P0s ("<@U04> 🔴 Alert storm · 20
alerts"), as their own posts mention them (recheck27 Kb L1: it kept "<@U01>").

Every function taking ``tx`` runs inside ``store.write``.

Example:
    >>> # follow_pages(engine, tx, paged_summaries(tx, storm=4, alert_id=None), now=now)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bot.alerts.first_page import summary_page, webhook_prefix
from bot.alerts.folding import defer, refresh
from bot.alerts.render_storm import with_mention, with_page
from bot.alerts.storm_gone import summary_is_gone
from bot.alerts.storm_members import hook_summaries, summary_alerts
from bot.alerts.storm_sent import handled, keep_shown, summary_post
from bot.outbox import enqueue_edit
from guards.store import Tx

if TYPE_CHECKING:
    from bot.alerts.messages import AlertMessages

__all__ = ["follow_pages", "paged_summaries"]

_ALERT_SUMMARY = "SELECT folded_into FROM alerts WHERE id = ? AND folded_into LIKE 'fold:posts:%'"


def paged_summaries(tx: Tx, *, storm: int | None, alert_id: int) -> list[str]:
    """The refs of the channel summaries that show how a trigger went: those carrying the
    posts of ``storm``'s alerts, or (no storm) the one carrying alert ``alert_id``'s."""
    if storm is not None:
        return hook_summaries(tx, storm)
    return [str(r[0]) for r in tx.all(_ALERT_SUMMARY, (alert_id,))]


def follow_pages(engine: AlertMessages, tx: Tx, refs: list[str], *, now: float) -> int:
    """Redraw the summaries ``refs`` with how their alerts' webhook pages go now: one still
    waiting is rebuilt (it goes out saying so), one sent is edited when what it shows
    changed (urgent when a page failed: it names who is next); not once its alerts were
    handled (its button became a line: an alert acknowledged since, then taken back with
    `/agent unack`, put "<@U01> is next" back above "✅ 20 acknowledged"). Returns the
    edits queued.
    Within a batch (:func:`bot.alerts.folding.deferring`) each is marked and redrawn
    once, as the batch ends: a storm's alerts each take their webhook step."""
    edits = 0
    for ref in refs:
        if defer(ref, page=True):
            continue
        post = summary_post(tx, ref)
        if post is None or post.state == "failed":
            continue  # withdrawn, or never reached Slack: nothing to show it in
        if post.waiting:
            refresh(engine, tx, ref, now)  # (nobody is sending it: it is rebuilt)
            continue
        if handled(tx, ref):  # "✅ 20 acknowledged …": a page line belongs only on a
            continue  # summary still paging, as on an open P0's own post (review27 R1 L1)
        if summary_is_gone(tx, ref):  # deleted in Slack: nothing to edit (storm_gone)
            continue
        lane = post.lane
        alerts = summary_alerts(tx, ref)
        page = summary_page(engine, tx, alerts, now)
        shown = _shown(tx, ref, lane=lane, post_id=post.id, sent=post.sent())
        # drawn from its post row's args, which alerts joining it keep up to date, not
        # from its last edit: that may be older than one that failed for good (review28
        # R3 L3: a join's edit refused, the next page line went out with the count before)
        drawn = with_page(post.sent(), webhook_prefix(page) if page is not None else "")
        paged = {a.oncall_user for a in alerts if a.tier == "P0" and a.state == "open"}
        if len(paged) == 1 and None not in paged:  # the one its open P0s' chains paged last
            user = str(next(iter(paged)))
            drawn = with_mention(drawn, user)
            sent = post.sent()
            if (named := with_mention(sent, user)) != sent:  # Acknowledge all's edit starts
                keep_shown(tx, post.id, named)  # from its post's row
        if _shows(drawn) == _shows(shown):
            continue  # (a storm's next trigger got through as its last did)
        # (a failure someone must act on: not once a later step paged a person)
        urgent = page is not None and page.state == "failed" and page.paged_user is None
        enqueue_edit(
            tx, ref, text=drawn["text"], blocks=drawn["blocks"], channel=lane, urgent=urgent
        )
        edits += 1
    return edits


def _shown(tx: Tx, ref: str, *, lane: str, post_id: int, sent: dict[str, Any]) -> dict[str, Any]:
    """What summary ``ref`` shows, or will once its edits went: its last edit's args
    (its page redrawn, its button become a line: :func:`bot.alerts.storm_sent.mark_storm`),
    else its post's. Only rows after its post are read (the outbox keeps weeks of rows).
    An edit that failed for good (refused, or given up after a day of 5xx) is not shown:
    compared with it, a redraw found nothing new, and the summary kept "📟 Paging via…"
    until its next change. (One still retried after a 5xx or a 429 will be.)"""
    row = tx.one(
        "SELECT args FROM outbox WHERE id > ? AND channel = ? AND method = 'chat.update'"
        " AND state != 'failed' AND json_extract(args, '$.ts') = ? ORDER BY id DESC LIMIT 1",
        (post_id, lane, f"$ref:{ref}.ts"),
    )
    return dict(json.loads(row[0])) if row is not None else sent


def _shows(args: dict[str, Any]) -> tuple[Any, Any]:
    """What a message's args show (a post's name its channel, an edit's its ts too)."""
    return args.get("text"), args.get("blocks")
