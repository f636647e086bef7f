"""Retention: old rows are deleted in small chunks, so a process running for months stays bounded.

One job, ``retention``, runs about half a minute after start and then hourly (a process
restarted nightly still prunes); it is the only prune job. It deletes, oldest first,
what is older than the policy's ``retention:`` periods (guards/config_retention.py):

==========================  ===============================================================
rows                        kept for
==========================  ===============================================================
``events``                  ``retention.events`` (30 days) once dispatched to the alerts
                            (longer if ``validation.burst.window_seconds`` is); never while
                            undispatched
``outbox``, delivered       ``retention.outbox_delivered`` (7 days): Slack calls with their
                            args (blocks, ``response_url``)
``outbox``, failed          ``retention.outbox_failed`` (30 days)
``alerts`` (resolved)       ``retention.alerts_resolved`` (90 days) after ``resolved_at``,
                            with their ``escalations``; never while open
``heartbeat_gaps`` (closed) ``retention.alerts_resolved`` after the agent came back
``validation_*``            ``validation.window_days`` (items, call answers) and
                            ``validation.rejections_retention_days`` (rejections)
``routing_decisions``       ``routing.retention_days``
``breaker_attempts``        ``retention.breaker_attempts`` (7 days) after the task's last
                            attempt
``job_runs``                ``retention.job_runs`` (90 days)
==========================  ===============================================================

An outbox row that a later message may still point at (``$ref:<ref>.ts``) is kept
longer: an alert's channel post and pages (``alert:<id>:post``, ``alert:<id>:dm:<n>``)
until the alert has been resolved for ``outbox_delivered``, a storm summary
(``fold:...``) and its nudges until every alert it carried has, any row a waiting row
refers to for as long as that one waits, and a ref of a kind this module does not know,
forever. A chat.update of an open alert's message therefore always finds the message it
edits. The outbox goes first, and a resolved alert is kept while any outbox row still
names it (its own ``alert:<id>:...`` rows, or the summary it or one of its pages was
folded into), so an alert outlives its messages, never the reverse. The newest alert is
kept, as the newest event is, so ids never come back: a button on an old message acts on
its own alert or says it is gone, never on a new one.

**Chunks.** The store has one writer, and a prune's write function runs on the event
loop: deleting a 300,000-row backlog in one write held every request for 1.3 s and left
a 58 MB WAL. Here every write deletes at most :data:`CHUNK_ROWS` rows (about 15 ms), and
the next chunk is a new write after a 5 ms pause, so requests that arrived meanwhile
commit in between, in batches of their own. The other prunes
(``guards.validation.repo.prune_items`` and co.) take the same ``limit``; this job
drives them (the features schedule no prune job of their own).

Example:
    >>> # retention = ns.extras["retention"]; deleted = await retention.run()
    >>> # deleted["events"], deleted["outbox"], deleted["alerts"]
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from bot.api_validation import EXTRAS_KEY as VALIDATION_KEY
from bot.jobs import state as job_state
from bot.outbox_refs import refs_in
from guards.breaker_attempts import prune_attempts
from guards.routing import records as routing_records
from guards.store import Store, Tx
from guards.validation import Validator
from guards.validation import repo as vrepo

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = [
    "CHUNK_ROWS",
    "RETENTION_EVERY_SECONDS",
    "Chunk",
    "Retention",
    "drain",
    "prune_alerts",
    "prune_events",
    "prune_gaps",
    "prune_outbox",
    "ref_owner",
    "scan",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
DAY = 86400
RETENTION_EVERY_SECONDS = 3600
CHUNK_ROWS = 2000  # rows per write: ~15 ms of the single writer (measured, see the README)
PAUSE_SECONDS = 0.005  # between chunks: writes that came meanwhile get a batch of their own

# Refs whose rows nothing points at later (a digest's ref only stops a second post).
_FREE_REF_PREFIXES = ("digest:",)
_WAITING_WITH_REFS = "SELECT args FROM outbox WHERE state = 'pending' AND instr(args, '$ref:')"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One write of a scan: rows deleted, and the id to go on after (None: done)."""

    deleted: int
    next_after: int | None


# -- the chunked deletes (each runs inside store.write) -----------------------------------


def prune_events(tx: Tx, *, before: float, after: int = 0, limit: int = CHUNK_ROWS) -> Chunk:
    """Delete dispatched events older than ``before`` among the ``limit`` rows after id ``after``.

    Events are written in time order, so the scan ends at the first chunk that reaches
    ``before``. An undispatched event is kept (the alerts have not seen it), and so is
    the newest row, so that event ids never come back (alerts name their events).
    """
    seen, last, newest = tx.one(
        "SELECT count(*), max(id), max(at) FROM"
        " (SELECT id, at FROM events WHERE id > ? ORDER BY id LIMIT ?)",
        (after, limit),
    )
    if not seen:
        return Chunk(0, None)
    cur = tx.execute(
        "DELETE FROM events WHERE id > ? AND id <= ? AND at < ? AND dispatched_at IS NOT NULL"
        " AND id < (SELECT max(id) FROM events)",
        (after, last, before),
    )
    more = seen == limit and newest < before
    return Chunk(int(cur.rowcount), int(last) if more else None)


