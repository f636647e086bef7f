"""The Python client of the agent API, on httpx.

Example:
    >>> async def call(url: str, token: str) -> None:  # doctest: +SKIP
    ...     async with GuardClient(url, token) as guard:
    ...         est = Estimate("claude-haiku-4-5", 1200, 800)
    ...         async with guard.reserve("acme/alice/rss-bot/c42", estimate=est) as hold:
    ...             reply = await llm(...)
    ...             hold.settle(usage=Usage("claude-haiku-4-5", 1100, 640))

Inside ``reserve``: an exception settles the hold as a failure (charging what
``hold.settle`` reported, or nothing, so the rest of the hold goes back and the
breaker sees the failure); leaving the block without settling releases the hold.

Transport errors are retried with the same idempotency key, so a retry never holds
money twice: ``retries`` times (0.1, 0.2, 0.4 s apart) for a plain call; for what a
``reserve`` block sends when it ends (its settle or release), for ``patience``
seconds (60 by default, the pauses growing to 2 s), since that money was spent and a
restart of Nightshift takes a few seconds. A cancellation (a shutdown, or an
``asyncio.timeout`` around the block) does not cut that send short: it goes on in the
background, and :meth:`GuardClient.aclose` waits for it. A reserve cut short the same
way, whose hold the server may have made, is sent again in the background and that
hold released, when the client made its key and it names no task (whose attempts a
replay would count); otherwise a note on the exception names the key to reserve again
with. When the server cannot be reached, the call raises
:class:`~guards.errors.Unavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx

from guards.client_hold import Hold, Usage, as_usage, settle_body
from guards.client_types import (
    BreakerFailures,
    BreakerInfo,
    BreakersAnswer,
    RejectedItem,
    ReleaseAnswer,
    ReservationAnswer,
    RouteDecision,
    SettleAnswer,
    ValidationAnswer,
)
from guards.client_wire import error_code, from_a_proxy, raise_for, reservation_body, said
from guards.errors import (
    Conflict,
    GuardError,
    InvalidInput,
    Unavailable,
)
from guards.ledger import Estimate

__all__ = [
    "BreakerFailures",
    "BreakerInfo",
    "BreakersAnswer",
    "Estimate",
    "GuardClient",
    "Hold",
    "RejectedItem",
    "ReleaseAnswer",
    "ReservationAnswer",
    "RouteDecision",
    "SettleAnswer",
    "Unavailable",
    "Usage",
    "ValidationAnswer",
    "as_usage",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_PAUSE = 2.0  # seconds between two tries of a patient call
MAX_RETRY_AFTER = 5.0  # at most this long, when an answer asks to wait before trying again
# the request cannot work however often it is tried (the URL or the token is malformed)
_HOPELESS = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
# the request did not reach the server
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# what ends a block without saying anything of the call: a cancellation, a Ctrl-C, an exit
_NOT_THE_CALLS_FAULT = (asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit)


def _retry_after(response: httpx.Response) -> float:
    """The answer's ``Retry-After`` in seconds (0 when absent or not a number of seconds)."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0


def _answered(response: httpx.Response) -> str:
    """What a 502, 503 or 504 worth retrying said: Nightshift's own message, or a proxy's."""
    if error_code(response) == "storage_unavailable":
        return f"{response.status_code}: {response.json().get('message', '')}"
    return f"{response.status_code} from a proxy"


def _log_failure(task: asyncio.Task[Any], what: str) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("nightshift: %s failed: %s", what, said(task.exception() or Exception()))


def _settling(hold: Hold, body: dict[str, Any]) -> str:
    return f"settling {hold.reservation_id} ({body})"


