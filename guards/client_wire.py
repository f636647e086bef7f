"""What the client sends and how it reads what comes back (for :mod:`guards.client`).

:func:`reservation_body` builds ``POST /v1/reservations``' body; :func:`raise_for`
turns an error answer into the :mod:`guards.errors` exception it stands for, with
its fields; :func:`said` words a transport error that has no text of its own.

Example:
    >>> reservation_body("acme/a/bot", idempotency_key="k1", max_cost_micros=5000)
    {'scope': 'acme/a/bot', 'idempotency_key': 'k1', 'max_cost_micros': 5000}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

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
    said,
)
from guards.reservation import Estimate

__all__ = [
    "NOTHING_WRITTEN",
    "error_code",
    "from_a_proxy",
    "raise_for",
    "reservation_body",
    "said",
]

#: Nightshift's own 503s that wrote nothing and pass by themselves: its database refused
#: the write, or a reload's restart holds the socket while its policy is refused
#: (bot.reload_refused: until an operator fixes the file). Worth sending again.
NOTHING_WRITTEN = ("storage_unavailable", "policy_refused")


_ERRORS: dict[str, type[GuardError]] = {
    "budget_exceeded": BudgetExceeded,
    "breaker_open": BreakerOpen,
    "attempts_exhausted": AttemptsExhausted,
}


_BUDGET_AMOUNTS = ("limit_micros", "spent_micros", "held_micros", "requested_micros")


def _is_level(value: Any) -> bool:
    """Whether a 402's ``also`` entry has what its message needs."""
    return (
        isinstance(value, dict)
        and all(isinstance(value.get(k), str) for k in ("scope", "level", "window"))
        and all(
            isinstance(value.get(k), int) for k in ("limit_micros", "spent_micros", "held_micros")
        )
    )


def _instant(value: Any) -> str | None:
    """A refusal's ``resets_at`` when it is an ISO 8601 instant with an offset, else None
    (an older server's 402 has none)."""
    if not isinstance(value, str):
        return None
    try:
        return value if datetime.fromisoformat(value).tzinfo is not None else None
    except ValueError:
        return None


def _micros(value: Any) -> int:
    """An amount of a refusal's body (0 when a partial body left it out)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def error_code(response: httpx.Response) -> str | None:
    """The ``error`` code of a Nightshift answer; None for anything else (a proxy's page)."""
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def from_a_proxy(response: httpx.Response) -> bool:
    """A 502, 503 or 504 worth trying again: one Nightshift did not write (its errors
    are JSON with a code), from a proxy in front of it while it restarts, or one of its
    own :data:`NOTHING_WRITTEN` (``storage_unavailable``: the database refused the write;
    ``policy_refused``: a reload's restart waits for its policy file to be fixed)."""
    if response.status_code not in (502, 503, 504):
        return False
    return error_code(response) in (None, *NOTHING_WRITTEN)


def raise_for(response: httpx.Response) -> None:
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
        amounts = {k: _micros(details.get(k)) for k in _BUDGET_AMOUNTS}
        also = details.get("also")
        refused = BudgetExceeded(
            level=str(details.get("level", "")),
            scope=str(details.get("scope", "")),
            window=str(details.get("window", "")),
            limit_micros=amounts["limit_micros"],
            spent_micros=amounts["spent_micros"],
            held_micros=amounts["held_micros"],
            requested_micros=amounts["requested_micros"],
            also=[o for o in also if _is_level(o)] if isinstance(also, list) else None,
            books_full=details.get("books_full") is True,
            model=model if isinstance(model := details.get("model"), str) else None,
            resets_at=_instant(details.get("resets_at")),
        )
        if isinstance(message, str) and message:  # the server's words: its zone's name and
            refused.message, refused.args = message, (message,)  # "(in 3h 12m)" (Kd L4)
        raise refused
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
    other = GuardError(f"{status} {code}: {message}")
    other.status, other.code = status, code or "http_error"  # what came, not a made-up 500
    raise other


def reservation_body(
    scope: str,
    *,
    idempotency_key: str,
    max_cost_micros: int | None = None,
    estimate: Estimate | None = None,
    task_id: str | None = None,
    ttl_seconds: int | None = None,
    model: str | None = None,
    route_id: str | None = None,
) -> dict[str, Any]:
    """The body of ``POST /v1/reservations``, with only the fields given."""
    body: dict[str, Any] = {"scope": scope, "idempotency_key": idempotency_key}
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
    return body