def prune_outbox(
    tx: Tx,
    *,
    delivered_before: float,
    failed_before: float,
    after: int = 0,
    limit: int = CHUNK_ROWS,
) -> Chunk:
    """Delete old delivered and failed outbox rows among the ``limit`` rows after id ``after``.

    A row is deleted when it was created before ``delivered_before`` (delivered) or
    ``failed_before`` (failed) and nothing may still need it (:func:`_needed`: an
    alert's message is needed until the alert has been resolved since ``delivered_before``).
    """
    rows = tx.all(
        "SELECT id, ref, state, created_at FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
        (after, limit),
    )
    if not rows:
        return Chunk(0, None)
    old = [
        (row_id, ref)
        for row_id, ref, state, created_at in rows
        if (state == "delivered" and created_at < delivered_before)
        or (state == "failed" and created_at < failed_before)
    ]
    needed = _needed(
        tx, (ref for _, ref in old if ref is not None), resolved_before=delivered_before
    )
    doomed = [row_id for row_id, ref in old if ref is None or ref not in needed]
    deleted = 0
    if doomed:
        cur = tx.execute(
            "DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))"
            " AND state != 'pending'",
            (json.dumps(doomed),),
        )
        deleted = int(cur.rowcount)
    more = len(rows) == limit and rows[-1][3] < delivered_before
    return Chunk(deleted, int(rows[-1][0]) if more else None)


def ref_owner(ref: str) -> tuple[str, str]:
    """What keeps an outbox row named ``ref``: ``("alert", id)``, ``("fold", summary ref)``,
    ``("free", "")`` (nothing) or ``("unknown", "")`` (kept).

    Example:
        >>> ref_owner("alert:42:dm:7"), ref_owner("nudge:fold:posts:C1:9-1:2:1767225600")
        (('alert', '42'), ('fold', 'fold:posts:C1:9-1'))
    """
    if ref.startswith(_FREE_REF_PREFIXES):
        return ("free", "")
    kind, _, rest = ref.partition(":")
    if kind == "alert":
        alert_id = rest.partition(":")[0]
        return ("alert", alert_id) if alert_id.isdigit() else ("unknown", "")
    if kind == "fold":
        return ("fold", ref)
    if kind == "nudge" and rest.startswith("fold:"):
        # nudge:fold:<pages|posts>:<lane>:<seed>:<step>:<due> (a lane holds no ":")
        return ("fold", ":".join(rest.split(":")[:4]))
    return ("unknown", "")


def _needed(tx: Tx, refs: Iterable[str], *, resolved_before: float) -> set[str]:
    """The refs among ``refs`` whose rows must stay: a waiting row refers to them, their
    alert (or an alert of their storm summary) was not resolved before ``resolved_before``,
    or they are of an unknown kind."""
    owners = {ref: ref_owner(ref) for ref in refs}
    if not owners:
        return set()
    alert_ids = sorted({int(key) for kind, key in owners.values() if kind == "alert"})
    folds = sorted({key for kind, key in owners.values() if kind == "fold"})
    done_alerts = {
        str(r[0])
        for r in tx.all(
            "SELECT id FROM alerts WHERE id IN (SELECT value FROM json_each(?))"
            " AND resolved_at < ?",
            (json.dumps(alert_ids), resolved_before),
        )
    }
    live_folds = {
        r[0]
        for r in tx.all(
            "SELECT folded_into FROM alerts WHERE folded_into IN (SELECT value FROM json_each(?))"
            " AND (resolved_at IS NULL OR resolved_at >= ?)"
            " UNION SELECT e.folded_into FROM escalations e JOIN alerts a ON a.id = e.alert_id"
            " WHERE e.folded_into IN (SELECT value FROM json_each(?))"
            " AND (a.resolved_at IS NULL OR a.resolved_at >= ?)",
            (json.dumps(folds), resolved_before, json.dumps(folds), resolved_before),
        )
    }
    waiting: set[str] = set()
    for (args,) in tx.all(_WAITING_WITH_REFS):
        refs_in(args, waiting)

    def keep(ref: str, kind: str, key: str) -> bool:
        if ref in waiting or kind == "unknown":
            return True
        if kind == "alert":
            return key not in done_alerts
        return kind == "fold" and key in live_folds

    return {ref for ref, (kind, key) in owners.items() if keep(ref, kind, key)}


