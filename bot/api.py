"""The agent API over aiohttp: translation between HTTP and the guard engine, nothing more.

Handlers parse a pydantic body (:func:`bot.api_body.read_json`), run one engine
operation inside ``store.write`` (so authentication, the decision and its record share
one transaction), and render the answer. GuardErrors become JSON errors in one place:
:func:`errors_middleware`.
Feature endpoints live in ``bot/api_<feature>.py`` modules listed in ``FEATURE_ROUTES``.
Three modules named alike are helpers of this one, not listed: ``bot/api_body.py``
(reading a request's token and body), ``bot/api_ledger_bodies.py`` (the reservation
calls' bodies) and ``bot/api_budget_day.py`` (a past day's answer, called by
:func:`get_budget` for ``GET /v1/budgets/{scope}?day=…``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import math
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

import guards.store
from bot.api_body import (
    AGENT_CALL,
    MAX_BODY,
    agent_call,
    agent_token,
    answered_unread,
    bearer,
    check_headers,
    read_json,
    read_no_body,
    watch_unread,
)
from bot.api_budget_day import budget_of_day, day_asked
from bot.api_budget_resets import with_resets
from bot.api_ledger_bodies import ReserveBody, SettleBody
from bot.logs import Throttle
from guards.breaker_said import quoted_error
from guards.client_types import ReservationAnswer
from guards.errors import AuthError, GuardError, InvalidInput, StorageUnavailable, said
from guards.ledger import Estimate, ReserveRequest, SettleRequest
from guards.scopes import Scope, ScopeError
from guards.tokens import AgentTokenRequired, authenticate, authorize

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["CTX", "build_web_app", "json_answer", "parse_scope", "routes", "unavailable"]

log = logging.getLogger(__name__)
CTX: web.AppKey[Nightshift] = web.AppKey("nightshift")
# /healthz answers by then when its write is not done (bot.write_probe tells a held lock,
# a 503, from a slow disk, a 200): within the 1 s timeout of a Kubernetes probe, not
# after the 8 s a locked database's writes wait (audit28 L2)
HEALTH_SECONDS = 0.8
STATE_SECONDS = 2.0  # /metrics' reads of the engine's state, at most (else the last values)
_STATE_ERRORS = Throttle()
routes = web.RouteTableDef()

# Feature modules, each exposing ``routes = web.RouteTableDef()``.
FEATURE_ROUTES: list[str] = [
    "bot.api_routing",
    "bot.api_breakers",
    "bot.api_heartbeats",
    "bot.api_validation",
    "bot.api_alerts",
    "bot.api_silences",
]


_JSON = {"Content-Type": "application/json; charset=utf-8"}


def json_answer(data: Any, *, status: int = 200) -> web.Response:
    """A JSON response (what ``web.json_response`` makes, for a little less work)."""
    return web.Response(body=json.dumps(data).encode(), status=status, headers=_JSON)


async def _token_refusal(request: web.Request) -> GuardError | None:
    """The refusal of the request's token when it is missing, unknown or revoked, or an
    operator's on an agent's call (:func:`bot.api_body.agent_call`)."""
    ns = request.app.get(CTX)
    if ns is None:
        return None
    raw = bearer(request)
    what = request.get(AGENT_CALL)
    try:
        await ns.store.write(
            lambda tx: authenticate(tx, raw) if what is None else agent_token(tx, raw, what=what)
        )
    except (AuthError, AgentTokenRequired) as refused:
        return refused
    return None


def parse_scope(value: str, *, field: str = "scope", min_depth: int = 1) -> Scope:
    try:
        return Scope.parse(value, min_depth=min_depth)
    except ScopeError as exc:
        raise InvalidInput(field, f"{field}: {exc}") from None


def error_response(exc: GuardError) -> web.Response:
    body = {"error": exc.code, "message": exc.message, **exc.details()}
    headers = dict(_JSON)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if exc.status == 401:  # RFC 9110: a 401 says which scheme it wants
        headers["WWW-Authenticate"] = 'Bearer realm="nightshift"'
    return web.Response(body=json.dumps(body).encode(), status=exc.status, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as JSON: GuardErrors with their status, the rest as 500."""
    started = time.perf_counter()
    status = 500
    try:
        check_headers(request)
        response = await handler(request)
        status = response.status
        return response
    except GuardError as exc:
        if (
            exc.status in (400, 413, 415)
            and request.path.startswith("/v1/")
            and not exc.token_checked
        ):
            # Input is checked before the token is (in the operation's transaction): a
            # bad token must not learn what the API checks, so it gets its 401 instead.
            exc = await _token_refusal(request) or exc
        status = exc.status
        return error_response(exc)
    except web.HTTPException as exc:
        status = exc.status
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
            exc.status, "http_error"
        )
        message = f"{exc.reason}: {request.method} {request.path[:200]} is not part of the API"
        if exc.status == 413:  # (aiohttp's own limit, before a handler reads the body)
            message = f"{exc.reason}: the body is larger than {MAX_BODY} bytes; send less"
        if exc.status == 404 and ("//" in request.path or request.path.endswith("/")):
            message += " (no path here has '//' or a trailing '/': does the base URL end in '/'?)"
        if isinstance(exc, web.HTTPMethodNotAllowed):
            message = (
                f"{exc.reason}: {request.path[:200]} takes {', '.join(sorted(exc.allowed_methods))}"
            )
        response = web.json_response({"error": code, "message": message}, status=exc.status)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return web.json_response(
            {"error": "internal", "message": "internal error; it is logged"}, status=500
        )
    finally:
        answered_unread(request)  # a stop does not wait on the rest of its body
        ns = request.app.get(CTX)
        if ns is not None:
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unmatched"
            ns.metrics.observe_request(name, status, time.perf_counter() - started)


