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
``delivered``, ``retried``, ``failed``). The thread says the first failed try of a page
(and that it is tried again until when), a page that got through after one, and one
given up; the alert's message shows how each webhook step went (read from the rows).

Each try is its own task, recorded as it ends: a slow receiver holds up nobody else's
events (at most :data:`PER_WEBHOOK` tries in flight per webhook, :data:`IN_FLIGHT` in
all). The events of one alert reach one webhook in order: a resolve waits while that
alert's trigger is still being tried. An answer whose record the database refused is
kept in memory and written first when it takes writes again; nothing new is sent until
then (so a storage outage sends no event twice). Times come from the injected clock; all
state is in the rows, so a restart resumes what was pending (a request cut short by a
stop or a crash is sent again: delivery is at-least-once, and the
``X-Nightshift-Delivery`` header lets a receiver drop the repeat). A stop waits at most
:data:`STOP_SECONDS` for requests in flight, and no longer than they take.

Example:
    >>> # sender = ns.extras["webhooks"]
    >>> # await sender.pass_once()  # send every due delivery now; returns how many
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
from prometheus_client import Counter

from bot.outbox import enqueue_thread_reply
from bot.webhooks_notes import failed_note, retrying_note, took_it_note
from bot.webhooks_rows import STOPPED, WITHDRAWN, enqueue_resolve
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
from guards.errors import NotFound, StorageUnavailable
from guards.store import Store, Tx

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = [
    "IN_FLIGHT",
    "PER_WEBHOOK",
    "POLL_SECONDS",
    "STOP_SECONDS",
    "WebhookSender",
    "wake_senders",
]

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
STOP_SECONDS = 2.0  # a stop waits no longer for requests in flight (they are sent again)
IN_FLIGHT = 20  # tries in flight at once, in all
PER_WEBHOOK = 4  # and to one webhook (a slow one leaves the others' room)
FETCH = 100  # due rows read per pass
RESULTS = ("delivered", "retried", "failed")

_WAKERS: list[Callable[[], None]] = []


def wake_senders() -> None:
    """Wake every running sender (a row's writer runs this after its commit)."""
    for wake in list(_WAKERS):
        with contextlib.suppress(RuntimeError):  # a loop that is already closed
            wake()


# the earliest pending row of each (alert, webhook) whose time has come
_DUE = (
    "SELECT id, webhook, alert_id, event, body, created_at, attempts, escalation_id"
    " FROM webhook_deliveries d"
    " WHERE state = 'pending' AND next_at <= ? AND NOT EXISTS (SELECT 1 FROM"
    " webhook_deliveries e WHERE e.state = 'pending' AND e.alert_id = d.alert_id"
    " AND e.webhook = d.webhook AND e.id < d.id) ORDER BY next_at, id LIMIT ?"
)


@dataclass(frozen=True, slots=True)
class _Done:
    """One try's answer (a str: why it could not be sent at all), and when it ended."""

    row: Any
    result: Outcome | str
    at: float

    @property
    def id(self) -> int:
        return int(self.row["id"])


