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
alert's trigger is still being tried; so do a storm's (:mod:`bot.webhook_storms`),
apart from its first alert's own. A row is started again only from a read of the due
rows begun after its last try was recorded (a try ending while a pass reads leaves that
pass's copy of its row stale). A try reads its secret first (a ``secret_file`` may take
up to :data:`SECRET_SECONDS`), then claims its row in the database
(:func:`~bot.webhooks_rows.claim`) right before its request goes out: a trigger
withdrawn since the pass read it, its secret's read included, is not sent. An answer
whose record the database refused is kept in memory and written first when it takes
writes again; nothing new is sent until then (so a storage outage sends no event twice).
One whose record failed on an unexpected error is recorded on its own, as what it is (a
2xx is not sent again). Times come from the injected clock; all
state is in the rows, so a restart resumes what was pending (a request cut short by a
stop or a crash is sent again: delivery is at-least-once, and the
``X-Nightshift-Delivery`` header lets a receiver drop the repeat). A claimed try marks
its row in flight until its answer is recorded: a resolve waits behind a try of its
trigger in flight, also one whose paging ended meanwhile, and a restart takes a try a
crash cut short as one that may have got there (:mod:`bot.webhooks_flight`). A stop
waits at most :data:`STOP_SECONDS` for requests in flight, and no longer than they take.

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

import httpx
from prometheus_client import Counter

from bot.webhook_storms import fix_storm_body
from bot.webhooks_notes import NOT_SENT, taken_out
from bot.webhooks_record import UNEXPECTED, DeliveryRecords, Done
from bot.webhooks_rows import claim
from bot.webhooks_send import Outcome, TryAgain, client, post, redact
from bot.webhooks_target import hook_for
from guards.config import Policy
from guards.config_webhooks import SECRET_READ_SECONDS, SecretSlow, SecretUnreadable, Webhook
from guards.errors import StorageUnavailable, said
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
SECRET_SECONDS = SECRET_READ_SECONDS  # the most a secret_file's read may take
RESULTS = ("delivered", "retried", "failed")

_WAKERS: list[Callable[[], None]] = []


def wake_senders() -> None:
    """Wake every running sender (a row's writer runs this after its commit)."""
    for wake in list(_WAKERS):
        with contextlib.suppress(RuntimeError):  # a loop that is already closed
            wake()


# the earliest pending row of each (alert, webhook), and of each storm (its rows carry
# its first alert's id: an Escalate now of that alert waits behind none of them), whose
# time has come, with no try of an earlier one in flight (a resolve waits while a try of
# its trigger is out, also one the end of the paging ended: review26 R1 L2)
_DUE = (
    "SELECT id, webhook, alert_id, event, body, created_at, attempts, escalation_id,"
    " target, storm_id, last_status, last_error, reached FROM webhook_deliveries d"
    " WHERE state = 'pending' AND next_at <= ? AND NOT EXISTS (SELECT 1 FROM"
    " webhook_deliveries e WHERE (e.state = 'pending' OR e.in_flight_at IS NOT NULL)"
    " AND e.alert_id = d.alert_id AND e.webhook = d.webhook AND e.storm_id IS d.storm_id"
    " AND e.id < d.id) ORDER BY next_at, id LIMIT ?"
)


@dataclass(frozen=True, slots=True)
class _Ready:
    """A try about to go out: its webhook as the policy says it now, and its secret."""

    hook: Webhook
    secret: str | None


