"""What the webhook sender records of each try: the row's new state, the thread's notes,
the alert's message redrawn (:class:`DeliveryRecords`, the base of
:class:`bot.webhooks.WebhookSender`).

- a 2xx: ``delivered`` (the thread says so only after failed tries);
- a failure that may pass: tried again after :func:`~bot.webhooks_send.backoff` (or the
  receiver's ``Retry-After``), until :data:`~bot.webhooks_send.GIVE_UP_SECONDS` after
  the event or :data:`~bot.webhooks_send.MAX_TRIES` tries; the thread says the first;
- anything else, or past those bounds: ``failed``, said once in the thread and logged;
- a storm's trigger (one a minute while pages join it): each note once per storm
  (:func:`_per_storm`), a failure once in each thread where the storm's alerts are seen;
- a trigger whose alert's (or storm's) paging ended while its try was in flight: what
  the try got (:func:`bot.webhooks_flight.record_ended`: delivered, or may have got
  there and then its resolve is sent); a crash's cut tries at the first pass
  (:meth:`DeliveryRecords._recover`);
- an unexpected error in the record (a bug): the thread's note and the redraws are undone
  alone (the posts are redrawn at their next update), the row's state stays; an error
  before the record's write, or in it, records the answer in a write of its own
  (:meth:`DeliveryRecords._record_alone`): a 2xx is never sent again.

Example:
    >>> # counts = sender._record(tx, done)  # {(webhook, result): n}
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from bot.alerts.storm_members import HOOK_ALERT_IDS, hook_posted, hook_ref, hook_seen
from bot.alerts.storm_names import summary_parts
from bot.alerts.storm_page import follow_pages, paged_summaries
from bot.outbox import enqueue_thread_reply
from bot.webhooks_flight import record_ended, recover_cut_tries
from bot.webhooks_notes import failed_note, retrying_note, took_it_note
from bot.webhooks_send import (
    GIVE_UP_SECONDS,
    MAX_TRIES,
    Outcome,
    Refused,
    Sent,
    TryAgain,
    backoff,
    may_have_reached,
)
from guards.config import Policy
from guards.errors import NotFound
from guards.store import Tx
from guards.words import plural

if TYPE_CHECKING:
    from bot.alerts.engine import AlertEngine
    from bot.app import Nightshift

__all__ = ["UNEXPECTED", "DeliveryRecords", "Done"]

log = logging.getLogger("bot.webhooks")
#: how a try's error between its claim and its record begins (bot.webhooks._release)
UNEXPECTED = "an unexpected error in Nightshift"


@dataclass(frozen=True, slots=True)
class Done:
    """One try's answer (a str: why it could not be sent at all), and when it ended."""

    row: Any
    result: Outcome | str
    at: float

    @property
    def id(self) -> int:
        return int(self.row["id"])


