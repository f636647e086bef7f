"""The outbox worker: one process component delivering every outbox row.

:class:`OutboxWorker` reads the head of each channel key's queue (its most urgent
pending row, oldest first), waits out the channel's pace and the row's ``due_at``,
fills in ``$ref:`` references (:mod:`bot.outbox_refs`) and hands the call to its
:class:`~bot.outbox_delivery.Deliverer`, at most ``max_in_flight`` channels at a
time and one row at a time per channel. The answer marks the row delivered, due
again later (:class:`~bot.outbox_delivery.RetryLater`: ``Retry-After`` or backoff),
or failed for good (:mod:`bot.outbox_outcomes` writes it). All state is in the rows:
a restarted worker resumes where it stopped. :func:`~bot.outbox.enqueue` wakes the
running workers after its commit (:func:`wake_workers`); otherwise they look again
every ``poll_seconds``.

A row is marked in the database while it is being sent (``claimed_at``), and it is
sent with its args as they are then: writers change or withdraw only unmarked rows,
so what Slack receives is what the row says. The mark stays until the row is
delivered or failed, unless Slack surely did not show it: a 429 (or the row put back
before its call) clears it. After a network error, a 5xx, or a process killed
mid-call, the message may be on someone's screen, so the row keeps its mark and is
sent again as it was: a page acknowledged meanwhile still goes out and is then edited
to say so, instead of being withdrawn while the person reads it. A storm summary is
unmarked either way, so that it is rebuilt (or withdrawn) as its alerts are handled:
nothing edits a summary after it goes out. A row Slack refused for good is unmarked
when it fails; one given up after such errors keeps its mark.

Each row starts at most once per read: a pass reads the heads, then awaits (the
pending count, ``$ref:`` look-ups) before it starts them, and a delivery of the same
channel that ended meanwhile makes those rows stale. Such a channel is skipped and
read again at once (:meth:`OutboxWorker._claim`), so a row just delivered is never
sent again from an old read, and a row just put back waits its ``Retry-After``.
Across a crash delivery stays at-least-once (see :mod:`bot.outbox`).

On stop it drains what is due for up to ``DRAIN_SECONDS``; what is left stays pending.

Example:
    >>> # worker = OutboxWorker(SlackDeliverer(client))  # a component: start(ns) / stop(ns)
    >>> # await worker.pass_once()  # start every due delivery now
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.logs import Throttle
from bot.outbox_delivery import (
    MAX_AGE_SECONDS,
    PACE_SECONDS,
    Deliverer,
    DeliveryFailed,
    RefusalHook,
    Refused,
    RetryLater,
)
from bot.outbox_metrics import OutboxMetrics, say_if_stuck
from bot.outbox_outcomes import OutcomeRecorder
from bot.outbox_refs import Blocked, refs_in, resolve_refs, substitute
from bot.outbox_rows import (
    channel_heads,
    claim,
    pending_age,
    release,
    shift_due,
)
from guards.clock import Clock, SystemClock
from guards.errors import StorageUnavailable
from guards.store import Store, Tx

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["DRAIN_SECONDS", "POLL_SECONDS", "OutboxWorker", "wake_workers"]

log = logging.getLogger("bot.outbox")  # the outbox's log lines keep one logger name

POLL_SECONDS = 1.0
DRAIN_SECONDS = 3.0

# Wake-up callbacks of running workers; enqueue() calls them after its commit.
_WAKERS: list[Callable[[], None]] = []


def wake_workers() -> None:
    """Wake every running worker (enqueue runs this after its transaction commits)."""
    for wake in list(_WAKERS):
        with contextlib.suppress(RuntimeError):  # a loop that is already closed
            wake()


class OutboxWorker(OutcomeRecorder):
    """Delivers outbox rows; a process component (``ns.extras["outbox"]``)."""

    def __init__(
        self,
        deliverer: Deliverer,
        *,
        wall: Clock | None = None,
        pace_seconds: float = PACE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        max_age_seconds: float = MAX_AGE_SECONDS,
        max_in_flight: int = 8,
    ) -> None:
        self.deliverer = deliverer
        self.wall: Clock = wall or SystemClock()
        self.pace_seconds = pace_seconds
        self.poll_seconds = poll_seconds
        self.max_age_seconds = max_age_seconds
        self.max_in_flight = max_in_flight
        self._store: Store | None = None
        self._metrics: OutboxMetrics | None = None
        self._wakeup = asyncio.Event()
        self._waker: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._last_sent: dict[str, float] = {}
        # Deliveries ended so far, and the count when each channel's last one ended:
        # a pass's rows of a channel whose delivery ended after the read are stale.
        self._ended = 0
        self._ended_at: dict[str, int] = {}
        self._pass_lock = asyncio.Lock()
        self._stopping = False
        self._stuck = Throttle()  # "Slack has not taken a message for ...", once a minute
        self._record_refused = Throttle()  # "...the database refused to record it", the same
        #: told of each call Slack refused for good (:data:`~bot.outbox_delivery.RefusalHook`)
        self.refusal_hooks: list[RefusalHook] = []

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the outbox worker is not started")
        return self._store

    async def start(self, ns: Nightshift) -> None:
        self._store = ns.store
        self._metrics = OutboxMetrics(ns.metrics.registry)
        ns.extras["outbox"] = self
        loop = asyncio.get_running_loop()

        def waker() -> None:
            loop.call_soon_threadsafe(self._wakeup.set)

        self._waker = waker
        _WAKERS.append(waker)
        watch = getattr(ns, "clock_watch", None)
        if watch is not None:
            watch.deadlines.append(self._clock_stepped)
        self._stopping = False
        # Rows a stopped (or killed) process was sending keep their mark: they may have
        # been shown. They are sent again as they are (at least once).
        self._task = asyncio.create_task(self._run(), name="nightshift-outbox")

    async def stop(self, ns: Nightshift) -> None:
        """Stop the loop, deliver what is due for up to DRAIN_SECONDS, then give up."""
        if self._waker in _WAKERS:
            _WAKERS.remove(self._waker)
        watch = getattr(ns, "clock_watch", None)
        if watch is not None and self._clock_stepped in watch.deadlines:
            watch.deadlines.remove(self._clock_stepped)
        self._stopping = True
        if self._task is not None:
            self._wakeup.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.drain(DRAIN_SECONDS)
        for task in list(self._in_flight.values()):
            task.cancel()
        if self._in_flight:
            await asyncio.wait(list(self._in_flight.values()), timeout=1)

    async def drain(self, seconds: float) -> None:
        """Deliver whatever is due now (and whatever becomes due) for up to ``seconds``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            delay = await self.pass_once()
            if not self._in_flight:
                if delay >= self.poll_seconds or delay > left:
                    return
                await asyncio.sleep(delay)
                continue
            await asyncio.wait(
                list(self._in_flight.values()),
                timeout=min(left, delay),
                return_when=asyncio.FIRST_COMPLETED,
            )

    async def _run(self) -> None:
        # A flag as well as the cancel: asyncio.wait_for (3.11) may swallow a cancel
        # that comes as its wait ends, and the loop would then never stop.
        while not self._stopping:
            self._wakeup.clear()
            try:
                delay = await self.pass_once()
            except Exception:
                log.exception("outbox pass failed")
                delay = self.poll_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), max(0.005, delay))

    async def refresh_gauges(self) -> None:
        """Read what waits (``/metrics`` asks at each scrape): not from the worker's own
        passes, which a hung worker would leave at its last value."""
        if self._metrics is None or self._store is None:
            return
        count, oldest = await pending_age(self.store)
        self._metrics.pending.set(count)
        self._metrics.oldest.set(max(0.0, self.store.clock.now() - oldest) if oldest else 0.0)

    async def pass_once(self) -> float:
        """Start delivering every due channel head; return seconds until the next is due."""
        async with self._pass_lock:  # the loop and a drain must not both start one row
            return await self._pass()

    async def _pass(self) -> float:
        read_at = self._ended  # before the read: a delivery ending after it makes rows stale
        rows = await channel_heads(self.store)
        if self._metrics is not None:
            self._metrics.last_pass.set_to_current_time()
        now = self.wall.now()
        say_if_stuck(rows, now, throttle=self._stuck, max_age_seconds=self.max_age_seconds)
        delay = self.poll_seconds
        for row in rows:
            key = row["channel"]
            if key in self._in_flight:
                continue
            if not self._claim(key, read_at):
                delay = 0.0  # this row may be done already: read the channel again
                continue
            if len(self._in_flight) >= self.max_in_flight:
                break
            ready_at = max(row["due_at"], self._last_sent.get(key, 0.0) + self.pace_seconds)
            if ready_at > now:
                delay = min(delay, ready_at - now)
                continue
            args = json.loads(row["args"])
            refs = refs_in(args, set())
            if refs:
                try:
                    args = substitute(args, await resolve_refs(self.store, refs))
                except Blocked:
                    continue
                except DeliveryFailed as exc:
                    await self._fail(row, exc.reason)
                    continue
            if not self._claim(key, read_at):  # again: no await from here to the start
                delay = 0.0
                continue
            self._last_sent[key] = now
            self._in_flight[key] = asyncio.create_task(self._deliver(row, args))
        return delay

    def _claim(self, key: str, read_at: int) -> bool:
        """May the channel's head, read when ``read_at`` deliveries had ended, start now?

        Called with no await between it and the start, after every await of the pass:
        False when the channel is in flight, or when one of its deliveries ended after
        the read (that row is delivered, failed or put back: the read is stale).
        """
        return key not in self._in_flight and self._ended_at.get(key, -1) < read_at

    async def _deliver(self, row: Any, args: dict[str, Any]) -> None:
        key, method = row["channel"], row["method"]
        try:
            claimed = await self._claim_row(row, args)
            if claimed is None:
                return  # withdrawn, or changed and waiting for a reference: read again
            row, args = claimed
            outcome: Callable[[], Awaitable[None]]
            try:
                result = await self.deliverer.deliver(method, args)
            except RetryLater as exc:
                outcome = functools.partial(self._retry, row, exc)
            except DeliveryFailed as exc:
                refused = None
                if exc.error:
                    stored = json.loads(row["args"])
                    refused = Refused(row["id"], row["ref"], method, key, args, stored, exc.error)
                outcome = functools.partial(self._fail, row, exc.reason, refused=refused)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("outbox delivery of row %s raised", row["id"])
                outcome = functools.partial(
                    self._retry, row, RetryLater(f"unexpected error: {exc!r}")
                )
            else:
                outcome = functools.partial(self._done, row, result)
            await self._recorded(row, outcome)
        except StorageUnavailable as exc:  # claiming it: nothing was sent
            log.warning("outbox row %s left pending: %s", row["id"], exc)
        except RuntimeError as exc:  # the store closed under us (shutdown): the row stays
            log.warning("outbox row %s left pending: %s", row["id"], exc)
        finally:
            self._last_sent[key] = self.wall.now()  # pace from the answer, not the request
            self._ended_at[key] = self._ended
            self._ended += 1
            self._in_flight.pop(key, None)
            self._wakeup.set()

    def _clock_stepped(self, tx: Tx, seconds: float) -> None:
        """The wall clock stepped ``seconds`` (:class:`bot.clock_watch.ClockWatch`): a retry
        keeps its wait and each channel its pace in real time (after a step back of an hour
        every channel waited an hour for its next message)."""
        shift_due(tx, seconds)

        def pace() -> None:
            for key in self._last_sent:
                self._last_sent[key] += seconds
            self._wakeup.set()

        tx.after_commit.append(pace)

    async def _claim_row(self, row: Any, args: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
        """Mark the row as being sent (``claimed_at``); its args as they are now.

        While it is marked the writers leave it alone (a storm summary is not rebuilt,
        a page not withdrawn: :mod:`bot.alerts.folding`); a 429 clears the mark. None
        when the row is gone or no longer the one read (withdrawn since the read), or
        when its args changed and now wait for a reference: the next pass reads it again.
        """
        claimed_now = await claim(self.store, row, now=self.wall.now())
        if claimed_now is None:
            return None
        current, first_try_at = claimed_now
        claimed = {**dict(row), "args": current, "first_try_at": first_try_at}
        if current == row["args"]:
            return claimed, args
        fresh = json.loads(current)
        refs = refs_in(fresh, set())
        if refs:
            try:
                fresh = substitute(fresh, await resolve_refs(self.store, refs))
            except Blocked:
                await release(self.store, row)
                return None
            except DeliveryFailed as exc:
                await self._fail(claimed, exc.reason)
                return None
        return claimed, fresh
