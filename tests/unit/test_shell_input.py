"""Shell mode's input: what stdin counts as, and the console reading a pipe or a file.

The console runs on a real pipe (or file) descriptor; its commands are recorded by
a subclass instead of dispatched, so the reading itself is what is tested.
"""

from __future__ import annotations

import asyncio
import io
import os
import pty
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

import bot.shell
from bot.blocks import actions, button, section
from bot.shell import INPUT_ENDED, ShellConsole
from bot.shell_input import MAX_LINE_BYTES, MAX_QUEUED_LINES
from bot.slack import stdin_kind


class Recording(ShellConsole):
    """A console whose commands are recorded; each waits for ``gate`` when it is closed."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(out=io.StringIO(), **kw)
        self.handled: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def handle_line(self, line: str) -> None:
        await self.gate.wait()
        self.handled.append(line)

    @property
    def printed(self) -> str:
        return cast(io.StringIO, self.out).getvalue()


@pytest.fixture(autouse=True)
def no_banner_delay(monkeypatch):
    monkeypatch.setattr(bot.shell, "BANNER_DELAY", 0.0)


def fake_ns() -> Any:
    return SimpleNamespace(extras={}, scheduler=SimpleNamespace(running=True))


async def until(check, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


# -- what stdin is -------------------------------------------------------------------------


def test_stdin_kind_tells_terminals_streams_and_closed_input(monkeypatch, tmp_path: Path):
    def kind_of(fd: int | None) -> str:
        monkeypatch.setattr(sys, "stdin", None if fd is None else os.fdopen(fd, closefd=False))
        return stdin_kind()

    r, w = os.pipe()
    master, slave = pty.openpty()
    script = tmp_path / "commands.txt"
    script.write_text("/agent help\n")
    file_fd = os.open(script, os.O_RDONLY)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    try:
        assert kind_of(slave) == "tty"
        assert kind_of(r) == "stream"  # `printf ... | nightshift run`
        assert kind_of(file_fd) == "stream"  # `nightshift run < commands.txt`
        assert kind_of(null_fd) == "closed"  # a service's stdin
        assert kind_of(None) == "closed"  # started with fd 0 closed
    finally:
        for fd in (r, w, master, slave, file_fd, null_fd):
            os.close(fd)


# -- reading --------------------------------------------------------------------------------


async def test_a_pipe_is_read_in_order_with_backpressure_and_its_end_is_said():
    r, w = os.pipe()
    console = Recording(read_input=True, stdin_fd=r)
    console.gate.clear()  # the first command takes its time
    try:
        await console.start(fake_ns())
        os.write(w, "".join(f"cmd {i}\n" for i in range(MAX_QUEUED_LINES + 10)).encode())
        await until(lambda: console.input.paused)
        os.write(w, b"cmd late\n")  # stays in the pipe while the queue is full
        await asyncio.sleep(0.05)
        assert console.input.lines.qsize() == MAX_QUEUED_LINES + 9  # all but the one at the gate
        console.gate.set()
        os.close(w)
        await until(lambda: INPUT_ENDED in console.printed)
        wanted = [f"cmd {i}" for i in range(MAX_QUEUED_LINES + 10)] + ["cmd late"]
        assert console.handled == wanted
        assert "nightshift> cmd 0\n" in console.printed  # each piped command is echoed
        assert "Shell mode: reading /agent commands from stdin" in console.printed
    finally:
        await console.stop(cast(Any, None))
        os.close(r)


async def test_a_file_on_stdin_is_read_to_its_end(tmp_path: Path):
    script = tmp_path / "commands.txt"
    script.write_text("/agent help\n\n/agent audit")  # no newline at the end
    fd = os.open(script, os.O_RDONLY)
    console = Recording(read_input=True, stdin_fd=fd)
    try:
        await console.start(fake_ns())
        await until(lambda: INPUT_ENDED in console.printed)
        assert console.input.watch == "file"  # epoll refuses plain files: read in turns
        assert console.handled == ["/agent help", "", "/agent audit"]
        assert console.printed.count("nightshift> ") == 2
    finally:
        await console.stop(cast(Any, None))
        os.close(fd)


async def test_an_endless_line_is_dropped_and_reading_goes_on():
    r, w = os.pipe()
    console = Recording(read_input=True, stdin_fd=r)
    try:
        await console.start(fake_ns())
        for _ in range(MAX_LINE_BYTES // 4096 + 2):
            os.write(w, b"x" * 4096)
            await asyncio.sleep(0.005)
        os.write(w, b"\n/agent help\n")
        os.close(w)
        await until(lambda: INPUT_ENDED in console.printed)
        assert f"(a line longer than {MAX_LINE_BYTES} bytes was dropped)" in console.printed
        assert console.handled == ["/agent help"]  # none of the long line is a command
    finally:
        await console.stop(cast(Any, None))
        os.close(r)


async def test_buttons_lose_their_numbers_once_the_input_ended():
    blocks = [section("*P0* breaker opened"), actions(button("Ack", "alert_ack", "7"))]
    args = {"channel": "C0A", "text": "t", "blocks": blocks}

    closed = Recording(read_input=False)  # stdin closed: it only prints
    await closed.start(fake_ns())
    await closed.deliver("chat.postMessage", args)
    assert closed.printed.rstrip().endswith("[Ack]")  # nothing can type a number (audit20)
    assert closed.find_button("alert_ack", "7") is not None  # a program may click (the demo)

    r, w = os.pipe()
    piped = Recording(read_input=True, stdin_fd=r)
    try:
        await piped.start(fake_ns())
        await piped.deliver("chat.postMessage", args)
        assert "  [1] Ack\n" in piped.printed
        os.close(w)
        await until(lambda: INPUT_ENDED in piped.printed)
        await piped.deliver("chat.postMessage", args)
        assert piped.printed.rstrip().endswith("[Ack]")
        assert await piped._ask("New limit (USD): ") is None  # no answer can come any more
    finally:
        await piped.stop(cast(Any, None))
        os.close(r)
