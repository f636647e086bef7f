"""Which namespaces have a digest, and when each began.

A namespace has a digest once any of its agents has shown up, whatever the way: a
reservation (its ``scopes`` row, the only one the ledger writes), a call the guards
refused before it started (``refusals_daily``: a budget, a breaker, a model's kill
switch, the attempts limit), a heartbeat, a validated stream, a job run, a routing
decision, or an alert open now or fired since ``since`` (the digest's days). A fleet
that starts with heartbeats only, or uses Nightshift for jobs alone, gets its morning
digest of the night's pages too (audit26 contract F1); one whose every call was refused
(a kill switch on as it started) gets the digest that says so (recheck27 Kc M1: it got
none). ``model_breaker_refusals`` adds no namespace: a call it counts is counted in
``refusals_daily`` by the same refusal.

*Began* is its first sign of life among those, so the first-day rule of the poster
(``digest.time``: a namespace that began today before that time gets its day so far)
holds whatever created it. Scopes, heartbeats, streams and routing decisions give the
exact time; an alert the time it first fired; a job its first run in the namespace of
its newest run. For a job that moved namespaces that is exact when it came after
``since`` and some run before ``since`` otherwise (only "before today or not"
matters); the namespace of its first run has a digest too (review26 L8). A refusal is
counted per agent, local day and reason, with when that row's first refusal came
(migration 0049): that time, so a namespace first refused at 15:38 began at 15:38
(recheck27 Kd L2: it was dated 00:00). A row counted before 0049 has no time: it gives
the start of its day (in the namespace's time zone), and only when that day is before
the day of every other sign, so a namespace that reserved at 10:00 and was refused at
11:00 still began at 10:00.

The list costs a few index seeks per namespace and per job, whatever the number of rows
(``/agent digest`` answers within Slack's 3 s; review26 H1):

- ``scopes`` by ``scopes_depth``; ``heartbeats`` and ``validation_streams``: one row
  per agent or stream;
- ``job_runs``: its jobs one by one on ``job_runs_job_time`` (a skip scan), each job's
  newest and first run from the same index; for a job that moved, its run before
  ``since`` and at most its runs since ``since`` (a job runs once a minute at most);
- ``routing_decisions``: its namespaces one by one on ``routing_decisions_namespace_at``
  (a skip scan), each one's first route from the same index;
- ``alerts``: the open ones and those since ``since`` (``alerts_first_at``);
- ``refusals_daily`` (never pruned): its agents one by one on its primary key (a skip
  scan), each one's first day from the same key.

A table this database lacks reads as empty, as in :mod:`bot.digest.queries`.

Example:
    >>> # await store.read(lambda tx: digest_namespaces(
    >>> #     tx, since=now - LOOKBACK_SECONDS, timezone=builder.timezone))
    >>> # [('acme', 1767571200.0), ('beta', 1767600000.0)]
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.digest.queries import day_bounds
from guards.scopes import Scope, ScopeError, subtree
from guards.store import Tx
from guards.tx import distinct_seeks

__all__ = ["LOOKBACK_SECONDS", "digest_namespaces"]

# How far back alerts and a moved job's runs are read: the start of the day before
# yesterday in any time zone (a due day is yesterday, or the day before until
# digest.time), DST included.
LOOKBACK_SECONDS = 4 * 86400

_NS = "substr({col}, 1, instr({col} || '/', '/') - 1)"  # the namespace of a scope column
_SMALL_TABLES = (
    "SELECT path, created_at FROM scopes WHERE depth = 1",
    f"SELECT {_NS.format(col='scope')}, MIN(first_seen) FROM heartbeats GROUP BY 1",
    f"SELECT {_NS.format(col='agent')}, MIN(created_at) FROM validation_streams GROUP BY 1",
)
_JOBS = (
    distinct_seeks("jobs", "job_runs", "job") + " SELECT jobs.job,"
    " (SELECT scope FROM job_runs WHERE job = jobs.job ORDER BY decided_at DESC LIMIT 1),"
    " (SELECT scope FROM job_runs WHERE job = jobs.job ORDER BY decided_at LIMIT 1),"
    " (SELECT MIN(decided_at) FROM job_runs WHERE job = jobs.job)"
    " FROM jobs WHERE jobs.job IS NOT NULL"
)
_JOB_RUN_BEFORE = (
    "SELECT scope, decided_at FROM job_runs WHERE job = ? AND decided_at < ?"
    " ORDER BY decided_at DESC LIMIT 1"
)
_JOB_FIRST_SINCE = (
    "SELECT MIN(decided_at) FROM job_runs WHERE job = ? AND decided_at >= ?"
    " AND (scope = ? OR (scope >= ? AND scope < ?))"
)
_ALERTS = (
    f"SELECT {_NS.format(col='scope')}, MIN(first_at) FROM alerts"
    " WHERE resolved_at IS NULL AND scope NOT LIKE 'model:%' GROUP BY 1",
    f"SELECT {_NS.format(col='scope')}, MIN(first_at) FROM alerts"
    " WHERE first_at >= ? AND scope NOT LIKE 'model:%' GROUP BY 1",
)
_ROUTES = (
    distinct_seeks("ns", "routing_decisions", "namespace")
    + " SELECT ns.namespace, (SELECT MIN(at) FROM routing_decisions r"
    " WHERE r.namespace = ns.namespace) FROM ns WHERE ns.namespace IS NOT NULL"
)

# Each refused agent (a refusal is counted per agent, local day and reason) with its first
# day and when that day's first refusal came (NULL when a row of that day was counted
# before migration 0049: not known): one primary-key seek each, not a read of its every day.
_REFUSED = (
    distinct_seeks("refused", "refusals_daily", "scope") + ", firsts(scope, day) AS (SELECT scope,"
    " (SELECT MIN(day) FROM refusals_daily WHERE scope = refused.scope)"
    " FROM refused WHERE scope IS NOT NULL)"
    " SELECT scope, day, (SELECT CASE WHEN COUNT(first_at) = COUNT(*) THEN MIN(first_at) END"
    " FROM refusals_daily r WHERE r.scope = firsts.scope AND r.day = firsts.day) FROM firsts"
)


def _rows(tx: Tx, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """The rows of one read; none when this database lacks the table."""
    try:
        return tx.all(sql, params)
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


def _namespace(scope: str) -> str:
    return scope.split("/", 1)[0]


def _jobs(tx: Tx, since: float) -> list[tuple[str, float]]:
    """Each job's namespaces and when each began: its newest run's, and its first run's."""
    found: list[tuple[str, float]] = []
    for job, newest, first, first_at in _rows(tx, _JOBS):
        if newest is None or first_at is None:
            continue
        found.append((_namespace(first), float(first_at)))
        namespace = _namespace(newest)
        if namespace == _namespace(first):
            continue
        # it moved: when it first ran in its newest namespace (review26 L8)
        before = tx.one(_JOB_RUN_BEFORE, (job, since))
        if before is not None and _namespace(str(before[0])) == namespace:
            found.append((namespace, float(before[1])))
            continue
        lo, hi = subtree(namespace)
        began = tx.one(_JOB_FIRST_SINCE, (job, since, namespace, lo, hi))
        if began is not None and began[0] is not None:
            found.append((namespace, float(began[0])))
    return found


