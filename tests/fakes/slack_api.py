"""A fake Slack Web API on 127.0.0.1 (bolt-python's mock_web_api_server, as an aiohttp app).

Point the real ``AsyncWebClient`` at ``fake.url`` (``SLACK_API_URL``). It answers the
methods Nightshift uses, records every call, keeps the messages' current content,
and can misbehave on purpose:

    fake.fail("chat.postMessage", status=429, retry_after=1)      # the next call only
    fake.fail("chat.postMessage", status=503, times=3)
    fake.rate_limit_per_channel = True                             # >1 msg/s → 429

Like Slack, it refuses messages past Slack's limits (:mod:`tests.fakes.block_kit`):
``chat.postMessage``, ``chat.update`` and ``chat.postEphemeral`` answer
``invalid_blocks`` (with Slack's ``response_metadata.messages``), ``msg_too_long``
or ``msg_blocks_too_long``; ``views.*`` answer ``invalid_arguments``; the
response_url answers ``400 invalid_blocks``. Every refusal is also kept in
``fake.rejections``; the ``fake_slack`` fixture fails a test that leaves one
there (a test that provokes them on purpose clears the list).

Socket Mode: ``apps.connections.open`` hands out ``ws://.../socket``; the test sends
envelopes with :meth:`FakeSlack.send_envelope` and reads the app's answer with
:meth:`FakeSlack.envelope_reply`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.fakes.block_kit import MESSAGE_METHODS, message_errors, view_errors

__all__ = [
    "APP_TOKEN",
    "BOT_TOKEN",
    "Call",
    "FakeSlack",
    "Rejection",
    "message_errors",
    "view_errors",
]

BOT_TOKEN = "xoxb-test-bot-token"
APP_TOKEN = "xapp-test-app-token"
TEAM = "T0NIGHT"
BOT_USER = "U0BOT"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    status: int
    at: float = field(default_factory=time.monotonic)
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))


@dataclass
class Rejection:
    """A message Slack would refuse: where it went, the error code and Slack's messages."""

    method: str
    error: str
    messages: list[str]
    args: dict[str, Any]


@dataclass
class _Fault:
    status: int
    retry_after: int | None
    error: str
    times: int