# -- reservations ---------------------------------------------------------------------


@routes.post("/v1/reservations")
async def create_reservation(request: web.Request) -> web.Response:
    ns = request.app[CTX]
    agent_call(request, "POST /v1/reservations")
    try:
        created, answer = await _reserve(ns, request)
    except GuardError as exc:  # every refusal is counted, a malformed body's too
        if exc.status in (400, 413, 415):  # a bad token's 401 (an operator's 403) counts
            exc = await _token_refusal(request) or exc
            exc.token_checked = True  # errors_middleware need not look again
        ns.metrics.reservation(exc.code)
        raise exc from None
    ns.metrics.reservation("granted" if created else "replayed")
    response = json_answer(answer, status=201)
    if not created:  # the same answer again, as Stripe does; the header tells them apart
        response.headers["Idempotent-Replayed"] = "true"
    return response


async def _reserve(ns: Nightshift, request: web.Request) -> tuple[bool, ReservationAnswer]:
    body = await read_json(request, ReserveBody)
    parse_scope(body.scope, min_depth=3)  # a 400 naming `scope` before anything is written
    ns.ledger.check_ttl(body.ttl_seconds)  # one limit and one message, a replay's too
    req = ReserveRequest(
        scope=body.scope,
        idempotency_key=body.idempotency_key,
        max_cost_micros=body.max_cost_micros,
        estimate=Estimate(**body.estimate.model_dump()) if body.estimate else None,
        task_id=body.task_id,
        ttl_seconds=body.ttl_seconds,
        model=body.model,
        route_id=body.route_id,
    )
    raw = bearer(request)
    return await ns.store.write(
        lambda tx: ns.ledger.reserve(
            tx, token=agent_token(tx, raw, what="POST /v1/reservations"), req=req
        )
    )


@routes.post("/v1/reservations/{id}/settle")
async def settle_reservation(request: web.Request) -> web.Response:
    ns = request.app[CTX]
    what = agent_call(request, "a settle")
    body = await read_json(request, SettleBody)
    req = SettleRequest(
        outcome=body.outcome or "success",
        actual_cost_micros=body.actual_cost_micros,
        usage_model=body.usage.model if body.usage else None,
        input_tokens=body.usage.priced_input() if body.usage else None,
        output_tokens=body.usage.output_tokens if body.usage else None,
        prompt_tokens=body.usage.prompt_tokens() if body.usage else None,
        error=body.error,
    )
    if req.error and req.outcome != "success":  # quoted here, not on the writer (R4 M3)
        quoted_error(req.error)
    raw = bearer(request)
    res_id = request.match_info["id"]
    answer = await ns.store.write(  # (an expired token ends the calls it reserved before)
        lambda tx: ns.ledger.settle(
            tx,
            token=agent_token(tx, raw, what=what, expired_ok=True),
            res_id=res_id,
            req=req,
        )
    )
    return json_answer(answer)


