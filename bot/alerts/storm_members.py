"""Who is in an alert storm: every read of a storm's alerts, in one place.

Two kinds of storm carry alerts:

- a Slack **summary** (ref ``fold:<pages|posts>:<lane>:<seed>``: :mod:`bot.alerts.folding`).
  A page summary holds the alerts of the escalations folded into it and not withdrawn
  (what it listed); a post summary the alerts whose ``folded_into`` names it;
- a webhook's **storm** (a ``webhook_storms`` row, ref ``hook:<id>``:
  :mod:`bot.webhook_storms`): the alerts of the escalations folded into it.

An alert **still pages** while it is neither resolved, acknowledged nor silenced
(:data:`STILL_PAGES`): a waiting page summary carries only those (a post summary, those
not resolved), and a webhook's storm ends once none of its alerts does.

These reads were written out in five modules (the summaries' and the webhook storms'
members, whether a summary holds an alert, where a storm's alerts are seen), each with
its own copy of the columns and conditions; the storm code and the webhook sender read
them here.

Example:
    >>> hook_ref(4), storm_of("hook:4"), storm_of("fold:posts:C1:3")
    ('hook:4', 4, None)
"""

from __future__ import annotations

from typing import Literal

from bot.alerts.model import ALERT_COLUMNS, Alert
from guards.store import Tx

__all__ = [
    "ALERT_COLUMNS_A",
    "HOOK_ALERT_IDS",
    "STILL_PAGES",
    "hook_alerts",
    "hook_posted",
    "hook_ref",
    "hook_seen",
    "hook_still_pages",
    "hook_summaries",
    "storm_of",
    "storms_of_alert",
    "summary_alerts",
    "summary_holds",
]

#: the alert columns (:data:`bot.alerts.model.ALERT_COLUMNS`) of ``alerts a``
ALERT_COLUMNS_A = ", ".join(f"a.{c.strip()}" for c in ALERT_COLUMNS.split(","))
#: an alert ``a`` that still pages: not resolved, acknowledged or silenced
STILL_PAGES = "a.resolved_at IS NULL AND a.acked_at IS NULL AND a.silence_id IS NULL"
#: the ids of the alerts a webhook's storm (its ``hook:<id>`` ref, bound) carries
HOOK_ALERT_IDS = "SELECT alert_id FROM escalations WHERE folded_into = ?"
_HOOK = "hook:"

# the page summary's escalations (what it listed)
_PAGES = "SELECT alert_id FROM escalations WHERE folded_into = ? AND withdrawn_at IS NULL"
_SUMMARY = {
    "pages": f"SELECT {ALERT_COLUMNS_A} FROM alerts a WHERE a.id IN ({_PAGES})",
    "posts": f"SELECT {ALERT_COLUMNS_A} FROM alerts a WHERE a.folded_into = ?",
}
# what a waiting summary still carries: pages still paging, posts not resolved
_CARRIED = {"pages": f" AND {STILL_PAGES}", "posts": " AND a.resolved_at IS NULL"}
_HOLDS = {
    "pages": (
        "SELECT 1 FROM escalations WHERE folded_into = ? AND alert_id = ?"
        " AND withdrawn_at IS NULL LIMIT 1"
    ),
    "posts": "SELECT 1 FROM alerts WHERE folded_into = ? AND id = ?",
}
_HOOK_ALERTS = (
    f"SELECT {ALERT_COLUMNS_A} FROM alerts a WHERE a.id IN ({HOOK_ALERT_IDS}) ORDER BY a.id"
)
_HOOK_PAGES = (
    "SELECT 1 FROM escalations e JOIN alerts a ON a.id = e.alert_id WHERE e.folded_into = ?"
    f" AND {STILL_PAGES} LIMIT 1"
)
_HOOK_POSTED = (
    "SELECT DISTINCT e.alert_id FROM escalations e JOIN alerts a ON a.id = e.alert_id"
    " WHERE e.folded_into = ? AND a.posted_at IS NOT NULL ORDER BY e.alert_id"
)
_HOOK_SEEN = (
    "SELECT DISTINCT a.id, a.channel, a.posted_at, a.folded_into FROM escalations e"
    " JOIN alerts a ON a.id = e.alert_id WHERE e.folded_into = ? ORDER BY a.id"
)
_HOOK_SUMMARIES = (
    "SELECT DISTINCT a.folded_into FROM escalations e JOIN alerts a ON a.id = e.alert_id"
    " WHERE e.folded_into = ? AND a.folded_into LIKE 'fold:posts:%' ORDER BY a.folded_into"
)
_STORMS_OF = {
    "fold": (
        "SELECT DISTINCT folded_into FROM escalations WHERE alert_id = ?"
        " AND folded_into LIKE 'fold:%'"
    ),
    "hook": (
        "SELECT DISTINCT folded_into FROM escalations WHERE alert_id = ?"
        " AND folded_into LIKE 'hook:%'"
    ),
}