class DeliveryRecords(ABC):
    """Records tries' answers; the sender (:class:`bot.webhooks.WebhookSender`) gives the
    process (``ns``) and its policy."""

    @property
    @abstractmethod
    def ns(self) -> Nightshift:
        """The running process (its alerts engine, its clock)."""

    @property
    @abstractmethod
    def policy(self) -> Policy:
        """The policy in force (its time zone)."""

    def _record(self, tx: Tx, done: list[Done]) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for d in done:
            key = self._record_one(tx, d)
            counts[(d.row["webhook"], key)] = counts.get((d.row["webhook"], key), 0) + 1
        return counts

    def _record_one(self, tx: Tx, d: Done) -> str:
        key, changed = self._settle(tx, d)
        ended = False
        if not changed:  # its paging ended while the try was in flight
            ended = changed = record_ended(tx, d.row, d.result, now=d.at, engine=self._engine)
        if changed:  # the thread's note; its paged line says how it went
            self._tell(tx, d, key=key, ended=ended)
        return key

    def _settle(self, tx: Tx, d: Done) -> tuple[str, bool]:
        """The row's new state alone (its result's key, and whether a pending row took
        it; False: its paging ended while the try was in flight)."""
        row, result, now = d.row, d.result, d.at
        tries = _tries(d)
        status = None if isinstance(result, str) else result.status
        if isinstance(result, Sent):
            return "delivered", bool(
                tx.execute(
                    "UPDATE webhook_deliveries SET state = 'delivered', attempts = ?,"
                    " last_status = ?, done_at = ?, reached = 1, in_flight_at = NULL"
                    " WHERE id = ? AND state = 'pending'",
                    (tries, status, now, row["id"]),
                ).rowcount
            )
        if isinstance(result, TryAgain) and (
            retry := _retry_at(result, tries=tries, created_at=row["created_at"], now=now)
        ):
            return "retried", bool(
                tx.execute(
                    "UPDATE webhook_deliveries SET attempts = ?, last_status = ?,"
                    " last_error = ?, next_at = ?, reached = MAX(reached, ?),"
                    " in_flight_at = NULL WHERE id = ? AND state = 'pending'",
                    (tries, status, result.error, retry, may_have_reached(result), row["id"]),
                ).rowcount
            )
        changed = self._fail(
            tx,
            row,
            error=_given_up(d),
            status=status,
            tries=tries,
            reached=may_have_reached(result),
            now=now,
        )
        return "failed", changed

    def _tell(self, tx: Tx, d: Done, *, key: str, ended: bool) -> None:
        """Say how ``d``'s try went in the thread (once), and redraw the messages that show
        it, in a savepoint of their own: a bug there is logged and undone, and leaves the
        row's state as recorded (review27 R1 M3: a redraw that raised rolled a delivered
        trigger back, and it was sent again); the alerts' posts are redrawn at their next
        update instead (``dirty``)."""
        tx.execute("SAVEPOINT webhook_told")
        try:
            if not ended:
                self._note(tx, d, key=key)
            # the post's page line changes now, not at its next trailing update (30 s on:
            # recheck28 Ka L3); a later retry's new error waits for that one
            urgent = key != "retried" or _tries(d) == 1
            self._touch_trigger(tx, d.row, d.at, urgent=urgent)
        except Exception:
            log.exception(
                "webhooks: delivery %d is recorded %s, but its thread note or the redraw of"
                " its messages failed; its alerts' posts are redrawn at their next update",
                d.id,
                key,
            )
            tx.execute("ROLLBACK TO webhook_told")
            self._redraw_later(tx, d.row)
        tx.execute("RELEASE webhook_told")

    def _note(self, tx: Tx, d: Done, *, key: str) -> None:
        """The thread's note of a try just recorded as ``key``, if it says one."""
        row, result, tries = d.row, d.result, _tries(d)
        if key == "delivered" and tries > 1:
            self._say(tx, row, _per_storm(row, took_it_note(row, tries=tries)))
        elif key == "retried" and tries == 1 and isinstance(result, TryAgain):
            if result.error.startswith(UNEXPECTED):
                return  # not the receiver's doing, and it may have got there: logged
            until = float(row["created_at"]) + GIVE_UP_SECONDS  # (or MAX_TRIES)
            note = retrying_note(row, error=result.error, until=until, tz=self._tz, now=d.at)
            self._say(tx, row, _per_storm(row, note))
        elif key == "failed":
            note = _per_storm(row, failed_note(row, error=_given_up(d)))
            if row["storm_id"] is None:
                self._say(tx, row, note)
            else:
                self._say_to_storm(tx, int(row["storm_id"]), note)

    def _record_alone(self, tx: Tx, d: Done) -> str:
        """Record ``d`` after an unexpected error in its record's own write (or, with a
        ``TryAgain`` naming :data:`UNEXPECTED`, before any answer came):
        :meth:`bot.webhooks.WebhookSender._release`. A known answer is recorded as what
        it is: a 2xx delivered (review27 R1 M3: it was taken as one that may have got
        there and sent again, up to 16 times), a failure as that failure; a try with no
        answer may have got there (tried again after its backoff, or given up as any try
        is: said in the thread). A row whose paging ended meanwhile is recorded as
        :func:`~bot.webhooks_flight.record_ended` does (its resolve sent if it may have
        got there). If the record fails again, the row's state alone is written (its
        alerts' posts redrawn at their next update) and the mark cleared."""
        tx.execute("SAVEPOINT webhook_alone")
        try:
            key = self._record_one(tx, d)
        except Exception:
            log.exception("webhooks: delivery %d: its record failed again", d.id)
            tx.execute("ROLLBACK TO webhook_alone")
            key, changed = self._settle(tx, d)
            if changed:
                self._redraw_later(tx, d.row)
            else:
                log.error(
                    "webhooks: delivery %d: its paging ended while its try was out and its"
                    " record failed: if the try got there (%s), no resolve follows it",
                    d.id,
                    key,
                )
        tx.execute("RELEASE webhook_alone")
        tx.execute("UPDATE webhook_deliveries SET in_flight_at = NULL WHERE id = ?", (d.id,))
        return key

    def _redraw_later(self, tx: Tx, row: Any) -> None:
        """Mark the posts that show trigger ``row`` to be redrawn at their next update
        (:meth:`bot.alerts.messages.AlertMessages._flush_updates`)."""
        if row["event"] != "trigger":
            return
        if row["storm_id"] is None:
            tx.execute("UPDATE alerts SET dirty = 1 WHERE id = ?", (int(row["alert_id"]),))
            return
        tx.execute(
            f"UPDATE alerts SET dirty = 1 WHERE id IN ({HOOK_ALERT_IDS})",
            (hook_ref(int(row["storm_id"])),),
        )

    def _recover(self, tx: Tx, now: float) -> None:
        """Before the first try: the marks of tries a crash cut short are cleared, and a
        trigger ended meanwhile is recorded as a try that got no answer (it may have got
        there: a withdrawn one gets its resolve;
        :func:`~bot.webhooks_flight.recover_cut_tries`)."""
        for row in recover_cut_tries(tx, now=now, engine=self._engine):
            log.warning(
                "webhooks: delivery %d was cut short by a stop or a crash while its alert's"
                " paging ended: it may have got there, so its resolve is sent",
                int(row["id"]),
            )
            self._touch_trigger(tx, row, now)

    def _touch_trigger(self, tx: Tx, row: Any, now: float, *, urgent: bool = False) -> None:
        """Redraw the messages that show how trigger ``row`` went: its alert's, or each of
        its storm's alerts posted on their own (``urgent``: a lone alert's at once; a storm's at
        their trailing update), and the channel's
        storm summaries that carry the others' posts (:mod:`bot.alerts.storm_page`)."""
        if row["event"] != "trigger":
            return
        storm = None if row["storm_id"] is None else int(row["storm_id"])
        if storm is None:
            self._touch(tx, int(row["alert_id"]), now, urgent=urgent)
        else:  # at their trailing update: a storm's posts urgent would go ahead of its
            for alert_id in hook_posted(tx, storm):  # acknowledgements (review28 R8 M1)
                self._touch(tx, alert_id, now)
        engine = self._engine
        if engine is not None:
            refs = paged_summaries(tx, storm=storm, alert_id=int(row["alert_id"]))
            follow_pages(engine, tx, refs, now=now)

    def _fail(
        self,
        tx: Tx,
        row: Any,
        *,
        error: str,
        status: int | None,
        tries: int,
        reached: bool,
        now: float,
    ) -> bool:
        """Mark ``row`` failed for good, logged (the thread's note: :meth:`_note`)."""
        changed = tx.execute(
            "UPDATE webhook_deliveries SET state = 'failed', attempts = ?, last_status = ?,"
            " last_error = ?, done_at = ?, reached = MAX(reached, ?), in_flight_at = NULL"
            " WHERE id = ? AND state = 'pending'",
            (tries, status, error, now, reached, row["id"]),
        ).rowcount
        if changed:
            storm = row["storm_id"]
            log.warning(
                "webhook %s: the %s of %s failed: %s",
                row["webhook"],
                row["event"],
                f"alert storm {storm}" if storm is not None else f"alert #{row['alert_id']}",
                error,
            )
        return bool(changed)

    def _say(self, tx: Tx, row: Any, note: tuple[str, str]) -> None:
        """Post ``note`` (text, ref) in the alert's thread, if it was posted."""
        alert_id = int(row["alert_id"])
        alert = tx.one("SELECT channel, posted_at FROM alerts WHERE id = ?", (alert_id,))
        if alert is None or alert[0] is None or alert[1] is None:
            return  # never posted (a storm summary carried it): the log says it
        text, ref = note
        enqueue_thread_reply(
            tx, parent=f"alert:{alert_id}:post", text=text, channel=alert[0], ref=ref
        )

    def _say_to_storm(self, tx: Tx, storm: int, note: tuple[str, str]) -> None:
        """Post ``note`` where each alert ``storm`` carries is seen: its own post's thread,
        or the thread of the storm summary post that carried it (once per summary). Each
        of them said "webhook … is paged in alert storm N" there; a failed page is said
        where that was said (review25 M2: only the alert that began the storm was told).
        Its ref names the thread: a storm's failure is said once in each (review26 R1 M1:
        each failed trigger said it again in every thread the storm had reached)."""
        text, ref = note
        said: set[str] = set()
        for alert_id, channel, posted_at, summary in hook_seen(tx, storm):
            if posted_at is not None and channel is not None:
                parent, lane = f"alert:{alert_id}:post", str(channel)
            elif summary is not None and str(summary).startswith("fold:posts:"):
                parent, lane = str(summary), summary_parts(str(summary))[1]
                if tx.one("SELECT 1 FROM outbox WHERE ref = ?", (parent,)) is None:
                    continue  # withdrawn, none of its alerts left: nothing to reply to
            else:
                continue  # never posted (refused by Slack, say): the log says it
            if parent not in said:
                said.add(parent)
                enqueue_thread_reply(
                    tx, parent=parent, text=text, channel=lane, ref=f"{ref}:{parent}"
                )

    @property
    def _engine(self) -> AlertEngine | None:
        alerts = self.ns.extras.get("alerts")
        return None if alerts is None else cast("AlertEngine", alerts.engine)

    def _touch(self, tx: Tx, alert_id: int, now: float, *, urgent: bool = False) -> None:
        engine = self._engine
        if engine is None:
            return
        with contextlib.suppress(NotFound):  # (an alert gone by retention: nothing to show)
            engine.touch(tx, engine.get(tx, alert_id), now, urgent=urgent)

    @property
    def _tz(self) -> ZoneInfo:
        return ZoneInfo(self.policy.timezone)