@routes.post("/v1/reservations/{id}/release")
async def release_reservation(request: web.Request) -> web.Response:
    ns = request.app[CTX]
    what = agent_call(request, "a release")
    raw = bearer(request)
    res_id = request.match_info["id"]
    await read_no_body(request, what="a release")
    answer = await ns.store.write(
        lambda tx: ns.ledger.release(
            tx, token=agent_token(tx, raw, what=what, expired_ok=True), res_id=res_id
        )
    )
    return json_answer(answer)


@routes.get("/v1/budgets/{scope:[\\s\\S]+}")  # any character: the scope parser says what is wrong
async def get_budget(request: web.Request) -> web.Response:
    ns = request.app[CTX]
    scope = parse_scope(request.match_info["scope"])
    raw = bearer(request)
    if (day := day_asked(request.query)) is not None:  # a past day's spend, no limits
        answer = await budget_of_day(ns, scope, raw_token=raw, day_text=day, path=request.path)
        return json_answer(answer)

    def read(tx: Any) -> dict[str, Any]:
        token = authenticate(tx, raw)
        authorize(tx, token, scope, path=request.path)
        return ns.ledger.usage_tree(tx, scope)

    return web.json_response(with_resets(await ns.store.write(read)))


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    ns = request.app[CTX]
    probed = await ns.write_health(HEALTH_SECONDS)
    if probed.stuck:  # the writer does not answer: calls wait, they are not refused
        return unavailable(
            f"Nightshift's database takes no write ({probed.refused}): agents' calls that"
            " write wait for it; check the disk"
        )
    if probed.locked:  # (recheck28 Kd L1: its agents' calls wait, they are not refused at once)
        return unavailable(
            f"Nightshift cannot write to its database ({probed.refused}): agents' calls"
            f" that write wait up to {guards.store.LOCK_WAIT_SECONDS:g}s for the lock, then"
            " are refused with 503 until it is released, and nothing is lost"
        )
    if probed.refused is not None:
        return unavailable(  # said to whoever watches it, not to an agent
            f"Nightshift cannot write to its database ({probed.refused}): agents' calls are"
            " refused with 503 until it can, and nothing is lost; its log says why"
        )
    slow = {"slow": probed.slow} if probed.slow is not None else {}  # (a slow disk: R5 M3)
    return web.json_response({"status": "ok", "transport": ns.settings.transport, **slow})


def unavailable(message: str) -> web.Response:
    """``503 {status: unavailable, error: storage_unavailable, message}``, Retry-After 5:
    /healthz's answer while writes are refused, and every answer of a reload's restart
    that waits for the database (bot.cli_run)."""
    body = {"status": "unavailable", "error": StorageUnavailable.code, "message": message}
    return web.json_response(body, status=503, headers={"Retry-After": "5"})


async def _read_state(ns: Nightshift) -> None:
    outbox = ns.extras.get("outbox")
    if outbox is not None:  # what waits, read now (a stuck worker would not say)
        await outbox.refresh_gauges()
    await ns.metrics.refresh_state(ns.store)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    ns = request.app[CTX]
    try:  # a database in trouble must not cost the scrape the series that say so
        await asyncio.wait_for(_read_state(ns), STATE_SECONDS)
    except (sqlite3.Error, TimeoutError) as exc:
        ns.metrics.state_errors.inc()
        if (since := _STATE_ERRORS.let_through("", time.time())) is not None:
            log.warning(
                "/metrics could not read the guard engine's state: %s; its gauges keep the"
                " last values read (said once a minute%s)",
                said(exc),
                since,
            )
    body, content_type = ns.metrics.render()
    return web.Response(body=body, headers={"Content-Type": content_type})


def build_web_app(ns: Nightshift) -> web.Application:
    """The aiohttp application: the agent API plus every feature module's routes."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[errors_middleware])
    app[CTX] = ns
    watch_unread(app)
    app.add_routes(routes)
    for module_name in FEATURE_ROUTES:
        module = importlib.import_module(module_name)
        app.add_routes(module.routes)
    app.add_routes(ns.extra_routes)
    return app