class WebhookSender(DeliveryRecords):
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
        # the tries that ended while a pass read the due rows: its rows of them are stale
        self._ended_meanwhile: set[int] | None = None
        self._unrecorded: dict[int, Done] = {}  # answers the database refused to take
        self._stopping = False
        self._recovered = False  # the tries a crash cut short (bot.webhooks_flight)

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
        self._client = client()  # (and stops at a redirect, whatever its Location)
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
            if not self._recovered:  # before this process starts a try of its own
                await self.store.write(lambda tx: self._recover(tx, tx.clock.now()))
                self._recovered = True
            if self._unrecorded:  # first what was sent and not written: not sent again
                await self._write_unrecorded()
            # A try that ends while the rows are read (its answer written, then it left
            # _flying) may be read as it was before: pending, not in flight. Such a row is
            # not started from this read (recheck25 M1: a resolve went twice, 13 ms apart);
            # the next pass, woken as the try ended, reads it as it is now.
            self._ended_meanwhile = set()
            try:
                rows = await self.store.fetch(_DUE, (self.ns.clock.now(), FETCH))
            finally:
                stale, self._ended_meanwhile = self._ended_meanwhile, None
            per = Tally(webhook for webhook, _ in self._flying.values())
            started = 0
            for row in rows:
                name, delivery = str(row["webhook"]), int(row["id"])
                if delivery in self._flying or delivery in stale or delivery in self._unrecorded:
                    continue
                if per[name] >= PER_WEBHOOK:
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
        delivery = int(row["id"])
        try:
            ready = await self._ready(row)  # its secret first: reading it may take seconds
            read, now = row, self.ns.clock.now()
            try:  # then its claim, right before the request (review26 R1 L1)
                row = await self.store.write(
                    lambda tx: self._claim(tx, read, now=now, sending=isinstance(ready, _Ready))
                )
            except Exception as exc:  # (the row stays pending: picked again)
                log.warning(
                    "webhooks: delivery %d could not be claimed (%s); it is tried again",
                    delivery,
                    exc,
                )
                return
            if row is None:
                return  # withdrawn (or tried) since the due rows were read: not sent
            url = ready.hook.url if isinstance(ready, _Ready) else None
            try:  # claimed (marked in flight): whatever fails from here, the mark is cleared
                result = await self._post(row, ready) if isinstance(ready, _Ready) else ready
                done = Done(row, result, self.ns.clock.now())  # backoff counts from the end
            except Exception as exc:
                await self._release(row, exc, url=url, done=None)
                return
            try:
                await self._write([done])
            except StorageUnavailable as exc:  # the database refuses writes: kept
                self._unrecorded[done.id] = done
                log.warning(
                    "webhooks: the answer to delivery %d could not be written (%s); it is"
                    " kept and written before anything else is sent",
                    done.id,
                    exc,
                )
            except Exception as exc:  # a bug in its record: recorded alone, not kept
                await self._release(row, exc, url=url, done=done)
        finally:
            if self._ended_meanwhile is not None:  # a pass is reading the due rows now
                self._ended_meanwhile.add(delivery)
            self._flying.pop(delivery, None)
            self._wake.set()  # a resolve waiting behind this row may go now

    async def _release(
        self, row: Any, exc: Exception, *, url: str | None, done: Done | None
    ) -> None:
        """After an unexpected error between a try's claim and its record, record the try
        in a write of its own (:meth:`_record_alone`), which clears its in-flight mark (it
        held the row and its alert's resolve until a restart): its answer as what it is
        (``done``; a 2xx is not sent again), or, with none, as a try that may have got
        there, tried again on its schedule. Logged. If that write is refused too, the try
        is kept as an answer to write first."""
        delivery, now = int(row["id"]), self.ns.clock.now()
        error = f"{UNEXPECTED} ({said(exc)})"  # ("RuntimeError: …")
        error = redact(error, url=url) if url is not None else error
        log.error(
            "webhooks: delivery %d: %s after its claim; %s",
            delivery,
            error,
            "its answer is recorded on its own"
            if done is not None
            else "its try is counted as one that may have got there, and it is tried again"
            " after its backoff",
        )
        log.debug("webhooks: delivery %d: the unexpected error", delivery, exc_info=exc)
        d = done if done is not None else Done(row, TryAgain(None, error, reached=True), now)
        try:
            key = await self.store.write(lambda tx: self._record_alone(tx, d))
        except Exception as refused:
            self._unrecorded[delivery] = d
            log.warning(
                "webhooks: delivery %d could not be released (%s); its try is kept and"
                " written before anything else is sent",
                delivery,
                refused,
            )
            return
        self._count({(str(row["webhook"]), key): 1})

    @staticmethod
    def _claim(tx: Tx, row: Any, *, now: float, sending: bool) -> Any | None:
        """Claim ``row`` for the try about to go out (None: withdrawn or tried since the
        pass read it); a storm's trigger ``sending`` now gets its body, what its storm
        holds now, in the same write (:func:`~bot.webhook_storms.fix_storm_body`)."""
        delivery = int(row["id"])
        if not claim(
            tx, delivery, attempts=int(row["attempts"]), sending_at=now if sending else None
        ):
            return None
        if not sending or row["storm_id"] is None or row["body"]:
            return row
        body = fix_storm_body(tx, delivery, now)
        return None if body is None else {**dict(row), "body": body}

    async def _write_unrecorded(self) -> None:
        done = list(self._unrecorded.values())
        await self._write(done)
        for d in done:
            self._unrecorded.pop(d.id, None)

    async def _write(self, done: list[Done]) -> None:
        self._count(await self.store.write(lambda tx: self._record(tx, done)))

    def _count(self, counts: dict[tuple[str, str], int]) -> None:
        assert self._counter is not None
        for (webhook, result), n in counts.items():
            self._counter.labels(webhook=webhook, result=result).inc(n)

    async def _ready(self, row: Any) -> _Ready | Outcome | str:
        """What a try of ``row`` sends with (its webhook and secret), or why it sends
        nothing (a str: its webhook taken out; a TryAgain: its secret cannot be read)."""
        hook = hook_for(self.policy, name=row["webhook"], event=row["event"], target=row["target"])
        if hook is None:
            return taken_out(row)
        try:  # (a secret_file is read now, on a thread of its own: a rotation needs no
            # reload; a hung one holds that thread alone, review26 R3 H1)
            secret = await hook.secret_within(seconds=SECRET_SECONDS)
        except SecretSlow:  # a file on a mount that hangs: tried again, and again at once
            return TryAgain(
                None,
                f"{NOT_SENT}its secret_file {hook.secret_file} took over {SECRET_SECONDS:g}s"
                " to read: check the disk or mount it is on",
            )
        except SecretUnreadable as exc:  # being rewritten, say: tried again, never unsigned
            return TryAgain(None, f"{NOT_SENT}{exc}")
        return _Ready(hook, secret)

    async def _post(self, row: Any, ready: _Ready) -> Outcome:
        """One try of ``row``, claimed: its request."""
        assert self._client is not None
        return await post(
            self._client,
            url=ready.hook.url,
            body=row["body"],
            delivery_id=int(row["id"]),
            secret=ready.secret,
            seconds=float(ready.hook.timeout),
            now=self.ns.clock.now(),
        )