def _per_storm(row: Any, note: tuple[str, str]) -> tuple[str, str]:
    """``note`` (text, ref), said once per storm when ``row`` is a storm's trigger: its
    ref names the storm, not the delivery (``webhook:storm:4:failed``).

    A storm sends one more trigger a minute while pages join it; over a dead receiver
    each failed, and each said so again (review26 R1 M1: 78 notes for 12 triggers, about
    1,800 an hour). The first failure is what a person needs; a later one says nothing
    more where it was said, also after a later trigger got through (every trigger of a
    storm is the same incident: once one got there, the receiver has it open, paging).
    The alert's message shows how the storm's last trigger went. A resolve (one per
    storm) keeps its own ref.

    Example:
        >>> row = {"id": 9, "event": "trigger", "storm_id": 4}
        >>> _per_storm(row, ("⚠️ …", "webhook:9:failed"))[1]
        'webhook:storm:4:failed'
    """
    text, ref = note
    if row["storm_id"] is None or row["event"] != "trigger":
        return note
    return text, f"webhook:storm:{int(row['storm_id'])}:{ref.rsplit(':', 1)[1]}"


def _tries(d: Done) -> int:
    """The row's tries once ``d``'s is counted (a str: nothing was sent, its webhook taken
    out at a reload: no try to count)."""
    return int(d.row["attempts"]) + (0 if isinstance(d.result, str) else 1)


def _given_up(d: Done) -> str:
    """The error ``d``'s row is marked failed with (a retry past its bounds says so)."""
    result = d.result
    if isinstance(result, str):
        return result
    if isinstance(result, TryAgain):
        return f"{result.error} (gave up after {plural(_tries(d), 'try', many='tries')})"
    return result.error if isinstance(result, Refused) else f"HTTP {result.status}"


def _retry_at(result: TryAgain, *, tries: int, created_at: float, now: float) -> float | None:
    """When to try again after ``tries`` failed tries (None: give up)."""
    if tries >= MAX_TRIES:
        return None
    at = now + max(backoff(tries), result.after or 0.0)
    return at if at - created_at <= GIVE_UP_SECONDS else None
