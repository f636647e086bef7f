"""Errors of the guard engine, each with a message a user can act on.

The tree::

    GuardError
    ├── InvalidInput(field)                 400: bad input, nothing changed
    ├── AuthError                           401: missing or unknown token
    ├── ScopeForbidden(scope, token_scope)  403: outside the token's subtree
    ├── NotFound                            404
    ├── Conflict                            409: a state conflict (settled, released, key reuse)
    ├── BudgetExceeded(level, scope, ...)   402: the reservation does not fit
    ├── BreakerOpen(retry_after, reason)    503: the agent's breaker refuses calls
    ├── AttemptsExhausted(task_id, ...)     429: the task used all its attempts
    ├── StorageUnavailable                  503: the database refused a batch (full, locked)
    └── Unavailable(url, attempts)          the client's own: the server did not answer

The HTTP layer maps them to status codes in one place (``bot/api.py``); the Slack
layer renders them in one place.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from guards.words import plural

__all__ = [
    "AttemptsExhausted",
    "AuthError",
    "BreakerOpen",
    "BudgetExceeded",
    "Conflict",
    "GuardError",
    "InvalidInput",
    "NotFound",
    "ScopeForbidden",
    "StorageUnavailable",
    "Unavailable",
    "said",
]


def said(exc: BaseException) -> str:
    """An exception in one line: its type, and its message when it has one."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class GuardError(Exception):
    """Root of every error the engine raises on purpose."""

    status = 500
    code = "internal"
    # the API looked at the request's token already for this refusal (see bot.api)
    token_checked = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> dict[str, Any]:
        """Extra JSON fields for the error body."""
        return {}


class InvalidInput(GuardError):
    status = 400
    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def details(self) -> dict[str, Any]:
        return {"field": self.field}


class AuthError(GuardError):
    status = 401
    code = "unauthorized"


class ScopeForbidden(GuardError):
    status = 403
    code = "forbidden"

    def __init__(
        self, *, scope: str, token_scope: str, why: str = "", operator: bool = False
    ) -> None:
        kind = " --operator" if operator else ""  # a token of the same kind (review23 M4)
        super().__init__(
            f"this token acts only inside {token_scope}; {scope} is outside it{why}. "
            f"Create a token for that scope with `nightshift token create <scope>{kind}`."
        )
        self.scope = scope
        self.token_scope = token_scope

    def details(self) -> dict[str, Any]:
        return {"scope": self.scope, "token_scope": self.token_scope}


class NotFound(GuardError):
    status = 404
    code = "not_found"


class Conflict(GuardError):
    status = 409
    code = "conflict"

    def __init__(self, message: str, *, state: str | None = None) -> None:
        super().__init__(message)
        self.state = state

    def details(self) -> dict[str, Any]:
        return {"state": self.state} if self.state else {}


class BudgetExceeded(GuardError):
    """A reservation the budgets cannot take (402). ``resets_at``: when the named window
    resets (ISO 8601 with the namespace's offset; None for ``total``), said in the message
    with ``zone``'s name and how long from ``now`` (:mod:`guards.budget_words`).
    ``wait_until``: when waiting for resets lets the call through at every level in the
    way, the latest ``resets_at`` of the level's and its ``also``'s (None: it does not, one
    is ``total`` or the call asks more than one's whole limit; review28 R5 M1)."""

    status = 402
    code = "budget_exceeded"

    def __init__(
        self,
        *,
        level: str,
        scope: str,
        window: str,
        limit_micros: int,
        spent_micros: int,
        held_micros: int,
        requested_micros: int,
        also: list[dict[str, Any]] | None = None,
        books_full: bool = False,
        model: str | None = None,
        resets_at: str | None = None,
        zone: ZoneInfo | None = None,
        now: float | None = None,
    ) -> None:
        from guards.budget_words import refusal_message, reset_wait

        super().__init__(
            refusal_message(
                level=level,
                scope=scope,
                window=window,
                figures=(limit_micros, spent_micros, held_micros, requested_micros),
                also=also or [],
                books_full=books_full,
                model=model,
                resets=(resets_at, zone, now),
            )
        )
        self.also = list(also or ())
        self.books_full = books_full
        self.model = model
        self.level = level
        self.scope = scope
        self.window = window
        self.limit_micros = limit_micros
        self.spent_micros = spent_micros
        self.held_micros = held_micros
        self.requested_micros = requested_micros
        self.resets_at = resets_at
        wait = reset_wait(
            window=window,
            resets_at=resets_at,
            limit=limit_micros,
            asked=requested_micros,
            also=self.also,
        )
        self.wait_until = wait[0] if wait is not None and not books_full else None

    def facts(self) -> dict[str, Any]:
        """The refusal's figures, as its ``budget_exhausted`` event records them."""
        return {
            "level": self.level,
            "scope": self.scope,
            "window": self.window,
            "limit_micros": self.limit_micros,
            "spent_micros": self.spent_micros,
            "held_micros": self.held_micros,
            "requested_micros": self.requested_micros,
            **({"also": self.also} if self.also else {}),
            **({"books_full": True} if self.books_full else {}),
            **({"model": self.model} if self.model is not None else {}),
        }

    def details(self) -> dict[str, Any]:
        return {**self.facts(), "resets_at": self.resets_at, "wait_until": self.wait_until}


