"""The policy's ``retention:`` section: how long history is kept (bot/retention.py prunes).

Each key is a duration (``30d``, ``12h``, ``2w`` or plain seconds) with a floor below
which something that still reads the rows would break; a value under it is refused,
naming the key. The defaults are what Nightshift kept before the section existed.
Validation (``validation.window_days``, ``validation.rejections_retention_days``) and
routing (``routing.retention_days``) keep their own keys.

Example:
    >>> RetentionPeriods.model_validate({"events": "14d"}).events
    1209600
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from guards.config_types import Section, in_words, policy_duration

__all__ = ["RetentionPeriods"]

DAY = 86400
MAX_DAYS = 3650  # history may be kept for ten years (the other durations: one)


def _long_duration(floor: int) -> BeforeValidator:
    """A duration of up to ten years; out of range, the message gives this key's range
    (audit24 claims C5: it said "0 to 3650 days" of keys that keep at least 1d or 3d)."""

    def parse(value: object) -> int:
        try:
            return policy_duration(value, max_days=MAX_DAYS)
        except ValueError as exc:
            if not str(exc).startswith(f"{value!r} is out of range"):
                raise
        raise ValueError(
            f"{value!r} is out of range: keep at least {in_words(floor)} and at most"
            f" {MAX_DAYS} days"
        )

    return BeforeValidator(parse)


def _at_least(floor: int, why: str) -> AfterValidator:
    """Refuse a period shorter than ``floor`` seconds, saying what it would break."""

    def check(seconds: int) -> int:
        if seconds < floor:
            raise ValueError(
                f"{in_words(seconds)} is too short: keep at least {in_words(floor)}, {why}"
                f" (write e.g. {in_words(max(floor, 30 * DAY))})"
            )
        return seconds

    return AfterValidator(check)


EventsPeriod = Annotated[
    int,
    _long_duration(DAY),
    _at_least(DAY, "because alerts and the duplicate-burst check look back at recent events"),
]
OutboxPeriod = Annotated[
    int,
    _long_duration(DAY),
    _at_least(DAY, "because later Slack messages (edits, thread replies) point at these rows"),
]
AttemptsPeriod = Annotated[
    int,
    _long_duration(DAY),
    _at_least(DAY, "or a task retried the next day would get a fresh max_attempts_per_task"),
]
# A day's digest is posted the next day, as late as 23:59 local: up to 49 h (a DST day).
RunsPeriod = Annotated[
    int,
    _long_duration(3 * DAY),
    _at_least(3 * DAY, "because the daily digest counts the runs of the day before"),
]
AlertsPeriod = Annotated[
    int,
    _long_duration(3 * DAY),
    _at_least(3 * DAY, "because the daily digest shows the alerts and uptime of the day before"),
]


class RetentionPeriods(Section):
    """How long each kind of history is kept before the ``retention`` job deletes it.

    ``events``: dispatched events (never an undispatched one; at least
    ``validation.burst.window_seconds``, which the job honours by itself).
    ``outbox_delivered`` / ``outbox_failed``: Slack calls delivered / given up on
    (an alert's messages stay until it has been resolved for ``outbox_delivered``).
    ``breaker_attempts``: a task's attempt count, after its last attempt.
    ``job_runs``: the scheduled jobs' runs.
    ``alerts_resolved``: resolved alerts (by ``resolved_at``) with their escalation
    rows, kept while any Slack row still names them; and closed heartbeat gaps (by
    their end).
    """

    events: EventsPeriod = 30 * DAY
    outbox_delivered: OutboxPeriod = 7 * DAY
    outbox_failed: OutboxPeriod = 30 * DAY
    breaker_attempts: AttemptsPeriod = 7 * DAY
    job_runs: RunsPeriod = 90 * DAY
    alerts_resolved: AlertsPeriod = 90 * DAY
