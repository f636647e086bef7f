"""Reads that may hang (a file on a mount that does not answer), each on a daemon thread
of its own, never on the event loop's default executor (review26 R3 H1).

A thread blocked in ``read()`` cannot be stopped: it ends when the mount answers. Run on
the loop's shared default executor (``asyncio.to_thread``), each try that gave up on it
kept one of that pool's few threads (6 on 2 cores), and once they were all held, every
other user of the pool waited too: aiohttp's DNS lookups (so every Slack call), other
webhooks, validations, the SIGHUP check, and the exit (``asyncio.run`` waits for that
pool's threads). So here:

- :func:`read_within` and :func:`read_within_async` run ``read(key)`` on a daemon thread
  (an exit does not wait for it), at most one in flight per ``key`` (a file's path): a
  caller while one is in flight waits for that one, up to ``seconds`` from when it
  began, and one that began longer ago than that raises :class:`StillReading` at once,
  so a file on a hung mount holds one thread, however often it is tried;
- :func:`in_daemon_thread` awaits any call on a daemon thread of its own.

Example:
    >>> read_within("/etc/hostname", read=lambda path: "read " + path, seconds=5)
    'read /etc/hostname'
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["StillReading", "in_daemon_thread", "read_within", "read_within_async"]

T = TypeVar("T")


class StillReading(Exception):
    """A read not done within its time: its thread is left to end when the read returns."""


class _Call(Generic[T]):
    """One call running on its thread: its outcome, and who waits for it."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.waiters: list[Callable[[], None]] = []  # told when it is done (any thread)

    def run(self, call: Callable[[], T], *, then: Callable[[], None] | None = None) -> None:
        try:
            self.result = call()
        except BaseException as exc:  # (handed to the caller, whatever it is)
            self.error = exc
        finally:
            with _LOCK:
                if then is not None:
                    then()
                self.done.set()
                waiters, self.waiters = self.waiters, []
            for wake in waiters:
                wake()

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # (set when no error was)


_LOCK = threading.Lock()
_READING: dict[str, _Call[str]] = {}  # key -> the read of it in flight


def _start(key: str, read: Callable[[str], str]) -> _Call[str]:
    """The read of ``key`` in flight, started now when there is none."""
    with _LOCK:
        reading = _READING.get(key)
        if reading is not None:
            return reading
        reading = _READING[key] = _Call()

    def ended() -> None:  # (under _LOCK) the next caller starts a fresh read
        if _READING.get(key) is reading:
            del _READING[key]

    threading.Thread(
        target=reading.run,
        args=(lambda: read(key),),
        kwargs={"then": ended},
        name="nightshift-slow-read",
        daemon=True,
    ).start()
    return reading


def _left(reading: _Call[str], key: str, seconds: float) -> float:
    left = reading.began + seconds - time.monotonic()
    if left <= 0 and not reading.done.is_set():
        raise StillReading(f"{key}: a read of it begun {seconds:g}s ago or more has not returned")
    return max(left, 0.0)


def read_within(key: str, *, read: Callable[[str], str], seconds: float) -> str:
    """``read(key)`` on a daemon thread (or the read of ``key`` already in flight), waited
    for at most ``seconds`` from when that read began; StillReading when it is not done
    by then. An error of ``read`` is raised as it is."""
    reading = _start(key, read)
    if not reading.done.wait(_left(reading, key, seconds)):
        raise StillReading(f"{key}: not read within {seconds:g}s")
    return reading.outcome()


async def read_within_async(key: str, *, read: Callable[[str], str], seconds: float) -> str:
    """:func:`read_within` awaited: the loop goes on meanwhile, and no thread waits."""
    reading = _start(key, read)
    left = _left(reading, key, seconds)
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake() -> None:  # (on the reader's thread)
        with contextlib.suppress(RuntimeError):  # a loop closed since
            loop.call_soon_threadsafe(_settle, woken)

    with _LOCK:
        if not reading.done.is_set():
            reading.waiters.append(wake)
    try:
        if not reading.done.is_set():
            await asyncio.wait_for(woken, left)
    except TimeoutError:
        raise StillReading(f"{key}: not read within {seconds:g}s") from None
    finally:
        with _LOCK, contextlib.suppress(ValueError):
            reading.waiters.remove(wake)  # (a hung read tried again keeps no list)
    return reading.outcome()


def _settle(woken: asyncio.Future[None]) -> None:
    if not woken.done():  # (not cancelled by its waiter's timeout meanwhile)
        woken.set_result(None)


async def in_daemon_thread(
    call: Callable[[], T], *, name: str, abandoned: Callable[[T], None] | None = None
) -> T:
    """``call()`` on a daemon thread of its own, awaited. When the awaiting task is
    cancelled, the thread goes on, and ``abandoned`` gets its result if it has one (on
    whichever thread has it last: a snapshot it made is removed, say)."""
    running: _Call[T] = _Call()
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()
    gave_up = False

    def then() -> None:  # (under _LOCK, on the thread)
        if gave_up:
            if abandoned is not None and running.error is None:
                abandoned(running.result)  # type: ignore[arg-type]
            return
        with contextlib.suppress(RuntimeError):  # a loop closed since
            loop.call_soon_threadsafe(_settle, woken)

    threading.Thread(
        target=running.run, args=(call,), kwargs={"then": then}, name=name, daemon=True
    ).start()
    try:
        await woken
    except asyncio.CancelledError:
        with _LOCK:
            gave_up = True
            done = running.done.is_set()
        if done and abandoned is not None and running.error is None:
            abandoned(running.result)  # type: ignore[arg-type]
        raise
    return running.outcome()