class BreakerOpen(GuardError):
    status = 503
    code = "breaker_open"

    def __init__(self, *, scope: str, state: str, reason: str, retry_after: int) -> None:
        if state == "forced_open":  # a kill switch: no timer, an operator's close undoes it
            what_to_do = f"it stays open until an operator runs /agent breaker {scope} close"
        elif state == "half_open":  # its trial runs: its calls decide, nobody is to approve
            what_to_do = (
                "its trial's calls decide (it closes once they all succeed, opens again if"
                f" one fails); no operator is needed: retry after {retry_after}s"
            )
        else:
            what_to_do = (
                f"retry after {retry_after}s or ask an operator: /agent breaker {scope} approve"
            )
        super().__init__(
            f"the breaker for {scope} is {state.replace('_', ' ')} ({reason}); {what_to_do}"
        )
        self.scope = scope
        self.state = state
        self.reason = reason
        self.retry_after = retry_after

    def details(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "state": self.state,
            "reason": self.reason,
            "retry_after": self.retry_after,
        }


class AttemptsExhausted(GuardError):
    status = 429
    code = "attempts_exhausted"

    def __init__(self, *, scope: str, task_id: str, attempts: int, limit: int) -> None:
        super().__init__(
            f"task {task_id} of {scope} has used {attempts} of {limit} attempts; "
            f"give up on it or start a new task"
        )
        self.scope = scope
        self.task_id = task_id
        self.attempts = attempts
        self.limit = limit

    def details(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "task_id": self.task_id,
            "attempts": self.attempts,
            "limit": self.limit,
        }


class StorageUnavailable(GuardError):
    """The database refused a whole write batch (the disk is full, another process held
    the write lock too long, an I/O error): nothing of the request was written, so it is
    safe to send again. The store makes one for each caller, never sharing one object."""

    status = 503
    code = "storage_unavailable"
    retry_after = 5

    def __init__(self, cause: str) -> None:
        self.cause = cause  # SQLite's reason alone, for the operator's own command line
        super().__init__(
            f"the database could not take this write ({cause}); nothing was changed:"
            f" send it again in a few seconds (the operator is told in the log)"
        )


class Unavailable(GuardError):
    """Raised by :mod:`guards.client` (never by the server): no answer after its retries.

    ``maybe_sent`` is False when no attempt reached the server (the connection was
    refused) or the server said nothing was written (``503 storage_unavailable`` or
    ``503 policy_refused``), True when one may have (it went unanswered): the change may
    be done. ``answered``: the last try got one of Nightshift's own 503s that write
    nothing (it runs; its database refused the write, or a reload's restart waits for its
    policy file to be fixed); a proxy's 502/503/504 is not that (is Nightshift running?).
    ``slow``: the last try connected and timed out waiting for the answer. ``dropped``:
    the last try connected and the connection was closed before an answer came (the
    server, or a proxy before it, ran it and went away: the change may be done).
    """

    status = 503
    code = "unavailable"

    def __init__(
        self,
        *,
        url: str,
        attempts: int,
        cause: str,
        maybe_sent: bool,
        answered: bool = False,
        slow: bool = False,
        dropped: bool = False,
    ) -> None:
        tried = f"({plural(attempts, 'attempt')}; the last: {cause})"
        if answered:
            said = f"could not take the request {tried}; try again later (its log says why)"
        elif slow:  # connected, and no answer in time: it (or a proxy before it) is slow
            said = (
                f"did not answer in time {tried}; it, or a proxy before it, is slow: look at"
                " its log, or give the client a longer timeout"
            )
        elif dropped:  # it was reached: "is it running?" would send the reader the wrong way
            said = (
                f"closed the connection before answering {tried}: the request reached it"
                " (or a proxy before it) and may have been done; look at its log"
            )
        else:
            said = f"did not answer {tried}; is it running, and is that its URL?"
        super().__init__(f"Nightshift at {url} {said}")
        self.url = url
        self.attempts = attempts
        self.maybe_sent = maybe_sent
        self.answered = answered
        self.dropped = dropped
