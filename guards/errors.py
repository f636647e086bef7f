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
    ) -> None:
        from guards.money import usd_for

        remaining = max(0, limit_micros - spent_micros - held_micros)
        period = {"day": "today", "week": "this week", "month": "this month"}.get(
            window, "in total"
        )
        usd = usd_for(spent_micros, held_micros, remaining, requested_micros)
        if requested_micros > limit_micros:
            why = f"asks {usd(requested_micros)}, more than its whole limit of {usd(limit_micros)}"
        else:
            why = (
                f"cannot take {usd(requested_micros)} more: {usd(spent_micros)} spent and"
                f" {usd(held_micros)} held of {usd(limit_micros)}, {usd(remaining)} left"
            )
        # waiting helps only when running calls hold money this call could use
        wait = (
            "wait for running calls to settle, or "
            if held_micros > 0 and requested_micros <= limit_micros - spent_micros
            else ""
        )
        others = "".join(f"; {_over(o, requested_micros)}" for o in also or ())
        if model is not None:  # a namespace's budget for one model (budgets.models)
            super().__init__(
                _model_message(
                    scope, model, window, limit_micros, spent_micros, held_micros, requested_micros
                )
                + others
            )
        elif books_full:  # no limit anyone set: the most Nightshift counts
            super().__init__(
                f"{scope}'s books are full: {usd(spent_micros)} spent and {usd(held_micros)}"
                f" held in all, near the {usd(limit_micros)} Nightshift counts; `/agent holds"
                f" {scope}` shows who holds it (an admin ends holds with `/agent release`)"
            )
        else:
            super().__init__(
                f"budget for {scope} ({level}) {period}: this call {why}; {wait}raise it with"
                f" /agent budget set {scope} <amount> {window}{others}"
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

    def details(self) -> dict[str, Any]:
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


def _model_message(
    namespace: str, model: str, window: str, limit: int, spent: int, held: int, asked: int
) -> str:
    """A 402 of a model's budget: what happened and what to do.

    >>> _model_message("acme", "claude-opus-4-1", "day", 50_000_000, 50_000_000, 0, 10)
    "acme's budget for claude-opus-4-1 is spent for today ($50.00 of $50.00): wait until\
 tomorrow, pick a smaller model, or raise budgets.models.claude-opus-4-1 in the policy and\
 reload it (SIGHUP)"
    """
    from guards.money import usd_for

    period, later = {
        "day": ("for today", "until tomorrow"),
        "week": ("for this week", "until next week"),
        "month": ("for this month", "until next month"),
    }.get(window, ("in total", ""))
    left = max(0, limit - spent - held)
    usd = usd_for(spent, held, left, asked, limit)
    budget = f"{namespace}'s budget for {model}"
    waits = [later] if later else []
    if asked > limit:
        what, waits = f"a call asks {usd(asked)}, more than {budget} {period} ({usd(limit)})", []
    elif spent >= limit:
        what = f"{budget} is spent {period} ({usd(spent)} of {usd(limit)})"
    else:
        what = (
            f"{budget} {period} cannot take {usd(asked)} more ({usd(spent)} spent and"
            f" {usd(held)} held of {usd(limit)}, {usd(left)} left)"
        )
        if held > 0 and asked <= limit - spent:  # running calls hold money it could use
            waits.insert(0, "for running calls to settle")
    turn = f"wait {' or '.join(waits)}, " if waits else ""
    return (
        f"{what}: {turn}pick a smaller model, or raise budgets.models.{model} in the policy"
        " and reload it (SIGHUP)"  # nobody sets a model's limit in Slack (review23 L5)
    )


def _over(level: dict[str, Any], requested: int) -> str:
    """Another level in the way, in a 402's message: ``also acme (namespace) today:
    $1.00 short``."""
    from guards.money import format_usd

    period = {"day": "today", "week": "this week", "month": "this month"}.get(
        str(level.get("window")), "in total"
    )
    short = (
        int(level["spent_micros"])
        + int(level["held_micros"])
        + requested
        - int(level["limit_micros"])
    )
    if level.get("model"):  # a namespace's budget for one model
        return (
            f"also {level['scope']}'s budget for {level['model']} {period}:"
            f" {format_usd(short, exact=True)} short"
        )
    return (
        f"also {level['scope']} ({level['level']}) {period}: {format_usd(short, exact=True)} short"
    )


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
