"""Shell mode: the real ``nightshift run`` on a pseudo-terminal, and without one."""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.commands import actions, button, section
from bot.outbox import enqueue
from guards.store import Store

SCOPE = "acme/alice/rss-bot"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        await term.expect("(default day): ")
        term.type("")
        await term.expect("✗ 'abc' is not an amount")
        await term.expect("New limit (USD): ")
        term.type("25")
        await term.expect("[2] week")
        term.type("2")
        updated = await term.expect(f"week budget of `{SCOPE}` set to $25.00 by @shell")
        assert "── updated in #C0ALERTS ──" in updated
        assert "[1] Raise budget" not in term.out[term.out.find("updated in #C0ALERTS") :]
        term.type("1")  # the button is gone with the update
        await term.expect("There is no button [1]")
        term.type("/agent audit")
        await term.expect("@shell *budget.set* `acme/alice/rss-bot week`: — → $25.00")
    finally:
        assert term.close() == 0


async def test_shell_without_a_tty_only_prints(env):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    out = ""
    try:
        out += (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert "nightshift listening on" in out
        await post_alert(env["NIGHTSHIFT_DB"])
        while "[1] Raise budget" not in out:
            out += (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert "── #C0ALERTS ──" in out
        assert "nightshift> " not in out  # nothing is read, so no prompt
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
