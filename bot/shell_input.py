"""Shell mode's input: ``/agent`` lines read from stdin (a terminal, a pipe or a file).

Lines are read without blocking the event loop: a reader on the loop for a terminal,
a pipe or a socket, reads in turns for a regular file (epoll refuses those). At most
:data:`MAX_QUEUED_LINES` wait; reading pauses until the console has taken half of
them. A line longer than :data:`MAX_LINE_BYTES` is dropped whole. At the end of the
input, :meth:`StdinLines.next_line` answers None, and keeps answering None.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable

__all__ = ["MAX_LINE_BYTES", "MAX_QUEUED_LINES", "StdinLines"]

MAX_QUEUED_LINES = 64  # read no more input until the commands already read are done
MAX_LINE_BYTES = 65536


class StdinLines:
    """The lines of file descriptor ``fd``; ``say`` tells the operator of a dropped line."""

    def __init__(self, fd: int, *, say: Callable[[str], None]) -> None:
        self.fd = fd
        self.say = say
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._buffer = b""
        self._skipping = False  # dropping a line longer than MAX_LINE_BYTES, up to its end
        self.reading = False  # stdin is watched (until its end)
        self.ended = False  # the input ended (EOF)
        self.paused = False  # MAX_QUEUED_LINES wait: not watching stdin for now
        self.watch: str | None = None  # "reader" (a tty, pipe, socket) or "file"

    def start(self) -> None:
        self.reading = True
        self.resume()

    def resume(self) -> None:
        """Watch stdin (again): a reader on the loop, or reads in turn for a plain file."""
        self.paused = False
        loop = asyncio.get_running_loop()
        if self.watch == "file":
            loop.call_soon(self._read_file)
            return
        try:
            loop.add_reader(self.fd, self._on_readable)
            self.watch = "reader"
        except PermissionError:  # a regular file (`< commands.txt`): epoll refuses it
            self.watch = "file"
            loop.call_soon(self._read_file)
        except (OSError, ValueError):  # not a file descriptor any more
            self._end()

    def pause(self) -> None:
        self.paused = True
        if self.watch == "reader":
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.fd)

    def _read_file(self) -> None:
        """A regular file never blocks: read a chunk, and the next one in a later turn."""
        if self.reading and not self.paused:
            self._on_readable()
            if self.reading and not self.paused:
                asyncio.get_running_loop().call_soon(self._read_file)

    def stop(self) -> None:
        if self.reading:
            if not self.paused:
                self.pause()
            self.reading = False

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:  # someone else read it first
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._end()
            return
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            if self._skipping:  # the end of a line too long to keep
                self._skipping = False
                continue
            self.lines.put_nowait(line.decode("utf-8", "replace").rstrip("\r"))
        if len(self._buffer) > MAX_LINE_BYTES:
            if not self._skipping:
                self.say(f"(a line longer than {MAX_LINE_BYTES} bytes was dropped)")
            self._buffer = b""
            self._skipping = True
        if self.lines.qsize() >= MAX_QUEUED_LINES:
            self.pause()

    def _end(self) -> None:
        """The input ended: what is left is the last line, then None."""
        self.stop()
        self.ended = True
        if self._buffer and not self._skipping:
            self.lines.put_nowait(self._buffer.decode("utf-8", "replace"))
            self._buffer = b""
        self.lines.put_nowait(None)

    async def next_line(self) -> str | None:
        """The next line read, or None at the end of the input (which stays the end)."""
        if not self.reading and self.lines.empty():
            return None
        line = await self.lines.get()
        if self.paused and self.reading and self.lines.qsize() < MAX_QUEUED_LINES // 2:
            self.resume()
        if line is None:
            self.lines.put_nowait(None)  # a question asked at the end leaves it for the loop
        return line