# The alerts of an id range resolved before a time that no outbox row names: not its own
# messages (alert:<id>:..., the refs from "alert:<id>:" up to "alert:<id>;"), nor a storm
# summary it or one of its pages joined. The newest alert stays (ids are never reused).
_DOOMED_ALERTS = (
    "SELECT a.id FROM alerts a WHERE a.id > ? AND a.id <= ? AND a.resolved_at < ?"
    " AND a.id < (SELECT max(id) FROM alerts)"
    " AND NOT EXISTS (SELECT 1 FROM outbox o"
    "  WHERE o.ref >= 'alert:' || a.id || ':' AND o.ref < 'alert:' || a.id || ';')"
    " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.ref = a.folded_into)"
    " AND NOT EXISTS (SELECT 1 FROM escalations e JOIN outbox o ON o.ref = e.folded_into"
    "  WHERE e.alert_id = a.id)"
)


def prune_alerts(tx: Tx, *, before: float, after: int = 0, limit: int = CHUNK_ROWS) -> Chunk:
    """Delete alerts resolved before ``before``, with their escalation rows, among the
    ``limit`` alerts after id ``after``.

    An open alert is never deleted; a resolved one is kept while an outbox row still
    names it (run :func:`prune_outbox` first: it lets those rows go by its own rules),
    and the newest alert is kept so that alert ids never come back. Alerts are written
    in the order they first fire, so the scan ends at the first chunk that reaches
    ``before``.
    """
    seen, last, newest = tx.one(
        "SELECT count(*), max(id), max(first_at) FROM"
        " (SELECT id, first_at FROM alerts WHERE id > ? ORDER BY id LIMIT ?)",
        (after, limit),
    )
    if not seen:
        return Chunk(0, None)
    doomed = json.dumps([r[0] for r in tx.all(_DOOMED_ALERTS, (after, last, before))])
    # escalations.alert_id REFERENCES alerts(id): the children go first
    tx.execute(
        "DELETE FROM escalations WHERE alert_id IN (SELECT value FROM json_each(?))", (doomed,)
    )
    cur = tx.execute("DELETE FROM alerts WHERE id IN (SELECT value FROM json_each(?))", (doomed,))
    more = seen == limit and newest < before
    return Chunk(int(cur.rowcount), int(last) if more else None)


def prune_gaps(tx: Tx, *, before: float, after: int = 0, limit: int = CHUNK_ROWS) -> Chunk:
    """Delete heartbeat gaps that ended before ``before`` among the ``limit`` gaps after
    id ``after``; a gap still open (the agent has not come back) is kept.

    Gaps are written when they begin, in about the order of ``down_from``, so the scan
    ends at the first chunk that reaches ``before`` (no gap after it can have ended).
    """
    seen, last, newest = tx.one(
        "SELECT count(*), max(id), max(down_from) FROM"
        " (SELECT id, down_from FROM heartbeat_gaps WHERE id > ? ORDER BY id LIMIT ?)",
        (after, limit),
    )
    if not seen:
        return Chunk(0, None)
    cur = tx.execute(
        "DELETE FROM heartbeat_gaps WHERE id > ? AND id <= ? AND down_until < ?",
        (after, last, before),
    )
    more = seen == limit and newest < before
    return Chunk(int(cur.rowcount), int(last) if more else None)


# -- driving them, one write per chunk ----------------------------------------------------


async def drain(
    store: Store,
    prune: Callable[[Tx, int], int],
    *,
    chunk: int = CHUNK_ROWS,
    stopping: Callable[[], bool] = lambda: False,
) -> int:
    """Call ``prune(tx, limit)`` (deletes at most ``limit`` rows, oldest first) in one write
    after another until it deletes fewer than ``chunk``; returns how many in all.

    Example:
        >>> # await drain(store, lambda tx, n: repo.prune_items(tx, before=t, limit=n))
    """
    total = 0
    while not stopping():
        deleted = await store.write(partial(_call, prune, chunk))
        total += deleted
        if deleted < chunk:
            break
        await asyncio.sleep(PAUSE_SECONDS)  # requests that came meanwhile commit on their own
    return total


async def scan(
    store: Store,
    step: Callable[[Tx, int], Chunk],
    *,
    stopping: Callable[[], bool] = lambda: False,
) -> int:
    """Call ``step(tx, after)`` (one chunk of the ids after ``after``) in one write after
    another until it says it is done; returns how many rows it deleted in all."""
    total, after = 0, 0
    while not stopping():
        done = await store.write(partial(_call, step, after))
        total += done.deleted
        if done.next_after is None:
            break
        after = done.next_after
        await asyncio.sleep(PAUSE_SECONDS)
    return total


def _call(fn: Callable[[Tx, int], T], arg: int, tx: Tx) -> T:
    return fn(tx, arg)


