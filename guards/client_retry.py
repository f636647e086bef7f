"""How the client calls the server: each call tried again after transport errors.

:class:`RetryingClient` holds the httpx client, tries a call again (same body, so the
same idempotency key) after a transport error, a proxy's 502, 503 or 504, or one of
Nightshift's own 503s that wrote nothing (``storage_unavailable``, ``policy_refused``),
and keeps the sends a cancellation must not cut short as background tasks that
:meth:`RetryingClient.aclose` waits for. :class:`~guards.client.GuardClient` builds on it.

Example:
    >>> async def ping(url: str, token: str) -> None:  # doctest: +SKIP
    ...     client = RetryingClient(url, token)
    ...     await client._call("GET", "/v1/breakers")
    ...     await client.aclose()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

from guards.client_wire import NOTHING_WRITTEN, error_code, from_a_proxy, raise_for, said
from guards.errors import Unavailable

__all__ = ["MAX_PAUSE", "MAX_RETRY_AFTER", "RetryingClient"]

log = logging.getLogger("guards.client")  # the public module's name, as logs have it
T = TypeVar("T")
MAX_PAUSE = 2.0  # seconds between two tries of a patient call
MAX_RETRY_AFTER = 5.0  # at most this long, when an answer asks to wait before trying again
# the request cannot work however often it is tried (the URL or the token is malformed)
_HOPELESS = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
# the request did not reach the server
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _retry_after(response: httpx.Response) -> float:
    """The answer's ``Retry-After`` in seconds (0 when absent or not a number of seconds)."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0


def _answered(response: httpx.Response) -> str:
    """What a 502, 503 or 504 worth retrying said: Nightshift's own message, or a proxy's."""
    if error_code(response) in NOTHING_WRITTEN:
        return f"{response.status_code}: {response.json().get('message', '')}"
    return f"{response.status_code} from a proxy"


def _log_failure(task: asyncio.Task[Any], what: str) -> None:
    """Log what a background send ``what`` raised (nobody awaits it to see)."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("nightshift: %s failed: %s", what, said(task.exception() or Exception()))


class RetryingClient:
    """The calls of one client of one Nightshift server, tried again after transport errors.

    Args:
        url: the server, ``http://host:port``.
        token: as ``nightshift token create`` printed it.
        retries: how often a call is tried again after a transport error.
        timeout: seconds to wait for each answer.
        patience: seconds a patient call (a ``reserve`` block's settle or release) keeps trying.
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
            refused = False  # Nightshift said it wrote nothing (NOTHING_WRITTEN)
            try:
                response = await self._http.request(method, path, json=body)
            except _HOPELESS:
                raise
            except httpx.TransportError as exc:
                failure: httpx.TransportError | None = exc
                maybe_sent = maybe_sent or not isinstance(exc, _NOT_SENT)
            else:
                failure = None
                refused = error_code(response) in NOTHING_WRITTEN
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
                    dropped=failure is not None
                    and not isinstance(failure, (*_NOT_SENT, httpx.TimeoutException)),
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

    def _in_background(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        self._track(coro).add_done_callback(lambda t: _log_failure(t, what))

    def _track(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """A task for ``coro`` that :meth:`aclose` waits for."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task
