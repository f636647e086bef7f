"""The client's ``reserve`` block: hold, run the call, then settle or release.

:class:`ReservingClient` adds :meth:`~ReservingClient.reserve` to the retrying calls of
:class:`~guards.client_retry.RetryingClient`, and how its block ends: a settle or
release sent patiently and to its end through a cancellation, a failure settled so the
breakers learn of it, a lost reserve's hold found by its key and given back. What each
ending does is told in :mod:`guards.client`'s docstring; :class:`~guards.client.GuardClient`
builds on this class.

Example:
    >>> async def call(guard: ReservingClient) -> None:  # doctest: +SKIP
    ...     async with guard.reserve("acme/alice/rss-bot", max_cost_micros=5000) as hold:
    ...         hold.settle(actual_cost_micros=1200)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx

from guards.client_hold import TEXT_CHARS, Hold
from guards.client_retry import RetryingClient
from guards.client_wire import reservation_body
from guards.errors import Conflict, GuardError, InvalidInput, Unavailable
from guards.reservation import Estimate

__all__ = ["ReservingClient"]

# what ends a block without saying anything of the call: a cancellation, a Ctrl-C, an exit
_NOT_THE_CALLS_FAULT = (asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit)


def _settling(hold: Hold, body: dict[str, Any]) -> str:
    return f"settling {hold.reservation_id} ({body})"


class ReservingClient(RetryingClient):
    """The ``reserve`` block of :class:`~guards.client.GuardClient` and how it ends."""

    @asynccontextmanager
    async def reserve(
        self,
        scope: str,
        *,
        estimate: Estimate | None = None,
        max_cost_micros: int | None = None,
        task_id: str | None = None,
        ttl_seconds: int | None = None,
        route_id: str | None = None,
        model: str | None = None,
        idempotency_key: str | None = None,
    ) -> AsyncIterator[Hold]:
        """Hold the ceiling for one call; settle or release when the block ends.

        Pass your own ``idempotency_key`` to make a retried call (after a crash, say)
        find its earlier hold instead of taking a second one. When that call is over
        already (settled, released or expired), this raises :class:`Conflict` before
        the block runs: the block would spend money nothing holds.

        ``task_id`` names the tries of one piece of work: every reservation with it is
        an attempt, successful or not, and the one past ``max_attempts_per_task`` is
        refused (429). Give each step of a multi-step job its own task id.

        If the server refuses the settle the block reported (a model with no price,
        say), the hold is settled for its whole ceiling instead, so the money spent
        is not dropped, and the refusal is raised.
        """
        body = reservation_body(
            scope,
            idempotency_key=idempotency_key or uuid.uuid4().hex,
            estimate=estimate,
            max_cost_micros=max_cost_micros,
            task_id=task_id,
            ttl_seconds=ttl_seconds,
            model=model,
            route_id=route_id,
        )
        try:
            answer: dict[str, Any] = await self._call("POST", "/v1/reservations", body)
        except (asyncio.CancelledError, Unavailable) as exc:
            if isinstance(exc, Unavailable) and not exc.maybe_sent:
                raise  # it never reached the server: nothing is held
            # The server may have made the hold, and its answer was lost. With a key of
            # our own and no task (whose attempts a replay would count), find it by its
            # key and give it back, in the background (a cancellation must not wait).
            # The caller's own key may be sent again by the caller, to use that hold.
            if idempotency_key is None and task_id is None:
                self._in_background(self._undo_reserve(body), f"releasing the hold of {scope}")
            else:
                exc.add_note(
                    f"nightshift: the reserve of {scope} may have held money under"
                    f" idempotency_key {body['idempotency_key']!r}: reserve again with that key"
                    " to use it; otherwise it goes back when it expires"
                )
            raise
        if answer.get("state", "held") != "held":
            raise Conflict(
                f"idempotency_key {idempotency_key!r} names reservation"
                f" {answer['reservation_id']}, which is {answer['state']} already: that call"
                " is over; use a new key for a new call",
                state=answer["state"],
            )
        hold = Hold(
            answer["reservation_id"],
            answer["held_micros"],
            answer["expires_at"],
            model=model or (estimate.model if estimate else None),
        )
        try:
            yield hold
        except BaseException as exc:
            hold.close()
            await self._finish_failed(hold, exc)
            raise
        hold.close()
        if not hold.spent:
            await self._shielded(self._release(hold), f"releasing {hold.reservation_id}")
            return
        await self._shielded(self._settle_spent(hold, hold.body()), _settling(hold, hold.body()))

    async def _finish_failed(self, hold: Hold, exc: BaseException) -> None:
        """The block raised: settle the failure (or release a cancelled call's hold).

        A failure is recorded (breakers learn from it) even when nothing was reported
        spent: then it charges 0 and the whole hold goes back. A timed-out call is a
        timeout. A cancellation (a shutdown, or an asyncio.timeout around the block),
        a ``KeyboardInterrupt`` or a ``SystemExit`` says nothing about the model or the
        agent: with nothing reported spent the hold is released, and a call reported
        before it is settled as reported, so stopped calls (a deploy's) do not trip the
        agent's breaker (nor the model's, which every tenant shares). The caller's error
        comes first: what goes wrong here is a note on it.
        """
        send: Coroutine[Any, Any, None]
        if isinstance(exc, _NOT_THE_CALLS_FAULT) and not hold.spent:
            send = self._release(hold)
            what = f"releasing {hold.reservation_id}"
        else:
            if isinstance(exc, _NOT_THE_CALLS_FAULT) or exc is hold.unread_error:
                # the call was over (the model answered): as reported, not as its failure
                body = hold.body()
            else:
                timed_out = isinstance(exc, (TimeoutError, httpx.TimeoutException))
                outcome = "timeout" if timed_out else "failure"
                if hold.spent:
                    body = hold.body(outcome, repr(exc))
                else:
                    body = {
                        "outcome": outcome,
                        "actual_cost_micros": 0,
                        "error": repr(exc)[:TEXT_CHARS],
                    }
            send = self._settle_spent(hold, body)
            what = _settling(hold, body)
        if isinstance(exc, asyncio.CancelledError):  # the caller must not wait: it goes on
            self._in_background(send, what)
            return
        try:
            await self._shielded(send, what)
        except (GuardError, httpx.HTTPError) as report:
            exc.add_note(f"nightshift: {what} failed: {report!r}")
            for note in getattr(report, "__notes__", ()):  # what to send again, say
                exc.add_note(note)

    async def _release(self, hold: Hold) -> None:
        """Give the hold back, patiently; one settled meanwhile (by id) is done."""
        try:
            hold.result = await self._call(
                "POST", f"/v1/reservations/{hold.reservation_id}/release", patient=True
            )
        except Conflict as exc:
            if exc.state != "settled":
                raise
            hold.result = {"reservation_id": hold.reservation_id, "state": "settled"}

    async def _settle_spent(self, hold: Hold, body: dict[str, Any]) -> None:
        """Settle ``body``, patiently; if the server refuses it (a model with no price,
        say), charge the whole ceiling instead, since the money was spent, and raise
        the refusal."""
        path = f"/v1/reservations/{hold.reservation_id}/settle"
        try:
            hold.result = await self._call("POST", path, body, patient=True)
        except InvalidInput as refused:
            ceiling = {
                "outcome": body["outcome"],
                "actual_cost_micros": hold.held_micros,
                "error": f"settled at the ceiling: {refused.message}"[:TEXT_CHARS],
            }
            try:
                hold.result = await self._call("POST", path, ceiling, patient=True)
            except (GuardError, httpx.HTTPError) as report:
                refused.add_note(f"nightshift: settling {hold.reservation_id} failed: {report!r}")
            raise
        except Unavailable as exc:
            done = (
                "may have been recorded (a try went unanswered); to be sure, send it again"
                " (the same settle gets the same answer)"
                if exc.maybe_sent
                else "was not recorded; send it again"
            )
            exc.add_note(
                f"nightshift: {hold.reservation_id}'s settle {done} when Nightshift is back:"
                f" await guard.settle({hold.reservation_id!r}, {body!r})"
            )
            raise

    async def _undo_reserve(self, body: dict[str, Any]) -> None:
        """Find the hold a lost reserve may have made (by its key) and release it."""
        answer = await self._call("POST", "/v1/reservations", body, patient=True)
        if answer.get("state") == "held":
            await self._call(
                "POST", f"/v1/reservations/{answer['reservation_id']}/release", patient=True
            )
