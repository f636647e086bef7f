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
money twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from guards.client_hold import Hold, Usage, as_usage
from guards.errors import (
    AttemptsExhausted,
    AuthError,
    BreakerOpen,
    BudgetExceeded,
    Conflict,
    GuardError,
    InvalidInput,
    NotFound,
    ScopeForbidden,
)
from guards.ledger import Estimate

__all__ = ["Estimate", "GuardClient", "Hold", "Usage", "as_usage"]


_ERRORS: dict[str, type[GuardError]] = {
    "budget_exceeded": BudgetExceeded,
    "breaker_open": BreakerOpen,
    "attempts_exhausted": AttemptsExhausted,
}


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {"error": "http_error", "message": response.text[:500]}
    code, message = body.get("error", ""), body.get("message", "")
    details = {k: v for k, v in body.items() if k not in ("error", "message")}
    cls = _ERRORS.get(code)
    if cls is BudgetExceeded:
        raise BudgetExceeded(
            **{
                k: details[k]
                for k in (
                    "level",
                    "scope",
                    "window",
                    "limit_micros",
                    "spent_micros",
                    "held_micros",
                    "requested_micros",
                )
            }
        )
    if cls is BreakerOpen:
        raise BreakerOpen(
            scope=details.get("scope", ""),
            state=details.get("state", "open"),
            reason=details.get("reason", ""),
            retry_after=int(details.get("retry_after", 0)),
        )
    if cls is AttemptsExhausted:
        raise AttemptsExhausted(
            scope=details.get("scope", ""),
            task_id=details.get("task_id", ""),
            attempts=int(details.get("attempts", 0)),
            limit=int(details.get("limit", 0)),
        )
    status = response.status_code
    if status == 400:
        raise InvalidInput(details.get("field", "body"), message)
    if status == 401:
        raise AuthError(message)
    if status == 403:
        raise ScopeForbidden(
            scope=details.get("scope", ""), token_scope=details.get("token_scope", "")
        )
    if status == 404:
        raise NotFound(message)
    if status == 409:
        raise Conflict(message, state=details.get("state"))
    raise GuardError(f"{status} {code}: {message}")


class GuardClient:
    """An async client of one Nightshift server, for one token."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        retries: int = 3,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )
        self._retries = retries

    async def __aenter__(self) -> GuardClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        delay = 0.1
        for attempt in range(self._retries + 1):
            try:
                response = await self._http.request(method, path, json=body)
            except httpx.TransportError:
                if attempt == self._retries:
                    raise
                await asyncio.sleep(delay)
                delay *= 2
                continue
            _raise_for(response)
            return response.json() if response.content else None
        raise AssertionError("unreachable")

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
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "scope": scope,
            "idempotency_key": idempotency_key or uuid.uuid4().hex,
        }
        if max_cost_micros is not None:
            body["max_cost_micros"] = max_cost_micros
        if estimate is not None:
            body["estimate"] = {
                "model": estimate.model,
                "input_tokens": estimate.input_tokens,
                "max_output_tokens": estimate.max_output_tokens,
            }
        for key, value in (
            ("task_id", task_id),
            ("ttl_seconds", ttl_seconds),
            ("model", model),
            ("route_id", route_id),
        ):
            if value is not None:
                body[key] = value
        result: dict[str, Any] = await self._call("POST", "/v1/reservations", body)
        return result

    async def settle(self, reservation_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "POST", f"/v1/reservations/{reservation_id}/settle", body
        )
        return result

    async def release(self, reservation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
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

        If the server refuses the settle the block reported (a model with no price,
        say), the hold is settled for its whole ceiling instead, so the money spent
        is not dropped, and the refusal is raised.
        """
        answer = await self.create_reservation(
            scope,
            idempotency_key=idempotency_key,
            estimate=estimate,
            max_cost_micros=max_cost_micros,
            task_id=task_id,
            ttl_seconds=ttl_seconds,
            model=model,
            route_id=route_id,
        )
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
            # A failure is recorded (breakers learn from it) even when nothing was reported
            # spent: then it charges 0 and the whole hold goes back. A timed-out call is a
            # timeout. A cancellation (a shutdown, or an asyncio.timeout around the block)
            # says nothing about the model or the agent: with nothing reported spent the
            # hold is released, so cancelled calls do not trip the agent's breaker.
            if isinstance(exc, asyncio.CancelledError) and not hold.settled:
                try:
                    hold.result = await self.release(hold.reservation_id)
                except (GuardError, httpx.HTTPError) as report:
                    exc.add_note(f"nightshift: releasing {hold.reservation_id} failed: {report!r}")
                raise
            timed_out = isinstance(
                exc, (TimeoutError, httpx.TimeoutException, asyncio.CancelledError)
            )
            outcome = "timeout" if timed_out else "failure"
            if not hold.settled:
                hold.settle(actual_cost_micros=0, outcome=outcome)
            try:
                await self._settle_spent(hold, hold.body(outcome, repr(exc)))
            except (GuardError, httpx.HTTPError) as report:  # the caller's error comes first
                exc.add_note(f"nightshift: settling {hold.reservation_id} failed: {report!r}")
            raise
        if not hold.settled:
            hold.result = await self.release(hold.reservation_id)
            return
        await self._settle_spent(hold, hold.body())

    async def _settle_spent(self, hold: Hold, body: dict[str, Any]) -> None:
        """Settle ``body``; if the server refuses it (a model with no price, say), charge
        the whole ceiling instead, since the money was spent, and raise the refusal."""
        try:
            hold.result = await self.settle(hold.reservation_id, body)
        except InvalidInput as refused:
            ceiling = {
                "outcome": body["outcome"],
                "actual_cost_micros": hold.held_micros,
                "error": f"settled at the ceiling: {refused.message}"[:2000],
            }
            try:
                hold.result = await self.settle(hold.reservation_id, ceiling)
            except (GuardError, httpx.HTTPError) as report:
                refused.add_note(f"nightshift: settling {hold.reservation_id} failed: {report!r}")
            raise

    async def validate(
        self,
        scope: str,
        stream: str,
        items: list[Any],
        *,
        expected_count: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Validate a batch; a transport retry sends the same key, so it gets the first answer."""
        body: dict[str, Any] = {
            "scope": scope,
            "stream": stream,
            "items": items,
            "idempotency_key": idempotency_key or uuid.uuid4().hex,
        }
        if expected_count is not None:
            body["expected_count"] = expected_count
        result: dict[str, Any] = await self._call("POST", "/v1/validations", body)
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
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"scope": scope, "task": task}
        if intent is not None:
            body["intent"] = intent
        if min_tier is not None:
            body["min_tier"] = min_tier
        result: dict[str, Any] = await self._call("POST", "/v1/route", body)
        return result

    async def budget(self, scope: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", f"/v1/budgets/{scope}")
        return result

    async def breakers(self) -> Any:
        return await self._call("GET", "/v1/breakers")
