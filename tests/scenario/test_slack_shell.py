"""Shell mode: the real ``nightshift run`` on a pseudo-terminal, and without one."""

from __future__ import annotations

import asyncio
import codecs
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from bot.blocks import actions, button, section
from bot.outbox import enqueue
from guards.store import Store
from tests.fakes.ports import free_port

SCOPE = "acme/alice/rss-bot"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "NIGHTSHIFT_"))}
    e.update(
        NIGHTSHIFT_DB=str(tmp_path / "ns.db"),
        NIGHTSHIFT_CONFIG=str(tmp_path / "absent.yml"),
        NIGHTSHIFT_PORT=str(free_port()),
        TERM="dumb",
    )
    return e


class Terminal:
    """The process on a pty: what it printed, and typing into it."""

    def __init__(self, env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self.fd = master
        self.out = ""
        self.seen = 0

    def _read(self) -> None:
        import select

        while select.select([self.fd], [], [], 0)[0]:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.out += chunk.decode("utf-8", "replace")

    async def expect(self, text: str, within: float = 15) -> str:
        """Wait for ``text`` after what was already matched; returns the output up to it."""
        deadline = time.monotonic() + within
        while True:
            self._read()
            at = self.out.find(text, self.seen)
            if at >= 0:
                chunk = self.out[self.seen : at + len(text)]
                self.seen = at + len(text)
                return chunk
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {text!r} in:\n{self.out[self.seen :]}")
            await asyncio.sleep(0.05)

    def type(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        os.close(self.fd)
        return code


async def post_alert(db: str) -> None:
    blocks = [
        section(f"*Budget spent* for `{SCOPE}`: $10.00 of $10.00 today"),
        actions(button("Raise budget", "budget_raise", SCOPE), block_id="a1"),
    ]
    store = await Store.open(db)
    try:
        args = {"channel": "C0ALERTS", "text": "Budget spent", "blocks": blocks}
        await store.write(lambda tx: enqueue(tx, method="chat.postMessage", args=args))
    finally:
        await store.close()


async def test_shell_on_a_tty_runs_commands_and_numbered_buttons(env):
    term = Terminal(env)
    try:
        await term.expect("nightshift listening on")
        await term.expect("Shell mode: type /agent help")
        await term.expect("nightshift> ")
        term.type("/agent help")
        await term.expect("Nightshift commands")
        term.type("/AGENT \x1b[A STATUS")  # caps lock, and an arrow key the prompt let through
        await term.expect("Slack delivery: ")
        term.type("budgte")
        await term.expect("Did you mean `budget`?")
        await post_alert(env["NIGHTSHIFT_DB"])
        shown = await term.expect("[1] Raise budget")
        assert "── #C0ALERTS ──" in shown and "Budget spent* for `acme/alice/rss-bot`" in shown
        term.type("9")
        await term.expect("There is no button [9]")
        term.type("1")
        await term.expect("New limit (USD): ")
        term.type("abc")
        await term.expect("[2] week")
        term.type("2")
        await term.expect("For how long (empty: until changed): ")
        term.type("soon")
        await term.expect("✗ 'abc' is not an amount")
        await term.expect("New limit (USD): ")  # only the answer that was wrong is asked again
        term.type("25")
        refused = await term.expect("For how long (empty: until changed): ")
        assert "a duration like 2h or 1d" in refused
        assert "(default day)" not in refused  # the window given is kept
        term.type("")  # until changed
        updated = await term.expect(f"week budget of `{SCOPE}` set to $25.00 by @shell")
        assert "── updated in #C0ALERTS ──" in updated
        assert "[1] Raise budget" not in term.out[term.out.find("updated in #C0ALERTS") :]
        term.type("1")  # the button is gone with the update
        await term.expect("There is no button [1]")
        term.type("/agent audit")
        await term.expect("@shell *budget.set* `acme/alice/rss-bot week`: — → $25.00")
    finally:
        assert term.close() == 0


class Piped:
    """The process with stdin from ``stdin`` (a pipe by default) and stdout read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out = ""
        self.seen = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @classmethod
    async def start(cls, env: dict[str, str], stdin: int | IO[Any] = asyncio.subprocess.PIPE):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            env=env,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return cls(proc)

    async def expect(self, text: str, within: float = 15) -> str:
        """Wait for ``text`` after what was already matched; returns the output up to it."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + within
        while (at := self.out.find(text, self.seen)) < 0:
            left = deadline - time.monotonic()
            try:
                data = await asyncio.wait_for(self.proc.stdout.read(65536), max(0.01, left))
            except TimeoutError:
                data = b""
            if not data and (time.monotonic() > deadline or self.proc.returncode is not None):
                raise AssertionError(f"no {text!r} in:\n{self.out[self.seen :]}")
            self.out += self.decoder.decode(data)  # a character may span two reads
        chunk = self.out[self.seen : at + len(text)]
        self.seen = at + len(text)
        return chunk

    async def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()

    def end_input(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    async def serves(self, env: dict[str, str]) -> bool:
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{env['NIGHTSHIFT_PORT']}/healthz")
        return answer.status_code == 200

    async def close(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 15)


async def test_shell_with_stdin_closed_only_prints(env):
    shell = await Piped.start(env, stdin=asyncio.subprocess.DEVNULL)
    try:
        await shell.expect("nightshift listening on")
        await post_alert(env["NIGHTSHIFT_DB"])
        shown = await shell.expect("  [Raise budget]")  # no number: nothing can type one
        assert "── #C0ALERTS ──" in shown and "[1]" not in shown
        await asyncio.sleep(0.5)  # past the banner's moment: nothing about input is said
        assert await shell.serves(env)
        assert "nightshift> " not in shell.out  # nothing is read, so no prompt
        assert "input ended" not in shell.out and "Shell mode:" not in shell.out
    finally:
        assert await shell.close() == 0


async def test_shell_reads_commands_from_a_pipe_and_keeps_serving_after_its_end(env):
    shell = await Piped.start(env)
    try:
        await shell.type("/agent help")  # typed before the process serves: read once it does
        first = await shell.expect("Nightshift commands")
        assert first.index("nightshift listening on") < first.index("nightshift> /agent help")
        assert "Shell mode: reading /agent commands from stdin (not a terminal)." in first
        await shell.type("budgte")
        await shell.expect("nightshift> budgte")
        await shell.expect("Did you mean `budget`?")
        await shell.type("/agent \x1b]0;PWNED\x07sta\x1b[2Jtus\x00")  # escapes in a pipe
        echoed = await shell.expect("Slack delivery: ")
        assert "nightshift> /agent status" in echoed and "\x1b" not in echoed
        await post_alert(env["NIGHTSHIFT_DB"])
        shown = await shell.expect("[1] Raise budget")  # the pipe is open: it can click
        assert "── #C0ALERTS ──" in shown
        await shell.type("1")
        await shell.expect("New limit (USD): ")
        await shell.type("25")
        await shell.expect("25\n")  # the answer is echoed after its question
        await shell.expect("[2] week")
        await shell.type("2")
        await shell.type("")  # for how long: until changed
        await shell.expect(f"week budget of `{SCOPE}` set to $25.00 by @shell")
        await post_alert(env["NIGHTSHIFT_DB"])
        again = await shell.expect("] Raise budget")
        number = re.findall(r"\[(\d+)\] Raise budget", again)[-1]  # its button's number
        await shell.type(number)
        for answer in ("lots", "", "", "lots", "lots"):  # a bad amount three times: it gives up
            await shell.type(answer)  # (the window and for how long are kept after the first)
        await shell.expect("(form closed after 3 tries; nothing changed)")
        await shell.type("2")  # meant for the form: not a click on button [2]
        await shell.expect("(not clicked: the form before it closed, so this was its answer)")
        await shell.type("/agent help")  # a line that is not a number ends the skipping
        await shell.expect("Nightshift commands")
        await shell.type(number)
        await shell.expect("New limit (USD): ")
        await shell.type("cancel")
        await shell.expect("(cancelled)")
        await shell.type(number)  # after a typed cancel a number is a click again (audit13 N4)
        await shell.expect("New limit (USD): ")
        await shell.type("cancel")
        await shell.expect("(cancelled)")
        await shell.type(number)
        await shell.expect("New limit (USD): ")
        await shell.type("/agent budget")  # a command, not an answer (audit20 newcomer L)
        await shell.expect("(the form is left: a command came instead of an answer)")
        ran = await shell.expect("── reply ──")  # the command ran
        assert "nightshift> /agent budget" in ran
        assert "New limit (USD): /agent budget" not in shell.out  # shown once (review21 L6)
        shell.end_input()
        await shell.expect("(input ended: commands are no longer read; still serving")
        await post_alert(env["NIGHTSHIFT_DB"])
        later = await shell.expect("[Raise budget]")  # no number: nothing can be typed now
        assert "── #C0ALERTS ──" in later
        assert await shell.serves(env)
    finally:
        assert await shell.close() == 0
    assert "Traceback" not in shell.out


async def test_a_script_piped_in_is_answered_then_the_process_serves_on(env, tmp_path):
    """`printf '/agent help\\n/agent audit\\n' | nightshift run`, and the same from a file."""
    script = tmp_path / "commands.txt"
    script.write_text("/agent help\n\n/agent audit")  # a blank line; no newline at the end
    for source in ("pipe", "file"):
        if source == "pipe":
            shell = await Piped.start(env)
            await shell.type(script.read_text())
            shell.end_input()
        else:
            with script.open("rb") as stdin:
                shell = await Piped.start(env, stdin=stdin)
        try:
            await shell.expect("nightshift> /agent help")
            await shell.expect("Nightshift commands")
            await shell.expect("nightshift> /agent audit")
            await shell.expect("(input ended")
            assert await shell.serves(env)
            assert shell.proc.returncode is None
        finally:
            assert await shell.close() == 0
        assert shell.out.count("nightshift> ") == 2, shell.out  # the blank line is no command
