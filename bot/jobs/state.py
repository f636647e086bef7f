"""The jobs' rows: schedule marks, pauses, runs, the secret key. One query per function.

Every function takes the writer's :class:`~guards.store.Tx` (see :mod:`guards.store`).

Example:
    >>> # inside store.write:
    >>> # pause(tx, job="rss-hourly", actor="U1")
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from guards.store import Tx

__all__ = [
    "ALL",
    "PRUNE_LIMIT",
    "RUN_STATES",
    "Pause",
    "RunRow",
    "derived_secret",
    "finish_run",
    "interrupted_run",
    "last_scheduled",
    "mark_abandoned",
    "new_run_id",
    "pause",
    "pauses",
    "prune_runs",
    "recent_runs",
    "record_run",
    "resume",
    "running_run",
    "runs_since",
    "secret_key",
    "set_last_scheduled",
    "skipped_since",
]

ALL = "*"  # the pause row that stops every job
RUN_STATES = ("running", "succeeded", "failed", "timeout", "abandoned", "skipped")


@dataclass(frozen=True, slots=True)
class Pause:
    job: str
    paused_by: str
    paused_at: float


@dataclass(frozen=True, slots=True)
class RunRow:
    id: str
    job: str
    scheduled_for: float
    decided_at: float
    state: str
    reason: str | None
    detail: str | None
    http_status: int | None
    finished_at: float | None
    duration_ms: int | None

    @classmethod
    def from_row(cls, row: Any) -> RunRow:
        return cls(*tuple(row))


_RUN_COLUMNS = (
    "id, job, scheduled_for, decided_at, state, reason, detail, http_status, finished_at,"
    " duration_ms"
)


def new_run_id() -> str:
    return "run_" + secrets.token_hex(8)


# -- schedule ---------------------------------------------------------------------------


def last_scheduled(tx: Tx, job: str) -> float | None:
    row = tx.one("SELECT last_scheduled_for FROM job_schedule WHERE job = ?", (job,))
    return float(row[0]) if row else None


def set_last_scheduled(tx: Tx, job: str, when: float) -> None:
    tx.execute(
        "INSERT INTO job_schedule (job, last_scheduled_for, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (job) DO UPDATE SET last_scheduled_for = excluded.last_scheduled_for,"
        " updated_at = excluded.updated_at",
        (job, when, tx.clock.now()),
    )


# -- pauses -----------------------------------------------------------------------------


def pauses(tx: Tx) -> dict[str, Pause]:
    """Every pause row by job (``*`` for all)."""
    return {
        r[0]: Pause(r[0], r[1], r[2])
        for r in tx.all("SELECT job, paused_by, paused_at FROM job_pauses")
    }


def pause(tx: Tx, *, job: str, actor: str) -> bool:
    """Pause ``job`` (or ``*``); False when it already was."""
    cur = tx.execute(
        "INSERT OR IGNORE INTO job_pauses (job, paused_by, paused_at) VALUES (?, ?, ?)",
        (job, actor, tx.clock.now()),
    )
    return cur.rowcount > 0


def resume(tx: Tx, *, job: str) -> list[str]:
    """Lift the pause of ``job``; ``*`` lifts every pause. Returns what was lifted."""
    if job == ALL:
        lifted = [r[0] for r in tx.all("SELECT job FROM job_pauses ORDER BY job")]
        tx.execute("DELETE FROM job_pauses")
        return lifted
    cur = tx.execute("DELETE FROM job_pauses WHERE job = ?", (job,))
    return [job] if cur.rowcount else []


# -- runs -------------------------------------------------------------------------------


def record_run(
    tx: Tx,
    *,
    run_id: str,
    job: str,
    scope: str,
    scheduled_for: float,
    state: str,
    reason: str | None = None,
    detail: str | None = None,
) -> None:
    tx.execute(
        "INSERT INTO job_runs (id, job, scope, scheduled_for, decided_at, state, reason, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, job, scope, scheduled_for, tx.clock.now(), state, reason, detail),
    )


def finish_run(
    tx: Tx,
    *,
    run_id: str,
    state: str,
    http_status: int | None,
    detail: str | None,
    duration_ms: int,
) -> bool:
    """Close a running run; False when it was no longer running (abandoned meanwhile).

    ``detail`` joins what the run said when it began (the missed fires it stands for).
    """
    cur = tx.execute(
        "UPDATE job_runs SET state = ?, http_status = ?, detail = CASE WHEN ? IS NULL THEN detail"
        " WHEN detail IS NULL THEN ? ELSE detail || '; ' || ? END, finished_at = ?,"
        " duration_ms = ? WHERE id = ? AND state = 'running'",
        (state, http_status, detail, detail, detail, tx.clock.now(), duration_ms, run_id),
    )
    return cur.rowcount > 0


def decided(tx: Tx, job: str, scheduled_for: float) -> bool:
    """Whether that fire of the job was decided already: run (any outcome) or skipped
    (paused, capped, breaker open…). A fire is decided once, even when the clock goes
    back over it."""
    row = tx.one(
        "SELECT 1 FROM job_runs WHERE job = ? AND scheduled_for = ? LIMIT 1", (job, scheduled_for)
    )
    return row is not None


def running_run(tx: Tx, job: str) -> RunRow | None:
    row = tx.one(
        f"SELECT {_RUN_COLUMNS} FROM job_runs WHERE job = ? AND state = 'running' LIMIT 1", (job,)
    )
    return RunRow.from_row(row) if row else None


def interrupted_run(tx: Tx, job: str, *, since: float) -> RunRow | None:
    """The newest run begun at or after ``since`` that a restart interrupted: its target
    did not hear of it (a cancelled request does not stop the work), so it may still run."""
    row = tx.one(
        f"SELECT {_RUN_COLUMNS} FROM job_runs WHERE job = ? AND decided_at >= ?"
        " AND state = 'abandoned' ORDER BY decided_at DESC LIMIT 1",
        (job, since),
    )
    return RunRow.from_row(row) if row else None


def runs_since(tx: Tx, job: str, since: float, until: float) -> int:
    """Runs started (not skipped) from ``since`` to ``until`` (now: a run stamped later was
    decided before the clock went back, in another hour than this one)."""
    row = tx.one(
        "SELECT COUNT(*) FROM job_runs WHERE job = ? AND decided_at >= ? AND decided_at <= ?"
        " AND state != 'skipped'",
        (job, since, until),
    )
    return int(row[0])


def skipped_since(tx: Tx, job: str, since: float, reason: str) -> int:
    row = tx.one(
        "SELECT COUNT(*) FROM job_runs WHERE job = ? AND decided_at >= ? AND state = 'skipped'"
        " AND reason = ?",
        (job, since, reason),
    )
    return int(row[0])


def last_finished(tx: Tx, job: str, *, within: int = 500) -> RunRow | None:
    """The job's newest run that went out and ended (skips and a run going on aside),
    among its last ``within`` rows."""
    row = tx.one(
        f"SELECT {_RUN_COLUMNS} FROM (SELECT * FROM job_runs WHERE job = ?"
        " ORDER BY seq DESC LIMIT ?) WHERE state NOT IN ('skipped', 'running')"
        " ORDER BY seq DESC LIMIT 1",
        (job, within),
    )
    return RunRow.from_row(row) if row else None


def recent_runs(tx: Tx, job: str, limit: int = 1) -> list[RunRow]:
    rows = tx.all(
        f"SELECT {_RUN_COLUMNS} FROM job_runs WHERE job = ? ORDER BY seq DESC LIMIT ?",
        (job, limit),
    )
    return [RunRow.from_row(r) for r in rows]


def mark_abandoned(tx: Tx, *, detail: str) -> list[str]:
    """Close every run still marked running (the process that ran it is gone); the jobs
    whose run it closed."""
    rows = tx.all(
        "UPDATE job_runs SET state = 'abandoned', detail = CASE WHEN detail IS NULL THEN ?"
        " ELSE detail || '; ' || ? END, finished_at = ? WHERE state = 'running' RETURNING job",
        (detail, detail, tx.clock.now()),
    )
    return sorted(str(r[0]) for r in rows)


PRUNE_LIMIT = 2000  # rows per prune call (one write on the shared writer)


def prune_runs(tx: Tx, *, before: float, limit: int = PRUNE_LIMIT) -> int:
    """Delete the oldest runs decided before ``before`` (retention), at most ``limit``;
    returns how many (call again for more). A run still marked running is kept."""
    cur = tx.execute(
        "DELETE FROM job_runs WHERE seq IN (SELECT seq FROM job_runs"
        " WHERE decided_at < ? AND state != 'running' ORDER BY decided_at LIMIT ?)",
        (before, limit),
    )
    return cur.rowcount


# -- secrets ----------------------------------------------------------------------------


def secret_key(tx: Tx) -> bytes:
    """This database's random key for derived job secrets (created on first use)."""
    row = tx.one("SELECT key FROM job_secret_key WHERE id = 1")
    if row is not None:
        return bytes(row[0])
    key = secrets.token_bytes(32)
    tx.execute(
        "INSERT INTO job_secret_key (id, key, created_at) VALUES (1, ?, ?)",
        (key, tx.clock.now()),
    )
    return key


def derived_secret(key: bytes, job: str) -> str:
    """HMAC-SHA256(key, job name) as hex: the secret of a job without ``secret:``."""
    return hmac.new(key, f"nightshift-job:{job}".encode(), hashlib.sha256).hexdigest()
