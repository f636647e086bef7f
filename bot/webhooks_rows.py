"""Webhook deliveries as rows: what an escalation step and the end of paging write.

A webhook step (``notify: webhook:NAME``) writes a **trigger** row in the transaction
that takes the step (:func:`enqueue_trigger`); an alert whose paging ends (acknowledged,
silenced or resolved: :meth:`bot.alerts.messages.AlertMessages.update_pages`) writes
one **resolve** row per webhook that got a trigger for it since its last resolve
(:func:`enqueue_resolves`). A trigger still waiting to go out when paging ends is
withdrawn instead (:func:`withdraw_triggers`), as a DM page is: the receiver never
opened an incident, so it gets no resolve either. The rows are delivered after the commit by
:class:`bot.webhooks.WebhookSender`; the body is fixed here, so every try sends the
same bytes. The body (see the README, "Webhook steps")::

    {"event": "trigger", "dedup_key": "nightshift-alert-42", "alert_id": 42,
     "kind": "breaker_opened_spend", "tier": "P0", "scope": "acme/alice/rss-bot",
     "title": "...", "text": "...", "at": "2026-01-05T03:17:00Z",
     "step": "step 2 of 3", "webhook": "pagerduty", "state": "open", "by": null}

Example:
    >>> # enqueue_trigger(tx, alert, webhook="pagerduty", escalation_id=7, step="step 2 of 3")
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.alerts.model import Alert
from bot.alerts.render import title
from bot.alerts.storm_members import storm_of
from guards.store import Tx
from guards.words import clip_chars

__all__ = [
    "DELIVERY_COLUMNS",
    "ERROR_CHARS",
    "MAY_HAVE_TAKEN_IT",
    "STOPPED",
    "body_for",
    "claim",
    "dedup_key",
    "delivery_notes",
    "end_pending_trigger",
    "enqueue_resolve",
    "enqueue_resolves",
    "enqueue_trigger",
    "insert_event",
    "iso_utc",
    "trigger_target",
    "withdraw_triggers",
]

DELIVERY_COLUMNS = (
    "id, webhook, alert_id, event, body, created_at, next_at, attempts, escalation_id"
)
# what ended an alert's paging, as a resolve event's ``state`` says it
_STATES = {"acked": "acknowledged", "silenced": "silenced", "resolved": "resolved"}
#: the ``last_error`` of a trigger no longer tried once paging ended (a try of it got no
#: answer or a 5xx, so it may have reached the receiver: the resolve is sent after it)
STOPPED = "not tried again: the alert's paging ended (its resolve is sent)"
#: how much of a try's error a post, a thread note or a story line shows, "…" ending a cut
#: one (recheck25c L1: the taken-out reason was cut mid-word, its HTTP status lost)
ERROR_CHARS = 160
# a trigger withdrawn unsent: kept as a row (failed), so that its id is never given again
WITHDRAWN = "withdrawn unsent: the alert's paging ended before the page got through"
#: a trigger row that may have reached the receiver, so may have opened an incident there
#: (which gets a resolve): delivered, or a try of it went out and got no answer or a 5xx
#: (a gateway's 502 or 504: passed on; its ``reached``, migration 0045). One withdrawn
#: unsent, one answered with a 4xx at every try, one that never connected or was never
#: sent (its secret_file unreadable, its webhook taken out at a reload) opened nothing:
#: no resolve follows it.
MAY_HAVE_TAKEN_IT = "reached = 1"


def dedup_key(alert_id: int) -> str:
    """The key a receiver groups an alert's events by (PagerDuty's ``dedup_key``)."""
    return f"nightshift-alert-{alert_id}"


def iso_utc(at: float) -> str:
    """``2026-01-05T03:17:00Z``: an instant in UTC, to the second."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(alert: Alert, event: str) -> str:
    """What a phone shows: plain text, no Slack markup."""
    head = f"{alert.tier} #{alert.id} {title(alert)} on {alert.scope}"
    times = f"fired {alert.count} times" if alert.count > 1 else "fired once"
    if event == "trigger":
        return f"{head}: {times} since {iso_utc(alert.first_at)}, unacknowledged"
    return f"{head}: {_STATES.get(alert.state, alert.state)}"


