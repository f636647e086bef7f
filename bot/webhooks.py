"""The webhook sender: a process component delivering ``webhook_deliveries`` rows.

Escalation steps ``notify: webhook:NAME`` (policy ``webhooks:``) write a trigger row as
they are taken, and the end of an alert's paging writes the resolves
(:mod:`bot.webhooks_rows`). :class:`WebhookSender` sends each due row as a JSON POST
(:mod:`bot.webhooks_send`) outside any transaction, then records the answer:

- a 2xx: ``delivered``;
- a network error, a timeout, a 5xx, 408 or 429: tried again after a backoff (10 s,
  20 s, 40 s ... up to 5 min; a ``Retry-After`` is honoured), until
  :data:`~bot.webhooks_send.GIVE_UP_SECONDS` after the event or
  :data:`~bot.webhooks_send.MAX_TRIES` tries;
- any other answer, or a retry past those bounds: ``failed``, said once in the alert's
  thread with the status or error.

Each is counted in ``nightshift_webhook_deliveries_total{webhook,result}`` (result:
``delivered``, ``retried``, ``failed``). The events of one alert reach one webhook in
order: a resolve waits while that alert's trigger is still being tried. Times come from
the injected clock; all state is in the rows, so a restart resumes what was pending (a
request cut short by a stop is sent again: delivery is at-least-once, and the
``X-Nightshift-Delivery`` header lets a receiver drop the repeat). A stop waits at most
:data:`STOP_SECONDS` for requests in flight.

Example:
    >>> # sender = ns.extras["webhooks"]
    >>> # await sender.pass_once()  # send every due delivery now; returns how many
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import Counter

from bot.escape import slack_text
from bot.outbox import enqueue_thread_reply
from bot.webhooks_send import (
    GIVE_UP_SECONDS,
    MAX_TRIES,
    Outcome,
    Sent,
    TryAgain,
    backoff,
    post,
)
from guards.config import Policy
from guards.errors import StorageUnavailable
from guards.store import Store, Tx

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["POLL_SECONDS", "STOP_SECONDS", "WebhookSender", "wake_senders"]

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
STOP_SECONDS = 2.0  # a stop waits no longer for requests in flight (they are sent again)
BATCH = 20  # rows sent at once per pass
RESULTS = ("delivered", "retried", "failed")

_WAKERS: list[Callable[[], None]] = []


def wake_senders() -> None:
    """Wake every running sender (a row's writer runs this after its commit)."""
    for wake in list(_WAKERS):
        with contextlib.suppress(RuntimeError):  # a loop that is already closed
            wake()


# the earliest pending row of each (alert, webhook) whose time has come
_DUE = (
    "SELECT id, webhook, alert_id, event, body, created_at, attempts FROM webhook_deliveries d"
    " WHERE state = 'pending' AND next_at <= ? AND NOT EXISTS (SELECT 1 FROM"
    " webhook_deliveries e WHERE e.state = 'pending' AND e.alert_id = d.alert_id"
    " AND e.webhook = d.webhook AND e.id < d.id) ORDER BY next_at, id LIMIT ?"
)


class WebhookSender:
    """Delivers webhook events; a process component (``ns.extras["webhooks"]``)."""

    def __init__(self, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.poll_seconds = poll_seconds
        self._ns: Nightshift | None = None
        self._client: httpx.AsyncClient | None = None
        self._counter: Counter | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def ns(self) -> Nightshift:
        if self._ns is None:
            raise RuntimeError("the webhook sender is not started")
        return self._ns

    @property
    def store(self) -> Store:
        return self.ns.store

    @property
    def policy(self) -> Policy:
        return self.ns.policy

    async def start(self, ns: Nightshift) -> None:
        self._ns = ns
        self._counter = Counter(
            "nightshift_webhook_deliveries",
            "Webhook events by receiver and result: delivered, retried (a try failed and"
            " another follows), failed (given up)",
            ["webhook", "result"],
            registry=ns.metrics.registry,
        )
        for name in ns.policy.webhooks:  # shown at 0 before anything happened
            for result in RESULTS:
                self._counter.labels(webhook=name, result=result)
        # no redirects: a receiver that moved says so, as a failure naming its status
        self._client = httpx.AsyncClient(follow_redirects=False)
        ns.extras["webhooks"] = self
        _WAKERS.append(self._wake.set)
        self._task = asyncio.create_task(self._run(), name="nightshift-webhooks")

    async def stop(self, ns: Nightshift) -> None:
        if self._wake.set in _WAKERS:
            _WAKERS.remove(self._wake.set)
        task, self._task = self._task, None
        if task is not None:
            if self._lock.locked():  # a pass in flight: give its requests a moment
                await asyncio.wait({task}, timeout=STOP_SECONDS)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            try:
                await self.pass_once()
            except StorageUnavailable:
                pass  # the store says so; the rows wait
            except Exception:
                log.exception("webhooks: a pass failed; tried again in %ss", self.poll_seconds)

    async def pass_once(self) -> int:
        """Send every delivery due now (one try each) and record the answers; returns
        how many were sent."""
        async with self._lock:
            now = self.ns.clock.now()
            rows = await self.store.fetch(_DUE, (now, BATCH))
            if not rows:
                return 0
            outcomes = await asyncio.gather(*(self._send(row, now) for row in rows))
            done = list(zip(rows, outcomes, strict=True))
            counts = await self.store.write(lambda tx: self._record(tx, done, now))
            assert self._counter is not None
            for (webhook, result), n in counts.items():
                self._counter.labels(webhook=webhook, result=result).inc(n)
            return len(rows)

    async def _send(self, row: Any, now: float) -> Outcome | str:
        """One try of ``row`` (a str: why it cannot be sent at all)."""
        hook = self.policy.webhooks.get(row["webhook"])
        if hook is None:
            return (
                f"the webhook {row['webhook']} is no longer in the policy (webhooks:);"
                " nothing was sent"
            )
        assert self._client is not None
        return await post(
            self._client,
            url=hook.url,
            body=row["body"],
            delivery_id=int(row["id"]),
            secret=hook.secret(),
            seconds=float(hook.timeout),
            now=now,
        )

    def _record(
        self, tx: Tx, done: list[tuple[Any, Outcome | str]], now: float
    ) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for row, result in done:
            tries = int(row["attempts"]) + 1
            status = None if isinstance(result, str) else result.status
            if isinstance(result, Sent):
                tx.execute(
                    "UPDATE webhook_deliveries SET state = 'delivered', attempts = ?,"
                    " last_status = ?, done_at = ? WHERE id = ? AND state = 'pending'",
                    (tries, status, now, row["id"]),
                )
                key = "delivered"
            elif isinstance(result, TryAgain) and (
                retry := _retry_at(result, tries=tries, created_at=row["created_at"], now=now)
            ):
                tx.execute(
                    "UPDATE webhook_deliveries SET attempts = ?, last_status = ?, last_error = ?,"
                    " next_at = ? WHERE id = ? AND state = 'pending'",
                    (tries, status, result.error, retry, row["id"]),
                )
                key = "retried"
            else:
                error = result if isinstance(result, str) else result.error
                if isinstance(result, TryAgain):
                    error += f" (gave up after {tries} tries)"
                self._fail(tx, row, error=error, status=status, tries=tries, now=now)
                key = "failed"
            counts[(row["webhook"], key)] = counts.get((row["webhook"], key), 0) + 1
        return counts

    def _fail(
        self, tx: Tx, row: Any, *, error: str, status: int | None, tries: int, now: float
    ) -> None:
        """Mark ``row`` failed for good and say so in its alert's thread (once: the ref)."""
        tx.execute(
            "UPDATE webhook_deliveries SET state = 'failed', attempts = ?, last_status = ?,"
            " last_error = ?, done_at = ? WHERE id = ? AND state = 'pending'",
            (tries, status, error, now, row["id"]),
        )
        name, alert_id = row["webhook"], int(row["alert_id"])
        log.warning(
            "webhook %s: the %s of alert #%d failed: %s", name, row["event"], alert_id, error
        )
        alert = tx.one("SELECT channel, posted_at FROM alerts WHERE id = ?", (alert_id,))
        if alert is None or alert[0] is None or alert[1] is None:
            return  # never posted (a storm summary carried it): the log line says it
        what = "page" if row["event"] == "trigger" else "resolve"
        enqueue_thread_reply(
            tx,
            parent=f"alert:{alert_id}:post",
            text=f"⚠️ The {what} to webhook {name} (delivery {row['id']}) failed:"
            f" {slack_text(error, 300)}. Check `webhooks.{name}` in the policy and the receiver.",
            channel=alert[0],
            ref=f"webhook:{row['id']}:failed",
        )


def _retry_at(result: TryAgain, *, tries: int, created_at: float, now: float) -> float | None:
    """When to try again after ``tries`` failed tries (None: give up)."""
    if tries >= MAX_TRIES:
        return None
    at = now + max(backoff(tries), result.after or 0.0)
    return at if at - created_at <= GIVE_UP_SECONDS else None
