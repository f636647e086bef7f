"""Which namespaces have a digest, and when each began.

A namespace has a digest once any of its agents has shown up, whatever the way: a
reservation (its ``scopes`` row, the only one the ledger writes), a heartbeat, a
validated stream, a job run, a routing decision, or an alert open now or fired since
``since`` (the digest's days). A fleet that starts with heartbeats only, or uses
Nightshift for jobs alone, gets its morning digest of the night's pages too (audit26
contract F1).

*Began* is its first sign of life among those, so the first-day rule of the poster
(``digest.time``: a namespace that began today before that time gets its day so far)
holds whatever created it. Scopes, heartbeats, streams and job runs give the exact
time; routing decisions the exact time when they all came after ``since`` and some time
before ``since`` otherwise (only "before today or not" matters); an alert the time it
first fired.

Every read is an index look-up or one pass over a small table, so the list costs a few
milliseconds on a database with a year of rows (``/agent digest`` answers within
Slack's 3 s):

- ``scopes`` by ``scopes_depth``; ``heartbeats`` and ``validation_streams``: one row
  per agent or stream;
- ``job_runs``: its jobs one by one on ``job_runs_job_time`` (a skip scan), each job's
  newest scope and first run from the same index;
- ``routing_decisions``: its namespaces one by one on
  ``routing_decisions_scope_settled`` (a skip scan over scopes);
- ``alerts``: the open ones and those since ``since`` (``alerts_first_at``).

A table this database lacks reads as empty, as in :mod:`bot.digest.queries`.

Example:
    >>> # await store.read(lambda tx: digest_namespaces(tx, since=now - LOOKBACK_SECONDS))
    >>> # [('acme', 1767571200.0), ('beta', 1767600000.0)]
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from guards.scopes import Scope, ScopeError, subtree
from guards.store import Tx

__all__ = ["LOOKBACK_SECONDS", "digest_namespaces"]

# How far back alerts and routes are read: the start of the day before yesterday in any
# time zone (a due day is yesterday, or the day before until digest.time), DST included.
LOOKBACK_SECONDS = 4 * 86400

_NS = "substr({col}, 1, instr({col} || '/', '/') - 1)"  # the namespace of a scope column
_SMALL_TABLES = (
    "SELECT path, created_at FROM scopes WHERE depth = 1",
    f"SELECT {_NS.format(col='scope')}, MIN(first_seen) FROM heartbeats GROUP BY 1",
    f"SELECT {_NS.format(col='agent')}, MIN(created_at) FROM validation_streams GROUP BY 1",
)
_JOBS = (
    "WITH RECURSIVE jobs(job) AS ("
    " SELECT MIN(job) FROM job_runs"
    " UNION ALL SELECT (SELECT MIN(job) FROM job_runs WHERE job > jobs.job) FROM jobs"
    " WHERE jobs.job IS NOT NULL)"
    " SELECT (SELECT scope FROM job_runs WHERE job = jobs.job ORDER BY decided_at DESC LIMIT 1),"
    " (SELECT MIN(decided_at) FROM job_runs WHERE job = jobs.job)"
    " FROM jobs WHERE jobs.job IS NOT NULL"
)
_ALERTS = (
    f"SELECT {_NS.format(col='scope')}, MIN(first_at) FROM alerts"
    " WHERE resolved_at IS NULL AND scope NOT LIKE 'model:%' GROUP BY 1",
    f"SELECT {_NS.format(col='scope')}, MIN(first_at) FROM alerts"
    " WHERE first_at >= ? AND scope NOT LIKE 'model:%' GROUP BY 1",
)
_ROUTE_AFTER = "SELECT MIN(scope) FROM routing_decisions WHERE scope > ?"
_ROUTE_FROM = "SELECT MIN(scope) FROM routing_decisions WHERE scope >= ?"
_IN_NAMESPACE = "(scope = ? OR (scope >= ? AND scope < ?))"
_ROUTE_BEFORE = f"SELECT at FROM routing_decisions WHERE {_IN_NAMESPACE} AND at < ? LIMIT 1"
_ROUTE_FIRST = f"SELECT MIN(at) FROM routing_decisions WHERE {_IN_NAMESPACE}"


def _rows(tx: Tx, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """The rows of one read; none when this database lacks the table."""
    try:
        return tx.all(sql, params)
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


def _route_namespaces(tx: Tx) -> Iterator[str]:
    """The namespaces of ``routing_decisions``, one index look-up each.

    Every scope of a namespace ``ns`` is ``ns`` or in ``[ns/, ns0)``; names in between
    (``ns-x``, ``ns.y``) sort after ``ns`` and before ``ns/``, so after ``ns`` itself
    the scan goes on right after it, and after a scope below it, past ``ns0``.
    """
    try:
        row = tx.one(_ROUTE_FROM, ("",))
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return
        raise
    while row is not None and row[0] is not None:
        scope = str(row[0])
        namespace = scope.split("/", 1)[0]
        yield namespace
        if scope == namespace:
            row = tx.one(_ROUTE_AFTER, (namespace,))
        else:
            row = tx.one(_ROUTE_FROM, (subtree(namespace)[1],))


def _route_began(tx: Tx, namespace: str, since: float) -> float | None:
    """When ``namespace`` first routed: exact if after ``since``, else one route before it."""
    lo, hi = subtree(namespace)
    before = tx.one(_ROUTE_BEFORE, (namespace, lo, hi, since))
    if before is not None:
        return float(before[0])
    first = tx.one(_ROUTE_FIRST, (namespace, lo, hi))
    return None if first is None or first[0] is None else float(first[0])


def _add(began: dict[str, float], rows: Iterable[Any]) -> None:
    for name, at in rows:
        if name is None or at is None:
            continue
        namespace = str(name).split("/", 1)[0]
        try:
            Scope.parse(namespace)
        except ScopeError:
            continue  # not an agent's (a model's breaker, say)
        began[namespace] = min(float(at), began.get(namespace, float(at)))


def digest_namespaces(tx: Tx, *, since: float) -> list[tuple[str, float]]:
    """Every namespace with a digest and when it began, by name (run on a read snapshot).

    ``since``: how far back alerts are read (the digest's days: ``now -
    LOOKBACK_SECONDS``), and the time before which a route's exact time is not looked for.
    """
    began: dict[str, float] = {}
    for sql in _SMALL_TABLES:
        _add(began, _rows(tx, sql))
    _add(began, _rows(tx, _JOBS))
    _add(began, _rows(tx, _ALERTS[0]))
    _add(began, _rows(tx, _ALERTS[1], (since,)))
    for namespace in list(_route_namespaces(tx)):
        if began.get(namespace, since) < since:
            continue  # known from before the digest's days: its first route changes nothing
        at = _route_began(tx, namespace, since)
        _add(began, [(namespace, at)])
    return sorted(began.items())
