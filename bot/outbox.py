"""The outbox: every outgoing Slack call is a row, delivered by one worker.

Writers call :func:`enqueue` inside their own transaction, so a message exists
exactly when the change that caused it does. One :class:`OutboxWorker` (a process
component) delivers the rows through a :class:`Deliverer`: the Slack Web API, or the
terminal in shell mode.

- order: per ``channel`` key, rows go out one after another, in id order;
- pacing: one call per channel key every ``pace_seconds`` (Slack allows ~1 msg/s);
- ``429`` waits ``Retry-After``; 5xx and network errors retry with backoff; other
  Slack errors (``channel_not_found``, ``invalid_blocks``...) fail the row for good;
- restart-safe: the state is in the rows; a restarted worker resumes where it stopped.

A row may name itself with ``ref``; later rows may use ``$ref:<ref>.ts`` and
``$ref:<ref>.channel`` in their args (e.g. a chat.update of an alert posted
earlier). They are substituted at delivery; a row waits until its reference is
delivered, and fails if the reference failed.

Delivery is at-least-once: a crash after Slack accepted a call but before the row
was marked delivered sends it again after the restart (a one-round-trip window).

Example:
    >>> # inside store.write:
    >>> # enqueue(tx, method="chat.postMessage", args={"channel": "C1", "text": "hi"}, ref="hi")
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from guards.clock import Clock, SystemClock
from guards.store import Store, Tx

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = [
    "Delivered",
    "Deliverer",
    "DeliveryFailed",
    "OutboxHealth",
    "OutboxWorker",
    "RetryLater",
    "delivered",
    "enqueue",
    "outbox_health",
]

log = logging.getLogger(__name__)

PACE_SECONDS = 1.0
POLL_SECONDS = 1.0
DRAIN_SECONDS = 3.0
MAX_BACKOFF_SECONDS = 300.0
MAX_AGE_SECONDS = 24 * 3600.0
_METHOD = re.compile(r"[a-z]+(\.[A-Za-z]+)+|response_url")
_REF = re.compile(r"\$ref:(.+?)\.(ts|channel)(?![A-Za-z0-9_])")
# The head of each channel's queue: its most urgent pending row, oldest first.
_HEADS = (
    "SELECT id, ref, method, channel, args, attempts, due_at, first_try_at FROM ("
    " SELECT *, ROW_NUMBER() OVER (PARTITION BY channel ORDER BY priority, id) AS place"
    " FROM outbox WHERE state = 'pending')"
    " WHERE place = 1 ORDER BY priority, id LIMIT 500"
)
_MARK_DONE = (
    "UPDATE outbox SET attempts = attempts + 1, state = 'delivered', finished_at = ?,"
    " result_channel = ?, result_ts = ?, last_error = NULL,"
    " first_try_at = COALESCE(first_try_at, ?) WHERE id = ? AND state = 'pending'"
)
_MARK_RETRY = (
    "UPDATE outbox SET attempts = attempts + 1, due_at = ?, first_try_at = ?, last_error = ?"
    " WHERE id = ? AND state = 'pending'"
)
_MARK_FAILED = (
    "UPDATE outbox SET attempts = attempts + 1, state = 'failed', finished_at = ?,"
    " first_try_at = COALESCE(first_try_at, ?), last_error = ? WHERE id = ? AND state = 'pending'"
)
# Wake-up callbacks of running workers; enqueue() calls them after its commit.
_WAKERS: list[Callable[[], None]] = []


def enqueue(
    tx: Tx,
    *,
    method: str,
    args: dict[str, Any],
    channel: str | None = None,
    ref: str | None = None,
    urgent: bool = False,
) -> int:
    """Write one outgoing Slack call in the caller's transaction; returns the row id.

    ``method`` is a Web API method (``chat.postMessage``, ``chat.update``,
    ``chat.postEphemeral``), ``files.upload`` (args: channel, filename, title,
    initial_comment, content_b64) or ``response_url`` (args: url, payload).
    ``channel`` is the ordering/pacing key (default: ``args["channel"]``).
    Enqueueing an existing ``ref`` again returns the existing row and adds nothing.
    Rows go out in order per channel, except that an ``urgent`` row (a P0 page)
    overtakes the ordinary ones still waiting there.

    Raises:
        ValueError: an unknown method shape or no channel key.
    """
    if not _METHOD.fullmatch(method):
        raise ValueError(f"{method!r} is not a Slack Web API method")
    key = channel or _default_channel(method, args)
    if ref is not None:
        row = tx.one("SELECT id FROM outbox WHERE ref = ?", (ref,))
        if row is not None:
            return int(row[0])
    cur = tx.execute(
        "INSERT INTO outbox (ref, method, channel, args, created_at, priority)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            ref,
            method,
            key,
            json.dumps(args, separators=(",", ":")),
            tx.clock.now(),
            0 if urgent else 1,
        ),
    )
    tx.after_commit.append(_wake_workers)
    return int(cur.lastrowid or 0)


def _default_channel(method: str, args: dict[str, Any]) -> str:
    if method == "response_url" and isinstance(args.get("url"), str):
        return "response:" + hashlib.sha1(args["url"].encode()).hexdigest()[:12]
    channel = args.get("channel")
    if not isinstance(channel, str) or not channel:
        raise ValueError(f"{method}: give a channel (args['channel'] or channel=)")
    return channel


def _wake_workers() -> None:
    for wake in list(_WAKERS):
        with contextlib.suppress(RuntimeError):  # a loop that is already closed
            wake()


async def delivered(store: Store, ref: str) -> tuple[str, str] | None:
    """``(channel, ts)`` of the row named ``ref`` once it is delivered, else None."""
    rows = await store.fetch(
        "SELECT result_channel, result_ts FROM outbox WHERE ref = ? AND state = 'delivered'",
        (ref,),
    )
    if not rows or rows[0][1] is None:
        return None
    return (rows[0][0], rows[0][1])


@dataclass(frozen=True)
class OutboxHealth:
    """What ``status`` shows about delivery."""

    pending: int
    failed: int
    oldest_pending_at: float | None
    last_error: str | None

    @property
    def ok(self) -> bool:
        return self.failed == 0


async def outbox_health(store: Store) -> OutboxHealth:
    """Pending and failed rows, the oldest pending row's time, the last failure."""
    rows = await store.fetch(
        "SELECT (SELECT COUNT(*) FROM outbox WHERE state = 'pending'),"
        " (SELECT COUNT(*) FROM outbox WHERE state = 'failed'),"
        " (SELECT MIN(created_at) FROM outbox WHERE state = 'pending'),"
        " (SELECT method || ' to ' || channel || ': ' || last_error FROM outbox"
        "  WHERE state = 'failed' ORDER BY id DESC LIMIT 1)"
    )
    pending, failed, oldest, last = rows[0]
    return OutboxHealth(int(pending), int(failed), oldest, last)


