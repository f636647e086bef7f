"""Paging: taking an alert's escalation steps when they fall due, or by hand.

:class:`AlertPaging` adds the running of the escalation chain
(:class:`~bot.alerts.escalation.Chain`, policy ``oncall.escalation``) to
:class:`~bot.alerts.messages.AlertMessages`. An open alert that is neither
acknowledged nor silenced carries its next step (``esc_step``) and when it is due
(``esc_at``). Taking a step records an ``escalations`` row, DMs the person the step
names (on-call of a rotation, or a user) or, for a ``channel`` step, nudges the
alert's thread with a broadcast reply, then arms the step after it. A ``webhook:NAME``
step writes a trigger for that webhook (:mod:`bot.webhooks`) and says so in the thread.

Steps keep the chain's own times: one taken a little late (a tick) does not push the
next back. One taken more than :data:`LATE` after it fell due (Nightshift was down)
catches up instead (:mod:`bot.alerts.catch_up`): of the steps due by now only the latest
(with any steps due at the same instant) is taken, and the rest are skipped, which the
alert's thread and story say.

Example:
    >>> # taken = engine.run_chains(tx, tx.clock.now())
    >>> # who = engine.escalate(tx, alert, now, manual_by="U1")
"""

from __future__ import annotations

import logging
from typing import Any

from bot import webhook_storms
from bot.alerts.catch_up import LATE, catch_up, say_skipped
from bot.alerts.escalation import nobody_reason, notify_target, off_hours_note
from bot.alerts.folding import fold_page, folds_here, nudge_storm
from bot.alerts.messages import OPEN_ALERTS
from bot.alerts.model import Alert
from bot.alerts.outage import OutageHolds
from bot.alerts.quiet import QUIET_UNTIL, put_off
from bot.alerts.render import HELD_BY, channel_nudge, storm_nudge
from bot.alerts.storm_gone import summary_is_gone
from bot.alerts.storm_members import summary_alerts
from bot.alerts.storm_page import follow_pages
from bot.outbox import enqueue, enqueue_thread_reply
from bot.webhooks_rows import enqueue_trigger
from bot.webhooks_target import target_of
from guards.config import EscalationStep
from guards.store import Tx

__all__ = ["LATE", "AlertPaging"]

log = logging.getLogger(__name__)
_MAX_CHAIN_PASSES = 50
#: seconds a step covered by its agent's open P0 waits before it looks again
COVERED_WAIT = 60.0