class FakeSlack:
    """The fake server; ``await start()`` / ``await stop()`` (the fixture does both)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.groups: dict[str, list[str]] = {}
        self.users: dict[str, dict[str, Any]] = {}  # users.info: {"deleted": True} = left
        self.unknown_users: set[str] = set()  # users.info answers user_not_found
        self.uploads: dict[str, bytes] = {}
        self.responses: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.views: list[dict[str, Any]] = []
        self.rate_limit_per_channel = False
        self.check_tokens = True
        # auth.test's answer over its defaults (a None value leaves the key out): an
        # org-wide install is {"is_enterprise_install": True, "enterprise_id": "E0…"}
        self.auth_test: dict[str, Any] = {}
        self._faults: dict[str, list[_Fault]] = defaultdict(list)
        self._last_post: dict[str, float] = {}
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._changed = asyncio.Event()
        self._ws: web.WebSocketResponse | None = None
        self.socket_connected = asyncio.Event()
        self.socket_connections = 0
        self._envelope_replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.rejections: list[Rejection] = []
        # channel (or user) id -> the error every chat.* call to it answers (an archived
        # channel: is_archived; a deleted user: user_not_found), until taken out
        self.refuse: dict[str, str] = {}
        # method -> the event its calls wait for before they are answered (a stalled Slack)
        self._stalls: dict[str, asyncio.Event] = {}
        self.stalled = asyncio.Event()  # set when a call first waits on a stall

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{name}", self._response)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = getattr(site, "_server", None)
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for stall in self._stalls.values():  # the held calls are answered, then the server goes
            stall.set()
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The Web API base URL (``SLACK_API_URL``); ends with '/' as slack_sdk wants."""
        return f"{self.root}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.root}/response/{name}"

    # -- misbehaviour -----------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        error: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error."""
        default = "ratelimited" if status == 429 else "service_unavailable"
        self._faults[method].append(_Fault(status, retry_after, error or default, times))

    def stall(self, method: str) -> None:
        """Hold every call of ``method`` unanswered until :meth:`stop` (a Slack that takes
        the connection and says nothing)."""
        self._stalls[method] = asyncio.Event()

    def heal(self) -> None:
        self._faults.clear()
        self.refuse.clear()

    def forget(self, channel: str, ts: str) -> None:
        """Delete a message, as a person tidying the channel would: its chat.update
        answers ``message_not_found``."""
        self.messages.pop((channel, ts), None)

    # -- reading what happened -----------------------------------------------------------

    def calls_of(self, method: str, *, ok: bool | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def posts(self, channel: str | None = None) -> list[Call]:
        """Successful chat.postMessage calls (to ``channel``)."""
        return [
            c
            for c in self.calls_of("chat.postMessage", ok=True)
            if channel is None or c.args.get("channel") == channel
        ]

    def texts(self, channel: str | None = None) -> list[str]:
        return [str(c.args.get("text") or "") for c in self.posts(channel)]

    async def wait_for(self, predicate: Any, within: float = 5.0) -> None:
        """Wait until ``predicate()`` is true (re-checked on every call received)."""
        deadline = time.monotonic() + within
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; calls: {[c.method for c in self.calls]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.1))

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._changed.set()

    # -- Web API ------------------------------------------------------------------------

    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        raw = await request.read()
        if raw:
            if request.content_type == "application/json":
                args.update(json.loads(raw))
            else:
                args.update(dict(parse_qsl(raw.decode())))
        for key in ("blocks", "view", "files"):
            if isinstance(args.get(key), str) and args[key].startswith(("[", "{")):
                args[key] = json.loads(args[key])
        return args

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        token = token or str(args.get("token") or "")
        wanted = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        if self.check_tokens and token != wanted:
            return self._answer(method, args, {"ok": False, "error": "invalid_auth"})
        if method in self._stalls:
            self.stalled.set()
            await self._stalls[method].wait()
        faults = self._faults.get(method)
        if faults:
            fault = faults[0]
            fault.times -= 1
            if fault.times <= 0:
                faults.pop(0)
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            return self._answer(
                method,
                args,
                {"ok": False, "error": fault.error},
                status=fault.status,
                headers=headers,
            )
        channel = str(args.get("channel") or "")
        if method == "chat.postMessage" and self.rate_limit_per_channel:
            last = self._last_post.get(channel)
            if last is not None and time.monotonic() - last < 1.0:
                body = {"ok": False, "error": "ratelimited"}
                return self._answer(method, args, body, status=429, headers={"Retry-After": "1"})
        if method.startswith("chat.") and channel in self.refuse:
            return self._answer(method, args, {"ok": False, "error": self.refuse[channel]})
        refused = self._refusal(method, args)
        if refused is not None:
            return self._answer(method, args, refused)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        body = handler(args) if handler else {"ok": False, "error": "unknown_method"}
        if method == "chat.postMessage" and body.get("ok"):
            self._last_post[channel] = time.monotonic()
        return self._answer(method, args, body)

    # -- Slack's limits -------------------------------------------------------------------

    def _reject(
        self, method: str, error: str, messages: list[str], args: dict[str, Any]
    ) -> Rejection:
        rejection = Rejection(method, error, messages, args)
        self.rejections.append(rejection)
        return rejection

    def _refusal(self, method: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """Slack's answer to a message or view past its limits (recorded), or None."""
        if method in MESSAGE_METHODS:
            found = message_errors(args)
            if found is None:
                return None
            error, messages = found
        elif method.startswith("views."):
            messages = view_errors(args.get("view"))
            if not messages:
                return None
            error = "invalid_arguments"
        else:
            return None
        self._reject(method, error, messages, args)
        return {"ok": False, "error": error, "response_metadata": {"messages": messages}}

    def check_reply(self, kind: str, payload: dict[str, Any]) -> Rejection | None:
        """Check a reply Slack reads from an answer (a slash command's ack, a response_url).

        Returns (and records) the rejection when Slack would refuse it. Slack applies the
        message limits there too, except the undocumented total of block text.
        """
        found = message_errors(payload)
        if found is None or found[0] == "msg_blocks_too_long":
            return None
        return self._reject(kind, found[0], found[1], payload)

    def _answer(
        self,
        method: str,
        args: dict[str, Any],
        body: dict[str, Any],
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self._record(Call(method, args, status, response=body))
        return web.json_response(body, status=status, headers=headers)

    def _next_ts(self) -> str:
        n = next(self._ts)
        return f"{1767225600 + n}.{n:06d}"

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        answer = {
            "ok": True,
            "url": "https://nightshift-test.slack.com/",
            "team": "Nightshift",
            "team_id": TEAM,
            "user": "nightshift",
            "user_id": BOT_USER,
            "bot_id": "B0BOT",
            **self.auth_test,
        }
        return {key: value for key, value in answer.items() if value is not None}

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        message = {"ts": ts, "text": args.get("text"), "blocks": args.get("blocks") or []}
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (str(args.get("channel") or ""), str(args.get("ts") or ""))
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        self.messages[key] = {
            "ts": key[1],
            "text": args.get("text"),
            "blocks": args.get("blocks") or [],
        }
        return {"ok": True, "channel": key[0], "ts": key[1], "text": args.get("text")}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel") or not args.get("user"):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view = dict(args.get("view") or {})
        view["id"] = f"V{len(self.views) + 1:04d}"
        self.views.append(view)
        return {"ok": True, "view": view}

    def _m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = str(args.get("users") or "")
        return {"ok": True, "channel": {"id": "D" + users.split(",")[0]}}

    def _m_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = str(args.get("usergroup") or "")
        if group not in self.groups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": self.groups[group]}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user") or "")
        if user in self.unknown_users:
            return {"ok": False, "error": "user_not_found"}
        info = self.users.get(user, {"name": user.lower(), "real_name": user, "tz": "UTC"})
        return {"ok": True, "user": {"id": user, **info}}

    def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ts):06d}"
        return {"ok": True, "upload_url": f"{self.root}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files") or []
        missing = [f["id"] for f in files if f.get("id") not in self.uploads]
        if missing:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}

    def _m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        self.uploads[file_id] = await request.read()
        self._record(Call("upload", {"file_id": file_id}, 200, response={"ok": True}))
        return web.Response(text=f"OK - {len(self.uploads[file_id])}", content_type="text/plain")

    async def _response(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        payload = json.loads(await request.read() or b"{}")
        rejected = self.check_reply("response_url", payload)
        if rejected is not None:  # Slack answers a refused response_url post with a 400
            body = {"ok": False, "error": rejected.error}
            self._record(Call("response_url", {"name": name, **payload}, 400, response=body))
            return web.Response(status=400, text=rejected.error, content_type="text/plain")
        self.responses[name].append(payload)
        self._record(Call("response_url", {"name": name, **payload}, 200, response={"ok": True}))
        return web.Response(text="ok", content_type="text/plain")

    # -- Socket Mode ---------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._ws = ws
        self.socket_connections += 1
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0"}}
        )
        self.socket_connected.set()
        # A socket dropped under it (TicketSlack.drop) ends the handler quietly, as on
        # Slack's side: aiohttp's pong to a ping read just before the drop raises
        # ClientConnectionResetError, which aiohttp.server logs at ERROR (and tests count
        # the ERRORs a Socket Mode outage logs)
        with contextlib.suppress(ConnectionResetError):
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                ack = data.get("payload")
                if isinstance(ack, dict) and ("blocks" in ack or "text" in ack):
                    self.check_reply("ack", ack)
                future = self._envelope_replies.get(str(data.get("envelope_id")))
                if future is not None and not future.done():
                    future.set_result(data)
        return ws

    async def send_envelope(
        self, kind: str, payload: dict[str, Any], *, again: str | None = None
    ) -> str:
        """Push one Socket Mode envelope (``slash_commands``, ``interactive``) to the app;
        ``again``: the id of one sent before, sent again as Slack retries it."""
        if self._ws is None:
            raise AssertionError("no Socket Mode connection")
        envelope_id = again or str(uuid.uuid4())
        self._envelope_replies[envelope_id] = asyncio.get_running_loop().create_future()
        await self._ws.send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": True,
                "retry_attempt": 1 if again else 0,
                "retry_reason": "timeout" if again else "",
            }
        )
        return envelope_id

    async def envelope_reply(self, envelope_id: str, within: float = 5.0) -> dict[str, Any]:
        """The app's acknowledgement of an envelope (with its payload, if any)."""
        return await asyncio.wait_for(self._envelope_replies[envelope_id], within)
