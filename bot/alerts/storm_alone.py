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
:func:`unshown_pages`) is delivered as a lone alert would be, through the outbox:

- a channel summary's: posted on its own (:meth:`~bot.alerts.messages.AlertMessages.post_alone`),
  unless it is resolved (nothing left to show);
- a page summary's: paged on its own, the DM its escalation would have sent
  (ref ``alert:<id>:dm:<escalation>``), while the alert still pages (not acknowledged,
  silenced or resolved).

Exactly once: the refused edit fails in the same transaction (the summary is gone for
good from then on: no later edit comes here), and each lone message has its own ref.
The alert keeps ``folded_into``; ``/agent alert <id>`` tells that its summary was
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

from bot.alerts.storm_gone import summary_is_gone
from bot.alerts.storm_names import summary_parts
from guards.store import Tx

if TYPE_CHECKING:
    from bot.alerts.paging import AlertPaging

__all__ = [
    "Missed",
    "deliver_alone",
    "missed",
    "note_joined",
    "unshown_alerts",
    "unshown_pages",
]

log = logging.getLogger(__name__)

# SQL: no delivered draw of summary ?1 shows what joined it by edit ``x.folded_edit``: no
# edit of it from that one on went through (each later draw shows all it held), by its
# ref or by its message's own ts (a click's redraw)
_UNSHOWN = (
    "x.folded_edit IS NOT NULL AND NOT EXISTS (SELECT 1 FROM outbox d"
    " WHERE d.id >= x.folded_edit AND d.method = 'chat.update' AND d.state = 'delivered'"
    " AND (json_extract(d.args, '$.ts') = '$ref:' || ?1 || '.ts'"
    " OR json_extract(d.args, '$.ts') = (SELECT result_ts FROM outbox p WHERE p.ref = ?1)))"
)
_ALERTS = f"SELECT x.id FROM alerts x WHERE x.folded_into = ?1 AND {_UNSHOWN} ORDER BY x.id"
_PAGES = (
    "SELECT x.id, x.alert_id FROM escalations x"
    f" WHERE x.folded_into = ?1 AND x.withdrawn_at IS NULL AND {_UNSHOWN} ORDER BY x.id"
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
_ALERT_MISSED = f"SELECT 1 FROM alerts x WHERE x.folded_into = ?1 AND x.id = ?2 AND {_UNSHOWN}"
_PAGES_OF = (
    "SELECT id, folded_into FROM escalations WHERE alert_id = ? AND withdrawn_at IS NULL"
    " AND folded_into LIKE 'fold:pages:%'"
)
_PAGE_MISSED = f"SELECT 1 FROM escalations x WHERE x.folded_into = ?1 AND x.id = ?2 AND {_UNSHOWN}"


def note_joined(tx: Tx, ref: str, alert_ids: list[int], *, edit: int) -> None:
    """Alerts ``alert_ids`` joined the sent summary ``ref`` by outbox edit ``edit``."""
    what, _ = summary_parts(ref)
    tx.execute(_JOINED[what], (edit, ref, json.dumps(alert_ids)))


def unshown_alerts(tx: Tx, ref: str) -> list[int]:
    """The ids of the alerts that joined channel summary ``ref`` after it went out and
    that no edit of it that went through showed (none for a page summary)."""
    if summary_parts(ref)[0] != "posts":
        return []
    return [int(r[0]) for r in tx.all(_ALERTS, (ref,))]


def unshown_pages(tx: Tx, ref: str) -> list[tuple[int, int]]:
    """``(escalation id, alert id)`` of the pages that joined page summary ``ref`` after
    it went out and that no edit of it that went through showed."""
    if summary_parts(ref)[0] != "pages":
        return []
    return [(int(r[0]), int(r[1])) for r in tx.all(_PAGES, (ref,))]


def deliver_alone(engine: AlertPaging, tx: Tx, ref: str, *, now: float) -> list[int]:
    """Summary ``ref`` was just found deleted in Slack: post (or page) on its own each
    alert it was to carry that nobody saw in it; returns their ids."""
    done: list[int] = []
    for alert_id in unshown_alerts(tx, ref):
        alert = engine.get(tx, alert_id)
        if alert.resolved_at is None and alert.posted_at is None:
            engine.post_alone(tx, alert, now)
            done.append(alert_id)
    for esc_id, alert_id in unshown_pages(tx, ref):
        alert = engine.get(tx, alert_id)
        if alert.state == "open" and engine.page_alone(tx, alert, esc_id, now):
            done.append(alert_id)
    if done:
        what = "posted" if summary_parts(ref)[0] == "posts" else "paged"
        log.warning(
            "alert storm summary %s was deleted in Slack before it showed %s; %s on their own",
            ref,
            ", ".join(f"#{i}" for i in done),
            what,
        )
    return done


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
    if ref is not None and summary_is_gone(tx, ref) and tx.one(_ALERT_MISSED, (ref, alert_id)):
        post = (_own_at(tx, f"alert:{alert_id}:post"),)
    pages: dict[int, float | None] = {}
    for esc_id, ref in tx.all(_PAGES_OF, (alert_id,)):
        if summary_is_gone(tx, str(ref)) and tx.one(_PAGE_MISSED, (str(ref), esc_id)):
            pages[int(esc_id)] = _own_at(tx, f"alert:{alert_id}:dm:{esc_id}")
    return Missed(post, pages)


def _own_at(tx: Tx, ref: str) -> float | None:
    row = tx.one(_OWN_AT, (ref,))
    return None if row is None else float(row[0])