class WebhookSender:
    """Delivers webhook events; a process component (``ns.extras["webhooks"]``)."""

    def __init__(self, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.poll_seconds = poll_seconds
        self._ns: Nightshift | None = None
        self._client: httpx.AsyncClient | None = None
        self._counter: Counter | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pick = asyncio.Lock()  # one pass at a time picks rows to send
        self._flying: dict[int, tuple[str, asyncio.Task[None]]] = {}  # id -> webhook, try
        self._unrecorded: dict[int, _Done] = {}  # answers the database refused to take
        self._stopping = False

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
        self._stopping = True  # no new try starts
        if self._wake.set in _WAKERS:
            _WAKERS.remove(self._wake.set)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        flying = [t for _, t in self._flying.values()]
        if flying:  # tries in flight get a moment (those cut are sent after a restart)
            await asyncio.wait(flying, timeout=STOP_SECONDS)
            for t in flying:
                t.cancel()
            await asyncio.gather(*flying, return_exceptions=True)
        if self._unrecorded:
            with contextlib.suppress(Exception):  # (still refused: sent again at the start)
                await self._write_unrecorded()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            try:
                await self._start_due()
            except StorageUnavailable:
                pass  # the store says so; the rows (and the answers kept) wait
            except Exception:
                log.exception("webhooks: a pass failed; tried again in %ss", self.poll_seconds)

    async def pass_once(self) -> int:
        """Send every delivery due now (one try each), wait for every try in flight and
        record the answers; returns how many tries this pass started."""
        started = await self._start_due()
        while self._flying:
            await asyncio.wait([t for _, t in self._flying.values()])
        if self._unrecorded:
            await self._write_unrecorded()  # raises StorageUnavailable while refused
        return started

    async def _start_due(self) -> int:
        """Start a try of each due row not in flight, as the bounds allow."""
        async with self._pick:
            if self._stopping:
                return 0
            if self._unrecorded:  # first what was sent and not written: not sent again
                await self._write_unrecorded()
            rows = await self.store.fetch(_DUE, (self.ns.clock.now(), FETCH))
            per = Tally(webhook for webhook, _ in self._flying.values())
            started = 0
            for row in rows:
                name, delivery = str(row["webhook"]), int(row["id"])
                if delivery in self._flying or per[name] >= PER_WEBHOOK:
                    continue
                if len(self._flying) >= IN_FLIGHT:
                    break
                task = asyncio.create_task(self._deliver(row), name=f"webhook-{delivery}")
                self._flying[delivery] = (name, task)
                per[name] += 1
                started += 1
            return started

    async def _deliver(self, row: Any) -> None:
        """One try of ``row``, recorded as it ends (kept in memory if the write fails)."""
        try:
            result = await self._send(row)
            done = _Done(row, result, self.ns.clock.now())  # backoff counts from the end
            try:
                await self._write([done])
            except Exception as exc:
                self._unrecorded[done.id] = done
                log.warning(
                    "webhooks: the answer to delivery %d could not be written (%s); it is"
                    " kept and written before anything else is sent",
                    done.id,
                    exc,
                )
        finally:
            self._flying.pop(int(row["id"]), None)
            self._wake.set()  # a resolve waiting behind this row may go now

    async def _write_unrecorded(self) -> None:
        done = list(self._unrecorded.values())
        await self._write(done)
        for d in done:
            self._unrecorded.pop(d.id, None)

    async def _write(self, done: list[_Done]) -> None:
        counts = await self.store.write(lambda tx: self._record(tx, done))
        assert self._counter is not None
        for (webhook, result), n in counts.items():
            self._counter.labels(webhook=webhook, result=result).inc(n)

    async def _send(self, row: Any) -> Outcome | str:
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
            now=self.ns.clock.now(),
        )

    def _record(self, tx: Tx, done: list[_Done]) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for d in done:
            key = self._record_one(tx, d)
            counts[(d.row["webhook"], key)] = counts.get((d.row["webhook"], key), 0) + 1
        return counts

    def _record_one(self, tx: Tx, d: _Done) -> str:
        row, result, now = d.row, d.result, d.at
        tries = int(row["attempts"]) + 1
        status = None if isinstance(result, str) else result.status
        if isinstance(result, Sent):
            changed = tx.execute(
                "UPDATE webhook_deliveries SET state = 'delivered', attempts = ?,"
                " last_status = ?, done_at = ? WHERE id = ? AND state = 'pending'",
                (tries, status, now, row["id"]),
            ).rowcount
            if changed and tries > 1:
                self._say(tx, row, took_it_note(row, tries=tries))
            key = "delivered"
        elif isinstance(result, TryAgain) and (
            retry := _retry_at(result, tries=tries, created_at=row["created_at"], now=now)
        ):
            changed = tx.execute(
                "UPDATE webhook_deliveries SET attempts = ?, last_status = ?, last_error = ?,"
                " next_at = ? WHERE id = ? AND state = 'pending'",
                (tries, status, result.error, retry, row["id"]),
            ).rowcount
            if changed and tries == 1:  # said once, at the first failed try
                until = float(row["created_at"]) + GIVE_UP_SECONDS  # (or MAX_TRIES)
                note = retrying_note(row, error=result.error, until=until, tz=self._tz, now=now)
                self._say(tx, row, note)
            key = "retried"
        else:
            error = result if isinstance(result, str) else result.error
            if isinstance(result, TryAgain):
                error += f" (gave up after {tries} tries)"
            changed = self._fail(tx, row, error=error, status=status, tries=tries, now=now)
            key = "failed"
        if not changed:
            self._withdrawn_in_flight(tx, row, result, now)
        elif row["event"] == "trigger":
            self._touch(tx, int(row["alert_id"]), now)  # its paged line says how it went
        return key

    def _withdrawn_in_flight(self, tx: Tx, row: Any, result: Outcome | str, now: float) -> None:
        """The alert's paging ended while this trigger was in flight (its row withdrawn,
        :func:`bot.webhooks_rows.withdraw_triggers`): if it may have got through, the
        receiver gets the resolve now, and the step no longer says "withdrawn unsent"."""
        withdrawn = tx.one(
            "SELECT 1 FROM webhook_deliveries WHERE id = ? AND last_error = ?",
            (row["id"], WITHDRAWN),
        )
        reached = isinstance(result, Sent) or (
            isinstance(result, TryAgain) and result.status is None
        )
        if row["event"] != "trigger" or withdrawn is None or not reached:
            return
        if isinstance(result, Sent):  # it got through after all: said as delivered
            tx.execute(
                "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1,"
                " last_status = ?, last_error = NULL WHERE id = ?",
                (result.status, row["id"]),
            )
        else:  # no answer: it may have got through
            tx.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = ?"
                " WHERE id = ?",
                (STOPPED, row["id"]),
            )
        alerts = self.ns.extras.get("alerts")
        if alerts is None:
            return
        alert = alerts.engine.get(tx, int(row["alert_id"]))
        enqueue_resolve(tx, alert, webhook=row["webhook"], trigger=int(row["id"]), at=now)
        tx.execute(
            "UPDATE escalations SET withdrawn_at = NULL WHERE id = ?", (row["escalation_id"],)
        )
        alerts.engine.touch(tx, alert, now)

    def _fail(
        self, tx: Tx, row: Any, *, error: str, status: int | None, tries: int, now: float
    ) -> bool:
        """Mark ``row`` failed for good and say so in its alert's thread (once: the ref)."""
        changed = tx.execute(
            "UPDATE webhook_deliveries SET state = 'failed', attempts = ?, last_status = ?,"
            " last_error = ?, done_at = ? WHERE id = ? AND state = 'pending'",
            (tries, status, error, now, row["id"]),
        ).rowcount
        if changed:
            log.warning(
                "webhook %s: the %s of alert #%d failed: %s",
                row["webhook"],
                row["event"],
                int(row["alert_id"]),
                error,
            )
            self._say(tx, row, failed_note(row, error=error))
        return bool(changed)

    def _say(self, tx: Tx, row: Any, note: tuple[str, str]) -> None:
        """Post ``note`` (text, ref) in the alert's thread, if it was posted."""
        alert_id = int(row["alert_id"])
        alert = tx.one("SELECT channel, posted_at FROM alerts WHERE id = ?", (alert_id,))
        if alert is None or alert[0] is None or alert[1] is None:
            return  # never posted (a storm summary carried it): the log says it
        text, ref = note
        enqueue_thread_reply(
            tx, parent=f"alert:{alert_id}:post", text=text, channel=alert[0], ref=ref
        )

    def _touch(self, tx: Tx, alert_id: int, now: float) -> None:
        alerts = self.ns.extras.get("alerts")
        if alerts is None:
            return
        with contextlib.suppress(NotFound):  # (an alert gone by retention: nothing to show)
            alerts.engine.touch(tx, alerts.engine.get(tx, alert_id), now)

    @property
    def _tz(self) -> ZoneInfo:
        return ZoneInfo(self.policy.timezone)


def _retry_at(result: TryAgain, *, tries: int, created_at: float, now: float) -> float | None:
    """When to try again after ``tries`` failed tries (None: give up)."""
    if tries >= MAX_TRIES:
        return None
    at = now + max(backoff(tries), result.after or 0.0)
    return at if at - created_at <= GIVE_UP_SECONDS else None
