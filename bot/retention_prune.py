"""The retention job's chunked deletes: each deletes at most ``limit`` rows in one write.

Each function runs inside ``store.write``; :mod:`bot.retention` drives them, one write
per chunk, with the cut-offs of the policy's ``retention:`` periods, and its docstring
says what is kept for how long and why.

Example:
    >>> # chunk = await store.write(lambda tx: prune_events(tx, before=cutoff, after=0))
    >>> # chunk.deleted, chunk.next_after
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from bot.outbox_refs import refs_in
from guards.store import Tx

__all__ = [
    "CHUNK_ROWS",
    "Chunk",
    "prune_alerts",
    "prune_events",
    "prune_gaps",
    "prune_outbox",
    "prune_webhooks",
    "ref_owner",
]

CHUNK_ROWS = 2000  # rows per write: ~15 ms of the single writer (measured, see the README)

# Refs whose rows nothing points at later (a digest's ref only stops a second post; a
# channel refusal's DM, a second one within the hour; a webhook delivery's thread note,
# a second note of the same kind for it).
_FREE_REF_PREFIXES = ("digest:", "channel-refused:", "webhook:")
_WAITING_WITH_REFS = "SELECT args FROM outbox WHERE state = 'pending' AND instr(args, '$ref:')"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One write of a scan: rows deleted, and the id to go on after (None: done)."""

    deleted: int
    next_after: int | None


# -- the chunked deletes (each runs inside store.write) -----------------------------------


def _ids_after(
    tx: Tx, table: str, time_column: str, after: int, limit: int
) -> tuple[int, int, float]:
    """The next ``limit`` rows of ``table`` after id ``after``: how many, the last id, and
    the newest time among them (the scan stops at the first chunk that reaches its cut-off)."""
    seen, last, newest = tx.one(
        f"SELECT count(*), max(id), max({time_column}) FROM"
        f" (SELECT id, {time_column} FROM {table} WHERE id > ? ORDER BY id LIMIT ?)",
        (after, limit),
    )
    return int(seen), int(last or 0), float(newest or 0.0)


def prune_events(tx: Tx, *, before: float, after: int = 0, limit: int = CHUNK_ROWS) -> Chunk:
    """Delete dispatched events older than ``before`` among the ``limit`` rows after id ``after``.

    Events are written in time order, so the scan ends at the first chunk that reaches
    ``before``. An undispatched event is kept (the alerts have not seen it), and so is
    the newest row, so that event ids never come back (alerts name their events).
    """
    seen, last, newest = _ids_after(tx, "events", "at", after, limit)
    if not seen:
        return Chunk(0, None)
    cur = tx.execute(
        "DELETE FROM events WHERE id > ? AND id <= ? AND at < ? AND dispatched_at IS NOT NULL"
        " AND id < (SELECT max(id) FROM events)",
        (after, last, before),
    )
    more = seen == limit and newest < before
    return Chunk(int(cur.rowcount), last if more else None)


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
    more = len(rows) == limit and rows[-1][3] < max(delivered_before, failed_before)
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
    if kind == "done" and rest.startswith("fold:"):  # a summary's "handled" edit
        return ("fold", rest)
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
    # nor the newest escalation's alert: storm page summaries are named after escalation ids
    " AND NOT EXISTS (SELECT 1 FROM escalations e"
    "  WHERE e.alert_id = a.id AND e.id = (SELECT max(id) FROM escalations))"
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
    seen, last, newest = _ids_after(tx, "alerts", "first_at", after, limit)
    if not seen:
        return Chunk(0, None)
    doomed = json.dumps([r[0] for r in tx.all(_DOOMED_ALERTS, (after, last, before))])
    # escalations.alert_id REFERENCES alerts(id): the children go first
    tx.execute(
        "DELETE FROM escalations WHERE alert_id IN (SELECT value FROM json_each(?))", (doomed,)
    )
    cur = tx.execute("DELETE FROM alerts WHERE id IN (SELECT value FROM json_each(?))", (doomed,))
    more = seen == limit and newest < before
    return Chunk(int(cur.rowcount), last if more else None)


def prune_gaps(tx: Tx, *, before: float, after: int = 0, limit: int = CHUNK_ROWS) -> Chunk:
    """Delete heartbeat gaps that ended before ``before`` among the ``limit`` gaps after
    id ``after``; a gap still open (the agent has not come back) is kept.

    Gaps are written when they begin, in about the order of ``down_from``, so the scan
    ends at the first chunk that reaches ``before`` (no gap after it can have ended).
    """
    seen, last, newest = _ids_after(tx, "heartbeat_gaps", "down_from", after, limit)
    if not seen:
        return Chunk(0, None)
    cur = tx.execute(
        "DELETE FROM heartbeat_gaps WHERE id > ? AND id <= ? AND down_until < ?",
        (after, last, before),
    )
    more = seen == limit and newest < before
    return Chunk(int(cur.rowcount), last if more else None)


def prune_webhooks(
    tx: Tx,
    *,
    delivered_before: float,
    failed_before: float,
    after: int = 0,
    limit: int = CHUNK_ROWS,
) -> Chunk:
    """Delete webhook deliveries done before their period (``delivered_before`` for a
    delivered one, ``failed_before`` for a failed one, by when they were done) among the
    ``limit`` rows after id ``after``.

    A pending one is kept, and so is every row of an alert not resolved (a resolve to come
    names its trigger), every row of a webhook storm not ended (bot.webhook_storms: its
    resolve too), and the newest row (a delivery id, which receivers drop repeats by, never
    comes back). An ended storm goes with its last row.
    """
    seen, last, newest = _ids_after(tx, "webhook_deliveries", "created_at", after, limit)
    if not seen:
        return Chunk(0, None)
    cur = tx.execute(
        "DELETE FROM webhook_deliveries WHERE id > ? AND id <= ?"
        " AND ((state = 'delivered' AND done_at < ?) OR (state = 'failed' AND done_at < ?))"
        " AND id < (SELECT max(id) FROM webhook_deliveries) AND NOT EXISTS (SELECT 1 FROM"
        " alerts a WHERE a.id = webhook_deliveries.alert_id AND a.resolved_at IS NULL)"
        " AND NOT EXISTS (SELECT 1 FROM webhook_storms s"
        "  WHERE s.id = webhook_deliveries.storm_id AND s.ended_at IS NULL)",
        (after, last, delivered_before, failed_before),
    )
    tx.execute(  # ended storms whose events are gone; never the newest: its id (in the
        # dedup_key and the escalations' folded_into) is never given to a new one
        "DELETE FROM webhook_storms WHERE ended_at IS NOT NULL AND ended_at < ?"
        " AND id < (SELECT max(id) FROM webhook_storms)"
        " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.storm_id = webhook_storms.id)",
        (max(delivered_before, failed_before),),
    )
    more = seen == limit and newest < max(delivered_before, failed_before)
    return Chunk(int(cur.rowcount), last if more else None)
