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
``webhook_deliveries``      ``retention.outbox_delivered`` / ``outbox_failed`` after it was
                            delivered / given up; never while pending or its alert open
``validation_*``            ``validation.window_days`` (items, call answers) and
                            ``validation.rejections_retention_days`` (rejections)
``routing_decisions``       ``routing.retention_days``
``breaker_attempts``        ``retention.breaker_attempts`` (7 days) after the task's last
                            attempt
``job_runs``                ``retention.job_runs`` (90 days)
``budget_warnings``         40 days after the warning (its period is over by then); a
                            ``total`` window's never (its period never ends); the same
                            for ``model_budget_warnings`` (``budgets.models``)
``slack_received``          an hour (:data:`bot.slack.received.KEEP_SECONDS`): Slack re-sends
                            a request within minutes
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
drives them (the features schedule no prune job of their own). The deletes of this
module's own tables are in :mod:`bot.retention_prune`.

Example:
    >>> # retention = ns.extras["retention"]; deleted = await retention.run()
    >>> # deleted["events"], deleted["outbox"], deleted["alerts"]
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from bot.api_validation import EXTRAS_KEY as VALIDATION_KEY
from bot.jobs import state as job_state
from bot.retention_prune import (
    CHUNK_ROWS,
    Chunk,
    prune_alerts,
    prune_events,
    prune_gaps,
    prune_outbox,
    prune_webhooks,
    ref_owner,
)
from bot.slack.received import KEEP_SECONDS as RECEIVED_KEPT
from bot.slack.received import prune_received
from guards.breaker_attempts import prune_attempts
from guards.budget_warnings import KEEP_SECONDS as WARNINGS_KEPT
from guards.budget_warnings import prune_model_warnings, prune_warnings
from guards.errors import StorageUnavailable
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
    "prune_webhooks",
    "ref_owner",
    "scan",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
DAY = 86400
RETENTION_EVERY_SECONDS = 3600
PAUSE_SECONDS = 0.005  # between chunks: writes that came meanwhile get a batch of their own

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
            works: list[tuple[str, Callable[[], Awaitable[int]]]] = [
                *(
                    (name, partial(scan, ns.store, step, stopping=self._halt))
                    for name, step in self._scans(ns, now)
                ),
                *(
                    (name, partial(drain, ns.store, prune, chunk=self.chunk, stopping=self._halt))
                    for name, prune in self._drains(ns, now)
                ),
            ]
            for name, work in works:
                n = await self._guarded(name, work())
                if n is None:  # the database refuses: the rest waits for the next run
                    break  # (each would wait out the lock, 8 s, for the same answer)
                deleted[name] = n
            else:
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
            (
                "webhook_deliveries",
                lambda tx, a: prune_webhooks(
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
            (
                "budget_warnings",
                lambda tx, n: prune_warnings(tx, before=now - WARNINGS_KEPT, limit=n),
            ),
            (
                "model_budget_warnings",
                lambda tx, n: prune_model_warnings(tx, before=now - WARNINGS_KEPT, limit=n),
            ),
            (
                "slack_received",
                lambda tx, n: prune_received(tx, before=now - RECEIVED_KEPT, limit=n),
            ),
        ]

    def _halt(self) -> bool:
        return self._stopping

    async def _guarded(self, name: str, work: Awaitable[int]) -> int | None:
        """``await work``; a failure is logged and counted as 0 (the next run tries again);
        None when the database refused it."""
        try:
            return await work
        except StorageUnavailable as exc:  # the store's own log says why, once a minute
            log.warning(
                "retention: the database refused pruning %s (%s); this run stops there,"
                " the next one goes on",
                name,
                exc.cause,
            )
            return None
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
        except StorageUnavailable as exc:
            log.warning(
                "retention: compacting the validation indexes waits: the database refused it"
                " (%s); the next run tries again",
                exc.cause,
            )
        except Exception:
            log.exception("retention: compacting the validation indexes failed")
