"""Socket Mode envelopes: each acknowledged, each run once, a repeat given the first answer.

Slack sends an envelope again when its acknowledgement did not reach Slack in time
(``retry_attempt`` 1, 2, 3, on this socket or the next one). A command, a button or a form
must not run twice for that (a second override, a second "budget set" DM: socket L2), so the
last :data:`SEEN_ENVELOPES` envelope ids are kept across clients and a repeat is not run.
Slack re-sends precisely when the first acknowledgement was lost, and with it the answer
(for a change, its in-channel announcement): so a repeat within :data:`ANSWER_SECONDS`
is acknowledged with the first one's answer (audit24 L2), later with none. The likeliest
reason it was lost is the process ending in between, so each envelope that runs
something is also recorded on disk before it runs (:mod:`bot.slack.received`): a re-send
after a restart is not run again either (audit28 M1).

Every envelope is acknowledged, also one nothing here handles (an ``events_api`` one, a
``view_closed``, a ``block_suggestion``, a type Slack adds later, a click with no action):
unacknowledged, Slack sends it again and counts the failures (audit24 L1). Bolt answers
those 404 and its adapter acknowledges only a 200; they are not passed to Bolt, which
would log each as a multi-line WARNING (review24 L2).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.slack.http import malformed
from bot.slack.received import (
    ANSWER_SECONDS,
    ARRIVED,
    Answer,
    Earlier,
    Received,
    ack_payload,
    replay,
)
from bot.slack.socket_logs import SDK_LOG
from bot.slack.surface import SlackSurface
from guards.errors import StorageUnavailable

__all__ = ["OnceHandler", "SeenEnvelopes", "ack_payload"]

log = logging.getLogger("bot.slack.socket_mode")
SEEN_ENVELOPES = 1000  # envelope ids kept to know a repeat (Slack retries within minutes)
REPEAT_WAIT_SECONDS = 2.5  # a repeat of one still running waits this long for its answer
# the envelope types Nightshift listens to, and for interactive ones the payload types
# (a click, a form sent): Bolt logs a multi-line "Unhandled request" WARNING for others
# (a view_closed, a block_suggestion, a slash command with none named: review24 L2)
HANDLED = ("slash_commands", "interactive")
INTERACTIVE = ("block_actions", "view_submission")


class SeenEnvelopes:
    """The envelope ids handled lately, and their answers for :data:`ANSWER_SECONDS`.

    >>> async def twice() -> object:
    ...     seen = SeenEnvelopes(now=lambda: 0.0)
    ...     assert seen.begin("E1") is None  # the first time: run it
    ...     seen.answered("E1", {"text": "done"})
    ...     return await seen.begin("E1")  # a repeat: the first answer
    >>> asyncio.run(twice())
    {'text': 'done'}
    """

    def __init__(self, *, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._ids: OrderedDict[str, None] = OrderedDict()
        # by envelope id: when it came and its answer (a future until it is known)
        self._answers: OrderedDict[str, tuple[float, asyncio.Future[Answer]]] = OrderedDict()

    def begin(self, envelope_id: str) -> asyncio.Future[Answer] | None:
        """None the first time an id is seen (remembered from now on); for a repeat, the
        first one's answer, to await (done with None once it is too old to repeat)."""
        now = self._now()
        while self._answers:
            oldest, (began, _) = next(iter(self._answers.items()))
            if now - began <= ANSWER_SECONDS:
                break
            del self._answers[oldest]
        if envelope_id in self._ids:
            kept = self._answers.get(envelope_id)
            if kept is not None:
                return kept[1]
            gone: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
            gone.set_result(None)
            return gone
        self._ids[envelope_id] = None
        if len(self._ids) > SEEN_ENVELOPES:
            dropped, _ = self._ids.popitem(last=False)
            self._answers.pop(dropped, None)
        self._answers[envelope_id] = (now, asyncio.get_running_loop().create_future())
        return None

    def answered(self, envelope_id: str, answer: Answer) -> None:
        """The answer the first acknowledgement of ``envelope_id`` carried."""
        kept = self._answers.get(envelope_id)
        if kept is not None and not kept[1].done():
            kept[1].set_result(answer)


