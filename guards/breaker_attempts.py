"""Task attempt caps: how often an agent reserved for one task, and the refusal past it.

A reservation with a ``task_id`` counts one attempt (a ``breaker_attempts`` row per
agent and task). Once a task has used ``breakers.max_attempts_per_task`` attempts,
the next reservation for it is refused (429, :class:`~guards.errors.AttemptsExhausted`);
the first refusal is announced with an ``AttemptsExhausted`` event, and every
refusal is a failure signal for the agent's breaker (an agent looping on a task).
A task's counts are kept for ``retention.breaker_attempts`` (a week by default) after its
last attempt (:func:`prune_attempts`).

Example:
    >>> # check_attempts(tx, records, agent="acme/alice/bot", task_id="t1", limit=5, now=now)
    >>> # count_attempt(tx, agent="acme/alice/bot", task_id="t1", now=now)
"""

from __future__ import annotations

from guards.agent_text import mask_secrets, plain_line
from guards.breaker_records import BreakerRecords
from guards.errors import AttemptsExhausted
from guards.events import AttemptsExhausted as AttemptsExhaustedEvent
from guards.store import Tx

__all__ = [
    "ATTEMPTS_RETENTION_SECONDS",
    "PRUNE_LIMIT",
    "check_attempts",
    "count_attempt",
    "prune_attempts",
]

# A task's attempts are counted this long after its last attempt, unless the policy's
# retention.breaker_attempts says otherwise.
ATTEMPTS_RETENTION_SECONDS = 7 * 86400
PRUNE_LIMIT = 2000  # rows per prune call (one write on the shared writer)


def check_attempts(
    tx: Tx, records: BreakerRecords, *, agent: str, task_id: str, limit: int, now: float
) -> None:
    """Refuse a reservation for a task that used its ``limit`` attempts (else do nothing)."""
    row = tx.one(
        "SELECT attempts, refused FROM breaker_attempts WHERE agent = ? AND task_id = ?",
        (agent, task_id),
    )
    if row is None or row[0] < limit:
        return
    attempts, refused = row[0], row[1] + 1
    tx.execute(
        "UPDATE breaker_attempts SET refused = ?, last_at = ? WHERE agent = ? AND task_id = ?",
        (refused, now, agent, task_id),
    )
    # The event and the reason are for people and other agents (the alert, the audit
    # kept for good, a sibling's 503): a token an agent put in its task id is masked
    # there (audit28 C1 M2). The task stays the agent's own string everywhere it is
    # counted: two task ids that mask alike are two tasks.
    if refused == 1:
        tx.emit(
            AttemptsExhaustedEvent(
                at=now, scope=agent, task_id=mask_secrets(task_id), attempts=attempts, limit=limit
            )
        )
    # Asking again past the limit is a failure signal: an agent looping on a task.
    b = records.entry(tx, agent, "agent")
    t = b.record(
        now,
        failed=True,
        source=agent,
        signal="attempts",
        detail=f"task {plain_line(task_id)} asked past its {limit} attempts",
    )
    records.apply(tx, b, "agent", (t,), now)
    raise AttemptsExhausted(scope=agent, task_id=task_id, attempts=attempts, limit=limit)


def count_attempt(tx: Tx, *, agent: str, task_id: str, now: float) -> None:
    """One more attempt at ``task_id`` (a reservation for it was granted)."""
    tx.execute(
        "INSERT INTO breaker_attempts (agent, task_id, attempts, first_at, last_at)"
        " VALUES (?, ?, 1, ?, ?) ON CONFLICT (agent, task_id) DO UPDATE SET"
        " attempts = attempts + 1, last_at = excluded.last_at",
        (agent, task_id, now, now),
    )


def prune_attempts(tx: Tx, *, older_than_seconds: int, limit: int = PRUNE_LIMIT) -> int:
    """Forget the counts of tasks nobody has touched for ``older_than_seconds``, the
    longest untouched first, at most ``limit``; returns how many (call again for more)."""
    cur = tx.execute(
        "DELETE FROM breaker_attempts WHERE (agent, task_id) IN (SELECT agent, task_id"
        " FROM breaker_attempts WHERE last_at < ? ORDER BY last_at LIMIT ?)",
        (tx.clock.now() - older_than_seconds, limit),
    )
    return cur.rowcount
