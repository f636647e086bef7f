"""HTTP mode: ``POST /slack/events`` on the agent API's aiohttp server.

Every request is verified first, on its raw bytes: the signature with the signing
secret and a timestamp within five minutes (``SignatureVerifier``, what Bolt uses).
Anything else is a ``401`` that reaches no handler, whatever its body holds. A
verified request is carried into the Bolt app (bolt's own aiohttp adapter) and its
answer back; a verified body that does not parse is a ``400``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier

from bot.api_body import BodyTimeout, read_body
from bot.logs import Throttle
from bot.slack.client import check_at_start
from bot.slack.surface import SlackSurface

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["EVENTS_PATH", "HttpTransport"]

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
MAX_SKEW_SECONDS = 300  # what SignatureVerifier allows between a request's time and ours


_OBJECTS = ("user", "channel", "container", "message", "view", "event")
_TEXTS = ("type", "response_url", "trigger_id", "token", "callback_id", "api_app_id")


def malformed(body: Any) -> str | None:
    """What is wrong with a parsed request body that Slack would never send, or None.

    Only the fields Bolt and the handlers read are checked (an object where one is
    read as an object, text where text is read), so that a signed but odd body is a
    400 rather than a 500 with a traceback.

    >>> malformed({"type": "block_actions", "actions": [{"action_id": "x"}]}) is None
    True
    >>> malformed({"type": "block_actions", "actions": ["x"]})
    'actions must be a list of objects with an action_id'
    """
    if not isinstance(body, dict):
        return "the payload is not an object"
    for key in _OBJECTS:
        if body.get(key) is not None and not isinstance(body[key], dict):
            return f"{key} must be an object"
    for key in _TEXTS:
        if body.get(key) is not None and not isinstance(body[key], str):
            return f"{key} must be text"
    authorizations = body.get("authorizations")
    if authorizations is not None and not (
        isinstance(authorizations, list) and all(isinstance(a, dict) for a in authorizations)
    ):
        return "authorizations must be a list of objects"
    actions = body.get("actions")
    if actions is not None and (
        not isinstance(actions, list)
        or not actions
        or not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions)
    ):
        return "actions must be a list of objects with an action_id"
    view = body.get("view")
    if isinstance(view, dict):
        for key in ("id", "callback_id", "private_metadata"):
            if view.get(key) is not None and not isinstance(view[key], str):
                return f"view.{key} must be text"
        state = view.get("state")
        if state is not None and not isinstance(state, dict):
            return "view.state must be an object"
        values = (state or {}).get("values")
        if values is not None and not (
            isinstance(values, dict)
            and all(
                isinstance(block, dict) and all(isinstance(e, dict) for e in block.values())
                for block in values.values()
            )
        ):
            return "view.state.values must map block ids to objects of elements"
    return None


class HttpTransport:
    """A component: adds the Slack route before the server starts."""

    def __init__(self, surface: SlackSurface, *, signing_secret: str) -> None:
        self.surface = surface
        self.verifier = SignatureVerifier(signing_secret)
        self._refusals = Throttle()
        self._token_check: asyncio.Task[None] | None = None

    async def check_first(self, ns: Nightshift) -> None:
        """Before the database is opened (bot.app.ChecksFirst): a first start awaits
        Slack's word on the token; a reload's restart asks beside the server (start)."""
        if not ns.reloaded:
            await check_at_start(self.surface.client, reloaded=False)

    async def start(self, ns: Nightshift) -> None:
        if ns.reloaded:
            self._token_check = await check_at_start(self.surface.client, reloaded=True)
        ns.extras["slack"] = self.surface
        ns.extra_routes.append(web.post(EVENTS_PATH, self.handle))

    def _say_refused(self, request: web.Request) -> None:
        """A request that carries Slack's signature but does not verify: every command and
        button fails for everyone, so say why (once a minute). Unsigned ones are the
        internet's noise: not said."""
        signature = request.headers.get("X-Slack-Signature")
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not signature or not stamp:
            return
        now = time.time()
        try:
            off = now - float(stamp)
        except ValueError:
            off = 0.0
        if math.isfinite(off) and abs(off) > MAX_SKEW_SECONDS:
            kind = "clock"
            why = (
                f"signed {abs(off):.0f}s {'before' if off > 0 else 'after'} this machine's"
                " time: Slack refuses more than five minutes; check the clock (NTP)"
            )
        else:
            kind = "secret"
            why = (
                "its signature does not match SLACK_SIGNING_SECRET: check it (the app's Basic"
                " Information, Signing Secret; not the bot token), or someone forges requests"
            )
        since = self._refusals.let_through(kind, now)
        if since is not None:
            log.warning(
                "refused a request to %s as not Slack's (answered 401): %s (said once a minute%s)",
                EVENTS_PATH,
                why,
                since,
            )

    async def handle(self, request: web.Request) -> web.Response:
        try:  # read here, before Bolt, under the API's deadline for a body
            body = await read_body(request)
        except ConnectionResetError:  # the client went away: an answer nobody receives
            return web.json_response(
                {"error": "invalid_body", "message": "the connection closed before the body"},
                status=400,
            )
        except BodyTimeout as exc:  # the connection is closed once this is sent
            return web.json_response({"error": exc.code, "message": exc.message}, status=exc.status)
        try:
            verified = self.verifier.is_valid_request(body, dict(request.headers))
        except (ValueError, OverflowError):  # a timestamp that is not a number of seconds
            verified = False
        if not verified:
            self._say_refused(request)
            return web.json_response(
                {"error": "invalid_request", "message": "not signed by Slack (or too old)"},
                status=401,
            )
        try:
            text = body.decode("utf-8")
            wrong = malformed(parse_body(text, request.headers.get("Content-Type")))
        except (ValueError, RecursionError) as exc:  # JSON, form or UTF-8 that does not parse
            log.warning("a signed Slack request did not parse: %s", exc)
            return web.json_response(
                {"error": "invalid_body", "message": "the request body does not parse"},
                status=400,
            )
        if wrong is None:
            try:  # Bolt reads its context (team, enterprise, ...) from the body here
                bolt_request = AsyncBoltRequest(
                    body=text, query=request.query_string, headers=dict(request.headers)
                )
            except (AttributeError, TypeError, KeyError, IndexError) as exc:
                wrong = f"{type(exc).__name__}: {exc}"
        if wrong is not None:  # signed, but not a shape Slack sends: reach no handler
            log.warning("a signed Slack request has the wrong shape: %s", wrong)
            return web.json_response(
                {"error": "invalid_body", "message": f"the request body is malformed: {wrong}"},
                status=400,
            )
        bolt_response = await self.surface.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def stop(self, ns: Nightshift) -> None:
        if self._token_check is not None:
            self._token_check.cancel()
        await self.surface.close()
