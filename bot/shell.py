"""Shell mode: Slack as plain text in the terminal (Errbot's text backend, Hubot's shell).

The outbox is delivered by printing: alerts and updates show as readable text, and
their buttons as numbered choices (``[1] Acknowledge  [2] Silence 1h``). On a TTY
the operator types ``/agent ...`` (or just ``budget acme``) at the prompt, or a
button's number to click it; a modal becomes questions asked one by one. From a
pipe or a file (``printf '/agent status\n' | nightshift run``) the lines are read
the same way, once the process serves, each echoed after ``nightshift> ``. When
the input ends (Ctrl-D, the pipe's end) the console says so and keeps serving;
with stdin closed (``/dev/null``, a service) nothing is read: it only prints (a
program may still click, as the demo does). With stdin closed, and after the input
ended, buttons show without numbers. The terminal's operator acts as an admin (they
hold the database anyway).

This module holds the console: the component, the outbox deliverer, the prompt and
its buttons. Beside it: :mod:`bot.shell_input` (the lines read from stdin),
:mod:`bot.shell_render` (Block Kit as text, re-exported here) and
:mod:`bot.shell_modal` (a modal as questions).

Example:
    >>> print(render_text([{"type": "section", "text": {"type": "mrkdwn", "text": "hi <@U1>"}}]))
    hi @U1
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import sys
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, TextIO

from apscheduler.events import EVENT_SCHEDULER_STARTED, SchedulerEvent

from bot import shell_modal
from bot.commands import ActionResult, Context, Reply, dispatch, dispatch_action
from bot.outbox import Delivered, enqueue
from bot.shell_input import StdinLines
from bot.shell_render import (
    MAX_FILE_LINES,
    Button,
    ShellMessage,
    destination,
    file_text,
    plain,
    render_text,
    text_of,
)
from bot.slack.render import replace_actions
from guards.store import Tx

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["MAX_FILE_LINES", "Button", "ShellConsole", "ShellMessage", "plain", "render_text"]

log = logging.getLogger(__name__)
# terminal key codes (an arrow key), other escape sequences, and control characters:
# never echoed back to the terminal, never read as a command, and never printed (an
# agent's task id or model name in an alert could set the title, clear the screen or
# overwrite a line with \r). An unterminated title sequence ends at its line.
_ESCAPES = re.compile(
    r"\x1b\[[0-9;?]*[A-Za-z~]|\x1b[O][A-Za-z]|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)

PROMPT = "nightshift> "
SHELL_USER = "shell"
MAX_MESSAGES = 200
BANNER_DELAY = 0.3  # after "listening on", which follows the scheduler's start
INPUT_ENDED = "(input ended: commands are no longer read; still serving, Ctrl-C stops)"


class ShellConsole:
    """The shell transport: a component, and the outbox's deliverer in shell mode.

    ``interactive``: stdin is a terminal (a prompt, a banner). ``read_input``: read
    commands from ``stdin_fd`` at all (a terminal, a pipe or a file; default: when
    interactive).
    """

    def __init__(
        self,
        *,
        out: TextIO | None = None,
        interactive: bool = False,
        read_input: bool | None = None,
        user_id: str = SHELL_USER,
        stdin_fd: int = 0,
    ) -> None:
        self.out = out or sys.stdout
        self.interactive = interactive
        self.read_input = interactive if read_input is None else read_input
        self.user_id = user_id
        self.stdin_fd = stdin_fd
        self._ns: Nightshift | None = None
        self._messages: OrderedDict[str, ShellMessage] = OrderedDict()
        self._buttons: dict[int, Button] = {}
        self._numbers = itertools.count(1)
        self._ts = itertools.count(1)
        self.input = StdinLines(stdin_fd, say=self.say)
        self._after_form = False  # a piped form gave up: skip the numbers meant for it
        self._cancelled = False  # the last form ended on a typed `cancel`
        self._carried: str | None = None  # a command typed where a form wanted an answer
        self._task: asyncio.Task[None] | None = None

    # -- component ------------------------------------------------------------------

    async def start(self, ns: Nightshift) -> None:
        self._ns = ns
        ns.extras["shell"] = self
        if not self.read_input:
            log.info("shell mode: stdin is closed, so /agent commands are not read")
            return
        self.input.start()
        started = asyncio.Event()
        if ns.scheduler.running:
            started.set()
        else:  # the scheduler starts once every component has

            def on_start(event: SchedulerEvent) -> None:
                started.set()

            ns.scheduler.add_listener(on_start, EVENT_SCHEDULER_STARTED)
        self._task = asyncio.create_task(self._consume(started), name="nightshift-shell")

    def _banner(self) -> None:
        if self.interactive:
            self.say("Shell mode: type /agent help, or a button's number. Ctrl-C stops.")
            self._prompt()
        else:
            self.say("Shell mode: reading /agent commands from stdin (not a terminal).")

    async def stop(self, ns: Nightshift) -> None:
        self.input.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def ns(self) -> Nightshift:
        if self._ns is None:
            raise RuntimeError("the shell console is not started")
        return self._ns

    def context(self) -> Context:
        async def is_admin() -> bool:
            return True

        return Context(ns=self.ns, user_id=self.user_id, transport="shell", is_admin=is_admin)

    # -- output ------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """Print ``text`` (alerts, replies, notes) without its escape sequences."""
        prefix = "\r" if self.interactive else ""  # ours: over the prompt
        self.out.write(prefix + _ESCAPES.sub("", text) + "\n")
        self.out.flush()

    def _prompt(self) -> None:
        if self.interactive:
            self.out.write(PROMPT)
            self.out.flush()

    def show(self, message: ShellMessage, title: str, *, prompt: bool = True) -> None:
        """Print a message with numbered buttons; earlier numbers of it stop working."""
        for old in message.buttons:
            self._buttons.pop(old.number, None)
        message.buttons = []

        def number(element: dict[str, Any], block_id: str | None) -> int | None:
            n = next(self._numbers)
            button = Button(
                number=n,
                label=text_of(element.get("text")),
                action_id=str(element.get("action_id") or ""),
                value=str(element.get("value") or ""),
                block_id=block_id,
                message=message,
            )
            message.buttons.append(button)
            self._buttons[n] = button
            # stdin closed (a service) or ended: nothing can type it (a program still clicks)
            return n if self.read_input and not self.input.ended else None

        body = render_text(message.blocks, message.text, on_button=number)
        self.say(f"── {title} ──\n{body}")
        if prompt:
            self._prompt()

    # -- outbox deliverer --------------------------------------------------------------

    async def deliver(self, method: str, args: dict[str, Any]) -> Delivered:
        channel = args.get("channel")
        blocks = list(args.get("blocks") or [])
        text = str(args.get("text") or "")
        if method == "chat.postMessage":
            ts = f"shell.{next(self._ts)}"
            message = ShellMessage(channel, ts, blocks, text)
            self._remember(message)
            self.show(
                message, destination(channel) + (" (in a thread)" if args.get("thread_ts") else "")
            )
            return Delivered(channel, ts)
        if method == "chat.update":
            ts = str(args.get("ts") or "")
            message = self._messages.get(ts) or ShellMessage(channel, ts, blocks, text)
            message.blocks, message.text = blocks, text
            self._remember(message)
            self.show(message, f"updated in {destination(channel)}")
            return Delivered(channel, ts)
        if method == "chat.postEphemeral":
            self.show(ShellMessage(None, None, blocks, text), f"only for @{args.get('user')}")
            return Delivered(channel)
        if method == "files.upload":
            self.say(file_text(args))
            self._prompt()
            return Delivered(channel)
        if method == "response_url":
            payload = args.get("payload") or {}
            self.show(
                ShellMessage(
                    None, None, list(payload.get("blocks") or []), str(payload.get("text") or "")
                ),
                "reply",
            )
            return Delivered()
        self.say(f"── {method} ── {args}")
        return Delivered(channel)

    def _remember(self, message: ShellMessage) -> None:
        if message.ts:
            self._messages[message.ts] = message
            self._messages.move_to_end(message.ts)
            while len(self._messages) > MAX_MESSAGES:
                self._messages.popitem(last=False)

    async def _consume(self, started: asyncio.Event) -> None:
        # Commands run once every component is up; the banner after "listening on".
        await started.wait()
        await asyncio.sleep(BANNER_DELAY)
        self._banner()
        while True:
            line, self._carried = self._carried, None
            if line is None:
                line = await self.input.next_line()
            if line is None:
                self.say(INPUT_ENDED)
                return
            if not self.interactive and line.strip():
                self.say(PROMPT + _ESCAPES.sub("", line).strip())  # shown before its answer
            if self._after_form and line.strip().isdigit():
                self.say("(not clicked: the form before it closed, so this was its answer)")
                continue
            self._after_form = False
            try:
                await self.handle_line(line)
            except Exception as exc:
                self.say(f"that failed: {exc!r}")
            self._prompt()

    async def handle_line(self, line: str) -> None:
        """One typed line: a button number or an ``/agent`` command."""
        line = _ESCAPES.sub("", line).strip()
        if not line:
            return
        if line.isascii() and line.isdigit():
            button = self._buttons.get(int(line))
            if button is None:
                self.say(f"There is no button [{line}] (any more).")
                return
            await self.click(button)
            return
        text = re.sub(r"^/?agent\b", "", line, flags=re.IGNORECASE).strip()
        reply = await dispatch(self.context(), text)
        self._show_reply(reply)

    def _show_reply(self, reply: Reply) -> None:
        self.show(ShellMessage(None, None, reply.blocks, reply.text), "reply", prompt=False)

    def shown(self) -> list[ShellMessage]:
        """The messages still shown (with their buttons), oldest first."""
        return list(self._messages.values())

    def find_button(self, action_id: str, value: str | None = None) -> Button | None:
        """The newest button still shown with this ``action_id`` (and ``value``), or None."""
        for number in sorted(self._buttons, reverse=True):
            button = self._buttons[number]
            if button.action_id == action_id and (value is None or button.value == value):
                return button
        return None

    async def click(self, button: Button) -> None:
        ctx = self.context()
        self.say(f"(clicked {button.label})")
        result = await dispatch_action(ctx, button.action_id, button.value)
        if result.open_modal is not None:
            submitted = await self.fill_modal(ctx, result.open_modal)
            if submitted is None:
                return
            result = submitted
        await self.apply(result, button)

    async def apply(self, result: ActionResult, button: Button) -> None:
        message = button.message
        if result.done is not None and message is not None:
            blocks = replace_actions(message.blocks, button.block_id, result.done)
            await self._update(message, blocks, message.text or result.done)
        if result.update is not None and message is not None:
            limited = result.update.limited()
            await self._update(message, limited.blocks, limited.text)
        if result.ephemeral is not None:
            self.say(f"── only for you ──\n{plain(result.ephemeral)}")

    async def _update(self, message: ShellMessage, blocks: list[dict[str, Any]], text: str) -> None:
        if message.channel and message.ts:
            args = {"channel": message.channel, "ts": message.ts, "text": text, "blocks": blocks}

            def write(tx: Tx) -> int:
                return enqueue(tx, method="chat.update", args=args)

            await self.ns.store.write(write)
            return
        message.blocks, message.text = blocks, text
        self.show(message, "updated", prompt=False)

    async def _ask(self, question: str) -> str | None:
        self.out.write(_ESCAPES.sub("", question))
        self.out.flush()
        answer = await self.input.next_line()
        if answer is not None:
            answer = _ESCAPES.sub("", answer)
        # a command where an answer was due (piped lines): the form is left and the command
        # runs, rather than being taken as the answer (only with its slash: an answer may
        # well begin with the word "agent")
        command = answer is not None and re.match(r"/agent\b", answer.strip(), re.IGNORECASE)
        if not self.interactive:  # a terminal echoes what is typed; a pipe does not
            # (a command is echoed once, at the prompt it runs under)
            self.out.write(("" if command else (answer or "").strip()) + "\n")
            self.out.flush()
        if command:
            self.say("(the form is left: a command came instead of an answer)")
            self._carried = answer
            answer = "cancel"
        if answer is None or answer.strip().lower() == "cancel":
            self._cancelled = answer is not None
            return None
        return answer.strip()

    async def fill_modal(self, ctx: Context, view: dict[str, Any]) -> ActionResult | None:
        """A modal as questions; 'cancel' or end of input gives up.

        From a pipe, the numbers that follow a form that gave up (its tries used up) were
        its answers, not clicks: they are skipped up to the next line that is not a number.
        After a typed ``cancel`` the next number is a click again.
        """
        self._cancelled = False
        result = await shell_modal.fill_modal(ctx, view, ask=self._ask, say=self.say)
        self._after_form = result is None and not self.interactive and not self._cancelled
        return result