def body_for(alert: Alert, *, event: str, webhook: str, step: str | None, at: float) -> str:
    """The JSON body of one event for ``alert`` (compact, keys in a fixed order)."""
    by = (alert.resolved_by or alert.acked_by) if event == "resolve" else None
    payload: dict[str, Any] = {
        "event": event,
        "dedup_key": dedup_key(alert.id),
        "alert_id": alert.id,
        "kind": alert.kind,
        "tier": alert.tier,
        "scope": alert.scope,
        "title": title(alert),
        "text": _text(alert, event),
        "at": iso_utc(at),
        "step": step,
        "webhook": webhook,
        "state": "open" if event == "trigger" else _STATES.get(alert.state, alert.state),
        "by": by,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def enqueue_trigger(
    tx: Tx,
    alert: Alert,
    *,
    webhook: str,
    escalation_id: int,
    step: str,
    at: float,
    target: str | None = None,
) -> int:
    """Write the trigger row of a webhook step taken now; returns its id. ``target``: the
    webhook as the policy has it now (:func:`bot.webhooks_target.target_of`), where its
    resolve goes should the webhook be renamed or taken out."""
    body = body_for(alert, event="trigger", webhook=webhook, step=step, at=at)
    return insert_event(
        tx,
        alert.id,
        webhook=webhook,
        event="trigger",
        body=body,
        at=at,
        esc=escalation_id,
        target=target,
    )


def enqueue_resolves(tx: Tx, alert: Alert, at: float) -> list[int]:
    """Write a resolve row for each webhook that got a trigger for ``alert`` since its
    last resolve (none twice: an alert acknowledged, then resolved, resolves once), and
    may have taken it (:data:`MAY_HAVE_TAKEN_IT`): not one withdrawn unsent, nor one that
    never got to the receiver. Returns their ids."""
    rows = tx.all(
        "SELECT webhook, max(id) FROM webhook_deliveries t WHERE alert_id = ?"
        " AND event = 'trigger' AND storm_id IS NULL"  # (a storm's: bot.webhook_storms)
        f" AND {MAY_HAVE_TAKEN_IT}"
        " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries r"
        "  WHERE r.alert_id = t.alert_id AND r.webhook = t.webhook AND r.event = 'resolve'"
        "  AND r.storm_id IS NULL"
        "  AND r.id > t.id) GROUP BY webhook ORDER BY webhook",
        (alert.id,),
    )
    return [
        enqueue_resolve(tx, alert, webhook=str(webhook), trigger=int(trigger), at=at)
        for webhook, trigger in rows
    ]


def enqueue_resolve(tx: Tx, alert: Alert, *, webhook: str, trigger: int, at: float) -> int:
    """Write the resolve of ``alert`` at ``webhook`` answering trigger row ``trigger``
    (sent where that trigger was: its ``target`` is kept)."""
    body = body_for(alert, event="resolve", webhook=webhook, step=None, at=at)
    return insert_event(
        tx,
        alert.id,
        webhook=webhook,
        event="resolve",
        body=body,
        at=at,
        resolves=trigger,
        target=trigger_target(tx, trigger),
    )


def trigger_target(tx: Tx, trigger: int) -> str | None:
    """The ``target`` trigger row ``trigger`` was written with (None: before 0044)."""
    row = tx.one("SELECT target FROM webhook_deliveries WHERE id = ?", (trigger,))
    return None if row is None or row[0] is None else str(row[0])


def insert_event(
    tx: Tx,
    alert_id: int,
    *,
    webhook: str,
    event: str,
    body: str,
    at: float,
    esc: int | None = None,
    resolves: int | None = None,
    target: str | None = None,
    storm_id: int | None = None,
    due: float | None = None,
) -> int:
    """Write one event row, due at ``due`` (now when None), and wake the sender after the
    commit; its id."""
    cur = tx.execute(
        "INSERT INTO webhook_deliveries (webhook, alert_id, event, escalation_id, resolves,"
        " body, created_at, next_at, target, storm_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            webhook,
            alert_id,
            event,
            esc,
            resolves,
            body,
            at,
            at if due is None else due,
            target,
            storm_id,
        ),
    )
    _wake_after(tx)
    return int(cur.lastrowid or 0)


def withdraw_triggers(tx: Tx, alert: Alert, at: float) -> int:
    """Withdraw ``alert``'s triggers still waiting to go out (its paging ended before they
    got through); returns how many.

    One that reached no phone (never tried, or every try answered with a 4xx, never
    connected or not sent) ends failed as :data:`WITHDRAWN` (kept: a delivery id is never
    given twice, recheck23 H1), its step keeps ``withdrawn_at`` (the message says
    "withdrawn unsent") and no resolve follows. One a try of which got no answer or a 5xx
    (a timeout, a gateway's 504: it may have got there) is not tried again, and the
    resolve follows it. A try in flight now is recorded by the sender, which sends the
    resolve if it got through; a resolve written now waits for that try's answer
    (:mod:`bot.webhooks_flight`).
    """
    rows = tx.all(
        "SELECT id, escalation_id, reached FROM webhook_deliveries"
        " WHERE alert_id = ? AND event = 'trigger' AND state = 'pending' AND storm_id IS NULL",
        (alert.id,),
    )
    for delivery, esc_id, reached in rows:
        if end_pending_trigger(tx, delivery, reached=bool(reached), at=at):
            tx.execute(
                "UPDATE escalations SET withdrawn_at = ? WHERE id = ? AND withdrawn_at IS NULL",
                (at, esc_id),
            )
    return len(rows)


