"""Starting an alert on its chain, and the silences that hold alerts back.

:class:`AlertStarts` adds to :class:`~bot.alerts.resolution.AlertResolution` what puts
an alert in front of people and what keeps it from them:

- **the start**: a P0 or P1 is posted (or its message redrawn) and put on the
  escalation chain at its entry step (a P0 at once, a P1 after
  ``alerts.p1_escalate_after``), unless a model's outage holds it back
  (``alerts.inhibit_by_model``), it is acknowledged, or it does not page (a
  conversation stopped by its own budget);
- **silences** match a fingerprint, a scope subtree, or an alert kind (or family) on
  every scope or on a subtree, until they expire; a silenced alert is recorded and
  counted but neither posted nor escalated. A silence booked ahead holds nothing before
  its start, then silences the open alerts it matches at once. When a silence ends and
  the alert still fires, it is started again as if new.

:class:`~bot.alerts.engine.AlertEngine` builds on it.

Example:
    >>> # engine.silence_for(tx, kind="heartbeat_missed", scope="acme/a/bot", now=now)
    >>> # engine.start_chain(tx, alert_id, now)
"""

from __future__ import annotations

from bot.alerts.messages import OPEN_ALERTS
from bot.alerts.model import Alert, fingerprint
from bot.alerts.resolution import AlertResolution
from bot.alerts.storm_batch import one_refresh_each, summaries_once
from guards.store import Tx
from guards.tokens import ACTOR_PREFIX, TOKEN_MISUSE_KIND

__all__ = ["AlertStarts"]


