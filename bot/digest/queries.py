"""The digest's queries: one read snapshot of the database, rows out, no figures.

Everything runs on its own read-only SQLite connection inside one transaction (a
consistent snapshot, and the writer thread is never blocked). A table that does not
exist (a feature not installed in this database) reads as empty, so every section
degrades to "nothing to report".

Which rows count for a day ``[start, end)`` of the namespace's time zone:

- spend: ``usage_daily`` of the namespace and of its agents (money lands in the day
  its hold was taken, as budgets count it); the chart reads the same rows for 7 days;
- by model: ``digest_model_daily``, which a ledger gate adds every settle to (by the
  hold's day too; :mod:`bot.digest.rollup`), so no charge is read one by one;
- breaker transitions, validation rejections, job runs: by their time column; a model
  breaker's outages only when the namespace's traffic met them
  (:mod:`bot.digest.model_outages`).

Example:
    >>> # raw = read_day(conn, namespace="acme", day=date(2026, 1, 1), tz=ZoneInfo("UTC"),
    >>> #                now=clock.now())
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.digest.model_outages import MODEL_SCOPES, Outage, met_outages
from guards.scopes import subtree

__all__ = ["CHART_DAYS", "RawDay", "day_bounds", "read_day"]

CHART_DAYS = 7
BREAKER_LOOKBACK_SECONDS = 30 * 86400  # how far back an open breaker's opening is looked for


@dataclass
class RawDay:
    """What the database says about one namespace and local day."""

    namespace: str
    day: date
    timezone: str
    start: float
    end: float
    now: float
    namespace_spent: int = 0
    agent_spent: dict[str, int] = field(default_factory=dict)
    chart_days: list[date] = field(default_factory=list)
    chart: dict[str, dict[str, int]] = field(default_factory=dict)  # agent -> day -> micros
    # (model, calls, charged, failed, overruns, overrun_micros)
    models: list[tuple[str | None, int, int, int, int, int]] = field(default_factory=list)
    # (scope, from_state, to_state, reason, trip, at, actor), oldest first
    transitions: list[tuple[str, str, str, str, str | None, float, str]] = field(
        default_factory=list
    )
    # the model breakers' outages the namespace's traffic met, reaching into the day
    model_outages: list[Outage] = field(default_factory=list)
    rejections: dict[str, int] = field(default_factory=dict)  # reason -> rows
    rejected_items: int = 0
    streams: list[tuple[str, str, int]] = field(default_factory=list)  # (scope, stream, rows)
    # (job, state, reason, count)
    jobs: list[tuple[str, str, str | None, int]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # tables this database lacks
    # Charges that landed on an earlier day after that day's digest went out, since the
    # digest before this one: (agent, settles, micros). No digest of their day shows them.
    late: list[tuple[str, int, int]] = field(default_factory=list)
    # Calls the guards refused before they started: (agent, reason, calls, asked micros)
    refusals: list[tuple[str, str, int, int]] = field(default_factory=list)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[float, float]:
    """``[start, end)`` of a local calendar day as POSIX seconds (23 or 25 h around DST)."""
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return start.timestamp(), end.timestamp()


def _rows(
    conn: sqlite3.Connection, raw: RawDay, table: str, sql: str, params: Sequence[Any]
) -> list[Any]:
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc) or "no such column" in str(exc):
            raw.missing.append(table)
            return []
        raise


def _transitions(
    conn: sqlite3.Connection, raw: RawDay, where: str, params: Sequence[Any]
) -> list[tuple[str, str, str, str, str | None, float, str]]:
    """Breaker transitions matching ``where``, in the order they happened."""
    return [
        (r[0], r[1], r[2], r[3], r[4], float(r[5]), str(r[6]))
        for r in _rows(
            conn,
            raw,
            "breaker_transitions",
            "SELECT scope, from_state, to_state, reason, trip, at, actor FROM breaker_transitions"
            f" WHERE {where} ORDER BY at, id",
            params,
        )
    ]


def read_day(
    conn: sqlite3.Connection, *, namespace: str, day: date, tz: ZoneInfo, now: float
) -> RawDay:
    """Every row the digest of ``namespace`` for ``day`` needs (call inside one transaction)."""
    start, end = day_bounds(day, tz)
    raw = RawDay(namespace, day, tz.key, start, end, now)
    lo, hi = subtree(namespace)
    iso = day.isoformat()
    first = day - timedelta(days=CHART_DAYS - 1)
    raw.chart_days = [first + timedelta(days=i) for i in range(CHART_DAYS)]
    row = _rows(
        conn,
        raw,
        "usage_daily",
        "SELECT spent_micros FROM usage_daily WHERE scope = ? AND day = ?",
        (namespace, iso),
    )
    raw.namespace_spent = int(row[0][0]) if row else 0
    for scope, d, spent in _rows(
        conn,
        raw,
        "usage_daily",
        "SELECT scope, day, spent_micros FROM usage_daily"
        " WHERE scope IN (SELECT path FROM scopes WHERE path >= ? AND path < ? AND depth = 3)"
        " AND day BETWEEN ? AND ?",
        (lo, hi, first.isoformat(), iso),
    ):
        raw.chart.setdefault(scope, {})[d] = int(spent)
        if d == iso:
            raw.agent_spent[scope] = int(spent)
    raw.models = [
        (r[0] or None, int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]))
        for r in _rows(
            conn,
            raw,
            "digest_model_daily",
            "SELECT model, calls, charged_micros, failed, overruns, overrun_micros"
            " FROM digest_model_daily WHERE namespace = ? AND day = ?",
            (namespace, iso),
        )
    ]
    since = start - BREAKER_LOOKBACK_SECONDS
    raw.transitions = _transitions(
        conn,
        raw,
        "(scope = ? OR (scope >= ? AND scope < ?)) AND at >= ? AND at < ?",
        (namespace, lo, hi, since, end),
    )
    model_transitions = _transitions(
        conn, raw, "scope >= ? AND scope < ? AND at >= ? AND at < ?", (*MODEL_SCOPES, since, end)
    )
    raw.model_outages = met_outages(
        lambda table, sql, params: _rows(conn, raw, table, sql, params),
        model_transitions,
        namespace=namespace,
        subtree=(lo, hi),
        start=start,
        stop=min(end, now),
        tz=tz,
    )
    for reason, rows, items in _rows(
        conn,
        raw,
        "validation_rejections",
        "SELECT reason, COUNT(*), SUM(CASE WHEN item_index IS NULL THEN batch_size ELSE 1 END)"
        " FROM validation_rejections WHERE at >= ? AND at < ? AND scope >= ? AND scope < ?"
        " GROUP BY reason",
        (start, end, lo, hi),
    ):
        raw.rejections[reason] = int(rows)
        raw.rejected_items += int(items or 0)
    raw.streams = [
        (r[0], r[1], int(r[2]))
        for r in _rows(
            conn,
            raw,
            "validation_rejections",
            "SELECT scope, stream, COUNT(*) AS n FROM validation_rejections"
            " WHERE at >= ? AND at < ? AND scope >= ? AND scope < ?"
            " GROUP BY scope, stream ORDER BY n DESC, scope, stream LIMIT 5",
            (start, end, lo, hi),
        )
    ]
    raw.jobs = [
        (r[0], r[1], r[2], int(r[3]))
        for r in _rows(
            conn,
            raw,
            "job_runs",
            "SELECT job, state, reason, COUNT(*) FROM job_runs"
            " WHERE decided_at >= ? AND decided_at < ? AND scope >= ? AND scope < ?"
            " GROUP BY job, state, reason ORDER BY job",
            (start, end, lo, hi),
        )
    ]
    raw.refusals = [
        (str(r[0]), str(r[1]), int(r[2]), int(r[3]))
        for r in _rows(
            conn,
            raw,
            "refusals_daily",
            "SELECT scope, reason, calls, asked_micros FROM refusals_daily"
            " WHERE day = ? AND scope >= ? AND scope < ?",
            (iso, lo, hi),
        )
    ]
    raw.late = _late_charges(conn, raw, namespace=namespace, day=iso)
    return raw


def _late_charges(
    conn: sqlite3.Connection, raw: RawDay, *, namespace: str, day: str
) -> list[tuple[str, int, int]]:
    """Settles charged to a day whose digest was already posted (a long hold, a late
    settle), made since the digest before ``day``'s and until now: (agent, settles, micros),
    the largest first."""
    lo, hi = subtree(namespace)
    since_row = _rows(
        conn,
        raw,
        "digests",
        "SELECT MAX(posted_at) FROM digests WHERE namespace = ? AND day < ?",
        (namespace, day),
    )
    since = float(since_row[0][0]) if since_row and since_row[0][0] is not None else raw.start
    by_agent: dict[str, list[int]] = {}
    for scope, charged in _rows(
        conn,
        raw,
        "reservations",
        "SELECT r.scope, r.charged_micros FROM reservations AS r"
        " JOIN digests AS d ON d.namespace = ? AND d.day = r.period_day"
        " WHERE r.state = 'settled' AND r.finished_at > ? AND r.finished_at <= ?"
        " AND r.finished_at > d.posted_at AND r.charged_micros > 0"
        " AND r.scope >= ? AND r.scope < ?",
        (namespace, since, raw.now, lo, hi),
    ):
        agent = "/".join(str(scope).split("/")[:3])
        cell = by_agent.setdefault(agent, [0, 0])
        cell[0] += 1
        cell[1] += int(charged)
    return sorted(((a, n, m) for a, (n, m) in by_agent.items()), key=lambda t: (-t[2], t[0]))
