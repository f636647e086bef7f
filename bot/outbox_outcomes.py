"""What the outbox worker writes when a delivery ends: delivered, due again, or failed.

:class:`OutcomeRecorder` is the base of :class:`~bot.outbox_worker.OutboxWorker`: the
answer Slack gave is written however long the database refuses it (the row keeps its
mark meanwhile, so nothing sends it again); a retry past ``max_age_seconds`` fails the
row; a refusal for good is offered to the refusal hooks first, and one of them may put
the row back.

Example:
    >>> # await worker._done(row, Delivered(...))  # inside OutboxWorker._deliver
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from bot.logs import Throttle
from bot.outbox_delivery import (
    Delivered,
    RefusalHook,
    Refused,
    RetryLater,
    backoff,
    run_refusal_hooks,
)
from bot.outbox_metrics import OutboxMetrics
from bot.outbox_rows import fail_row, mark_delivered, mark_retry
from bot.written import until_written
from guards.clock import Clock
from guards.errors import StorageUnavailable
from guards.store import Store, Tx
from guards.words import plural

__all__ = ["OutcomeRecorder"]

log = logging.getLogger("bot.outbox")  # the outbox's log lines keep one logger name

# RetryLater kinds after which the message was surely not shown
NOT_SHOWN = frozenset({"ratelimited"})


class OutcomeRecorder(ABC):
    """Writes the end of each delivery; :class:`~bot.outbox_worker.OutboxWorker` sets
    these attributes in its ``__init__`` and ``start``, and gives the store."""

    wall: Clock
    max_age_seconds: float
    refusal_hooks: list[RefusalHook]
    _metrics: OutboxMetrics | None
    _record_refused: Throttle

    @property
    @abstractmethod
    def store(self) -> Store:
        """The store the outcomes are written to (the worker's, once started)."""

    async def _recorded(self, row: Any, outcome: Callable[[], Awaitable[None]]) -> None:
        """Write what Slack answered, however long the database refuses it (audit26 chaos
        H1: a lock landing while a post was on its way, and the next pass posted it
        again). Meanwhile the row keeps its mark and its channel stays in flight, so
        nothing sends it again; a stop gives up, and the next start sends it again."""

        def refused(exc: StorageUnavailable) -> None:
            said = self._record_refused.let_through("", time.monotonic())
            if said is not None:
                log.warning(
                    "outbox row %s: Slack answered, but the database refused to record it"
                    " (%s); recorded as soon as it takes writes, not sent again%s",
                    row["id"],
                    exc,
                    said,
                )

        await until_written(outcome, refused=refused)

    async def _done(self, row: Any, result: Delivered) -> None:
        now = self.wall.now()
        if await mark_delivered(self.store, row, now=now, result=result):
            self._count("delivered", row["method"])

    async def _retry(self, row: Any, exc: RetryLater) -> None:
        now = self.wall.now()
        first = row["first_try_at"] or now
        if now - first > self.max_age_seconds:
            reason = f"gave up after {plural(row['attempts'] + 1, 'attempt')}: {exc.reason}"
            await self._fail(row, reason, maybe_shown=exc.kind not in NOT_SHOWN)
            return
        after = exc.after if exc.after is not None else backoff(row["attempts"] + 1)
        log.info("outbox row %s retries in %.1fs: %s", row["id"], after, exc.reason)
        # a storm summary is unmarked either way, so that it is rebuilt (or withdrawn) as
        # its alerts are handled: unlike a page, nothing edits it after it goes out
        unshown = exc.kind in NOT_SHOWN or str(row["ref"] or "").startswith("fold:")
        error = exc.reason[:500]
        if await mark_retry(
            self.store, row, due_at=now + after, first_try_at=first, error=error, unmark=unshown
        ):
            self._count("retried", row["method"], exc.kind)

    async def _fail(
        self, row: Any, reason: str, *, maybe_shown: bool = False, refused: Refused | None = None
    ) -> None:
        """Fail the row for good, once the refusal hooks had their say (``refused``: what
        Slack refused): a hook that puts the row back keeps it from failing."""
        now = self.wall.now()

        def write(tx: Tx) -> bool | None:
            if refused is not None and run_refusal_hooks(tx, self.refusal_hooks, refused):
                return None
            return fail_row(tx, row, now=now, error=reason[:500], maybe_shown=maybe_shown)

        failed = await self.store.write(write)
        if failed is None:
            return
        log.warning("outbox row %s (%s) failed: %s", row["id"], row["method"], reason)
        if failed:
            self._count("failed", row["method"])

    def _count(self, outcome: str, method: str, reason: str | None = None) -> None:
        if self._metrics is not None:
            self._metrics.count(outcome, method, reason)
