"""Reading an agent's request: its bearer token and its JSON body, checked strictly.

A body is one JSON object of at most :data:`MAX_BODY` bytes, each field once, no NaN
or Infinity, validated by a pydantic model (:class:`Body`: unknown fields refused); any
problem is a 400 naming the field. Text only shown to people (:data:`FreeText`) keeps
what a client cut inside a character.

Example:
    >>> # body = await read_json(request, ReserveBody)
"""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from bot.alerts.render_time import duration
from bot.escape import mask_secrets
from guards.errors import AuthError, GuardError, InvalidInput
from guards.store import Tx
from guards.tokens import MISSING_TOKEN, Token, authenticate, require_agent

__all__ = [
    "AGENT_CALL",
    "BODY_SECONDS",
    "MAX_BODY",
    "Body",
    "BodyTimeout",
    "BodyTooLarge",
    "Encoded",
    "FreeText",
    "agent_call",
    "agent_token",
    "answered_unread",
    "bearer",
    "check_headers",
    "only_query",
    "read_body",
    "read_json",
    "read_no_body",
    "stop_reading_unread",
    "watch_unread",
]

MAX_BODY = 1024 * 1024
# A body that has not all come this long after its headers is given up, and its
# connection closed: as bot.app.IDLE_CONNECTION_SECONDS for a request never finished.
BODY_SECONDS = 75.0
M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_SURROGATE = re.compile("[\ud800-\udfff]")
# Free text longer than this is not read for credentials: every field of it is refused
# for its length (at most 2,000 characters), and a megabyte would hold the event loop.
MASKED_AT_MOST = 8000


def _mend(value: Any) -> Any:
    """Free text cut inside a character keeps the rest: JSON may carry a lone UTF-16
    surrogate (``"\\ud83d"``, what JavaScript's ``slice`` leaves of an emoji); it becomes
    U+FFFD. A settle's error text must not cost the settle. A credential in it (an HTTP
    error that quotes its header) is masked: it would be posted and kept for good."""
    if not isinstance(value, str) or len(value) > MASKED_AT_MOST:  # refused for its length
        return value
    return mask_secrets(_SURROGATE.sub("\ufffd", value))


# A text only shown to people (a settle's ``error``, a heartbeat's ``detail``).
FreeText = Annotated[str | None, BeforeValidator(_mend)]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


class _Repeated(Exception):
    """A JSON object names one field twice (json would keep the last one silently)."""


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields = dict(pairs)
    if len(fields) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Repeated(key)
            seen.add(key)
    return fields


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_once_each)


class _Twice(dict[str, Any]):
    """An object that named ``key`` twice (only while looking for where, after a refusal)."""

    key = ""


