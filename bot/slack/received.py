"""The Slack requests that reached Nightshift lately, on disk: a re-send is not run again.

Slack sends a Socket Mode envelope again when its acknowledgement did not reach it: it
keeps its ``envelope_id`` (``retry_attempt`` 1, 2, 3). (Over HTTP, Slack re-sends only
Events API deliveries, which run nothing here; a slash command or click answered late is
shown to its sender as failed, not re-sent: HTTP mode records nothing.) The likeliest
reason an acknowledgement is lost is the process ending (a crash, ``kill -9``, a
reload's restart) between the command and its acknowledgement, so a memory of the
process's own is not enough (audit28 M1: a re-sent ``/agent credit`` after a ``kill -9``
took the money back twice). Each request that runs something (a slash command, a click,
a form sent) is written here, durably, BEFORE it runs (:meth:`Received.first`, one small
write), and its acknowledgement's payload after (:meth:`Received.answered`). A re-send
of one:

- answered: gets the same answer within :data:`ANSWER_SECONDS` (its announcement still
  shows), later an empty acknowledgement; it is not run again;
- never answered (the process ended in between): it may have run, and may have moved
  money, so it is not run again either (at most once) and the person is told so
  (:data:`MAY_HAVE_RUN`), with where to look.

Rows are kept :data:`KEEP_SECONDS` (the retention job deletes them): Slack re-sends
within minutes. A database that refuses the record, or does not take it within
:data:`RECORD_SECONDS` (another process holds its write lock: writes wait 8 s), does not
hold the request up past Slack's 3 s: it runs unrecorded (a command that writes meets the
same refusal; ``/agent status`` still says what is wrong), and the record is written when
the database takes it, its answer after it (review28 R5 L2); one the database finally
refuses is said in one INFO line (L1). The time the record took counts in the request's
own acknowledgement budget (:func:`ack_budget_left`, from :data:`ARRIVED`: review28 R5
M2), so a command that writes is acknowledged within ``ACK_BUDGET`` of its arrival, not
that plus :data:`RECORD_SECONDS`.

The only key is ``envelope:<envelope_id>``: HTTP mode records nothing (review28 R5 L3).

Example:
    >>> # received = Received(ns.store, clock=ns.clock)
    >>> # earlier = await received.first("envelope:E1")  # None: run it (recorded)
    >>> # await received.answered("envelope:E1", {"text": "done"})
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any

from slack_bolt.response import BoltResponse

from guards.clock import Clock
from guards.errors import StorageUnavailable
from guards.store import Store, Tx

__all__ = [
    "ANSWER_SECONDS",
    "ARRIVED",
    "KEEP_SECONDS",
    "MAY_HAVE_RUN",
    "RECORD_SECONDS",
    "Answer",
    "Earlier",
    "Received",
    "ack_budget_left",
    "ack_payload",
    "prune_received",
    "replay",
]

log = logging.getLogger(__name__)
Answer = dict[str, Any] | None
ANSWER_SECONDS = 300.0  # a re-send this long after the first gets the first one's answer
KEEP_SECONDS = 3600.0  # rows older than this are deleted (Slack re-sends within minutes)
RECORD_SECONDS = 1.0  # a request waits this long at most for its record (Slack waits 3 s)
MAY_HAVE_RUN = (
    "Slack sent this command again after its answer was lost: it reached Nightshift before"
    " a restart and may have run, so it was not run a second time. See `/agent audit` for"
    " what it changed; if it is not there, type it again."
)
# When the Slack request being handled arrived (time.monotonic()): set as a Socket Mode
# envelope comes, before its record is written; its handlers' tasks inherit it.
ARRIVED: ContextVar[float | None] = ContextVar("slack_request_arrived", default=None)


def ack_budget_left(budget: float) -> float:
    """What is left of a handler's ``budget`` (seconds until it acknowledges) since its
    request arrived (:data:`ARRIVED`; the whole of it where that is not known, as over
    HTTP): the wait for its record comes out of it (review28 R5 M2).

    >>> ack_budget_left(2.0)
    2.0
    """
    arrived = ARRIVED.get()
    if arrived is None:
        return budget
    return max(0.0, budget - (time.monotonic() - arrived))


@dataclass(frozen=True, slots=True)
class Earlier:
    """What came of the first request of a key: when, and its answer once it had one."""

    received_at: float
    answered: bool
    answer: Answer


def ack_payload(response: BoltResponse) -> Answer:
    """What Bolt's answer puts in the acknowledgement (as Bolt's socket adapter does),
    or None: nothing (an empty 200, or no listener's answer at all)."""
    if response.status != 200 or not response.body:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    if content_type.startswith("application/json"):
        body = json.loads(response.body)
        return body if isinstance(body, dict) else None
    return {"text": response.body}


def replay(earlier: Earlier, *, now: float, command: bool) -> Answer:
    """The acknowledgement's payload for a re-send of ``earlier``: its answer while fresh;
    for a slash command never answered, :data:`MAY_HAVE_RUN` (only its sender sees it; a
    click or a form is acknowledged empty: Slack shows no text there).

    >>> replay(Earlier(0.0, True, {"text": "done"}), now=10.0, command=True)
    {'text': 'done'}
    >>> replay(Earlier(0.0, True, {"text": "done"}), now=400.0, command=True) is None
    True
    >>> replay(Earlier(0.0, False, None), now=10.0, command=True)["response_type"]
    'ephemeral'
    """
    if earlier.answered:
        return earlier.answer if now - earlier.received_at <= ANSWER_SECONDS else None
    if command:
        return {"response_type": "ephemeral", "text": MAY_HAVE_RUN}
    return None


class Received:
    """The requests received lately (the ``slack_received`` table, migration 0050)."""

    def __init__(self, store: Store, *, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        # records that did not land within RECORD_SECONDS, by key, until answered
        self._late: dict[str, asyncio.Future[Earlier | None]] = {}

    def now(self) -> float:
        return self._clock.now()

    async def first(self, key: str) -> Earlier | None:
        """None the first time ``key`` comes (recorded from now on, on disk, before it
        runs); else what came of the earlier one, which is not to run again.

        Raises
        :class:`~guards.errors.StorageUnavailable` when the database refuses the write,
        :class:`TimeoutError` when it has not taken it within :data:`RECORD_SECONDS` (the
        write goes on: the row is there once the database takes it, and
        :meth:`answered` waits for it)."""
        write = asyncio.ensure_future(
            self._store.write(partial(_first, key=key, now=self._clock.now()))
        )
        write.add_done_callback(partial(_said, key=key))
        try:
            return await asyncio.wait_for(asyncio.shield(write), RECORD_SECONDS)
        except TimeoutError:
            self._late[key] = write
            raise

    async def answered(self, key: str, answer: Answer) -> None:
        """The answer ``key``'s acknowledgement carried (after it was sent: a re-send
        comes only when it was lost), once its record is written (one that came late
        included). A database that refuses it leaves the row unanswered: a re-send is
        then told it may have run, never run twice."""
        late = self._late.pop(key, None)
        if late is not None:  # recorded after the request ran: answered once it lands
            try:
                if await asyncio.shield(late) is not None:
                    return
            except Exception:  # never recorded (said by _said): nothing to answer
                return
        text = json.dumps(answer, separators=(",", ":"))
        try:
            await self._store.write(partial(_answered, key=key, now=self._clock.now(), answer=text))
        except StorageUnavailable as exc:
            log.warning(
                "could not record the answer to a Slack request (%s): should Slack send it"
                " again, it is not run again and its sender is told it may have run",
                exc.cause,
            )
        except RuntimeError:  # the store closed under a stop meanwhile: left unanswered
            log.debug("the answer to a Slack request was not recorded: Nightshift stops")


def _said(write: asyncio.Future[Earlier | None], *, key: str) -> None:
    """Take the outcome of a record's write, which nobody awaits once it is late: a
    refusal is one INFO line, not asyncio's "Task exception was never retrieved" and its
    traceback at the next garbage collection (review28 R5 L1)."""
    if write.cancelled():
        return
    exc = write.exception()
    if isinstance(exc, StorageUnavailable):
        log.info(
            "the record of Slack request %s was not written (%s): it ran unrecorded, so a"
            " re-send after a restart would run it again",
            key,
            exc.cause,
        )
    elif isinstance(exc, RuntimeError):  # the store closed under a stop meanwhile
        log.debug("the record of Slack request %s was not written: Nightshift stops", key)
    elif exc is not None:
        log.warning("the record of Slack request %s was not written: %r", key, exc)


def _first(tx: Tx, *, key: str, now: float) -> Earlier | None:
    row = tx.one(
        "SELECT received_at, answered_at, answer FROM slack_received WHERE key = ?", (key,)
    )
    if row is not None:
        answer = json.loads(row[2]) if row[2] is not None else None
        return Earlier(
            received_at=float(row[0]),
            answered=row[1] is not None,
            answer=answer if isinstance(answer, dict) else None,
        )
    tx.execute("INSERT INTO slack_received (key, received_at) VALUES (?, ?)", (key, now))
    return None


def _answered(tx: Tx, *, key: str, now: float, answer: str) -> None:
    tx.execute(
        "UPDATE slack_received SET answered_at = ?, answer = ? WHERE key = ?", (now, answer, key)
    )


def prune_received(tx: Tx, *, before: float, limit: int) -> int:
    """Delete at most ``limit`` rows received before ``before``, oldest first (inside
    ``store.write``; the retention job drives it)."""
    cur = tx.execute(
        "DELETE FROM slack_received WHERE key IN (SELECT key FROM slack_received"
        " WHERE received_at < ? ORDER BY received_at LIMIT ?)",
        (before, limit),
    )
    return int(cur.rowcount)