class GuardClient:
    """An async client of one Nightshift server, for one token.

    Args:
        url: the server, ``http://host:port``.
        token: as ``nightshift token create`` printed it.
        retries: how often a call is tried again after a transport error.
        timeout: seconds to wait for each answer.
        patience: seconds a ``reserve`` block's settle or release keeps trying.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        retries: int = 3,
        timeout: float = 10.0,
        patience: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url {url[:200]!r} must start with http:// or https://")
        token = token.strip()
        if not token or not token.isprintable() or any(c.isspace() for c in token):
            # never echoed: it is a secret, and messages end up in logs
            raise ValueError(
                "the token has spaces or control characters inside it: pass it as"
                " `nightshift token create` printed it"
            )
        self._http = httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )
        self._retries = retries
        self._timeout = timeout
        self._patience = patience
        self._background: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> GuardClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Wait for settles and releases still being sent (each may take ``patience``
        and a last try, twice for a settle refused and sent at its ceiling); close."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=2 * (self._patience + self._timeout))
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        patient: bool = False,
    ) -> Any:
        """One call, tried again after transport errors (and a proxy's 502, 503 or 504)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._patience if patient else None
        pause = 0.1
        tries = 0
        maybe_sent = False  # whether any try may have reached the server
        while True:
            tries += 1
            refused = False  # the database refused the write: nothing of it was written
            try:
                response = await self._http.request(method, path, json=body)
            except _HOPELESS:
                raise
            except httpx.TransportError as exc:
                failure: httpx.TransportError | None = exc
                maybe_sent = maybe_sent or not isinstance(exc, _NOT_SENT)
            else:
                failure = None
                refused = error_code(response) == "storage_unavailable"
                maybe_sent = maybe_sent or not refused  # refused: nothing of it was written
                if not from_a_proxy(response):
                    raise_for(response)
                    return response.json() if response.content else None
            more = tries <= self._retries or (deadline is not None and loop.time() < deadline)
            if not more:
                cause = said(failure) if failure is not None else _answered(response)
                raise Unavailable(
                    url=str(self._http.base_url),
                    attempts=tries,
                    cause=cause,
                    maybe_sent=maybe_sent,
                    answered=refused,
                    slow=isinstance(failure, httpx.TimeoutException)
                    and not isinstance(failure, _NOT_SENT),
                ) from failure
            wait = pause
            if failure is None:  # the server (or a proxy) said when to come back
                wait = max(pause, min(_retry_after(response), MAX_RETRY_AFTER))
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - loop.time()))
            await asyncio.sleep(wait)
            pause = min(pause * 2, MAX_PAUSE)

    async def _shielded(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        """Run ``coro`` to its end even if the caller is cancelled meanwhile."""
        task = self._track(coro)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():  # the caller went; the send goes on, and says if it fails
                task.add_done_callback(lambda t: _log_failure(t, what))
            raise

    async def create_reservation(
        self,
        scope: str,
        *,
        idempotency_key: str | None = None,
        max_cost_micros: int | None = None,
        estimate: Estimate | None = None,
        task_id: str | None = None,
        ttl_seconds: int | None = None,
        model: str | None = None,
        route_id: str | None = None,
    ) -> ReservationAnswer:
        """``POST /v1/reservations``: the answer (``reservation_id``, ``held_micros``, ...)."""
        body = reservation_body(
            scope,
            idempotency_key=idempotency_key or uuid.uuid4().hex,
            max_cost_micros=max_cost_micros,
            estimate=estimate,
            task_id=task_id,
            ttl_seconds=ttl_seconds,
            model=model,
            route_id=route_id,
        )
        result: ReservationAnswer = await self._call("POST", "/v1/reservations", body)
        return result

    async def settle(
        self,
        reservation_id: str,
        body: dict[str, Any] | None = None,
        *,
        usage: Any = None,
        actual_cost_micros: int | None = None,
        outcome: str = "success",
        error: str | None = None,
    ) -> SettleAnswer:
        """``POST .../settle`` with the keywords of ``Hold.settle`` (or a JSON ``body``)."""
        if body is None:
            body = settle_body(
                usage=usage, actual_cost_micros=actual_cost_micros, outcome=outcome, error=error
            )
        result: SettleAnswer = await self._call(
            "POST", f"/v1/reservations/{reservation_id}/settle", body
        )
        return result

    async def release(self, reservation_id: str) -> ReleaseAnswer:
        """``POST .../release``: the whole hold goes back (the call was not made)."""
        result: ReleaseAnswer = await self._call(
            "POST", f"/v1/reservations/{reservation_id}/release"
        )
        return result

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
                    body = {"outcome": outcome, "actual_cost_micros": 0, "error": repr(exc)[:2000]}
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
                "error": f"settled at the ceiling: {refused.message}"[:2000],
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

    def _in_background(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        self._track(coro).add_done_callback(lambda t: _log_failure(t, what))

    def _track(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """A task for ``coro`` that :meth:`aclose` waits for."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def validate(
        self,
        scope: str,
        stream: str,
        items: list[Any],
        *,
        expected_count: int | None = None,
        idempotency_key: str | None = None,
        route_id: str | None = None,
    ) -> ValidationAnswer:
        """Validate a batch; a transport retry sends the same key, so it gets the first answer.
        ``route_id``: the routed call that wrote the items (routing learns from a rejection)."""
        body: dict[str, Any] = {
            "scope": scope,
            "stream": stream,
            "items": items,
            "idempotency_key": idempotency_key or uuid.uuid4().hex,
        }
        if expected_count is not None:
            body["expected_count"] = expected_count
        if route_id is not None:
            body["route_id"] = route_id
        result: ValidationAnswer = await self._call("POST", "/v1/validations", body)
        return result

    async def heartbeat(
        self, scope: str, *, status: str | None = None, detail: str | None = None
    ) -> None:
        body: dict[str, Any] = {"scope": scope}
        if status is not None:
            body["status"] = status
        if detail is not None:
            body["detail"] = detail
        await self._call("POST", "/v1/heartbeats", body)

    async def route(
        self, scope: str, task: str, *, intent: str | None = None, min_tier: str | None = None
    ) -> RouteDecision:
        """``POST /v1/route``: the model for ``task`` (pass its ``route_id`` to the reserve)."""
        body: dict[str, Any] = {"scope": scope, "task": task}
        if intent is not None:
            body["intent"] = intent
        if min_tier is not None:
            body["min_tier"] = min_tier
        result: RouteDecision = await self._call("POST", "/v1/route", body)
        return result

    async def budget(self, scope: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", f"/v1/budgets/{scope}")
        return result

    async def breakers(self, *, all: bool = False) -> BreakersAnswer:
        """``GET /v1/breakers``: those not closed, or with ``all=True`` every one."""
        result: BreakersAnswer = await self._call(
            "GET", "/v1/breakers?all=1" if all else "/v1/breakers"
        )
        return result
