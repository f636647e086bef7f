"""An alert's Slack messages: what they show, posting them, keeping them current.

:class:`AlertMessages` is the base of the alert engine: it reads an alert with what
its message shows (whom it paged, its silence, the next escalation step) and owns the
messages themselves.

- **Posting**: a P0/P1 is posted once to the alerts channel of its scope; a P0
  mentions the first responder and overtakes ordinary posts in the outbox.
- **Updates**: a later change updates the message in place at once when urgent,
  else at most once per ``update_interval_seconds``: :meth:`AlertMessages.touch`
  marks it dirty and the tick sends the trailing update
  (:meth:`AlertMessages._flush_updates`).
- **Pages**: an acknowledgement or a resolution also updates the DMs the alert sent.
- **Budget changes**: an open budget alert shows the limits set on its scope since it
  fired (who, when), from ``budget_limits``, so every redraw keeps saying so.
- **Escalate now** carries the step it was rendered at (value ``"<id>:<step>"``, see
  :func:`escalate_value`), so a second or late click can tell that the alert has moved
  on; before the chain is armed (an alert's first post) the value is the plain id.

Every method taking ``tx`` runs inside ``store.write``.

Example:
    >>> # alert = engine.get(tx, 42)
    >>> # engine.touch(tx, alert, tx.clock.now(), urgent=True)
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from bot import webhook_storms
from bot.alerts.escalation import Chain, notify_target
from bot.alerts.first_page import first_step, tell_next, webhook_page, webhook_prefix
from bot.alerts.folding import fold_post, folds_here, refresh_folds_of, withdraw_pages
from bot.alerts.model import ALERT_COLUMNS, Alert, tagged
from bot.alerts.oncall import Override, on_call
from bot.alerts.render import BudgetSet, Paged, Silenced, alert_message
from bot.alerts.render_time import clock_time
from bot.outbox import enqueue, enqueue_edit
from bot.people import departed
from bot.webhooks_rows import delivery_notes, enqueue_resolves, withdraw_triggers
from guards.config import Policy
from guards.errors import NotFound
from guards.ledger import Ledger
from guards.store import Tx

__all__ = [
    "BUDGET_KINDS",
    "DEFAULT_CHANNEL",
    "ESCALATE_ACTION",
    "OPEN_ALERTS",
    "AlertMessages",
    "escalate_value",
]

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "#alerts"
# Every open alert; callers append " AND ..." conditions.
OPEN_ALERTS = f"SELECT {ALERT_COLUMNS} FROM alerts WHERE resolved_at IS NULL"
ESCALATE_ACTION = "alert_escalate"
BUDGET_KINDS = ("budget_exhausted", "budget_threshold")


def escalate_value(alert: Alert) -> str:
    """The Escalate now button's value: ``"<id>:<step>"``, the step a click would take,
    tagged with the alert's first firing (:func:`~bot.alerts.model.tagged`).

    Example:
        ``"20:1~1767225611123"`` for #20 whose next step is the second of the chain;
        ``"20~1767225611123"`` while it has no next step (not armed yet, or through its
        chain).
    """
    value = str(alert.id) if alert.esc_step is None else f"{alert.id}:{alert.esc_step}"
    return tagged(value, alert.first_at)


class AlertMessages:
    """Reads alerts and keeps their Slack messages current; stateless beyond the policy."""

    def __init__(self, *, policy: Policy, ledger: Ledger | None = None) -> None:
        self.policy = policy
        self.ledger = ledger
        self.tz = ZoneInfo(policy.timezone)
        self.chain = Chain.from_policy(policy)
        # When this process began watching heartbeats (set by the component at start).
        self.watching_since: float | None = None

    # -- reading ------------------------------------------------------------------------

    def get(self, tx: Tx, alert_id: int) -> Alert:
        row = tx.one(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
        if row is None:
            raise NotFound(f"there is no alert #{alert_id}; `/agent alerts` lists the open ones")
        return Alert.from_row(row)

    def open_alerts(self, tx: Tx) -> list[Alert]:
        rows = tx.all(OPEN_ALERTS + " ORDER BY tier, first_at")
        return [Alert.from_row(r) for r in rows]

    def overrides(self, tx: Tx, now: float) -> list[Override]:
        """The overrides not over at ``now``: active ones and those booked ahead (the next
        hand-off reads their start; :func:`~bot.alerts.oncall.on_call` counts each only
        from its ``starts_at``, so one booked ahead pages nobody before it starts)."""
        rows = tx.all(
            "SELECT rotation, user_id, starts_at, ends_at, created_at, created_by"
            " FROM oncall_overrides WHERE ends_at > ? AND ends_at > starts_at ORDER BY id",
            (now,),
        )
        return [Override(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def channel_for(self, scope: str) -> str:
        return self.policy.channels.alerts_for(scope) or DEFAULT_CHANNEL

    def first_responder(self, tx: Tx, now: float) -> str | None:
        """Whom a P0 mentions: whom the chain's first step pages (a step that pages nobody,
        off hours or left, is passed over at once: the next one's), else the first
        rotation on hours."""
        overrides = self.overrides(tx, now)
        oncall = self.policy.oncall
        for step in self.chain.steps:
            user = notify_target(step, oncall=oncall, tz=self.tz, now=now, overrides=overrides)
            if user:
                return user
            if not step.notify.startswith(("rotation:", "user:")):
                break  # the channel is told first: the chain waits for its next step
        for rotation in oncall.rotations:
            gone = departed(oncall, rotation.users)  # nobody mentions who left
            now_on = on_call(rotation, self.tz, now, overrides, gone)
            if now_on.resumes_at is None:
                return now_on.user
        if oncall.rotations:  # every rotation off hours: the first is paged anyway
            first = oncall.rotations[0]
            return on_call(first, self.tz, now, overrides, departed(oncall, first.users)).user
        return None

    def silenced(self, tx: Tx, alert: Alert) -> Silenced | None:
        """The silence that holds ``alert``: who made it, when, until when (None: none)."""
        if alert.silence_id is None:
            return None
        row = tx.one(
            # a booked silence holds from its start, not from when it was booked
            "SELECT created_by, MAX(created_at, COALESCE(starts_at, 0)), expires_at"
            " FROM silences WHERE id = ?",
            (alert.silence_id,),
        )
        return Silenced(str(row[0]), float(row[1]), float(row[2])) if row else None

    def budget_set(self, tx: Tx, alert: Alert) -> list[BudgetSet]:
        """The limits set on a budget alert's scope since it first fired (at run time)."""
        if alert.kind not in BUDGET_KINDS or alert.resolved_at is not None:
            return []
        rows = tx.all(
            "SELECT window, limit_micros, set_by, set_at FROM budget_limits"
            " WHERE scope = ? AND set_at >= ? ORDER BY set_at",
            (alert.scope, alert.first_at),
        )
        return [BudgetSet(str(r[0]), int(r[1]), str(r[2]), float(r[3])) for r in rows]

    def paged(self, tx: Tx, alert_id: int) -> list[Paged]:
        rows = tx.all(
            "SELECT target, at, step, manual_by, withdrawn_at, folded_into, notify,"
            " CASE WHEN notify LIKE 'webhook:%' THEN id END FROM escalations"
            " WHERE alert_id = ? ORDER BY id",
            (alert_id,),
        )
        chain = self.chain
        # a webhook step's note: how its trigger went (delivered, retrying, failed)
        sent = delivery_notes(tx, alert_id) if any(r[7] is not None for r in rows) else {}
        return [
            Paged(
                r[0],
                r[1],
                chain.describe(r[2]) if chain.steps else "",
                r[3],
                # (a webhook's storm: how its trigger went, as an own trigger's is)
                note="withdrawn"
                if r[4] is not None
                else sent.get(r[7]) or ("folded" if r[5] else None),
                nobody=r[0] is None and r[6] != "channel" and not r[6].startswith("webhook:"),
                webhook=r[6][8:] if r[6].startswith("webhook:") else None,
            )
            for r in rows
        ]

    def render(
        self, tx: Tx, alert: Alert, now: float, *, dm_reason: str | None = None
    ) -> tuple[str, list[dict[str, Any]]]:
        next_step, paged = None, self.paged(tx, alert.id)
        # a P0 whose chain paged a webhook, not a person: its post says how that went
        webhook = webhook_page(self, tx, alert, now)
        if alert.esc_at is not None and alert.esc_step is not None and self.chain.steps:
            step = self.chain.step(alert.esc_step)
            who = "the channel" if step.notify == "channel" else step.notify
            # as the message's other times: the day when not today, the zone's
            # abbreviation the night the clocks show that time twice (recheck25 M2)
            next_step = f"{who} at {clock_time(alert.esc_at, self.tz, now=now)}"
        text, blocks = alert_message(
            alert,
            tz=self.tz,
            now=now,
            paged=paged,
            lead=webhook_prefix(webhook) if webhook else None,
            silenced=self.silenced(tx, alert),
            next_step=next_step,
            dm_reason=dm_reason,
            budget_set=self.budget_set(tx, alert),
        )
        _stamp_step(blocks, alert)
        return text, blocks

    # -- messages -----------------------------------------------------------------------

    def _post(self, tx: Tx, alert: Alert, now: float) -> None:
        channel = self.channel_for(alert.scope)
        p0 = alert.tier == "P0"
        if folds_here(tx, self.policy, channel, alert_id=alert.id, now=now, urgent=p0):  # a storm
            fold_post(self, tx, alert=alert, lane=channel, now=now)
            return
        self.post_alone(tx, alert, now)

    def post_alone(self, tx: Tx, alert: Alert, now: float) -> None:
        """Post ``alert`` in its channel on its own (not folded into a storm summary)."""
        channel = self.channel_for(alert.scope)
        oncall = None
        first = first_step(self, tx, now) if alert.tier == "P0" else None
        if alert.tier == "P0" and not (first == "channel" or (first or "").startswith("webhook:")):
            oncall = self.first_responder(tx, now)  # (a channel or webhook first pages nobody)
        tx.execute(
            "UPDATE alerts SET channel = ?, posted_at = ?, updated_at = ?, dirty = 0,"
            " oncall_user = COALESCE(oncall_user, ?) WHERE id = ?",  # (whom it paged since)
            (channel, now, now, oncall, alert.id),
        )
        alert = self.get(tx, alert.id)
        text, blocks = self.render(tx, alert, now)
        enqueue(
            tx,
            method="chat.postMessage",
            args={"channel": channel, "text": text, "blocks": blocks},
            channel=channel,
            ref=alert.post_ref,
            urgent=alert.tier == "P0",  # a page does not wait behind P1 posts
        )

    def page_alone(self, tx: Tx, alert: Alert, esc_id: int, now: float) -> bool:
        """Send escalation ``esc_id``'s page of ``alert`` on its own: the storm summary
        that was to carry it was deleted in Slack before it showed it
        (:mod:`bot.alerts.storm_alone`). False: no person to page, or its DM exists."""
        row = tx.one("SELECT step, notify, target FROM escalations WHERE id = ?", (esc_id,))
        ref = f"alert:{alert.id}:dm:{esc_id}"
        if row is None or row[2] is None or tx.one("SELECT 1 FROM outbox WHERE ref = ?", (ref,)):
            return False
        position, notify, target = int(row[0]), str(row[1]), str(row[2])
        which = self.chain.describe(position) if self.chain.steps else f"step {position + 1}"
        name = notify.partition(":")[2]
        why = f"You are paged ({name}, {which})" if name else f"You are paged ({which})"
        why += ": the alert storm summary that carried this page was deleted in Slack"
        text, blocks = self.render(tx, alert, now, dm_reason=why)
        args = {"channel": target, "text": text, "blocks": blocks}
        urgent = alert.tier == "P0"
        enqueue(tx, method="chat.postMessage", args=args, channel=target, ref=ref, urgent=urgent)
        return True

    def touch(self, tx: Tx, alert: Alert, now: float, *, urgent: bool = False) -> None:
        """Show a change in the posted message: now if urgent or the interval has passed."""
        if alert.posted_at is None:
            return
        if alert.tier == "P0" and tell_next(self, tx, alert, now):
            urgent = True  # its webhook page failed: the post names who is next at once
        interval = self.policy.alerts.update_interval_seconds
        if urgent or alert.updated_at is None or now - alert.updated_at >= interval:
            self._update(tx, alert, now, urgent=urgent)
        elif not alert.dirty:
            tx.execute("UPDATE alerts SET dirty = 1 WHERE id = ?", (alert.id,))

    def _update(self, tx: Tx, alert: Alert, now: float, *, urgent: bool = False) -> None:
        text, blocks = self.render(tx, alert, now)
        enqueue_edit(
            tx, alert.post_ref, channel=alert.channel, text=text, blocks=blocks, urgent=urgent
        )
        tx.execute(
            "UPDATE alerts SET updated_at = ?, updates = updates + 1, dirty = 0 WHERE id = ?",
            (now, alert.id),
        )

    def _flush_updates(self, tx: Tx, now: float) -> int:
        """Send the trailing update of every message whose interval has passed."""
        rows = tx.all(
            OPEN_ALERTS + " AND dirty = 1 AND posted_at IS NOT NULL AND updated_at <= ? LIMIT 500",
            (now - self.policy.alerts.update_interval_seconds,),
        )
        for row in rows:
            alert = Alert.from_row(row)
            tx.execute("SAVEPOINT alert_update")
            try:
                self._update(tx, alert, now)
            except Exception:  # one message that cannot be drawn must not stop the tick
                log.exception("alert #%d: its message could not be updated", alert.id)
                tx.execute("ROLLBACK TO alert_update")
                tx.execute("UPDATE alerts SET dirty = 0 WHERE id = ?", (alert.id,))
            tx.execute("RELEASE alert_update")
        return len(rows)

    def update_pages(self, tx: Tx, alert: Alert, now: float, *, up_to: int | None = None) -> None:
        """Show an acknowledgement, a silence or a resolution in the DMs this alert sent
        (those up to escalation ``up_to``, when given).

        Pages that have not gone out yet are withdrawn instead (the alert no longer
        pages anyone), and storm summaries still waiting drop it (:mod:`bot.alerts.folding`).
        """
        if alert.state != "open":
            withdraw_pages(tx, alert, now)
            withdraw_triggers(tx, alert, now)  # webhook pages not sent yet: not sent at all
            enqueue_resolves(tx, alert, now)  # the webhooks it paged close their incident
            webhook_storms.end_storms_of(tx, alert, now)  # its webhooks' storms, if the last
        refresh_folds_of(self, tx, alert, now)
        rows = tx.all(
            "SELECT id, target FROM escalations WHERE alert_id = ? AND target IS NOT NULL"
            " AND id <= ? AND withdrawn_at IS NULL"
            # (one a deleted storm summary was to carry was paged on its own: storm_alone)
            " AND (folded_into IS NULL OR EXISTS (SELECT 1 FROM outbox s"
            "  WHERE s.ref = 'alert:' || escalations.alert_id || ':dm:' || escalations.id))"
            # a page Slack refused is not there to edit (bot.alerts.refused)
            " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.state = 'failed'"
            "  AND o.ref = 'alert:' || escalations.alert_id || ':dm:' || escalations.id)",
            (alert.id, up_to if up_to is not None else 2**62),
        )
        if not rows:
            return
        text, blocks = self.render(tx, alert, now, dm_reason="You were paged for this alert")
        for esc_id, target in rows:
            ref = f"alert:{alert.id}:dm:{esc_id}"
            enqueue_edit(tx, ref, channel=target, text=text, blocks=blocks)


def _stamp_step(blocks: list[dict[str, Any]], alert: Alert) -> None:
    """Put the alert's step in its Escalate now button (the renderer puts the id alone)."""
    for block in blocks:
        if block.get("type") != "actions":
            continue
        for element in block.get("elements") or ():
            if element.get("action_id") == ESCALATE_ACTION:
                element["value"] = escalate_value(alert)