def claim(tx: Tx, delivery: int, *, attempts: int, sending_at: float | None) -> bool:
    """Claim row ``delivery`` for a try about to go out, as a pass read it (pending, after
    ``attempts`` tries); False when that read is stale: withdrawn meanwhile
    (:func:`withdraw_triggers`, :func:`end_pending_trigger`), or another try of it
    recorded. The check is a write under the writer's lock, so of a try and a withdrawal
    only one goes first: a withdrawal after the claim finds the try in flight (the sender
    records it, and sends the resolve if it got through). A try whose request goes out
    (``sending_at``, its time; None: not sent at all) marks the row ``in_flight_at``
    until its answer is recorded: a resolve of the same alert or storm at that webhook
    waits meanwhile (review26 R1 L2), and a restart after a crash knows the try may
    have got there (:mod:`bot.webhooks_flight`)."""
    return bool(
        tx.execute(
            "UPDATE webhook_deliveries SET in_flight_at = ? WHERE id = ?"
            " AND state = 'pending' AND attempts = ?",
            (sending_at, delivery, attempts),
        ).rowcount
    )


def end_pending_trigger(tx: Tx, delivery: int, *, reached: bool, at: float) -> bool:
    """End a trigger still waiting to go out, its paging over: withdrawn unsent
    (:data:`WITHDRAWN`, True) when no try of it reached the receiver, else not tried again
    (:data:`STOPPED`: a try got no answer, so it may have got there, and the resolve
    follows it)."""
    withdrawn = not reached
    tx.execute(
        "UPDATE webhook_deliveries SET state = 'failed', last_error = ?, done_at = ? WHERE id = ?",
        (WITHDRAWN if withdrawn else STOPPED, at, delivery),
    )
    return withdrawn


def delivery_notes(tx: Tx, alert_id: int) -> dict[int, str]:
    """How each webhook step of ``alert_id`` went, by escalation id: ``sending``,
    ``delivered``, ``⚠️ retrying, last: HTTP 503``, ``⚠️ failed: HTTP 404`` or ``not tried
    again`` or ``withdrawn unsent``; a step folded into a storm, ``in alert storm 3: ``
    and how the storm's trigger carrying it went."""
    rows = tx.all(
        "SELECT escalation_id, state, attempts, last_status, last_error FROM"
        " webhook_deliveries WHERE alert_id = ? AND event = 'trigger'"
        " AND escalation_id IS NOT NULL",
        (alert_id,),
    )
    notes = {int(r[0]): delivery_note(r[1], int(r[2]), r[3], r[4]) for r in rows}
    notes.update(_storm_notes(tx, alert_id))
    return notes


def _storm_notes(tx: Tx, alert_id: int) -> dict[int, str]:
    """How each webhook step of ``alert_id`` folded into a storm (bot.webhook_storms) went:
    ``in alert storm 3: delivered`` or ``… ⚠️ failed: HTTP 400``, read from the storm's
    trigger that carried it (the last written by the time it joined), or ``delivered``
    when a later one of the storm got through (it counts every alert of the storm)."""
    notes = {}
    for esc_id, ref, at in tx.all(
        "SELECT id, folded_into, at FROM escalations WHERE alert_id = ?"
        " AND folded_into LIKE 'hook:%'",
        (alert_id,),
    ):
        storm = storm_of(str(ref))
        if storm is None:
            continue
        triggers = tx.all(
            "SELECT id, created_at, state, attempts, last_status, last_error FROM"
            " webhook_deliveries WHERE storm_id = ? AND event = 'trigger' ORDER BY id",
            (storm,),
        )
        carried = [t for t in triggers if float(t[1]) <= float(at)][-1:]
        if not carried:
            how = "sending"
        elif any(t[2] == "delivered" for t in triggers if t[0] >= carried[0][0]):
            how = "delivered"
        else:
            t = carried[0]
            how = delivery_note(t[2], int(t[3]), t[4], t[5])
        notes[int(esc_id)] = f"in alert storm {storm}: {how}"
    return notes


def delivery_note(state: str, attempts: int, status: int | None, error: str | None) -> str:
    """One delivery's state in a few words (see :func:`delivery_notes`)."""
    last = f"HTTP {status}" if status is not None else clip_chars(error or "no answer", ERROR_CHARS)
    if state == "delivered":
        return "delivered"
    if state == "failed":
        if error == WITHDRAWN:
            return "withdrawn unsent"
        return "not tried again" if error == STOPPED else f"⚠️ failed: {last}"
    return f"⚠️ retrying, last: {last}" if attempts else "sending"


def _wake_after(tx: Tx) -> None:
    from bot.webhooks import wake_senders  # (the sender imports this module)

    tx.after_commit.append(wake_senders)