class AlertStarts(AlertResolution):
    """Put alerts on their chain; silence them, and start them again when a silence ends."""

    # -- the start ----------------------------------------------------------------------

    def start_chain(self, tx: Tx, alert_id: int, now: float) -> Alert:
        """Put an open, unsilenced alert whose chain never started on it now, as a new one
        is (an alert acknowledged while silenced never started it: ``/agent unack``)."""
        self._start(tx, self.get(tx, alert_id), now)
        return self.get(tx, alert_id)

    def _start(self, tx: Tx, alert: Alert, now: float) -> None:
        """Post a P0/P1 (or update its message) and put it on the escalation chain."""
        if alert.tier == "P2":
            return
        posted = alert.posted_at is not None
        if not posted and (model := self.outage_model(tx, alert.kind, alert.scope)):
            self.hold(tx, alert, model)  # its model's outage pages for it (inhibit_by_model)
            return
        if not posted:
            self._post(tx, alert, now)
        entry = self.chain.entry(alert.tier)
        if entry is None or alert.acked_at is not None or not self._pages(alert):
            if posted:
                self.touch(tx, alert, now, urgent=True)
            return
        if alert.tier == "P1":
            delay = self.policy.alerts.p1_escalate_after
        else:
            delay = self.chain.steps[entry].after
        tx.execute(
            "UPDATE alerts SET esc_step = ?, esc_at = ? WHERE id = ?",
            (entry, now + delay, alert.id),
        )
        paged = self.run_chains(tx, now, alert_id=alert.id)
        if posted:  # redrawn after the chain ran: it names whom the first step paged now
            self.touch(tx, self.get(tx, alert.id), now, urgent=True)
        elif paged:
            # the post just made already mentions whom the first step paged
            tx.execute(
                "UPDATE alerts SET dirty = 0 WHERE id = ? AND posted_at = ?", (alert.id, now)
            )

    def _pages(self, alert: Alert) -> bool:
        """Whether the alert runs the escalation chain: not a conversation stopped by its
        own budget (the cap doing its work), unless the policy asks for that too."""
        if alert.kind == "budget_exhausted" and alert.facts.get("level") == "conversation":
            return self.policy.alerts.page_conversation_budgets
        return True

    # -- silences -----------------------------------------------------------------------

    def silence_for(
        self, tx: Tx, *, kind: str | None, scope: str, now: float
    ) -> tuple[int, float] | None:
        """The active silence that holds an alert of ``kind`` at ``scope`` (the one that
        lasts longest): (id, expires_at), or None.

        A silence holds it when made on its fingerprint, or when its kind (NULL: any;
        a family such as ``breaker_opened``: its kinds) and its scope (NULL: any; else
        that scope and below) both match. ``kind`` None asks about a whole scope: only
        silences without a kind hold it. A silence booked ahead holds nothing before its
        ``starts_at``. No silence a token made (``created_by`` ``token:<id>``) holds the
        alert about a token's misuse (:data:`~guards.tokens.TOKEN_MISUSE_KIND`): a leaked
        operator token must not hush the alert its own probing raises; a person's does.
        """
        row = tx.one(
            "SELECT id, expires_at FROM silences WHERE ended_at IS NULL"
            " AND COALESCE(starts_at, created_at) <= ?"
            " AND expires_at > ? AND (fingerprint = ? OR (fingerprint IS NULL"
            " AND (kind IS NULL OR kind = ? OR substr(?, 1, length(kind) + 1) = kind || '_')"
            " AND (scope IS NULL OR scope = ?"
            " OR substr(?, 1, length(scope) + 1) = scope || '/')))"
            " AND (? = 0 OR substr(created_by, 1, ?) != ?)"
            " ORDER BY expires_at DESC LIMIT 1",
            (
                now,
                now,
                fingerprint(kind, scope) if kind else None,
                kind,
                kind,
                scope,
                scope,
                kind == TOKEN_MISUSE_KIND,
                len(ACTOR_PREFIX),
                ACTOR_PREFIX,
            ),
        )
        return (row[0], row[1]) if row else None

    def hold_open(self, tx: Tx, silence_id: int, now: float) -> list[int]:
        """Silence the open alerts that silence ``silence_id`` (active now) matches, as
        a silence made now does: neither posted nor escalated any more, their messages
        and pages showing it. Returns their ids."""
        silenced = []
        with one_refresh_each(self, tx):  # a storm's summaries, webhook storms: once each
            for row in tx.all(OPEN_ALERTS + " AND silence_id IS NULL"):
                alert = Alert.from_row(row)
                if self.silence_for(tx, kind=alert.kind, scope=alert.scope, now=now) is None:
                    continue
                tx.execute(
                    "UPDATE alerts SET silence_id = ?, was_silenced = 1, esc_at = NULL"
                    " WHERE id = ?",
                    (silence_id, alert.id),
                )
                held = self.get(tx, alert.id)
                self.update_pages(tx, held, now)  # the pages it sent show it silenced too
                self.touch(tx, held, now, urgent=True)
                silenced.append(alert.id)
        return silenced

    def begin_silences(self, tx: Tx, now: float) -> int:
        """Silences booked ahead whose start came since the last tick (or while the
        process was down): each silences the open alerts it matches, once
        (``started_at``). Returns how many began."""
        rows = tx.all(
            "SELECT id FROM silences WHERE ended_at IS NULL AND expires_at > ?"
            " AND starts_at <= ? AND started_at IS NULL ORDER BY starts_at, id",
            (now, now),
        )
        for (silence_id,) in rows:
            tx.execute("UPDATE silences SET started_at = ? WHERE id = ?", (now, silence_id))
            self.hold_open(tx, int(silence_id), now)
        return len(rows)

    def end_silences(self, tx: Tx, now: float) -> int:
        """Open alerts whose silence ended: another silence, or back to posting and paging.

        Run by the tick for silences that expired, and at once by a lift (ended_at set).
        A storm that comes back at once is folded, its summaries drawn once
        (:func:`~bot.alerts.storm_batch.summaries_once`), as the tick's are.
        """
        with summaries_once(self, tx):
            return self._end_silences(tx, now)

    def _end_silences(self, tx: Tx, now: float) -> int:
        rows = tx.all(
            OPEN_ALERTS + " AND silence_id IN (SELECT id FROM silences"
            " WHERE ended_at IS NOT NULL OR expires_at <= ?)",
            (now,),
        )
        for row in rows:
            alert = Alert.from_row(row)
            other = self.silence_for(tx, kind=alert.kind, scope=alert.scope, now=now)
            tx.execute(
                "UPDATE alerts SET silence_id = ? WHERE id = ?",
                (other[0] if other else None, alert.id),
            )
            if other is None:
                # pages sent before the silence show it ended; the ones _start sends are new
                paged = tx.one(
                    "SELECT COALESCE(MAX(id), 0) FROM escalations WHERE alert_id = ?", (alert.id,)
                )[0]
                self._start(tx, self.get(tx, alert.id), now)
                if paged:
                    self.update_pages(tx, self.get(tx, alert.id), now, up_to=int(paged))
        return len(rows)
