"""Webhook pages in alert storms: one incident at the receiver for the pages folded.

Without this, a chain step ``notify: webhook:NAME`` sent one trigger per alert: 500
alerts in a minute were 500 PagerDuty incidents. As Alertmanager groups, a webhook's
pages fold once it pages a lot (:func:`storm_to_join`): when ``webhooks.<name>.fold_after``
(10 by default) pages went to it in the last :data:`STORM_SECONDS` (its own triggers and
the pages its open storm took), the next page joins the webhook's **storm** (a
``webhook_storms`` row; the step's escalation row gets ``folded_into = 'hook:<id>'``)
instead of sending its own trigger (:func:`fold_webhook_page`). An Escalate now never
folds: it is one person asking for one page.

A storm is one incident: its events share the ``dedup_key`` ``nightshift-storm-<id>``.
Its first trigger is due at once; its body is written at its first try
(:func:`fix_storm_body`), so it says what the storm holds by then. A page joining it
once that went out writes one more trigger with the same key, due
:data:`UPDATE_SECONDS` after the storm's last (what joined meanwhile waits for it: a
receiver gets at most one a minute). When none of its alerts pages any more
(acknowledged, silenced or resolved: :func:`end_storms_of`), its resolve is written, or
its trigger withdrawn unsent when none went out (no resolve then). The bodies
(:mod:`bot.webhook_storms_body`) carry the keys an alert's event carries, ``alert_id``
``null``, and ``storm``: how many alerts, which kinds, tiers and scopes.

Every function taking ``tx`` runs inside ``store.write``.

Example:
    >>> # storm = storm_to_join(tx, policy, "pager", now)
    >>> # if storm is not None: fold_webhook_page(tx, alert, storm=storm, ...)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from bot import webhook_storms_body as bodies
from bot.alerts.model import Alert
from bot.alerts.storm_members import hook_alerts as storm_alerts
from bot.alerts.storm_members import hook_ref, hook_still_pages, storm_of, storms_of_alert
from bot.webhooks_rows import MAY_HAVE_TAKEN_IT, end_pending_trigger, insert_event
from guards.config import Policy
from guards.store import Tx

__all__ = [
    "NEW_STORM",
    "STORM_SECONDS",
    "UPDATE_SECONDS",
    "end_storms_of",
    "fix_storm_body",
    "fold_webhook_page",
    "one_end_check_each",
    "resolve_storm",
    "storm_alerts",
    "storm_of",
    "storm_page_note",
    "storm_to_join",
]

#: a webhook pages in a storm while this many of its pages came within this long
STORM_SECONDS = 60.0
#: a storm's next trigger (what joined it since) waits this long after its last one
UPDATE_SECONDS = 60.0
#: :func:`storm_to_join`'s answer: fold into a storm made now
NEW_STORM = 0


def _limit(policy: Policy, webhook: str) -> int:
    """How many pages to ``webhook`` in :data:`STORM_SECONDS` make a storm (0: never):
    its own ``webhooks.<name>.fold_after``, not a person's ``alerts.fold_pages_after``
    (a pager takes far more than a phone's DMs)."""
    hook = policy.webhooks.get(webhook)
    return 0 if hook is None else hook.fold_after


def storm_to_join(tx: Tx, policy: Policy, webhook: str, now: float) -> int | None:
    """The storm a page to ``webhook`` now joins: its open storm's id, :data:`NEW_STORM`,
    or None (it sends its own trigger).

    A page folds while ``fold_after`` pages or more went to ``webhook`` in the last
    :data:`STORM_SECONDS`: its own triggers, and the pages its open storm took. Once
    the pages come slower than that, each goes on its own again (a trickle of unrelated
    alerts after a storm is not added to it)."""
    limit = _limit(policy, webhook)
    if limit <= 0:
        return None
    storm = tx.one(
        "SELECT id FROM webhook_storms WHERE webhook = ? AND ended_at IS NULL"
        " ORDER BY id DESC LIMIT 1",
        (webhook,),
    )
    since = now - STORM_SECONDS
    own = tx.one(
        "SELECT COUNT(*) FROM webhook_deliveries WHERE webhook = ? AND created_at > ?"
        " AND event = 'trigger' AND storm_id IS NULL",
        (webhook, since),
    )
    pages = int(own[0])
    if storm is not None and pages < limit:
        joined = tx.one(
            "SELECT COUNT(*) FROM escalations WHERE folded_into = ? AND at > ?",
            (hook_ref(int(storm[0])), since),
        )
        pages += int(joined[0])
    if pages < limit:
        return None
    return NEW_STORM if storm is None else int(storm[0])


def fold_webhook_page(
    tx: Tx,
    alert: Alert,
    *,
    storm: int,
    webhook: str,
    esc_id: int,
    target: str | None,
    now: float,
) -> int:
    """Carry escalation ``esc_id``'s page to ``webhook`` in ``storm`` (:data:`NEW_STORM`:
    a new one, its trigger due now); returns the storm's id."""
    if storm == NEW_STORM:
        cur = tx.execute(
            "INSERT INTO webhook_storms (webhook, started_at, last_page_at) VALUES (?, ?, ?)",
            (webhook, now, now),
        )
        storm = int(cur.lastrowid or 0)
        _trigger(tx, storm, alert_id=alert.id, webhook=webhook, target=target, at=now, due=now)
    else:
        tx.execute("UPDATE webhook_storms SET last_page_at = ? WHERE id = ?", (now, storm))
        _more(tx, storm, webhook=webhook, target=target, now=now)
    tx.execute("UPDATE escalations SET folded_into = ? WHERE id = ?", (hook_ref(storm), esc_id))
    return storm


def _trigger(
    tx: Tx, storm: int, *, alert_id: int, webhook: str, target: str | None, at: float, due: float
) -> int:
    """A storm trigger, its body written at its first try (:func:`fix_storm_body`)."""
    return insert_event(
        tx,
        alert_id,
        webhook=webhook,
        event="trigger",
        body="",
        at=at,
        target=target,
        storm_id=storm,
        due=due,
    )


def _more(tx: Tx, storm: int, *, webhook: str, target: str | None, now: float) -> None:
    """A page joined ``storm``: unless a trigger of it still waits for its first try (it
    will say so), one more, :data:`UPDATE_SECONDS` after its last."""
    last = tx.one(
        "SELECT id, body, state, created_at, alert_id FROM webhook_deliveries"
        " WHERE storm_id = ? AND event = 'trigger' ORDER BY id DESC LIMIT 1",
        (storm,),
    )
    if last is not None and last[1] == "" and last[2] == "pending":
        return  # its body is written when it goes: this page is in it
    first_alert = tx.one(
        "SELECT alert_id FROM webhook_deliveries WHERE storm_id = ? ORDER BY id LIMIT 1",
        (storm,),
    )
    seed = int(first_alert[0]) if first_alert is not None else 0
    due = now if last is None else max(now, float(last[3]) + UPDATE_SECONDS)
    _trigger(tx, storm, alert_id=seed, webhook=webhook, target=target, at=now, due=due)


def storm_page_note(which: str, *, webhook: str, storm: int) -> str:
    """The alert's thread says its step paged the webhook within a storm.

    Example:
        >>> storm_page_note("step 2 of 3", webhook="phone", storm=4).split(" (")[0]
        '📟 Step 2 of 3: webhook phone is paged in alert storm 4'
    """
    return (
        f"📟 {which[0].upper()}{which[1:]}: webhook {webhook} is paged in alert storm {storm}"
        " (one incident for the pages that came in a burst, not one each); that incident"
        " resolves when none of its alerts pages any more (acknowledged, silenced or resolved)."
    )


def _began(tx: Tx, storm: int, now: float) -> float:
    """When ``storm`` began (``now`` for a row gone)."""
    row = tx.one("SELECT started_at FROM webhook_storms WHERE id = ?", (storm,))
    return float(row[0]) if row is not None else now


def fix_storm_body(tx: Tx, delivery: int, now: float) -> str | None:
    """Write the body of storm trigger row ``delivery`` (what its storm holds now) before
    its first try; returns it (None: the row is no longer to be sent)."""
    row = tx.one(
        "SELECT storm_id, webhook, body, state FROM webhook_deliveries WHERE id = ?",
        (delivery,),
    )
    if row is None or row[3] != "pending":
        return None
    if row[2]:
        return str(row[2])  # written at an earlier try
    storm, webhook = int(row[0]), str(row[1])
    number = tx.one(
        "SELECT COUNT(*) FROM webhook_deliveries WHERE storm_id = ? AND event = 'trigger'"
        " AND id < ?",
        (storm, delivery),
    )
    body = bodies.storm_body(
        storm_alerts(tx, storm),
        storm=storm,
        event="trigger",
        webhook=webhook,
        at=now,
        update=int(number[0]),
        since=_began(tx, storm, now),
    )
    tx.execute("UPDATE webhook_deliveries SET body = ? WHERE id = ?", (body, delivery))
    return body


# Inside one_end_check_each: the storms to check once it ends.
_DEFERRED: ContextVar[set[int] | None] = ContextVar("nightshift_storm_ends", default=None)


def end_storms_of(tx: Tx, alert: Alert, now: float) -> list[int]:
    """``alert`` no longer pages: end each open storm carrying it whose alerts all stopped
    paging (inside :func:`one_end_check_each`: once it ends). Returns the resolve rows
    written."""
    storms = [
        storm
        for ref in storms_of_alert(tx, alert.id, "hook")
        if (storm := storm_of(ref)) is not None
    ]
    deferred = _DEFERRED.get()
    if deferred is not None:
        deferred.update(storms)
        return []
    return [r for storm in storms if (r := _end_if_quiet(tx, storm, now)) is not None]


@contextmanager
def one_end_check_each(tx: Tx) -> Iterator[None]:
    """Within it, a storm whose alerts stop paging is checked once, at the end: a silence
    or *Acknowledge all* over its 400 alerts asks once whether it still pages, not 400
    times (each over all of them)."""
    storms: set[int] = set()
    token = _DEFERRED.set(storms)
    try:
        yield
    finally:
        _DEFERRED.reset(token)
    now = tx.clock.now()  # not after a failure: its writes are rolled back anyway
    for storm in sorted(storms):
        _end_if_quiet(tx, storm, now)


def _end_if_quiet(tx: Tx, storm: int, now: float) -> int | None:
    """End ``storm`` if it is open and none of its alerts pages; its resolve row, if any."""
    row = tx.one("SELECT webhook FROM webhook_storms WHERE id = ? AND ended_at IS NULL", (storm,))
    if row is None or hook_still_pages(tx, storm):
        return None
    tx.execute("UPDATE webhook_storms SET ended_at = ? WHERE id = ?", (now, storm))
    members = storm_alerts(tx, storm)  # (once: the storm ends)
    return _end(tx, storm, webhook=str(row[0]), members=members, now=now)


def _end(tx: Tx, storm: int, *, webhook: str, members: list[Alert], now: float) -> int | None:
    """Withdraw ``storm``'s triggers not sent yet; its resolve if one may have got there.

    As an alert's (:func:`bot.webhooks_rows.withdraw_triggers`): one that reached no
    receiver (never tried, a 4xx, never connected) is withdrawn unsent; one a try of
    which got no answer or a 5xx is not tried again, and the resolve follows it. A try
    in flight now is recorded by the sender, which sends the resolve if it got through;
    a resolve written now waits for that try's answer (:mod:`bot.webhooks_flight`)."""
    for delivery, reached in tx.all(
        "SELECT id, reached FROM webhook_deliveries WHERE storm_id = ?"
        " AND event = 'trigger' AND state = 'pending'",
        (storm,),
    ):
        end_pending_trigger(tx, delivery, reached=bool(reached), at=now)
    reached = tx.one(  # as for an alert's (bot.webhooks_rows.enqueue_resolves)
        "SELECT id FROM webhook_deliveries WHERE storm_id = ? AND event = 'trigger'"
        f" AND {MAY_HAVE_TAKEN_IT} ORDER BY id DESC LIMIT 1",
        (storm,),
    )
    if reached is None:
        return None
    return resolve_storm(
        tx, storm, webhook=webhook, trigger=int(reached[0]), members=members, now=now
    )


def resolve_storm(
    tx: Tx, storm: int, *, webhook: str, trigger: int, members: list[Alert], now: float
) -> int:
    """Write ``storm``'s resolve, sent where its trigger ``trigger`` was."""
    row = tx.one("SELECT alert_id, target FROM webhook_deliveries WHERE id = ?", (trigger,))
    began = _began(tx, storm, now)
    body = bodies.storm_body(
        members, storm=storm, event="resolve", webhook=webhook, at=now, update=0, since=began
    )
    return insert_event(
        tx,
        int(row[0]),
        webhook=webhook,
        event="resolve",
        body=body,
        at=now,
        resolves=trigger,
        target=row[1],
        storm_id=storm,
    )
