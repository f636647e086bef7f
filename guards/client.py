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

The client is in three modules: :mod:`guards.client_retry` (each call tried again
after transport errors, and the sends that outlive a cancellation),
:mod:`guards.client_reserve` (the ``reserve`` block and how it ends) and this one (one
method per endpoint). :mod:`guards.client_hold` (the hold, the usage) and
:mod:`guards.client_types` (the answers) hold what they return; every name an agent
uses is importable from here.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any
from urllib.parse import quote

from guards.client_hold import TEXT_CHARS, Hold, Usage, as_usage, settle_body
from guards.client_reserve import ReservingClient
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
from guards.client_wire import reservation_body
from guards.errors import Conflict as Conflict
from guards.errors import GuardError as GuardError
from guards.errors import InvalidInput as InvalidInput
from guards.errors import Unavailable
from guards.reservation import Estimate
from guards.words import clip_chars

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


class GuardClient(ReservingClient):
    """An async client of one Nightshift server, for one token.

    Args:
        url: the server, ``http://host:port``.
        token: as ``nightshift token create`` printed it.
        retries: how often a call is tried again after a transport error.
        timeout: seconds to wait for each answer.
        patience: seconds a ``reserve`` block's settle or release keeps trying.
    """

    async def __aenter__(self) -> GuardClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

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
        if detail is not None:  # cut as a settle's error is: a refused beat is a missed one
            body["detail"] = clip_chars(detail, TEXT_CHARS)
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

    async def budget(self, scope: str, *, day: str | date | None = None) -> dict[str, Any]:
        """``GET /v1/budgets/{scope}``: the usage tree now, or with ``day`` (``"yesterday"``,
        ``"today"`` or a date) what every level spent on that local day of the namespace."""
        path = f"/v1/budgets/{scope}"
        if day is not None:
            path += f"?day={day.isoformat() if isinstance(day, date) else quote(day)}"
        result: dict[str, Any] = await self._call("GET", path)
        return result

    async def breakers(self, *, all: bool = False) -> BreakersAnswer:
        """``GET /v1/breakers``: those not closed, or with ``all=True`` every one."""
        result: BreakersAnswer = await self._call(
            "GET", "/v1/breakers?all=1" if all else "/v1/breakers"
        )
        return result