# -- delivery -------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    """Where a call landed: the message's channel and ``ts`` (when there is one)."""

    channel: str | None = None
    ts: str | None = None


class RetryLater(Exception):
    """A transient failure: try again after ``after`` seconds (None: backoff)."""

    def __init__(self, reason: str, *, after: float | None = None, kind: str = "other") -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after
        self.kind = kind


class DeliveryFailed(Exception):
    """A permanent failure: the row is marked failed and not tried again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Deliverer(Protocol):
    async def deliver(self, method: str, args: dict[str, Any]) -> Delivered: ...


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.delivered = Counter(
            "nightshift_outbox_delivered",
            "Slack calls delivered by the outbox, by method",
            ["method"],
            registry=registry,
        )
        self.retried = Counter(
            "nightshift_outbox_retried",
            "Slack calls put back for a retry, by method and reason",
            ["method", "reason"],
            registry=registry,
        )
        self.failed = Counter(
            "nightshift_outbox_failed",
            "Slack calls given up for good, by method",
            ["method"],
            registry=registry,
        )
        self.pending = Gauge(
            "nightshift_outbox_pending", "Outbox rows not yet delivered", registry=registry
        )


def backoff(attempts: int) -> float:
    """Seconds to wait after the n-th failed attempt: 1, 2, 4, ... up to 5 minutes."""
    return float(min(MAX_BACKOFF_SECONDS, 2 ** max(0, attempts - 1)))


class _Blocked(Exception):
    """A referenced row is not delivered yet."""


def _refs_in(value: Any, found: set[str]) -> set[str]:
    if isinstance(value, str):
        found.update(m.group(1) for m in _REF.finditer(value))
    elif isinstance(value, dict):
        for v in value.values():
            _refs_in(v, found)
    elif isinstance(value, list):
        for v in value:
            _refs_in(v, found)
    return found


def _substitute(value: Any, resolved: dict[str, tuple[str, str]]) -> Any:
    if isinstance(value, str):
        return _REF.sub(lambda m: resolved[m.group(1)][0 if m.group(2) == "channel" else 1], value)
    if isinstance(value, dict):
        return {k: _substitute(v, resolved) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, resolved) for v in value]
    return value


class OutboxWorker:
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
        self._metrics: _Metrics | None = None
        self._wakeup = asyncio.Event()
        self._waker: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._last_sent: dict[str, float] = {}
        self._pass_lock = asyncio.Lock()

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the outbox worker is not started")
        return self._store

    async def start(self, ns: Nightshift) -> None:
        self._store = ns.store
        self._metrics = _Metrics(ns.metrics.registry)
        ns.extras["outbox"] = self
        loop = asyncio.get_running_loop()

        def waker() -> None:
            loop.call_soon_threadsafe(self._wakeup.set)

        self._waker = waker
        _WAKERS.append(waker)
        self._task = asyncio.create_task(self._run(), name="nightshift-outbox")

    async def stop(self, ns: Nightshift) -> None:
        """Stop the loop, deliver what is due for up to DRAIN_SECONDS, then give up."""
        if self._waker in _WAKERS:
            _WAKERS.remove(self._waker)
        if self._task is not None:
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
        while True:
            self._wakeup.clear()
            try:
                delay = await self.pass_once()
            except Exception:
                log.exception("outbox pass failed")
                delay = self.poll_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), max(0.005, delay))

    async def pass_once(self) -> float:
        """Start delivering every due channel head; return seconds until the next is due."""
        async with self._pass_lock:  # the loop and a drain must not both start one row
            return await self._pass()

    async def _pass(self) -> float:
        rows = await self.store.fetch(_HEADS)
        if self._metrics is not None:
            count = await self.store.fetch("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
            self._metrics.pending.set(count[0][0])
        now = self.wall.now()
        delay = self.poll_seconds
        for row in rows:
            key = row["channel"]
            if key in self._in_flight:
                continue
            if len(self._in_flight) >= self.max_in_flight:
                break
            ready_at = max(row["due_at"], self._last_sent.get(key, 0.0) + self.pace_seconds)
            if ready_at > now:
                delay = min(delay, ready_at - now)
                continue
            args = json.loads(row["args"])
            refs = _refs_in(args, set())
            if refs:
                try:
                    args = _substitute(args, await self._resolve(refs))
                except _Blocked:
                    continue
                except DeliveryFailed as exc:
                    await self._fail(row, exc.reason)
                    continue
            self._last_sent[key] = now
            self._in_flight[key] = asyncio.create_task(self._deliver(row, args))
        return delay

    async def _resolve(self, refs: set[str]) -> dict[str, tuple[str, str]]:
        """``{ref: (channel, ts)}``; raises _Blocked (not yet sent) or DeliveryFailed."""
        resolved: dict[str, tuple[str, str]] = {}
        for name in sorted(refs):
            rows = await self.store.fetch(
                "SELECT state, result_channel, result_ts, last_error FROM outbox WHERE ref = ?",
                (name,),
            )
            if not rows:
                raise DeliveryFailed(f"refers to {name!r}, which is not in the outbox")
            state, channel, ts, error = rows[0]
            if state == "failed":
                raise DeliveryFailed(f"refers to {name!r}, which failed: {error}")
            if state == "pending":
                raise _Blocked(name)
            resolved[name] = (channel or "", ts or "")
        return resolved

    async def _deliver(self, row: Any, args: dict[str, Any]) -> None:
        key, method = row["channel"], row["method"]
        try:
            try:
                result = await self.deliverer.deliver(method, args)
            except RetryLater as exc:
                await self._retry(row, exc)
            except DeliveryFailed as exc:
                await self._fail(row, exc.reason)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("outbox delivery of row %s raised", row["id"])
                await self._retry(row, RetryLater(f"unexpected error: {exc!r}"))
            else:
                await self._done(row, result)
        except RuntimeError as exc:  # the store closed under us (shutdown): the row stays
            log.warning("outbox row %s left pending: %s", row["id"], exc)
        finally:
            self._last_sent[key] = self.wall.now()  # pace from the answer, not the request
            self._in_flight.pop(key, None)
            self._wakeup.set()

    async def _mark(self, row: Any, sql: str, params: tuple[Any, ...]) -> bool:
        """Run one of the _MARK_* updates; False when the row was no longer pending."""
        count: int = await self.store.write(
            lambda tx: tx.execute(sql, (*params, row["id"])).rowcount
        )
        return count > 0

    async def _done(self, row: Any, result: Delivered) -> None:
        now = self.wall.now()
        if await self._mark(row, _MARK_DONE, (now, result.channel, result.ts, now)):
            self._count("delivered", row["method"])

    async def _retry(self, row: Any, exc: RetryLater) -> None:
        now = self.wall.now()
        first = row["first_try_at"] or now
        if now - first > self.max_age_seconds:
            await self._fail(row, f"gave up after {row['attempts'] + 1} attempts: {exc.reason}")
            return
        after = exc.after if exc.after is not None else backoff(row["attempts"] + 1)
        log.info("outbox row %s retries in %.1fs: %s", row["id"], after, exc.reason)
        if await self._mark(row, _MARK_RETRY, (now + after, first, exc.reason[:500])):
            self._count("retried", row["method"], exc.kind)

    async def _fail(self, row: Any, reason: str) -> None:
        log.warning("outbox row %s (%s) failed: %s", row["id"], row["method"], reason)
        now = self.wall.now()
        if await self._mark(row, _MARK_FAILED, (now, now, reason[:500])):
            self._count("failed", row["method"])

    def _count(self, outcome: str, method: str, reason: str | None = None) -> None:
        if self._metrics is None:
            return
        if outcome == "retried":
            self._metrics.retried.labels(method=method, reason=reason or "other").inc()
        else:
            getattr(self._metrics, outcome).labels(method=method).inc()
