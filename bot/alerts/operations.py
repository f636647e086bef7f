"""What people do to alerts: acknowledge, resolve, escalate, silence and lift; on-call overrides.

Acknowledge all on a storm summary (:func:`ack_storm`) acknowledges, in one write,
each alert the summary held that is still open, as :func:`ack` does one.

Each function runs inside ``store.write`` on the engine's rows and audits who did it.
Escalate now lives in :mod:`bot.alerts.escalate_now` (re-exported here).

Example:
    >>> # alert, new = await store.write(lambda tx: ack(engine, tx, alert_id=42, actor="U1"))
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.alerts import folding
from bot.alerts.engine import AlertEngine
from bot.alerts.escalate_now import REPEAT_CLICK_SECONDS, escalate_now
from bot.alerts.heartbeats import detection_window, rearm
from bot.alerts.messages import OPEN_ALERTS
from bot.alerts.model import Alert
from bot.alerts.oncall import Override, on_call, rotation_named
from bot.alerts.render_storm import storm_acked_line, storm_others
from bot.alerts.render_time import duration
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


@dataclass(frozen=True, slots=True)
class SilenceMade:
    """A new silence: what it matches, until when, and the open alerts it silenced.

    ``made_by`` is set when no new silence was needed: an active one on the same
    target already lasts as long (a double click); it is that silence. ``starts_at``
    is set for a silence booked ahead.
    """

    id: int
    matches: str
    expires_at: float
    silenced: list[int]
    made_by: str | None = None
    starts_at: float | None = None  # booked ahead: holds nothing before
    reason: str | None = None  # as typed


def ack(engine: AlertEngine, tx: Tx, *, alert_id: int, actor: str) -> tuple[Alert, bool]:
    """Acknowledge: the chain stops and MTTA is recorded. Returns (alert, newly acked)."""
    now = tx.clock.now()
    alert = engine.get(tx, alert_id)
    if alert.resolved_at is not None:
        raise Conflict(f"alert #{alert_id} is already resolved", state="resolved")
    if alert.acked_at is not None:
        return alert, False
    tx.execute(
        "UPDATE alerts SET acked_at = ?, acked_by = ?, esc_at = NULL WHERE id = ?",
        (now, actor, alert_id),
    )
    tx.audit(actor=actor, action="alert.ack", target=f"#{alert_id} {alert.fingerprint}")
    alert = engine.get(tx, alert_id)
    engine.update_pages(tx, alert, now)  # first: pages still waiting are withdrawn
    engine.touch(tx, alert, now, urgent=True)
    return alert, True


@dataclass(frozen=True, slots=True)
class StormAck:
    """What Acknowledge all did to the alerts of storm summary ``ref``.

    ``acked``: the alerts ``actor`` acknowledged now; the others were left as they
    were: ``earlier`` (acknowledged before, how many by whom), ``resolved``,
    ``silenced`` (and not acknowledged).
    """

    ref: str
    actor: str
    at: float
    acked: tuple[int, ...]
    earlier: dict[str, int]
    resolved: int
    silenced: int

    @property
    def total(self) -> int:
        """How many alerts the summary held."""
        return len(self.acked) + sum(self.earlier.values()) + self.resolved + self.silenced


def ack_storm(engine: AlertEngine, tx: Tx, *, ref: str, actor: str) -> StormAck:
    """Acknowledge every open alert the storm summary ``ref`` held, then edit the summary.

    Each is acknowledged as :func:`ack` does it (its chain stops, its waiting pages are
    withdrawn, its messages show it, an ``alert.ack`` audit row); one ``alert.ack_storm``
    row records the click, and the summary's button becomes a line saying who
    acknowledged how many. Nothing left to acknowledge: nothing is written.

    Raises:
        NotFound: no such summary.
        Conflict: the summary has not reached Slack.
    """
    now = tx.clock.now()
    lane, sent = folding.sent_summary(tx, ref)
    acked: list[int] = []
    earlier: Counter[str] = Counter()
    resolved = silenced = 0
    with folding.one_refresh_each(engine, tx):  # not once per alert: O(n²) in a storm
        for alert in folding.storm_alerts(tx, ref):
            if alert.resolved_at is not None:
                resolved += 1
            elif alert.acked_at is not None:
                earlier[alert.acked_by or "?"] += 1
            elif alert.silence_id is not None:
                silenced += 1  # its Acknowledge button is not shown either
            else:
                ack(engine, tx, alert_id=alert.id, actor=actor)
                acked.append(alert.id)
        done = StormAck(ref, actor, now, tuple(acked), dict(earlier), resolved, silenced)
        if acked:  # before the summaries are refreshed: this one says who did it
            line = storm_acked_line(done, tz=engine.tz, now=now)
            folding.mark_storm(tx, ref, lane=lane, sent=sent, line=line)
            detail = "; ".join([f"{len(acked)} acknowledged", *storm_others(done)])
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


@dataclass(frozen=True, slots=True)
class LiftedSilence:
    """One silence a lift ended: who set it and how much of it was left."""

    id: int
    created_by: str
    expires_at: float
    left: float
    starts_at: float | None = None  # a booked one: its start, still ahead


@dataclass(frozen=True, slots=True)
class SilenceLifted:
    """The outcome of a lift: the silences ended and what their open alerts do now.

    ``notify_again``: open alerts back to posting and paging. ``still_silenced``: open
    alerts another silence still holds. ``covered_by``: a silence that still matches the
    target (a wider scope, or one made on the alert itself) and who set it;
    ``covered_until``: when that silence expires. ``cancelled``: the silences booked
    on the target that had not started (``lift(..., booked=True)``).
    """

    target: SilenceTarget
    lifted: list[LiftedSilence]
    notify_again: list[int]
    still_silenced: list[int]
    covered_by: tuple[SilenceTarget, str] | None
    covered_until: float | None = None
    cancelled: tuple[LiftedSilence, ...] = ()  # booked ones, before their start


def silence(
    engine: AlertEngine,
    tx: Tx,
    *,
    target: str,
    seconds: int,
    actor: str,
    unseen_ok: bool = False,
    starts_at: float | None = None,
    reason: str | None = None,
) -> SilenceMade:
    """Silence an alert (``42``, ``#42``), a kind (everywhere, or ``kind:scope`` and below),
    a scope subtree or a model's alerts (:mod:`bot.alerts.targets`), for ``seconds``
    from now, or from ``starts_at`` when that is later (booked ahead: it holds nothing
    before; the tick silences the open alerts it matches at its start,
    :meth:`AlertEngine.begin_silences`). ``reason``, as typed, is kept with it.

    Raises:
        InvalidInput: a target that is none of those, or a duration that is not positive;
            :class:`UnseenTarget` (unless ``unseen_ok``): a scope or model nothing has
            used, which may be a typo.
        NotFound: no alert with that id.
    """
    if seconds <= 0:
        raise InvalidInput("duration", "a silence lasts at least a second, e.g. 30m or 2h")
    now = tx.clock.now()
    what = silence_target(engine, tx, target, known=not unseen_ok)
    booked = starts_at if starts_at is not None and starts_at > now else None
    start = now if booked is None else booked
    expires = start + seconds
    same = tx.one(  # a double click, or a repeat: the silence there already does it
        "SELECT id, expires_at, created_by, starts_at FROM silences WHERE ended_at IS NULL"
        " AND fingerprint IS ? AND kind IS ? AND scope IS ? AND expires_at >= ?"
        " AND COALESCE(starts_at, created_at) <= ? ORDER BY expires_at DESC",
        (what.fingerprint, what.kind, what.scope, expires - REPEAT_CLICK_SECONDS, start),
    )
    if same is not None:
        was = float(same[3]) if same[3] is not None and same[3] > now else None
        made_by = str(same[2])
        return SilenceMade(
            int(same[0]), what.matches, float(same[1]), [], made_by=made_by, starts_at=was
        )
    cur = tx.execute(
        "INSERT INTO silences (fingerprint, kind, scope, alert_id, created_by, created_at,"
        " expires_at, starts_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            what.fingerprint,
            what.kind,
            what.scope,
            what.alert_id,
            actor,
            now,
            expires,
            booked,
            reason,
        ),
    )
    silence_id = int(cur.lastrowid or 0)
    matches = what.matches
    said = [f"from {_iso(booked, engine.tz)}"] if booked is not None else []
    tx.audit(
        actor=actor,
        action="alert.silence",
        target=matches,
        after=_iso(expires, engine.tz),
        detail=" — ".join([*said, *([reason] if reason else [])]) or None,
    )
    silenced = [] if booked is not None else engine.hold_open(tx, silence_id, now)
    return SilenceMade(silence_id, matches, expires, silenced, starts_at=booked, reason=reason)


def _end(tx: Tx, silence_id: int, actor: str, now: float) -> None:
    tx.execute(
        "UPDATE silences SET ended_at = ?, ended_by = ? WHERE id = ?", (now, actor, silence_id)
    )


def lift(
    engine: AlertEngine, tx: Tx, *, target: str, actor: str, booked: bool = False
) -> SilenceLifted:
    """End now every active silence made on ``target`` (an expire, as in Alertmanager).

    ``target`` is read as :func:`silence` reads it (any well-formed one: a silence made
    on a typo can be lifted), and a silence matches when it was made on the same thing:
    ``#42`` lifts the silences of that alert's fingerprint and those made on its
    ``kind:scope``, and ``kind:scope`` lifts those too; a kind lifts the silences of that
    kind on every scope; a scope lifts the silences of that scope (not narrower or wider
    ones, which are reported in ``covered_by`` / ``still_silenced``). Open alerts the
    lifted silences held are posted (or updated) and put back on the escalation chain at
    once, as when a silence expires; later firings notify as usual. Each lifted silence
    gets ``ended_at``/``ended_by`` and a ``silence.lift`` audit row. With ``booked``, the
    silences booked on the target that have not started are cancelled too (ended before
    their start: they never hold anything), in ``cancelled``. Nothing matching: nothing
    is written and ``lifted`` is empty.

    Raises:
        InvalidInput: a target that is neither an alert, a kind nor a scope.
        NotFound: no alert with that id.
    """
    now = tx.clock.now()
    what = silence_target(engine, tx, target)
    kind, where = what.alert_kind, what.where
    rows = tx.all(
        "SELECT id, created_by, expires_at, starts_at FROM silences WHERE ended_at IS NULL"
        " AND expires_at > ? AND ((fingerprint IS NULL AND kind IS ? AND scope IS ?)"
        " OR fingerprint = ?) ORDER BY id",
        (now, kind, where, what.same_as),
    )
    lifted = [LiftedSilence(r[0], r[1], r[2], r[2] - now) for r in rows if (r[3] or 0) <= now]
    cancelled = tuple(
        LiftedSilence(r[0], r[1], r[2], r[2] - r[3], r[3])
        for r in rows
        if booked and (r[3] or 0) > now
    )
    for b in cancelled:
        _end(tx, b.id, actor, now)
        tx.audit(
            actor=actor,
            action="silence.lift",
            target=what.matches,
            before=f"{_iso(b.starts_at or 0, engine.tz)} until {_iso(b.expires_at, engine.tz)}",
            detail=f"booked silence {b.id} set by {b.created_by}, cancelled",
        )
    held: list[int] = []
    for s in lifted:
        _end(tx, s.id, actor, now)
        tx.audit(
            actor=actor,
            action="silence.lift",
            target=what.matches,
            before=_iso(s.expires_at, engine.tz),
            after=_iso(now, engine.tz),
            detail=f"silence {s.id} set by {s.created_by}, {duration(s.left)} left",
        )
        held += [r[0] for r in tx.all(OPEN_ALERTS + " AND silence_id = ?", (s.id,))]
    if lifted:
        engine.end_silences(tx, now)
    again: list[int] = []
    still: list[int] = []
    for alert_id in sorted(held):
        (again if engine.get(tx, alert_id).silence_id is None else still).append(alert_id)
    covered = None
    # a scope of "" is under no scope silence: only those on every scope can cover it
    other = engine.silence_for(tx, kind=kind, scope=where or "", now=now)
    if other is not None:
        row = tx.one(
            "SELECT fingerprint, scope, kind, created_by FROM silences WHERE id = ?", (other[0],)
        )
        covered = (SilenceTarget(row[0], row[1], kind=row[2]), row[3])
    until = other[1] if other else None
    return SilenceLifted(what, lifted, again, still, covered, until, cancelled)


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
    until = _iso(start + seconds, engine.tz)
    tx.audit(
        actor=actor,
        action="oncall.override",
        target=rotation,
        before=was or "nobody",
        after=f"{user} for {duration(seconds)}, until {until}"
        if start == now
        else f"{user} for {duration(seconds)}, from {_iso(start, engine.tz)} until {until}",
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


def _iso(ts: float, tz: ZoneInfo) -> str:
    """An audit row's time: ISO 8601 with the policy time zone's offset, as people read it."""
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


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