def _add(began: dict[str, float], rows: Iterable[Any]) -> None:
    for name, at in rows:
        if name is None or at is None:
            continue
        namespace = _namespace(str(name))
        try:
            Scope.parse(namespace)
        except ScopeError:
            continue  # not an agent's (a model's breaker, say)
        began[namespace] = min(float(at), began.get(namespace, float(at)))


def _refused(
    tx: Tx, began: dict[str, float], timezone: Callable[[str], ZoneInfo]
) -> dict[str, float]:
    """The namespaces whose first refusal came before any other sign of them (or that
    have no other), each with when it came; when that is not known (a row counted before
    migration 0049), the start of its day in its time zone, if that day is before the
    day of every other sign."""
    first: dict[str, tuple[str, float | None]] = {}  # namespace -> its first day, and when
    for scope, day, at in _rows(tx, _REFUSED):
        if day is None:
            continue
        namespace, day, at = _namespace(str(scope)), str(day), _time(at)
        seen = first.get(namespace)
        if seen is None or day < seen[0]:
            first[namespace] = (day, at)
        elif day == seen[0]:  # another agent's on the same day: the earlier, if both known
            first[namespace] = (day, None if at is None or seen[1] is None else min(at, seen[1]))
    found: dict[str, float] = {}
    for namespace, (day, at) in first.items():
        try:
            Scope.parse(namespace)
            local = date.fromisoformat(day)
        except (ScopeError, ValueError):
            continue
        tz = timezone(namespace)
        other = began.get(namespace)
        if at is not None:
            if other is None or at < other:
                found[namespace] = at
            continue
        if other is not None and datetime.fromtimestamp(other, tz).date() <= local:
            continue  # shown up that day or before: its exact time stands
        found[namespace] = day_bounds(local, tz)[0]
    return found


def _time(value: Any) -> float | None:
    return None if value is None else float(value)


def digest_namespaces(
    tx: Tx, *, since: float, timezone: Callable[[str], ZoneInfo]
) -> list[tuple[str, float]]:
    """Every namespace with a digest and when it began, by name (run on a read snapshot).

    ``since``: how far back alerts are read (the digest's days: ``now -
    LOOKBACK_SECONDS``), and the time before which a moved job's exact time in its new
    namespace is not looked for. ``timezone``: a namespace's zone, for the day a refusal
    was counted in.
    """
    began: dict[str, float] = {}
    for sql in _SMALL_TABLES:
        _add(began, _rows(tx, sql))
    _add(began, _jobs(tx, since))
    _add(began, _rows(tx, _ALERTS[0]))
    _add(began, _rows(tx, _ALERTS[1], (since,)))
    _add(began, _rows(tx, _ROUTES))
    began.update(_refused(tx, began, timezone))
    return sorted(began.items())