class AlertPaging(OutageHolds):
    """Runs escalation chains over the alerts' rows; stateless beyond the policy."""

    def run_chains(self, tx: Tx, now: float, *, alert_id: int | None = None) -> int:
        """Take every escalation step that is due; returns how many were taken.

        Each alert's step is its own savepoint: one that fails is logged and tried again
        a minute later, and the tick (the heartbeat watchdog, silences, the other alerts)
        goes on. Without a chain in the policy (taken out, or the policy file missing
        after a reboot) nothing is taken: the steps the alerts carry wait, and go on if a
        chain comes back."""
        if not self.chain.steps:
            return 0
        taken = 0
        where = OPEN_ALERTS + (
            " AND esc_at IS NOT NULL AND esc_at <= ? AND acked_at IS NULL AND silence_id IS NULL"
        )
        params: tuple[Any, ...] = (now,)
        if alert_id is not None:
            where += " AND id = ?"
            params = (now, alert_id)
        for _ in range(_MAX_CHAIN_PASSES):
            rows = tx.all(where + " ORDER BY esc_at LIMIT 200", params)
            if not rows:
                break
            for row in rows:
                alert = Alert.from_row(row)
                tx.execute("SAVEPOINT chain_step")
                try:
                    taken += self._take_step(tx, alert, now)
                except Exception:
                    log.exception(
                        "alert #%d: its escalation step failed; tried again in %ds",
                        alert.id,
                        COVERED_WAIT,
                    )
                    tx.execute("ROLLBACK TO chain_step")
                    tx.execute(
                        "UPDATE alerts SET esc_at = ? WHERE id = ?", (now + COVERED_WAIT, alert.id)
                    )
                tx.execute("RELEASE chain_step")
        return taken

    def _take_step(self, tx: Tx, alert: Alert, now: float) -> int:
        """Take the alert's due step (1), or put it off while its agent's P0 pages (0), or
        while its model's outage holds it (an alert posted before the model's breaker
        opened): until :meth:`held_to_post` lets it go, so also while its agent's trial
        runs after the model's breaker closed (review30 H1)."""
        if alert.facts.get(HELD_BY):
            tx.execute("UPDATE alerts SET esc_at = ? WHERE id = ?", (now + COVERED_WAIT, alert.id))
            return 0
        p0 = self._agent_p0(tx, alert)
        if p0 is not None and p0[1]:  # its agent's P0 pages for it: look again soon
            tx.execute("UPDATE alerts SET esc_at = ? WHERE id = ?", (now + COVERED_WAIT, alert.id))
            return 0
        if put_off(self, tx, alert, now):  # a P1 in the quiet hours: until they end
            return 0
        part_of = None if p0 is None else p0[0]
        caught = catch_up(self.chain, alert, now)
        if caught.steps:  # Nightshift was down: the thread and the story say so
            say_skipped(tx, caught, chain=self.chain, tz=self.tz, now=now)
        self.escalate(tx, caught.alert, now, part_of=part_of)
        return 1

    def _agent_p0(self, tx: Tx, alert: Alert) -> tuple[int, bool] | None:
        """The open P0 on the same agent as this P1, and whether it covers the P1's page
        (one agent, one incident, one chain: Alertmanager's inhibition). The step waits
        while that P0 is acknowledged (someone is on it) or still paging; one silenced
        is not looked at, and one whose chain ran out unanswered covers nothing: the P1
        pages, saying it belongs to that P0. A trial request is never covered: it is the
        answer to the P0 (the breaker's), and waits for a person."""
        if alert.tier == "P0" or alert.kind == "half_open_requested":
            return None
        parts = alert.scope.split("/")
        if alert.scope.startswith("model:") or len(parts) < 3:
            return None
        agent = "/".join(parts[:3])
        row = tx.one(
            "SELECT id, acked_at IS NOT NULL OR esc_at IS NOT NULL AS covers FROM alerts"
            " WHERE resolved_at IS NULL AND tier = 'P0' AND id != ? AND silence_id IS NULL"
            " AND (scope = ? OR (scope > ? AND scope < ?)) ORDER BY covers DESC, id DESC LIMIT 1",
            (alert.id, agent, agent + "/", agent + "0"),
        )
        if row is None:
            return None
        if not row[1] and tx.one("SELECT 1 FROM escalations WHERE alert_id = ?", (row[0],)) is None:
            return None  # it never paged anyone (no chain then): this page is not a second one
        return int(row[0]), bool(row[1])

    def step_target(self, tx: Tx, position: int, now: float) -> tuple[EscalationStep, str | None]:
        """The chain's step at ``position`` and whom it pages now (None: the channel)."""
        step = self.chain.step(position)
        return step, notify_target(
            step,
            oncall=self.policy.oncall,
            tz=self.tz,
            now=now,
            overrides=self.overrides(tx, now),
        )

    def _paged_just_before(
        self, tx: Tx, alert_id: int, position: int, target: str | None, manual_by: str | None
    ) -> str | None:
        """``target`` when the chain's step before this one, in the same round, paged that
        same person (on call in two rotations, or covering one by an override): the chain
        goes on to the next step rather than wake them twice (audit21 oncall 2). A click
        on Escalate now pages whom it names (it passes over only the clicker)."""
        if target is None or manual_by is not None:
            return None
        last = tx.one(  # the last step that paged someone or told the channel (past the
            # steps that paged nobody: A, nobody, A must not wake A twice either)
            "SELECT step, target FROM escalations WHERE alert_id = ?"
            " AND (target IS NOT NULL OR notify = 'channel') ORDER BY id DESC LIMIT 1",
            (alert_id,),
        )
        if last is None or last[1] != target or not (last[0] < position):
            return None
        return target if self.chain.same_round(int(last[0]), position) else None

    def escalate(
        self,
        tx: Tx,
        alert: Alert,
        now: float,
        *,
        manual_by: str | None = None,
        part_of: int | None = None,
    ) -> str:
        """Take the alert's next step now; returns who was notified (a user id, 'channel',
        or 'nobody': the step names people who all left the workspace).

        ``part_of``: the id of the agent's P0 whose pages went unanswered, which this
        page belongs to (the page says so)."""
        assert alert.esc_step is not None
        position = alert.esc_step
        due = alert.esc_at if manual_by is None and alert.esc_at is not None else now
        step, target = self.step_target(tx, position, now)
        again = self._paged_just_before(tx, alert.id, position, target, manual_by)
        if again:  # the same person twice in a row wakes nobody new: on to the next step
            target = None
        cur = tx.execute(
            "INSERT INTO escalations (alert_id, step, notify, target, at, manual_by)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (alert.id, position, step.notify, target, now, manual_by),
        )
        esc_id = int(cur.lastrowid or 0)
        following = self.chain.following(position, entry=self.chain.entry(alert.tier) or 0)
        # a step with nobody to page (everyone in its rotation left the workspace): the
        # chain does not wait for nobody, but a round's repeat still waits its time
        webhook = step.notify[8:] if step.notify.startswith("webhook:") else None
        nobody = (target is None and step.notify != "channel" and webhook is None) or again
        next_step, next_at = (None, None)
        if following is not None:
            # Steps keep the chain's own times: a step that fired late (a tick, a restart)
            # does not push the next one back. By hand, the chain goes on from now.
            gap = following[1]
            if nobody and self.chain.same_round(position, following[0]):
                gap = 0
            next_step, next_at = following[0], due + gap
        if alert.acked_at is not None:
            next_at = None  # an acknowledged alert escalated by hand does not re-arm the timer
        tx.execute(  # the channel copy names the person paged last (audit18 fleet)
            "UPDATE alerts SET esc_step = ?, esc_at = ?, oncall_user = COALESCE(?, oncall_user)"
            " WHERE id = ?",
            (next_step, next_at, target, alert.id),
        )
        alert = self.get(tx, alert.id)
        if target is not None:
            name = step.notify.partition(":")[2]
            why = f"You are paged ({name}, {self.chain.describe(position)})"
            if part_of is not None:
                why += f", part of P0 #{part_of} on this agent, whose pages went unanswered"
            off_hours = off_hours_note(
                step,
                oncall=self.policy.oncall,
                tz=self.tz,
                now=now,
                overrides=self.overrides(tx, now),
            )
            if off_hours is not None:
                why += f": {off_hours}"
                first_round = position < len(self.chain.steps)  # said once, not each round
                if first_round and alert.posted_at is not None and alert.channel is not None:
                    enqueue_thread_reply(
                        tx,
                        parent=alert.post_ref,
                        text=f"⚠️ {off_hours}: paging <@{target}> anyway.",
                        channel=alert.channel,
                    )
            urgent = alert.tier == "P0"
            if manual_by is None and folds_here(
                tx, self.policy, target, alert_id=alert.id, now=now, urgent=urgent, pages=True
            ):
                fold_page(self, tx, lane=target, esc_id=esc_id, now=now)  # a storm
            else:
                text, blocks = self.render(tx, alert, now, dm_reason=why)
                enqueue(
                    tx,
                    method="chat.postMessage",
                    args={"channel": target, "text": text, "blocks": blocks},
                    channel=target,
                    ref=f"alert:{alert.id}:dm:{esc_id}",
                    urgent=urgent,
                )
            if urgent and alert.posted_at is None and alert.folded_into is not None:
                # its storm summary's page line names whom it paged now (review27 R1 L2)
                follow_pages(self, tx, [alert.folded_into], now=now)
        elif webhook is not None:
            manual = manual_by is not None
            self._page_webhook(
                tx, alert, webhook, esc_id=esc_id, position=position, now=now, manual=manual
            )
            if alert.posted_at is None and alert.folded_into is not None:
                # its storm summary, drawn as it folded (before this step), says how it goes
                follow_pages(self, tx, [alert.folded_into], now=now)
        elif nobody:
            if alert.posted_at is not None and alert.channel is not None:
                which = self.chain.describe(position)
                why = (
                    f"<@{again}> was paged at the step before and is not paged twice in a row"
                    if again
                    else nobody_reason(step, self.policy.oncall, tz=self.tz, now=now)
                )
                enqueue_thread_reply(
                    tx,
                    parent=alert.post_ref,
                    text=f"⚠️ {which[0].upper()}{which[1:]} pages nobody: {why}"
                    " (`/agent oncall` shows who is on call).",
                    channel=alert.channel,
                )
        elif alert.posted_at is None and alert.folded_into is not None:
            gone = None  # (a summary deleted in Slack: a post of its own, recheck28 Kb L4)
            if summary_is_gone(tx, alert.folded_into):
                held = summary_alerts(tx, alert.folded_into)
                # (one posted on its own since is nudged in its own thread)
                gone = sum(
                    1
                    for a in held
                    if a.state == "open" and a.posted_at is None and a.id != alert.id
                )
            text = storm_nudge(alert, tz=self.tz, now=now, gone=gone)
            every = self.policy.alerts.storm_nudge_every
            manual = manual_by is not None
            nudge_storm(
                tx, alert, position, now=now, every=every, text=text, manual=manual, alone=gone
            )
        elif alert.posted_at is not None and alert.channel is not None:
            enqueue_thread_reply(
                tx,
                parent=alert.post_ref,
                text=channel_nudge(alert, tz=self.tz, now=now),
                channel=alert.channel,
            )
        self.touch(tx, alert, now, urgent=manual_by is not None)
        if webhook is not None:
            return step.notify
        return target or ("nobody" if nobody else "channel")

    def _page_webhook(
        self,
        tx: Tx,
        alert: Alert,
        webhook: str,
        *,
        esc_id: int,
        position: int,
        now: float,
        manual: bool,
    ) -> None:
        """A webhook step: its trigger row (sent after the commit), said in the thread; in
        an alert storm, its page joins the webhook's storm instead (bot.webhook_storms)."""
        which = self.chain.describe(position)
        hook = self.policy.webhooks.get(webhook)
        target = None if hook is None else target_of(hook)  # (its resolve goes there too)
        storm = None if manual else webhook_storms.storm_to_join(tx, self.policy, webhook, now)
        if storm is not None:
            storm = webhook_storms.fold_webhook_page(
                tx, alert, storm=storm, webhook=webhook, esc_id=esc_id, target=target, now=now
            )
            if alert.posted_at is not None and alert.channel is not None:
                enqueue_thread_reply(
                    tx,
                    parent=alert.post_ref,
                    text=webhook_storms.storm_page_note(which, webhook=webhook, storm=storm),
                    channel=alert.channel,
                )
            return
        delivery = enqueue_trigger(
            tx, alert, webhook=webhook, escalation_id=esc_id, step=which, at=now, target=target
        )
        if alert.posted_at is not None and alert.channel is not None:
            enqueue_thread_reply(
                tx,
                parent=alert.post_ref,
                text=f"📟 {which[0].upper()}{which[1:]}: sending the page to webhook {webhook}"
                f" (delivery {delivery}); this thread says if it does not get through, and"
                " acknowledging the alert resolves it there.",
                channel=alert.channel,
            )


def clock_stepped(tx: Tx, seconds: float) -> None:
    """Move the open alerts' next steps and the silences' times by ``seconds`` (the wall
    clock stepped that much, :class:`bot.clock_watch.ClockWatch`): a 5-minute step and a
    one-hour silence keep their length in real time."""
    tx.execute(  # a P1 put off by the quiet hours keeps the mark of it (bot.alerts.quiet)
        "UPDATE alerts SET esc_at = esc_at + ?1, facts = CASE"
        f" WHEN json_extract(facts, '$.{QUIET_UNTIL}') IS NOT NULL"
        f" THEN json_set(facts, '$.{QUIET_UNTIL}', json_extract(facts, '$.{QUIET_UNTIL}') + ?1)"
        " ELSE facts END WHERE esc_at IS NOT NULL AND resolved_at IS NULL",
        (seconds,),
    )
    tx.execute(  # both ends: a silence holds from when it was made (AlertEngine.silence_for)
        "UPDATE silences SET created_at = created_at + ?1, expires_at = expires_at + ?1,"
        " starts_at = starts_at + ?1 WHERE ended_at IS NULL",  # (a booked one's start too)
        (seconds,),
    )
