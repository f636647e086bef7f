"""Agent heartbeats: the last sign of life per agent, the watchdog, and uptime.

An agent calls ``POST /v1/heartbeats`` every so often. The watchdog (run by the
alerts tick) raises :class:`~guards.events.HeartbeatMissed` for an agent not seen for
``misses_before_alert × timeout_seconds``, once, and :func:`record` raises
:class:`~guards.events.HeartbeatRestored` when that agent is back. Both are events
like any other: they become (and resolve) an alert through the event queue.

An agent whose last heartbeat says it is going away on purpose (``status`` one of
:data:`STOPPED_STATUSES`, in any case: ``stopped``, ``stopping``, ``shutdown``,
``shutting_down`` or ``shutting-down``, ``paused``) is not watched until it beats again.

Example:
    >>> # inside store.write:
    >>> # record(tx, scope="acme/alice/rss-bot", status="ok", detail=None, now=now)
    >>> # watchdog(tx, policy.heartbeats, now=now)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from guards.config import Heartbeats
from guards.events import HeartbeatMissed, HeartbeatRestored
from guards.store import Tx

if TYPE_CHECKING:
    from guards.store import Store

__all__ = [
    "STOPPED",
    "STOPPED_STATUSES",
    "alive",
    "detection_window",
    "heartbeat_uptime",
    "is_stopped",
    "rearm",
    "record",
    "started",
    "watchdog",
]

STOPPED = "stopped"
STOPPED_STATUSES = (STOPPED, "stopping", "shutdown", "shutting_down", "paused")
_STOPPED_MARKS = ", ".join("?" for _ in STOPPED_STATUSES)  # one bound parameter each
DOWNTIME_KEPT = 30 * 86400  # downtimes older than this forgive nobody any more


def is_stopped(status: str | None) -> bool:
    """Does this heartbeat status mean the agent is going away on purpose?"""
    return status is not None and status.lower().replace("-", "_") in STOPPED_STATUSES


def record(tx: Tx, *, scope: str, status: str | None, detail: str | None, now: float) -> bool:
    """Store a heartbeat; returns True when it ends a missed-heartbeat alert."""
    row = tx.one("SELECT missed_at, rearmed_at FROM heartbeats WHERE scope = ?", (scope,))
    tx.execute(
        "INSERT INTO heartbeats (scope, last_seen, status, detail, first_seen)"
        " VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (scope) DO UPDATE SET last_seen = excluded.last_seen,"
        " status = excluded.status, detail = excluded.detail, beats = beats + 1,"
        " missed_at = NULL, rearmed_at = NULL",
        (scope, now, status, detail, now),
    )
    if row is None or (row[0] is None and row[1] is None):
        return False
    tx.execute(  # its downtime ends (also when its alert was resolved by hand meanwhile)
        "UPDATE heartbeat_gaps SET down_until = ? WHERE scope = ? AND down_until IS NULL",
        (now, scope),
    )
    if row[0] is None:  # re-armed, not missed again: no alert is open to end
        return False
    tx.emit(HeartbeatRestored(at=now, scope=scope, status=status))
    return True


def rearm(tx: Tx, *, scope: str, now: float) -> bool:
    """Its missed-heartbeat alert was resolved by hand: if the agent is still silent,
    watch it again from ``now`` (it alerts once more after another detection window
    without a beat) rather than never again until it beats. True when it was silent."""
    cur = tx.execute(
        "UPDATE heartbeats SET missed_at = NULL, rearmed_at = ?"
        " WHERE scope = ? AND missed_at IS NOT NULL",
        (now, scope),
    )
    return cur.rowcount > 0


def started(tx: Tx, *, now: float) -> bool:
    """A run starts watching: the gap since the last run was alive is a downtime.

    Returns False when no earlier run left its mark (a new database, or one from before
    marks were kept): the caller then forgives a whole window from now, as before.
    """
    # Agents missed, whose alert was resolved by hand before resolving re-armed the watch
    # (review22 M4): watched again from now, as a resolve does since. (Not one whose
    # missed event is still queued: its alert is on its way.)
    tx.execute(
        "UPDATE heartbeats SET missed_at = NULL, rearmed_at = ? WHERE missed_at IS NOT NULL"
        " AND scope NOT IN (SELECT scope FROM alerts"
        "  WHERE kind = 'heartbeat_missed' AND resolved_at IS NULL)"
        " AND scope NOT IN (SELECT scope FROM events"
        "  WHERE kind = 'heartbeat_missed' AND dispatched_at IS NULL)",
        (now,),
    )
    row = tx.one("SELECT alive_at FROM watchdog_alive WHERE id = 1")
    # the downtime, written as alive() writes the spans of refused writes (kept apart)
    alive(tx, now=now, refused=[(float(row[0]), now)] if row is not None else [])
    tx.execute("DELETE FROM watchdog_downtime WHERE down_until < ?", (now - DOWNTIME_KEPT,))
    return row is not None


def clock_stepped(tx: Tx, seconds: float) -> None:
    """The wall clock stepped ``seconds`` (:class:`bot.clock_watch.ClockWatch`): every time
    the watchdog compares moves into the clock's new frame. After a step back an agent that
    stops is missed on time, not an hour late; after a step forward nobody is paged for
    the step, and a page says when the agent last beat in the clock it reads now (a step
    forward is not a downtime: the downtimes are only the process's own, at start)."""
    tx.execute(
        "UPDATE heartbeats SET last_seen = last_seen + ?1, rearmed_at = rearmed_at + ?1",
        (seconds,),
    )
    tx.execute(
        "UPDATE watchdog_downtime SET down_from = down_from + ?1, down_until = down_until + ?1",
        (seconds,),
    )
    tx.execute("UPDATE watchdog_alive SET alive_at = alive_at + ?", (seconds,))


def alive(tx: Tx, *, now: float, refused: Sequence[tuple[float, float]] = ()) -> None:
    """This run is alive at ``now`` (the alerts tick says so every few seconds).

    ``refused``: spans (from, until) in which the database refused writes (a full disk, a
    lock held by another process): the agents' beats were refused then too, so each is a
    downtime, as a stopped process's is (audit24 resources H1: every agent was paged as
    silent once the disk had room again)."""
    if refused:
        # kept apart from those before (the watchdog adds them up: an outage still going
        # on is told at every tick, each time to a later end)
        last = tx.one("SELECT MAX(down_until) FROM watchdog_downtime")[0]
        covered = float("-inf") if last is None else float(last)
        for down_from, down_until in sorted(refused):
            start = max(down_from, covered)
            if start < down_until:
                tx.execute(
                    "INSERT INTO watchdog_downtime (down_from, down_until) VALUES (?, ?)",
                    (start, down_until),
                )
                covered = down_until
        # (started() purges them too; a long run adds them without a start)
        tx.execute("DELETE FROM watchdog_downtime WHERE down_until < ?", (now - DOWNTIME_KEPT,))
    tx.execute(
        "INSERT INTO watchdog_alive (id, alive_at) VALUES (1, ?)"
        " ON CONFLICT (id) DO UPDATE SET alive_at = excluded.alive_at",
        (now,),
    )


def detection_window(config: Heartbeats) -> int:
    """How long an agent is silent before it is missed: ``misses_before_alert`` timeouts."""
    return config.misses_before_alert * max(1, config.timeout_seconds)


def watchdog(tx: Tx, config: Heartbeats, *, now: float, watching_since: float | None = None) -> int:
    """Raise HeartbeatMissed for every watched agent overdue; returns how many.

    Beats an agent sent while Nightshift was down were lost, not missed: an agent is
    overdue once it has been silent for a whole detection window (``misses_before_alert``
    timeouts) of the time Nightshift was up (the downtimes :func:`started` recorded are
    taken off its silence). ``watching_since``: when the downtimes are not known (see
    :func:`started`), nobody is overdue until a whole window has passed since then.
    """
    timeout = max(1, config.timeout_seconds)
    window = detection_window(config)
    overdue = now - window
    if watching_since is not None and watching_since > overdue:
        return 0
    # silent since its last beat, or since its alert was resolved by hand (:func:`rearm`)
    rows = tx.all(
        "SELECT scope, last_seen, rearmed_at, max(last_seen, coalesce(rearmed_at, 0)) AS quiet,"
        " detail FROM heartbeats WHERE missed_at IS NULL AND quiet <= ?"
        f" AND (status IS NULL OR replace(lower(status), '-', '_') NOT IN ({_STOPPED_MARKS}))"
        " ORDER BY quiet LIMIT 500",
        (overdue, *STOPPED_STATUSES),
    )
    downtimes: list[tuple[float, float]] = []
    if rows:
        downtimes = tx.all(
            "SELECT down_from, down_until FROM watchdog_downtime WHERE down_until > ?",
            (min(row[1] for row in rows),),
        )

    def silent_since(start: float) -> float:
        return now - start - sum(max(0.0, min(u, now) - max(f, start)) for f, u in downtimes)

    missed = 0
    # Oldest first: an agent's silence less the downtimes within it never grows with a
    # later last beat, so if the oldest 500 are forgiven, so is everyone after them.
    for scope, last_seen, rearmed_at, quiet, detail in rows:
        if silent_since(quiet) < window:
            continue  # part of its silence was our downtime
        misses = int(silent_since(last_seen) // timeout)
        tx.execute(
            "UPDATE heartbeats SET missed_at = ?, rearmed_at = NULL WHERE scope = ?", (now, scope)
        )
        if rearmed_at is None:  # (re-armed: the gap its first miss opened is still open)
            tx.execute(
                "INSERT INTO heartbeat_gaps (scope, down_from) VALUES (?, ?)",
                (scope, last_seen + timeout),
            )
        tx.emit(
            HeartbeatMissed(
                at=now, scope=scope, last_seen=last_seen, misses=misses, detail=detail or None
            )
        )
        missed += 1
    return missed


async def heartbeat_uptime(store: Store, *, since: float, until: float) -> dict[str, float]:
    """Per agent that sent heartbeats: the fraction of ``[since, until)`` it was up.

    An agent counts from its first heartbeat (or ``since``); it is down from when its
    first missed beat was due until it came back (the gap the watchdog recorded).
    """
    if until <= since:
        return {}
    agents = await store.fetch(
        "SELECT scope, first_seen FROM heartbeats WHERE first_seen < ?", (until,)
    )
    gaps = await store.fetch(
        "SELECT scope, down_from, down_until FROM heartbeat_gaps"
        " WHERE down_from < ? AND (down_until IS NULL OR down_until > ?)",
        (until, since),
    )
    down: dict[str, float] = defaultdict(float)
    for scope, start, end in gaps:
        down[scope] += min(until, end if end is not None else until) - max(since, start)
    out = {}
    for scope, first_seen in agents:
        span = until - max(since, first_seen)
        if span > 0:
            out[scope] = max(0.0, min(1.0, 1.0 - down[scope] / span))
    return out