def _marked(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    try:
        return _once_each(pairs)
    except _Repeated as exc:
        marked = _Twice(pairs)
        marked.key = str(exc)
        return marked


def _repeated_at(data: Any, path: tuple[str, ...] = ()) -> str | None:
    """The dotted path of the first field given twice (``estimate.model``), or None."""
    if isinstance(data, _Twice):
        return ".".join((*path, data.key))
    if isinstance(data, dict):
        children: Any = data.items()
    elif isinstance(data, list):
        children = enumerate(data)
    else:
        return None
    for name, value in children:
        found = _repeated_at(value, (*path, str(name)))
        if found is not None:
            return found
    return None


class BodyTooLarge(GuardError):
    status = 413
    code = "body_too_large"

    def __init__(self) -> None:
        super().__init__(f"the body is larger than {MAX_BODY} bytes; send less per request")


class BodyTimeout(GuardError):
    status = 408
    code = "body_timeout"

    def __init__(self, *, came: int, expected: int | None) -> None:
        of = f" of {expected}" if expected is not None else ""
        super().__init__(
            f"the body did not all arrive within {duration(BODY_SECONDS)} ({came}{of}"
            " bytes came); send the whole body at once, on a new connection"
        )


async def read_body(request: web.Request) -> bytes:
    """The raw body, or :class:`BodyTimeout` when it has not all come within
    :data:`BODY_SECONDS` (a client that died mid-upload, its socket left half-open):
    the connection is then closed once the 408 is sent, not held for good."""
    if request.content.is_eof():  # all there with the headers (an agent's small call): no timer
        return await request.read()
    try:
        async with asyncio.timeout(BODY_SECONDS):
            return await request.read()
    except TimeoutError:
        _close_after_answer(request)
        raise BodyTimeout(
            came=request.content.total_bytes, expected=request.content_length
        ) from None


#: the requests answered before their body was all read (a 413 on its Content-Length, a
#: 401 before the body): aiohttp reads on, up to 10 s, so the client gets the answer
#: rather than a reset, and a stop used to wait all of its 2.5 s grace on one
UNREAD = web.AppKey("unread_bodies", weakref.WeakValueDictionary[int, web.Request])


def answered_unread(request: web.Request) -> None:
    """Note ``request`` if its body is not all read (errors_middleware, each answer)."""
    if not request.content.is_eof() and UNREAD in request.app:
        request.app[UNREAD][id(request)] = request  # (a request is a mapping: unhashable)


async def stop_reading_unread(app: web.Application) -> None:
    """At a stop (``on_shutdown``, before aiohttp waits on each connection for up to its
    shutdown timeout): end each connection whose answer is out and that only reads on a
    body no handler will read, as aiohttp ends one still busy once that timeout is over.
    One still writing its answer is left to that wait."""
    for request in list(app[UNREAD].values()) if UNREAD in app else ():
        if request.content.is_eof() or getattr(request.protocol, "_request_in_progress", True):
            continue  # (aiohttp has no public word for "answered": its own flag, read safely)
        task: asyncio.Task[None] | None = request.task  # (None once aiohttp is done with it)
        if task is not None:
            task.cancel()  # the connection's task: aiohttp closes its socket


def watch_unread(app: web.Application) -> None:
    """Have ``app``'s stop end the connections :func:`answered_unread` noted."""
    app[UNREAD] = weakref.WeakValueDictionary()
    app.on_shutdown.append(stop_reading_unread)


def _close_after_answer(request: web.Request) -> None:
    """No further request on this connection, and no waiting for the rest of the body
    once the answer is out: aiohttp would read on for up to 10 s (its lingering time),
    and has no public switch for one connection."""
    protocol = request.protocol
    if hasattr(protocol, "_lingering_time"):
        protocol._lingering_time = 0.0
    protocol.close()


class Encoded(GuardError):
    status = 415
    code = "unsupported_encoding"

    def __init__(self, encoding: str) -> None:
        super().__init__(
            f"Content-Encoding {encoding[:40]!r} is not accepted; send the body uncompressed"
        )


def check_headers(request: web.Request) -> None:
    """Refuse what would be read two ways: two tokens, a token without the ``Bearer``
    scheme, or a body that would need decoding (the server never decompresses: a bomb or
    a body mislabelled gzip is not its work)."""
    if not request.path.startswith("/v1/"):
        return
    said = request.headers.getall("Authorization", ())
    if len(said) > 1:
        raise AuthError("two Authorization headers: send one, Authorization: Bearer <token>")
    if said and said[0].partition(" ")[0].lower() != "bearer":  # (not repeated: a secret)
        raise AuthError(
            "the Authorization header is read only as `Bearer <token>`: another scheme, or a"
            " token without `Bearer `, is not read"
        )
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise Encoded(encoding)


async def read_no_body(request: web.Request, *, what: str) -> None:
    """A call that takes no body (``what``, e.g. a release): nothing, ``{}`` or ``null``;
    any field is a 400 naming it, so that what it says is not dropped unread (a release
    that carries ``actual_cost_micros`` would book nothing: audit25 wire M2)."""
    raw = (await _token_then_body(request)).strip()
    if raw in (b"", b"{}", b"null"):
        return
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        data = None
    field = next(iter(data), "body") if isinstance(data, dict) and data else "body"
    raise InvalidInput(
        str(field)[:80],
        f"{what} takes no body (it gave {str(field)[:80]!r}): its whole hold goes back. A call"
        " that spent money is settled: POST /v1/reservations/{id}/settle",
    )


async def _token_then_body(request: web.Request) -> bytes:
    """The raw body of a call that names a token (401 before the body is looked at), at
    most :data:`MAX_BODY` bytes."""
    if bearer(request) is None:
        raise AuthError(MISSING_TOKEN)
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BodyTooLarge()
    try:
        return await read_body(request)
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLarge() from None
    except ConnectionResetError:  # the client went away: a 400 nobody receives, not an error
        raise InvalidInput("body", "the connection closed before the body arrived") from None


def only_query(query: Mapping[str, str], name: str, *, takes: str) -> None:
    """InvalidInput naming any query parameter but ``name``: a mistyped one must not be
    answered as if it were not asked (``?date=`` for ``?day=``: recheck24). ``takes``
    starts the message: ``GET /v1/breakers takes one query parameter, all (1 or 0)``."""
    unknown = sorted(set(query) - {name})
    if unknown:
        raise InvalidInput(unknown[0][:40], f"{takes}, not {unknown[0][:40]!r}")
    single_values(query)


def single_values(query: Mapping[str, str]) -> Mapping[str, str]:
    """Each query parameter's value; one sent twice (``?state=all&state=open``) is a 400
    naming it, as a body field sent twice is: which one was meant is not guessed."""
    values: dict[str, str] = {}
    for name, value in query.items():
        if name in values:
            raise InvalidInput(
                name[:40], f"{name[:40]}: given twice in the query; send each parameter once"
            )
        values[name] = value
    return values


#: what an agent's call is named in a refusal (``POST /v1/heartbeats``), set on the
#: request by :func:`agent_call`: the token check of a refused body looks for it
AGENT_CALL = web.RequestKey("agent_call", str)


def agent_call(request: web.Request, what: str) -> str:
    """Mark ``request`` as an agent's call named ``what``, and return ``what``: when its
    input is refused, an operator's token hears 403 agent_token_required first, as a bad
    token hears its 401 (:func:`bot.api.errors_middleware`)."""
    request[AGENT_CALL] = what
    return what


def agent_token(tx: Tx, raw: str | None, *, what: str, expired_ok: bool = False) -> Token:
    """The request's live token, when it is an agent's: an operator's (``token create
    --operator``) lists, acknowledges and silences alerts and spends, beats and reports
    nothing (403 agent_token_required), so a deploy script's token cannot run up a bill
    or speak for an agent, and an agent's cannot silence its own alerts."""
    return require_agent(authenticate(tx, raw, expired_ok=expired_ok), what=what)


def bearer(request: web.Request) -> str | None:
    """The raw token of ``Authorization: Bearer <token>``, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def read_json(request: web.Request, model: type[M], *, empty_ok: bool = False) -> M:
    """Parse and validate the JSON body; any problem is a 400 naming the field.

    A request without a bearer token is refused (401) before its body is looked at;
    one with a bad token whose input is refused gets its 401 from
    :func:`errors_middleware`. ``empty_ok``: a call whose body is optional reads an
    empty one (nothing but white space, as a chunked request with no body sends) as
    ``{}``.
    """
    raw = await _token_then_body(request)
    if empty_ok and not raw.strip():
        raw = b"{}"
    try:
        data = _DECODER.decode(raw.decode("utf-8-sig") if raw else "null")
    except UnicodeDecodeError:
        raise InvalidInput(
            "body", "the body is not UTF-8: send JSON encoded as UTF-8 (no other charset is read)"
        ) from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):  # Python's own limit, not advice for them
            raise InvalidInput(
                "body",
                "a number in the body is too long (4,300 digits or more): no field takes one",
            ) from None
        raise InvalidInput("body", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput(
            "body", "the body is nested too deeply; send a flat JSON object"
        ) from None
    except _Repeated as exc:  # where it is, for the message: read again, marking it
        marking = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_marked)
        field = (_repeated_at(marking.decode(raw.decode("utf-8-sig"))) or str(exc))[:80]
        raise InvalidInput(field, f"{field}: given twice; send each field once") from None
    if not isinstance(data, dict):
        raise InvalidInput("body", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "this field is required"
        elif err["type"] == "string_unicode":
            msg = "not valid Unicode (a lone surrogate: a string cut inside a character)"
        raise InvalidInput(field, f"{field}: {msg}") from None