def hook_ref(storm: int) -> str:
    """The ``folded_into`` of the escalations webhook storm ``storm`` carries."""
    return f"{_HOOK}{storm}"


def storm_of(ref: str | None) -> int | None:
    """The webhook storm an escalation's ``folded_into`` names (None: none, or a Slack
    summary)."""
    if ref is None or not ref.startswith(_HOOK) or not ref[len(_HOOK) :].isdigit():
        return None
    return int(ref[len(_HOOK) :])


def summary_alerts(tx: Tx, ref: str, *, carried: bool = False) -> list[Alert]:
    """The alerts summary ``ref`` holds (for pages, those not withdrawn before it went
    out: what it listed), as they are now, by id; ``carried``: only those a waiting
    summary still carries (pages still paging, posts not resolved)."""
    what = _what(ref)
    sql = _SUMMARY[what] + (_CARRIED[what] if carried else "") + " ORDER BY a.id"
    return [Alert.from_row(r) for r in tx.all(sql, (ref,))]


def summary_holds(tx: Tx, ref: str, alert_id: int) -> bool:
    """Whether summary ``ref`` holds alert ``alert_id`` (as :func:`summary_alerts` reads)."""
    return tx.one(_HOLDS[_what(ref)], (ref, alert_id)) is not None


def storms_of_alert(tx: Tx, alert_id: int, kind: Literal["fold", "hook"]) -> list[str]:
    """The refs of the storms whose escalations carry alert ``alert_id``'s pages: page
    summaries (``fold``) or webhook storms (``hook``)."""
    return [str(r[0]) for r in tx.all(_STORMS_OF[kind], (alert_id,))]


def hook_alerts(tx: Tx, storm: int) -> list[Alert]:
    """The alerts whose pages webhook storm ``storm`` carries, as they are now, by id."""
    return [Alert.from_row(r) for r in tx.all(_HOOK_ALERTS, (hook_ref(storm),))]


def hook_still_pages(tx: Tx, storm: int) -> bool:
    """Whether an alert of webhook storm ``storm`` still pages (the storm goes on)."""
    return tx.one(_HOOK_PAGES, (hook_ref(storm),)) is not None


def hook_posted(tx: Tx, storm: int) -> list[int]:
    """The ids of the alerts of webhook storm ``storm`` posted on their own (each post
    shows how the storm's page went)."""
    return [int(r[0]) for r in tx.all(_HOOK_POSTED, (hook_ref(storm),))]


def hook_seen(tx: Tx, storm: int) -> list[tuple[int, str | None, float | None, str | None]]:
    """Where each alert of webhook storm ``storm`` is seen: ``(id, channel, posted_at,
    folded_into)``, its own post or the Slack summary that carried its post."""
    return [
        (int(r[0]), r[1], None if r[2] is None else float(r[2]), r[3])
        for r in tx.all(_HOOK_SEEN, (hook_ref(storm),))
    ]


def hook_summaries(tx: Tx, storm: int) -> list[str]:
    """The refs of the channel summaries carrying the posts of webhook storm ``storm``'s
    alerts."""
    return [str(r[0]) for r in tx.all(_HOOK_SUMMARIES, (hook_ref(storm),))]


def _what(ref: str) -> Literal["pages", "posts"]:
    """``fold:pages:…`` -> pages; ``fold:posts:…`` -> posts."""
    return "pages" if ref.startswith("fold:pages:") else "posts"