class OnceHandler(AsyncSocketModeHandler):
    """Bolt's handler, but every envelope is acknowledged, and a repeat is not run again."""

    def __init__(
        self,
        surface: SlackSurface,
        *,
        app_token: str,
        seen: SeenEnvelopes,
        ping_seconds: float,
        received: Received | None = None,
    ) -> None:
        super().__init__(
            surface.app,
            app_token,
            logger=SDK_LOG,  # its retries quiet while the watch speaks (audit24 M1)
            web_client=surface.client,
            ping_interval=ping_seconds,
        )
        self.seen = seen
        self.received = received  # on disk: a re-send after a restart (audit28 M1)

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        ARRIVED.set(time.monotonic())  # its handler's ack budget counts from here (R5 M2)
        first = self.seen.begin(req.envelope_id)
        if first is not None:
            try:
                again = await asyncio.wait_for(asyncio.shield(first), REPEAT_WAIT_SECONDS)
            except TimeoutError:  # still running: acknowledged now, its answer follows it
                again = None
            log.info(
                "Slack sent envelope %s again (retry %s, %s): acknowledged%s, not run twice",
                req.envelope_id,
                req.retry_attempt,
                req.retry_reason or "no reason given",
                " with its first answer" if again else "",
            )
            await _ack(client, req, again)
            return
        answer: Answer = None
        recorded = False
        try:
            run, answer, recorded = await self._record(req)
            if run:
                answer = await self._run(req)
        finally:
            self.seen.answered(req.envelope_id, answer)
            await _ack(client, req, answer)
            # after the ack (it is not held up), also when the command raised: its
            # (empty) answer is saved, and a late record is let go of once it lands
            # rather than kept for the process's life (review28 R8 L1)
            if recorded and self.received is not None:
                await self.received.answered(_key(req), answer)

    async def _record(self, req: SocketModeRequest) -> tuple[bool, Answer, bool]:
        """Whether the envelope is to run (else its answer), and whether it is recorded
        on disk as run."""
        unused = _unused(req.type, req.payload)
        if unused is not None:
            log.debug("Slack sent %s: Nightshift has no use for it; acknowledged", unused)
            return False, None, False
        wrong = malformed(req.payload)
        if wrong is not None:
            log.warning(
                "Slack sent %s envelope of the wrong shape (%s): acknowledged, not run",
                _a(req.type),
                wrong,
            )
            return False, None, False
        recorded = False
        if self.received is not None:
            try:
                earlier = await self.received.first(_key(req))
            except StorageUnavailable:  # it runs, unrecorded (received.py)
                earlier = None
            except TimeoutError:  # it runs; its record lands later, and then its answer
                earlier, recorded = None, True
            else:
                recorded = earlier is None
            if earlier is not None:
                return False, self._again(req, earlier), False
        return True, None, recorded

    async def _run(self, req: SocketModeRequest) -> Answer:
        """Bolt's answer to the envelope, as its acknowledgement carries it."""
        response: BoltResponse = await run_async_bolt_app(self.app, req)
        if response.status != 200:  # no listener for it (Bolt says which): acknowledged
            log.debug("Bolt answered %s to envelope %s", response.status, req.envelope_id)
        return ack_payload(response)

    def _again(self, req: SocketModeRequest, earlier: Earlier) -> Answer:
        """A re-send of an envelope the database knows (received before a restart)."""
        assert self.received is not None
        answer = replay(earlier, now=self.received.now(), command=req.type == "slash_commands")
        if earlier.answered:
            log.info(
                "Slack sent envelope %s again (retry %s, %s), first received before a"
                " restart: acknowledged%s, not run twice",
                req.envelope_id,
                req.retry_attempt,
                req.retry_reason or "no reason given",
                " with its first answer" if answer else "",
            )
        else:
            log.warning(
                "Slack sent envelope %s again (retry %s, %s): it reached Nightshift before a"
                " restart and its answer was never sent, so it may have run; not run again"
                " (its sender is told to check /agent audit)",
                req.envelope_id,
                req.retry_attempt,
                req.retry_reason or "no reason given",
            )
        return answer


def _unused(kind: str, payload: Any) -> str | None:
    """What the envelope is, when Nightshift has no listener for it (not passed to Bolt,
    which would log "Unhandled request" for it); None for one to run."""
    if kind not in HANDLED:
        return f"{_a(repr(kind))} envelope"
    if not isinstance(payload, dict):
        return None  # the wrong shape: said as such
    if kind == "slash_commands" and not payload.get("command"):
        return "a slash command naming no command"
    if kind == "interactive" and payload.get("type") not in INTERACTIVE:
        return f"an interactive {str(payload.get('type'))[:40]!r} envelope"
    if payload.get("actions") == []:
        return "a click with no action"
    return None


def _a(word: str) -> str:
    """``an interactive``, ``a slash_commands``: the article by the word (review24 L3).

    >>> _a("interactive"), _a("'events_api'"), _a("slash_commands")
    ('an interactive', "an 'events_api'", 'a slash_commands')
    """
    first = word.strip("'")[:1].lower()
    return f"{'an' if first and first in 'aeiou' else 'a'} {word}"


def _key(req: SocketModeRequest) -> str:
    return f"envelope:{req.envelope_id}"


async def _ack(client: SocketModeClient, req: SocketModeRequest, answer: Answer) -> None:
    await client.send_socket_mode_response(
        SocketModeResponse(envelope_id=req.envelope_id, payload=answer)
    )