# -- the job ------------------------------------------------------------------------------


class Retention:
    """The retention job (a process component; ``ns.extras["retention"]``)."""

    def __init__(self, *, chunk: int = CHUNK_ROWS) -> None:
        self.chunk = chunk
        self._ns: Nightshift | None = None
        self._lock = asyncio.Lock()
        self._stopping = False

    async def start(self, ns: Nightshift) -> None:
        self._ns = ns
        ns.extras["retention"] = self
        ns.every(RETENTION_EVERY_SECONDS, self.run, name="retention")

    async def stop(self, ns: Nightshift) -> None:
        """Stop after the chunk being deleted now (each chunk is its own commit)."""
        self._stopping = True
        async with self._lock:
            return None

    async def run(self) -> dict[str, int]:
        """Delete everything past its retention, table after table; returns rows per table."""
        ns = self._ns
        if ns is None:
            raise RuntimeError("the retention job is not started")
        now = ns.clock.now()
        deleted: dict[str, int] = {}
        async with self._lock:
            for name, step in self._scans(ns, now):
                deleted[name] = await self._guarded(name, scan(ns.store, step, stopping=self._halt))
            for name, prune in self._drains(ns, now):
                deleted[name] = await self._guarded(
                    name, drain(ns.store, prune, chunk=self.chunk, stopping=self._halt)
                )
            await self._compact_validation(ns, now)
        if any(deleted.values()):
            log.info(
                "retention: deleted %s",
                ", ".join(f"{n} {name}" for name, n in deleted.items() if n),
            )
        return deleted

    def _scans(self, ns: Nightshift, now: float) -> list[tuple[str, Callable[[Tx, int], Chunk]]]:
        """The tables pruned by id ranges (no index on their time), with their cut-offs.

        The outbox goes before the alerts: an alert is kept while a row names it.
        """
        keep = ns.policy.retention
        # validation's last_burst_at reads the stream's last duplicate_burst event
        burst = ns.policy.validation.burst.window_seconds
        events_before = now - max(keep.events, burst)
        delivered_before = now - keep.outbox_delivered
        failed_before = now - keep.outbox_failed
        resolved_before = now - keep.alerts_resolved
        n = self.chunk
        return [
            ("events", lambda tx, a: prune_events(tx, before=events_before, after=a, limit=n)),
            (
                "outbox",
                lambda tx, a: prune_outbox(
                    tx,
                    delivered_before=delivered_before,
                    failed_before=failed_before,
                    after=a,
                    limit=n,
                ),
            ),
            ("alerts", lambda tx, a: prune_alerts(tx, before=resolved_before, after=a, limit=n)),
            (
                "heartbeat_gaps",
                lambda tx, a: prune_gaps(tx, before=resolved_before, after=a, limit=n),
            ),
        ]

    def _drains(self, ns: Nightshift, now: float) -> list[tuple[str, Callable[[Tx, int], int]]]:
        """The tables pruned oldest first through their time index, with their cut-offs."""
        val, routing, keep = ns.policy.validation, ns.policy.routing, ns.policy.retention
        window = now - val.window_days * DAY
        rejections = now - val.rejections_retention_days * DAY
        decisions = now - routing.retention_days * DAY
        runs = now - keep.job_runs
        return [
            ("validation_calls", lambda tx, n: vrepo.prune_calls(tx, before=window, limit=n)),
            ("validation_items", lambda tx, n: vrepo.prune_items(tx, before=window, limit=n)),
            (
                "validation_rejections",
                lambda tx, n: vrepo.prune_rejections(tx, before=rejections, limit=n),
            ),
            (
                "routing_decisions",
                lambda tx, n: routing_records.prune_decisions(tx, before=decisions, limit=n),
            ),
            (
                "breaker_attempts",
                lambda tx, n: prune_attempts(tx, older_than_seconds=keep.breaker_attempts, limit=n),
            ),
            ("job_runs", lambda tx, n: job_state.prune_runs(tx, before=runs, limit=n)),
        ]

    def _halt(self) -> bool:
        return self._stopping

    async def _guarded(self, name: str, work: Awaitable[int]) -> int:
        """``await work``; a failure is logged and counted as 0 (the next run tries again)."""
        try:
            return await work
        except Exception:
            log.exception("retention: pruning %s failed; the next run tries again", name)
            return 0

    async def _compact_validation(self, ns: Nightshift, now: float) -> None:
        """Let the validator shrink its in-memory indexes (its own prune finds little left)."""
        validator = ns.extras.get(VALIDATION_KEY)
        if not isinstance(validator, Validator) or self._stopping:
            return
        try:
            await ns.store.write(lambda tx: validator.prune(tx, now))
        except Exception:
            log.exception("retention: compacting the validation indexes failed")
