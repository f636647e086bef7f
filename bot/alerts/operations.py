"""What people do to alerts: acknowledge, resolve, escalate, silence and lift; on-call overrides.

Acknowledge all on a storm summary (:func:`ack_storm`) acknowledges, in one write,
each alert the summary held that is still open (and a person's page summary, the pages
that began its storm), as :func:`ack` does one.

Each function runs inside ``store.write`` on the engine's rows and audits who did it.
Escalate now lives in :mod:`bot.alerts.escalate_now`, silence and lift in
:mod:`bot.alerts.silences` (both re-exported here).

Example:
    >>> # alert, new = await store.write(lambda tx: ack(engine, tx, alert_id=42, actor="U1"))
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bot.alerts import storm_sent
from bot.alerts.engine import AlertEngine
from bot.alerts.escalate_now import REPEAT_CLICK_SECONDS, escalate_now
from bot.alerts.folding_join import first_pages
from bot.alerts.heartbeats import detection_window, rearm
from bot.alerts.model import Alert
from bot.alerts.oncall import Override, on_call, rotation_named
from bot.alerts.render_storm import storm_acked_line, storm_others, storm_split
from bot.alerts.render_time import duration
from bot.alerts.silences import LiftedSilence as LiftedSilence
from bot.alerts.silences import SilenceLifted as SilenceLifted
from bot.alerts.silences import SilenceMade as SilenceMade
from bot.alerts.silences import iso
from bot.alerts.silences import lift as lift
from bot.alerts.silences import silence as silence
from bot.alerts.storm_batch import one_refresh_each
from bot.alerts.storm_members import summary_alerts
from bot.alerts.targets import (
    MAX_ALERT_ID_DIGITS,
    SilenceTarget,
    UnseenTarget,
    alert_number,
    silence_target,
)
from bot.escape import slack_text
from bot.people import departed
from guards.errors import Conflict, InvalidInput
from guards.store import Tx
from guards.tokens import ACTOR_PREFIX, TOKEN_MISUSE_KIND, SlackOnly

__all__ = [
    "MAX_ALERT_ID_DIGITS",
    "REPEAT_CLICK_SECONDS",
    "LiftedSilence",
    "OverridesEnded",
    "SilenceLifted",
    "SilenceMade",
    "SilenceTarget",
    "StormAck",
    "UnseenTarget",
    "ack",
    "ack_storm",
    "alert_number",
    "end_overrides",
    "escalate_now",
    "lift",
    "override",
    "resolve",
    "silence",
    "silence_target",
]


def ack(
    engine: AlertEngine, tx: Tx, *, alert_id: int, actor: str, note: str | None = None
) -> tuple[Alert, bool]:
    """Acknowledge: the chain stops and MTTA is recorded. Returns (alert, newly acked).

    ``note`` (``POST /v1/alerts/{id}/ack``'s) is kept in the audit row's detail.

    Raises:
        SlackOnly: a token (``actor`` ``token:<id>``) acknowledging the alert about a
            token's misuse (:data:`~guards.tokens.TOKEN_MISUSE_KIND`): people do that.
        Conflict: a resolved alert.
    """
    now = tx.clock.now()
    alert = engine.get(tx, alert_id)
    if alert.kind == TOKEN_MISUSE_KIND and actor.startswith(ACTOR_PREFIX):
        raise SlackOnly(
            f"alert #{alert_id} is about a token stepping outside its subtree: no token may"
            f" acknowledge it. Acknowledge it in Slack (`/agent ack {alert_id}`), and revoke"
            " the token if nobody meant it (`nightshift token revoke <id>`)"
        )
    if alert.resolved_at is not None:
        raise Conflict(f"alert #{alert_id} is already resolved", state="resolved")
    if alert.acked_at is not None:
        return alert, False
    tx.execute(
        "UPDATE alerts SET acked_at = ?, acked_by = ?, esc_at = NULL WHERE id = ?",
        (now, actor, alert_id),
    )
    tx.audit(
        actor=actor, action="alert.ack", target=f"#{alert_id} {alert.fingerprint}", detail=note
    )
    alert = engine.get(tx, alert_id)
    engine.update_pages(tx, alert, now)  # first: pages still waiting are withdrawn
    engine.touch(tx, alert, now, urgent=True)
    return alert, True


@dataclass(frozen=True, slots=True)
class StormAck:
    """What Acknowledge all did to the alerts of storm summary ``ref``.

    ``acked``: the alerts ``actor`` acknowledged now; the others were left as they
    were: ``earlier`` (acknowledged before, how many by whom), ``resolved``,
    ``silenced`` (and not acknowledged). ``before``: how many of ``acked`` were not in
    the summary but the pages that began its storm, on their own before it;
    ``left_before``: how many of the others were such pages (``"acked"`` of
    ``earlier``, ``"resolved"``, ``"silenced"``; the counts not 0), so that each count
    says which were here (its head counts only its own: review28 R3 L2).
    """

    ref: str
    actor: str
    at: float
    acked: tuple[int, ...]
    earlier: dict[str, int]
    resolved: int
    silenced: int
    before: int = 0
    left_before: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many alerts it took or left: the summary's, and (a page summary's) the
        pages that began its storm (:attr:`leads` of them)."""
        return len(self.acked) + sum(self.earlier.values()) + self.resolved + self.silenced

    @property
    def leads(self) -> int:
        """How many of :attr:`total` were the pages before the summary, not in it."""
        return self.before + sum(self.left_before.values())


def ack_storm(engine: AlertEngine, tx: Tx, *, ref: str, actor: str) -> StormAck:
    """Acknowledge every open alert the storm summary ``ref`` held, then edit the summary.
    A person's page summary takes the storm's first pages too, which went out on their
    own before it (:func:`bot.alerts.storm_sent.storm_leads`; it names them).

    Each is acknowledged as :func:`ack` does it (its chain stops, its waiting pages are
    withdrawn, its messages show it, an ``alert.ack`` audit row); one ``alert.ack_storm``
    row records the click, and the summary's button becomes a line saying who
    acknowledged how many. Nothing left to acknowledge: nothing is written.

    Raises:
        NotFound: no such summary.
        Conflict: the summary has not reached Slack.
    """
    now = tx.clock.now()
    lane, sent = storm_sent.sent_summary(tx, ref)
    acked: list[int] = []
    earlier: Counter[str] = Counter()
    resolved = silenced = 0
    listed = summary_alerts(tx, ref)
    first = first_pages(engine.policy, tx, ref, now=now)
    leads = {a.id for a in first}.difference(a.id for a in listed)  # (not in the summary)
    held = {a.id: a for a in [*listed, *first]}
    left_before: Counter[str] = Counter()  # of the leads, those left as they were
    with one_refresh_each(engine, tx):  # not once per alert: O(n²) in a storm
        for alert in (held[i] for i in sorted(held)):
            if alert.resolved_at is not None:
                resolved += 1
                left_before["resolved"] += alert.id in leads
            elif alert.acked_at is not None:
                earlier[alert.acked_by or "?"] += 1
                left_before["acked"] += alert.id in leads
            elif alert.silence_id is not None:
                silenced += 1  # its Acknowledge button is not shown either
                left_before["silenced"] += alert.id in leads
            else:
                ack(engine, tx, alert_id=alert.id, actor=actor)
                acked.append(alert.id)
        before = sum(1 for i in acked if i in leads)
        done = StormAck(
            ref,
            actor,
            now,
            tuple(acked),
            dict(earlier),
            resolved,
            silenced,
            before,
            {k: n for k, n in left_before.items() if n},
        )
        if acked:  # before the summaries are refreshed: this one says who did it
            line = storm_acked_line(done, tz=engine.tz, now=now)
            storm_sent.mark_storm(tx, ref, lane=lane, sent=sent, line=line)
            split = storm_split(done)  # as its line says it (recheck28 Kb L2)
            head = f"{len(acked)} acknowledged{f' {split}' if split else ''}"
            detail = "; ".join([head, *storm_others(done)])
            tx.audit(actor=actor, action="alert.ack_storm", target=ref, detail=detail)
    return done


def resolve(
    engine: AlertEngine, tx: Tx, *, alert_id: int, actor: str, reason: str | None = None
) -> Alert:
    """Resolve by hand (the Resolve button): the chain stops; a new firing opens a new alert.

    An agent whose missed heartbeat is resolved while it is still silent is watched again
    from now: it alerts again after another detection window without a beat (audit21
    oncall 1: it never alerted again, a dead agent that nobody was told of)."""
    now = tx.clock.now()
    alert = engine.get(tx, alert_id)
    if alert.resolved_at is not None:
        return alert
    tx.audit(
        actor=actor,
        action="alert.resolve",
        target=f"#{alert_id} {alert.fingerprint}",
        detail=reason,  # as typed (masked): `/agent audit` escapes it when it shows it
    )
    engine.resolve_alert(tx, alert, now, by=actor, reason=None)
    if alert.kind == "heartbeat_missed":
        rearm(tx, scope=alert.scope, now=now)
    return engine.get(tx, alert_id)


def still_silent(engine: AlertEngine, tx: Tx, alert: Alert) -> str | None:
    """For the one who resolved a missed heartbeat: that its agent is still silent and
    when it alerts again (None when it beat meanwhile, or for another kind)."""
    if alert.kind != "heartbeat_missed" or alert.resolved_at is None:
        return None
    row = tx.one("SELECT rearmed_at FROM heartbeats WHERE scope = ?", (alert.scope,))
    if row is None or row[0] is None:
        return None
    window = detection_window(engine.policy.heartbeats)
    return (
        f"`{alert.scope}` is still silent: it alerts again if no heartbeat comes within"
        f" {duration(window)} (retired? its last heartbeat should say `status: stopped`; or"
        f" `/agent silence heartbeat_missed:{alert.scope} 30d`)"
    )


def override(
    engine: AlertEngine,
    tx: Tx,
    *,
    rotation: str,
    user: str,
    seconds: int,
    actor: str,
    starts_at: float | None = None,
) -> Override:
    """Put ``user`` on call for ``rotation`` for ``seconds``, from now or from
    ``starts_at`` (booked ahead: nobody is paged differently before it)."""
    if seconds < 60:  # "30s" for "30m" is a typo nobody means
        raise InvalidInput("duration", "an override lasts at least a minute, e.g. 4h")
    now = tx.clock.now()
    start = now if starts_at is None else max(starts_at, now)
    # whom it puts off call (at its start), and until when, in the row a post-mortem
    # reads (audit23 forensics M5: "— → U0ERIN for 8h" read as "nobody was on call")
    named = rotation_named(engine.policy.oncall, rotation)
    was = None
    if named is not None:
        overrides = engine.overrides(tx, now)
        gone = departed(engine.policy.oncall, [*named.users, *(o.user for o in overrides)])
        was = on_call(named, engine.tz, start, overrides, gone).user
    tx.execute(
        "INSERT INTO oncall_overrides (rotation, user_id, starts_at, ends_at, created_by,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (rotation, user, start, start + seconds, actor, now),
    )
    until = iso(start + seconds, engine.tz)
    tx.audit(
        actor=actor,
        action="oncall.override",
        target=rotation,
        before=was or "nobody",
        after=f"{user} for {duration(seconds)}, until {until}"
        if start == now
        else f"{user} for {duration(seconds)}, from {iso(start, engine.tz)} until {until}",
    )
    return Override(rotation, user, start, start + seconds, now, actor)


@dataclass(frozen=True, slots=True)
class OverridesEnded:
    """What ``override clear`` did: the active overrides ended, the booked ones cancelled."""

    ended: int
    cancelled: int


def end_overrides(engine: AlertEngine, tx: Tx, *, rotation: str, actor: str) -> OverridesEnded:
    """End the active overrides of ``rotation`` now, and cancel its booked ones (their
    ``ends_at`` set to now, before their start: they never count)."""
    now = tx.clock.now()
    rows = tx.all(
        "SELECT user_id, starts_at FROM oncall_overrides WHERE lower(rotation) = lower(?)"
        " AND ends_at > ? ORDER BY starts_at, id",
        (rotation, now),
    )
    active = [str(r[0]) for r in rows if r[1] <= now]
    booked = [str(r[0]) for r in rows if r[1] > now]
    tx.execute(
        "UPDATE oncall_overrides SET ends_at = ? WHERE lower(rotation) = lower(?) AND ends_at > ?",
        (now, rotation, now),
    )
    if rows:  # whose shift ended, as the override's own row said who began it
        tx.audit(
            actor=actor,
            action="oncall.override.end",
            target=rotation,
            before=", ".join(active) or None,
            after=f"cancelled booked: {', '.join(booked)}" if booked else None,
        )
    return OverridesEnded(len(active), len(booked))


def resolve_saying(
    engine: AlertEngine, tx: Tx, *, alert_id: int, actor: str, reason: str | None
) -> tuple[Alert, bool]:
    """Resolve by hand as :func:`resolve` does (the Resolve button's operation), with
    ``reason`` (as typed, masked) in its audit row and shown, escaped, on the alert's
    messages: ``✅ resolved by <@U1> at 03:20 — restarted the worker``. Returns (alert,
    newly resolved); an alert resolved already keeps its own resolution and reason.

    Example:
        >>> # alert, new = resolve_saying(engine, tx, alert_id=12, actor="U1", reason="fixed")
    """
    new = engine.get(tx, alert_id).resolved_at is None
    alert = resolve(engine, tx, alert_id=alert_id, actor=actor, reason=reason)
    if new and reason:
        now = tx.clock.now()
        shown = slack_text(reason)
        tx.execute("UPDATE alerts SET resolve_reason = ? WHERE id = ?", (shown, alert_id))
        alert = engine.get(tx, alert_id)
        engine.update_pages(tx, alert, now)  # the edits resolve queued take these words
        engine.touch(tx, alert, now, urgent=True)
    return alert, new
