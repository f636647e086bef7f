"""The Bolt app: slash commands, button clicks and modal submissions, translated to the seam.

Handlers only translate. A slash command runs :func:`bot.commands.dispatch`; if the
answer is ready within ``ACK_BUDGET`` seconds it *is* the ack, otherwise the ack
says "working on it" and the answer follows through the ``response_url``. A click
runs :func:`bot.commands.dispatch_action` and is acked once its change is on disk (or
after ``ACK_BUDGET``, when it is slow); its :class:`~bot.commands.ActionResult` is
applied here:

- ``done``: the original message keeps its blocks, the clicked buttons become a
  context line, via ``chat.update`` through the outbox (so it survives restarts);
- ``update``: the whole message is replaced, the same way;
- ``ephemeral``: only the clicker sees it (``response_url`` or ``chat.postEphemeral``);
- ``open_modal``: ``views.open`` with the click's ``trigger_id``, immediately.

A modal submission runs its handler (``VIEW_SUBMISSIONS``) with the view's
``private_metadata``; a bad value is an error under its field. A form whose subject
changed since it opened (:class:`~bot.raise_form.StaleForm`) is told so the same way,
and its next submit reads the metadata the error carried (kept here by view id, as
Slack cannot change it along with errors), so the same submit again goes through.
A submission too is acked within ``ACK_BUDGET``: a slower one closes the form and goes
on, its outcome shown on the alert's message or, for a refusal, in a DM.

Both HTTP mode and Socket Mode feed the same :class:`SlackSurface`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.listener.async_listener_error_handler import AsyncDefaultListenerErrorHandler
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.admins import Admins
from bot.commands import (
    ActionResult,
    Context,
    NotAdmin,
    Reply,
    dispatch,
    dispatch_action,
    refusal_text,
)
from bot.commands_core import VIEW_SUBMISSIONS
from bot.outbox import enqueue
from bot.outbox_delivery import DeliveryFailed, RetryLater
from bot.raise_form import StaleForm
from bot.shell_render import plain
from bot.slack.limits import clip_text, fit_view
from bot.slack.payloads import Origin, Submitted, view_values
from bot.slack.received import ack_budget_left
from bot.slack.render import replace_actions, reply_payload
from bot.slack.unhandled import unhandled
from bot.slack.workspace import one_workspace
from guards.errors import GuardError, InvalidInput, StorageUnavailable
from guards.store import Tx

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["ACK_BUDGET", "SlackSurface"]

log = logging.getLogger(__name__)
FIELD_ERROR = 150  # characters Slack shows under a modal's field
NOTHING_CHANGED = "Nothing was changed"  # how a refusal DM starts
# a database that refuses the write, under a field (the command's words pass 150 characters
# before they say what to do)
STORAGE_FIELD = (
    "Nothing was changed: Nightshift cannot write to its database; try again in a minute"
)
# seconds a command may take before the ack goes out without its answer, counted from the
# request's arrival (its Socket Mode record's wait included: ack_budget_left, R5 M2)
ACK_BUDGET = 2.0
MAX_ORIGINS = 500


def _not_the_token_warning(record: logging.LogRecord) -> bool:
    # Bolt reads SLACK_BOT_TOKEN itself, then warns that the client we give it wins:
    # it is the same token, so the warning on every start would only alarm.
    return record.getMessage() != warning_client_prioritized_and_token_skipped()


_BOLT_LOG = logging.getLogger("slack_bolt.nightshift")
_BOLT_LOG.addFilter(_not_the_token_warning)


class SlackSurface:
    """One Bolt AsyncApp wired to the command seam; shared by HTTP and Socket Mode."""

    def __init__(self, ns: Nightshift, client: AsyncWebClient) -> None:
        self.ns = ns
        self.client = client
        self.admins = Admins(policy=ns.policy, client=client, clock=ns.clock)
        self.app = AsyncApp(
            client=client,
            # HTTP mode verifies requests in its transport (bot.slack.http), before they
            # get here; Socket Mode's arrive over Slack's own authenticated websocket.
            signing_secret="",
            request_verification_enabled=False,
            process_before_response=True,
            logger=_BOLT_LOG,
            # a request no listener takes comes to on_error rather than as Bolt's 404 and
            # multi-line WARNING: it is acknowledged quietly (audit27 B2 L7)
            raise_error_for_unhandled_request=True,
        )
        # the bot's workspace (or org) only; a refused click is told through the outbox
        # the bot's workspace (or org) only; a refused click is told through the outbox
        self.app.use(one_workspace(answer=self._to_response_url))  # audit28 C1 L3, R4 L2 L3
        self.app.command("/agent")(self.on_command)
        self.app.action(re.compile(".+"))(self.on_action)
        self.app.view(re.compile(".+"))(self.on_view)
        self.app.error(self.on_error)
        self._listener_errors = AsyncDefaultListenerErrorHandler(_BOLT_LOG)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._origins: OrderedDict[str, Origin] = OrderedDict()
        # forms answered with StaleForm: their metadata from then on, by view id
        self._metadata: OrderedDict[str, str] = OrderedDict()

    async def on_error(
        self, error: Exception, request: AsyncBoltRequest, response: BoltResponse | None
    ) -> BoltResponse | None:
        """A request no listener takes (an event the app is not subscribed to, a
        ``view_closed``, a ``block_suggestion``, a type Slack adds later) is acknowledged
        with an empty 200, logged at DEBUG only, as Socket Mode acknowledges its envelope:
        Slack retries a non-2xx answer and may turn off an app's events after many; a
        slash command other than ``/agent`` is answered that this app answers ``/agent``
        (:mod:`bot.slack.unhandled`). Any other error is logged as Bolt logs it, and
        answered as Bolt answers it."""
        if isinstance(error, BoltUnhandledRequestError):
            return unhandled(error.body)
        await self._listener_errors.handle(error=error, request=request, response=response)
        return None

    def context(self, user: str, *, name: str | None = None, channel: str | None = None) -> Context:
        async def is_admin() -> bool:
            return await self.admins.is_admin(user)

        return Context(
            ns=self.ns,
            user_id=user,
            transport="slack",
            user_name=name,
            channel_id=channel,
            is_admin=is_admin,
        )

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Slack follow-up failed", exc_info=task.exception())

    async def close(self) -> None:
        """Let follow-ups finish (briefly), then cancel the rest."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        for task in list(self._tasks):
            task.cancel()

    async def _to_response_url(self, url: str, payload: dict[str, Any]) -> None:
        await self._enqueue(method="response_url", args={"url": url, "payload": payload})

    async def _enqueue(self, **kwargs: Any) -> None:
        def write(tx: Tx) -> int:
            return enqueue(tx, **kwargs)

        try:
            await self.ns.store.write(write)
        except StorageUnavailable:
            # The outbox lives in the database that refused it: the person is answered
            # straight through Slack, one try, as the storage notice is (review27 M1: a
            # slow submit's refusal, a slow command's answer, reached nobody).
            outbox = self.ns.extras.get("outbox")
            if outbox is None:
                raise
            try:
                await outbox.deliverer.deliver(kwargs["method"], kwargs["args"])
            except (RetryLater, DeliveryFailed) as exc:
                log.warning(
                    "a reply Slack was to get straight, the database refusing it, failed: %s",
                    exc,
                )

    # -- slash command ---------------------------------------------------------------

    async def on_command(self, ack: Any, body: dict[str, Any]) -> None:
        ctx = self.context(
            str(body.get("user_id") or ""),
            name=body.get("user_name"),
            channel=body.get("channel_id"),
        )
        task = asyncio.ensure_future(self._run_command(ctx, str(body.get("text") or "")))
        done, _ = await asyncio.wait({task}, timeout=ack_budget_left(ACK_BUDGET))
        if task in done:
            await ack(**reply_payload(task.result()))
            return
        await ack(response_type="ephemeral", text="⏳ Working on it…")
        self.spawn(self._follow_up(task, ctx, body.get("response_url")))

    async def _run_command(self, ctx: Context, text: str) -> Reply:
        try:
            return await dispatch(ctx, text)
        except Exception:
            log.exception("/agent %s failed", text[:80])
            return Reply.text_only("Something went wrong answering that; the error is logged.")

    async def _follow_up(self, task: asyncio.Task[Reply], ctx: Context, url: str | None) -> None:
        reply = await task
        await self._say_to(ctx, url, reply_payload(reply))

    async def _say_to(self, ctx: Context, url: str | None, payload: dict[str, Any]) -> None:
        if url:
            await self._to_response_url(url, payload)
        elif ctx.channel_id:
            args = {"channel": ctx.channel_id, "user": ctx.user_id, **payload}
            args.pop("response_type", None)
            await self._enqueue(method="chat.postEphemeral", args=args)
        else:
            await self._enqueue(
                method="chat.postMessage", args={"channel": ctx.user_id, "text": payload["text"]}
            )

    # -- buttons ------------------------------------------------------------------------

    async def on_action(self, ack: Any, body: dict[str, Any]) -> None:
        # The click's change is on disk before Slack hears the 200, as a slash command's
        # is: a crash just after the answer must not lose an acknowledgement. A click
        # slower than the ack budget goes on after the ack.
        click = self.spawn(self._click(body))
        await asyncio.wait({click}, timeout=ack_budget_left(ACK_BUDGET))
        await ack()

    async def _click(self, body: dict[str, Any]) -> None:
        actions = body.get("actions") or []
        if not actions:
            return
        clicked = actions[0]
        value = clicked.get("value") or (clicked.get("selected_option") or {}).get("value") or ""
        user = body.get("user") or {}
        origin = Origin.of(body, clicked.get("block_id"))
        ctx = self.context(
            str(user.get("id") or ""),
            name=user.get("username") or user.get("name"),
            channel=origin.channel,
        )
        result = await dispatch_action(ctx, str(clicked.get("action_id") or ""), str(value))
        await self.apply(ctx, result, origin, trigger_id=body.get("trigger_id"))

    async def apply(
        self, ctx: Context, result: ActionResult, origin: Origin, *, trigger_id: str | None
    ) -> None:
        """Carry out what a click's handler asked for."""
        if result.open_modal is not None:
            await self._open_modal(ctx, result.open_modal, origin, trigger_id)
        if result.done is not None:
            blocks = replace_actions(origin.blocks, origin.block_id, result.done)
            await self._update(origin, blocks=blocks, text=origin.text or result.done)
        if result.update is not None:
            limited = result.update.limited()
            await self._update(origin, blocks=limited.blocks, text=limited.text)
        if result.ephemeral is not None:
            payload = {
                "response_type": "ephemeral",
                "replace_original": False,
                "text": result.ephemeral,
            }
            await self._say_to(ctx, origin.response_url, payload)

    async def _update(self, origin: Origin, *, blocks: list[dict[str, Any]], text: str) -> None:
        if origin.channel and origin.ts and not origin.ephemeral:
            args = {"channel": origin.channel, "ts": origin.ts, "text": text, "blocks": blocks}
            await self._enqueue(method="chat.update", args=args)
        elif origin.response_url:
            payload = {"replace_original": True, "text": text, "blocks": blocks}
            await self._to_response_url(origin.response_url, payload)

    async def _open_modal(
        self, ctx: Context, view: dict[str, Any], origin: Origin, trigger_id: str | None
    ) -> None:
        try:
            response = await self.client.views_open(
                trigger_id=trigger_id or "", view=fit_view(view)
            )
        except Exception as exc:
            log.warning("views.open failed: %s", exc)
            payload = {"response_type": "ephemeral", "text": "The form did not open; click again."}
            await self._say_to(ctx, origin.response_url, payload)
            return
        view_id = str((response.get("view") or {}).get("id") or "")
        if view_id:
            _remember(self._origins, view_id, origin)

    # -- modal submissions ----------------------------------------------------------------

    async def on_view(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        # Acked within ACK_BUDGET as commands and clicks are (audit26b M1): Slack shows the
        # submitter an error after 3 s, even for a change that was made. A slow submit
        # (an admin group Slack is slow to list, a locked database) closes the form and
        # goes on; its outcome then shows on the alert's message, or comes by DM.
        handler = VIEW_SUBMISSIONS.get(str(view.get("callback_id") or ""))
        if handler is None:
            await ack()
            return
        values = view_values(view)
        user = body.get("user") or {}
        ctx = self.context(str(user.get("id") or ""), name=user.get("username"))
        view_id = str(view.get("id") or "")
        metadata = self._metadata.get(view_id, str(view.get("private_metadata") or ""))
        submit = asyncio.ensure_future(self._submit(handler, ctx, view_id, metadata, values))
        done, _ = await asyncio.wait({submit}, timeout=ack_budget_left(ACK_BUDGET))
        if submit in done:
            submitted = submit.result()
            if submitted.errors:
                await ack(response_action="errors", errors=submitted.errors)
                return
            await ack()
            if submitted.result is not None:
                self._submitted(ctx, view_id, submitted.result)
            return
        await ack()
        self.spawn(self._after_ack(submit, ctx, view_id))

    async def _submit(
        self,
        handler: Any,
        ctx: Context,
        view_id: str,
        metadata: str,
        values: dict[str, str],
    ) -> Submitted:
        """Run a modal's handler: its result, or its refusal (under a field, and in full)."""
        first = next(iter(values), "amount")
        try:
            return Submitted(await handler(ctx, metadata, values))
        except StaleForm as exc:
            # the form stays open as it is; its next submit reads the metadata it would
            # show now, so the same submit again goes through (a closed form cannot)
            _remember(self._metadata, view_id, exc.metadata)
            field = exc.field if exc.field in values else first
            closed = f"{exc.now}. The form is closed: to {exc.retry}, open it again."
            return Submitted(None, {field: exc.message[:FIELD_ERROR]}, closed)
        except InvalidInput as exc:
            field = exc.field if exc.field in values else first
            return Submitted(None, {field: exc.message[:FIELD_ERROR]}, exc.message)
        except (NotAdmin, GuardError) as exc:  # as a command's refusal is worded
            said = refusal_text(ctx, exc)
            # under a field: plain text (no mentions), of at most FIELD_ERROR characters
            under = plain(said)
            if isinstance(exc, StorageUnavailable):  # what to do first: the cause may be cut
                under = f"{STORAGE_FIELD} ({exc.cause})"
            return Submitted(None, {first: clip_text(under, FIELD_ERROR)}, said)

    async def _after_ack(self, submit: asyncio.Task[Submitted], ctx: Context, view_id: str) -> None:
        """A submit that outlived its ack: the form is closed, so a refusal comes by DM,
        in full (Slack's 150 characters are for the words under a field)."""
        submitted = await submit
        if submitted.result is not None:
            self._submitted(ctx, view_id, submitted.result)
            return
        why = submitted.told or "it was refused."
        what = f" ({ctx.attempt})" if ctx.attempt else ""
        why = why.removeprefix(f"{NOTHING_CHANGED}: ")  # a refusal that says it already
        await self._enqueue(
            method="chat.postMessage",
            args={"channel": ctx.user_id, "text": f"{NOTHING_CHANGED}{what}: {why}"},
        )

    def _submitted(self, ctx: Context, view_id: str, result: ActionResult) -> None:
        self._metadata.pop(view_id, None)
        origin = self._origins.pop(view_id, None)
        if origin is not None:
            self.spawn(self.apply(ctx, result, origin, trigger_id=None))
        elif result.done or result.ephemeral:  # the form outlived a restart: a DM says so
            args = {"channel": ctx.user_id, "text": result.done or result.ephemeral}
            self.spawn(self._enqueue(method="chat.postMessage", args=args))


def _remember(memory: OrderedDict[str, Any], key: str, value: Any) -> None:
    """Keep ``value`` under ``key``, forgetting the oldest past ``MAX_ORIGINS``."""
    if not key:
        return
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > MAX_ORIGINS:
        memory.popitem(last=False)
