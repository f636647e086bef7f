"""Silences: making one (now, or booked ahead with a reason) and lifting them.

A silence holds the alerts it matches (:mod:`bot.alerts.targets`): they are recorded,
not posted nor paged, until it ends. Both functions run inside ``store.write`` and audit
who did it; :mod:`bot.alerts.operations` re-exports them with the other operations.

Example:
    >>> # made = silence(engine, tx, target="acme/alice", seconds=7200, actor="U1")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.alerts.engine import AlertEngine
from bot.alerts.escalate_now import REPEAT_CLICK_SECONDS
from bot.alerts.messages import OPEN_ALERTS
from bot.alerts.render_time import duration
from bot.alerts.targets import SilenceTarget, silence_target
from guards.errors import InvalidInput, NotFound
from guards.store import Tx

__all__ = [
    "LiftedSilence",
    "SilenceLifted",
    "SilenceMade",
    "iso",
    "lift",
    "lift_one",
    "silence",
    "silence_row",
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
    target: str | SilenceTarget,
    seconds: float,
    actor: str,
    unseen_ok: bool = False,
    starts_at: float | None = None,
    reason: str | None = None,
    retries_only: bool = False,
) -> SilenceMade:
    """Silence an alert (``42``, ``#42``), a kind (everywhere, or ``kind:scope`` and below),
    a scope subtree or a model's alerts (:mod:`bot.alerts.targets`), for ``seconds``
    from now, or from ``starts_at`` when that is later (booked ahead: it holds nothing
    before; the tick silences the open alerts it matches at its start,
    :meth:`AlertEngine.begin_silences`). ``reason``, as typed, is kept with it.
    ``target`` may come read already (:func:`~bot.alerts.targets.silence_target`): the
    API checks and narrows it to its token's subtree first (:mod:`bot.api_silences`).

    A silence on the same target that already lasts as long (a double click) is the
    answer, with ``made_by``: nothing new is made. With ``retries_only`` (the API) only a
    true retry is: ``actor``'s own silence on the same target, with the same reason and
    the same start and end within :data:`REPEAT_CLICK_SECONDS`; a longer one someone
    else made does not stand in for the one asked (a script that ends the silence it got
    back would end theirs: review23 M1).

    Raises:
        InvalidInput: a target that is none of those, or a duration that is not positive;
            :class:`UnseenTarget` (unless ``unseen_ok``): a scope or model nothing has
            used, which may be a typo.
        NotFound: no alert with that id.
    """
    if seconds <= 0:
        raise InvalidInput("duration", "a silence lasts at least a second, e.g. 30m or 2h")
    now = tx.clock.now()
    if isinstance(target, SilenceTarget):
        what = target
    else:
        what = silence_target(engine, tx, target, known=not unseen_ok)
    booked = starts_at if starts_at is not None and starts_at > now else None
    start = now if booked is None else booked
    expires = start + seconds
    if retries_only:
        same = _retried(tx, what, actor=actor, start=start, expires=expires, reason=reason)
    else:
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
    said = [f"from {iso(booked, engine.tz)}"] if booked is not None else []
    tx.audit(
        actor=actor,
        action="alert.silence",
        target=matches,
        after=iso(expires, engine.tz),
        detail=" — ".join([*said, *([reason] if reason else [])]) or None,
    )
    silenced = [] if booked is not None else engine.hold_open(tx, silence_id, now)
    return SilenceMade(silence_id, matches, expires, silenced, starts_at=booked, reason=reason)


def _retried(
    tx: Tx,
    what: SilenceTarget,
    *,
    actor: str,
    start: float,
    expires: float,
    reason: str | None,
) -> Any:
    """``actor``'s own open silence that this request repeats (its id, expires_at,
    created_by, starts_at), or None."""
    window = REPEAT_CLICK_SECONDS
    return tx.one(
        "SELECT id, expires_at, created_by, starts_at FROM silences WHERE ended_at IS NULL"
        " AND expires_at > ? AND fingerprint IS ? AND kind IS ? AND scope IS ?"
        " AND created_by = ? AND reason IS ? AND ABS(expires_at - ?) <= ?"
        " AND ABS(COALESCE(starts_at, created_at) - ?) <= ? ORDER BY id DESC",
        (
            tx.clock.now(),
            what.fingerprint,
            what.kind,
            what.scope,
            actor,
            reason,
            expires,
            window,
            start,
            window,
        ),
    )


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
    return _end_all(engine, tx, what, rows, actor=actor, now=now, booked=booked)


def silence_row(tx: Tx, silence_id: int) -> tuple[SilenceTarget, bool] | None:
    """What silence ``silence_id`` holds, and whether it is still on (not lifted nor run
    out); None: no such silence."""
    row = tx.one(
        "SELECT fingerprint, scope, kind, alert_id, ended_at IS NULL AND expires_at > ?"
        " FROM silences WHERE id = ?",
        (tx.clock.now(), silence_id),
    )
    if row is None:
        return None
    return SilenceTarget(row[0], row[1], row[3], kind=row[2]), bool(row[4])


def lift_one(engine: AlertEngine, tx: Tx, *, silence_id: int, actor: str) -> SilenceLifted:
    """End silence ``silence_id`` alone (``DELETE /v1/silences/{id}``: not the others on
    its target), as :func:`lift` ends those on a target: audited, its open alerts back on
    their chain; one booked ahead is cancelled. An ended one: nothing is written.

    Raises:
        NotFound: no such silence.
    """
    now = tx.clock.now()
    found = silence_row(tx, silence_id)
    if found is None:
        raise NotFound(f"there is no silence {silence_id}; GET /v1/silences lists them")
    rows = tx.all(
        "SELECT id, created_by, expires_at, starts_at FROM silences WHERE ended_at IS NULL"
        " AND expires_at > ? AND id = ?",
        (now, silence_id),
    )
    return _end_all(engine, tx, found[0], rows, actor=actor, now=now, booked=True)


def _end_all(
    engine: AlertEngine,
    tx: Tx,
    what: SilenceTarget,
    rows: list[Any],
    *,
    actor: str,
    now: float,
    booked: bool,
) -> SilenceLifted:
    """End the silences of ``rows`` (id, created_by, expires_at, starts_at) on ``what``:
    what :func:`lift` and :func:`lift_one` share."""
    kind, where = what.alert_kind, what.where
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
            before=f"{iso(b.starts_at or 0, engine.tz)} until {iso(b.expires_at, engine.tz)}",
            detail=f"booked silence {b.id} set by {b.created_by}, cancelled",
        )
    held: list[int] = []
    for s in lifted:
        _end(tx, s.id, actor, now)
        tx.audit(
            actor=actor,
            action="silence.lift",
            target=what.matches,
            before=iso(s.expires_at, engine.tz),
            after=iso(now, engine.tz),
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


def iso(ts: float, tz: ZoneInfo) -> str:
    """An audit row's time: ISO 8601 with the policy time zone's offset, as people read it."""
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")
