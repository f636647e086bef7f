"""The alerts a deleted storm summary never showed are delivered on their own.

A storm summary (:mod:`bot.alerts.folding`) that went out shows the alerts that joined
it later by an edit (:func:`bot.alerts.folding_join.join_sent`), which notes its outbox
id on what joined (``folded_edit``: :func:`note_joined`). When Slack answers an edit of
it ``message_not_found`` (someone deleted it: :mod:`bot.alerts.storm_gone`), every edit
still to come fails the same way. An alert whose joining edit (or a later one) went
through was seen; one whose did not was shown nowhere, and for a person's page summary
nobody was paged for it until its chain's next step (recheck28 Kb M1). So, in the
transaction that fails that first refused edit (:func:`deliver_alone`), each alert the
summary was to carry that no delivered draw of it showed (:func:`unshown_alerts`,
:func:`unshown_pages`) is delivered as a lone alert would be, through the outbox, by the
lane's folding rule (review28 R7 H1: a join edit carrying 40 alerts was 40 DMs): the
lane's first ``alerts.fold_after`` (``fold_pages_after``) on their own, the rest in a new
summary of the lane (they leave ``ref``: ``folded_into`` is the new one):

- a channel summary's: posted on its own (:meth:`~bot.alerts.messages.AlertMessages.post_alone`),
  unless it is resolved (nothing left to show);
- a page summary's: paged on its own, the DM its escalation would have sent
  (ref ``alert:<id>:dm:<escalation>``), while the alert still pages (not acknowledged,
  silenced or resolved).

Exactly once: the refused edit fails in the same transaction (the summary is gone for
good from then on: no later edit comes here), and each lone message has its own ref.
One on its own keeps ``folded_into``; ``/agent alert <id>`` tells that its summary was
deleted before it showed it, and when it was posted (paged) on its own (:func:`missed`).

Every function taking ``tx`` runs inside ``store.write`` (the reads: any transaction).

Example:
    >>> # deliver_alone(engine, tx, "fold:pages:U02:4", now=tx.clock.now())
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.alerts.storm_gone import summary_is_gone, turning_gone
from bot.alerts.storm_names import summary_parts
from guards.store import Tx

if TYPE_CHECKING:
    from bot.alerts.paging import AlertPaging

__all__ = [
    "Missed",
    "deliver_alone",
    "last_shown",
    "missed",
    "note_joined",
    "unshown_alerts",
    "unshown_pages",
]

log = logging.getLogger(__name__)

# SQL: the last delivered draw of summary ?1 from outbox id ?2 on (an edit by its ref, or
# by its message's own ts: a click's redraw); each draw shows all it held by then, so what
# joined it by an edit after that one was shown by none. Read once per summary: a range
# of outbox ids, not one scan per alert (review28 R7 M1: 12.6 s for 1,000 alerts).
_LAST_SHOWN = (
    "SELECT MAX(d.id) FROM outbox d WHERE d.id >= ?2 AND d.method = 'chat.update'"
    " AND d.state = 'delivered' AND (json_extract(d.args, '$.ts') = '$ref:' || ?1 || '.ts'"
    " OR json_extract(d.args, '$.ts') = (SELECT result_ts FROM outbox p WHERE p.ref = ?1))"
)
_FIRST_JOIN = {
    "posts": "SELECT MIN(folded_edit) FROM alerts WHERE folded_into = ?",
    "pages": "SELECT MIN(folded_edit) FROM escalations WHERE folded_into = ?",
}
# what joined summary ?1 by an edit later than its last delivered draw (?2)
_ALERTS = "SELECT id FROM alerts WHERE folded_into = ?1 AND folded_edit > ?2 ORDER BY id"
_PAGES = (
    "SELECT id, alert_id, target FROM escalations WHERE folded_into = ?1"
    " AND withdrawn_at IS NULL AND folded_edit > ?2 ORDER BY id"
)
_JOINED = {
    "posts": (
        "UPDATE alerts SET folded_edit = ? WHERE folded_into = ?"
        " AND id IN (SELECT value FROM json_each(?))"
    ),
    "pages": (
        "UPDATE escalations SET folded_edit = ? WHERE folded_into = ? AND withdrawn_at IS NULL"
        " AND folded_edit IS NULL AND alert_id IN (SELECT value FROM json_each(?))"
    ),
}
_OWN_AT = "SELECT created_at FROM outbox WHERE ref = ? AND method = 'chat.postMessage'"
_ALERT_IN = "SELECT folded_into FROM alerts WHERE id = ? AND folded_into LIKE 'fold:posts:%'"
_ALERT_MISSED = "SELECT 1 FROM alerts WHERE folded_into = ?1 AND id = ?2 AND folded_edit > ?3"
_PAGES_OF = (
    "SELECT id, folded_into FROM escalations WHERE alert_id = ? AND withdrawn_at IS NULL"
    " AND folded_into LIKE 'fold:pages:%'"
)
_PAGE_MISSED = "SELECT 1 FROM escalations WHERE folded_into = ?1 AND id = ?2 AND folded_edit > ?3"


def note_joined(tx: Tx, ref: str, alert_ids: list[int], *, edit: int) -> None:
    """Alerts ``alert_ids`` joined the sent summary ``ref`` by outbox edit ``edit``."""
    what, _ = summary_parts(ref)
    tx.execute(_JOINED[what], (edit, ref, json.dumps(alert_ids)))


def last_shown(tx: Tx, ref: str) -> int | None:
    """The outbox id of summary ``ref``'s last delivered draw after something joined it
    by an edit: 0 when none went through, None when nothing joined it so."""
    what, _ = summary_parts(ref)
    first = tx.one(_FIRST_JOIN[what], (ref,))[0]
    if first is None:
        return None
    return int(tx.one(_LAST_SHOWN, (ref, int(first)))[0] or 0)


def unshown_alerts(tx: Tx, ref: str) -> list[int]:
    """The ids of the alerts that joined channel summary ``ref`` after it went out and
    that no edit of it that went through showed (none for a page summary)."""
    if summary_parts(ref)[0] != "posts" or (shown := last_shown(tx, ref)) is None:
        return []
    return [int(r[0]) for r in tx.all(_ALERTS, (ref, shown))]


def unshown_pages(tx: Tx, ref: str) -> list[tuple[int, int, str | None]]:
    """``(escalation id, alert id, whom it pages)`` of the pages that joined page summary
    ``ref`` after it went out and that no edit of it that went through showed."""
    if summary_parts(ref)[0] != "pages" or (shown := last_shown(tx, ref)) is None:
        return []
    rows = tx.all(_PAGES, (ref, shown))
    return [(int(r[0]), int(r[1]), None if r[2] is None else str(r[2])) for r in rows]


def deliver_alone(engine: AlertPaging, tx: Tx, ref: str, *, now: float) -> list[int]:
    """Summary ``ref`` was just found deleted in Slack: deliver each alert it was to carry
    that nobody saw in it as a lone alert would be; returns their ids.

    As a lone alert, each goes by the lane's folding rule (``alerts.fold_after``,
    ``fold_pages_after``): the lane's first on their own, the rest in a new summary once
    the lane is full (review28 R7 H1: a join edit carrying 40 alerts was 40 DMs). ``ref``
    takes none of them (:func:`~bot.alerts.storm_gone.turning_gone`), and the new
    summary is drawn once (:func:`~bot.alerts.storm_batch.summaries_once`).
    """
    # (imported here: bot.alerts.folding imports this module, through folding_join)
    from bot.alerts.folding import fold_page, folds_here
    from bot.alerts.storm_batch import summaries_once

    alone: list[int] = []
    folded: list[int] = []
    with turning_gone(ref), summaries_once(engine, tx):
        for alert_id in unshown_alerts(tx, ref):
            alert = engine.get(tx, alert_id)
            if alert.resolved_at is None and alert.posted_at is None:
                engine._post(tx, alert, now)  # (the rule a new alert's post goes by)
                fresh = engine.get(tx, alert_id)
                (alone if fresh.posted_at is not None else folded).append(alert_id)
        for esc_id, alert_id, target in unshown_pages(tx, ref):
            alert = engine.get(tx, alert_id)
            if alert.state != "open" or target is None:
                continue
            urgent = alert.tier == "P0"
            # (the rule an escalation's page goes by: AlertPaging.escalate)
            if folds_here(
                tx, engine.policy, target, alert_id=alert_id, now=now, urgent=urgent, pages=True
            ):
                fold_page(engine, tx, lane=target, esc_id=esc_id, now=now)
                folded.append(alert_id)
            elif engine.page_alone(tx, alert, esc_id, now):
                alone.append(alert_id)
    if alone or folded:
        what = "posted" if summary_parts(ref)[0] == "posts" else "paged"
        log.warning(
            "alert storm summary %s was deleted in Slack before it showed %d of its alerts;"
            " %s on their own: %s; in a new storm summary: %d",
            ref,
            len(alone) + len(folded),
            what,
            ", ".join(f"#{i}" for i in alone) or "none",
            len(folded),
        )
    return sorted(alone + folded)


@dataclass(frozen=True, slots=True)
class Missed:
    """What of one alert a storm summary deleted in Slack never showed (for its story):
    its post (``post``: when it was posted on its own, or None: it was not, being
    resolved by then) and its pages (escalation id -> when paged on its own, or None)."""

    post: tuple[float | None] | None
    pages: dict[int, float | None]


def missed(tx: Tx, alert_id: int) -> Missed:
    """What deleted storm summaries never showed of alert ``alert_id``, and how it went."""
    post: tuple[float | None] | None = None
    row = tx.one(_ALERT_IN, (alert_id,))
    ref = None if row is None else str(row[0])
    if ref is not None and _missed_in(tx, _ALERT_MISSED, ref, alert_id):
        post = (_own_at(tx, f"alert:{alert_id}:post"),)
    pages: dict[int, float | None] = {}
    for esc_id, ref in tx.all(_PAGES_OF, (alert_id,)):
        if _missed_in(tx, _PAGE_MISSED, str(ref), int(esc_id)):
            pages[int(esc_id)] = _own_at(tx, f"alert:{alert_id}:dm:{esc_id}")
    return Missed(post, pages)


def _missed_in(tx: Tx, sql: str, ref: str, row_id: int) -> bool:
    if not summary_is_gone(tx, ref) or (shown := last_shown(tx, ref)) is None:
        return False
    return tx.one(sql, (ref, row_id, shown)) is not None


def _own_at(tx: Tx, ref: str) -> float | None:
    row = tx.one(_OWN_AT, (ref,))
    return None if row is None else float(row[0])
