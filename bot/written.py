"""Recording what already happened elsewhere: a refused write is waited out, not dropped.

An agent's call the database refuses gets a 503 and is sent again by its caller. What
Slack or a job's endpoint already answered has no caller to send it again: dropping its
record would post the message a second time at the next pass (audit26 chaos H1) or leave a
job's run "running" for good, skipping every later fire (H2). So such a write is tried
again, waiting longer each time, until the database takes it, or the process stops. A
caller that may record it by another way (the jobs tick writes a run's outcome before it
decides the job's next fire) passes ``wake``: set, it ends the wait at once.

Example:
    >>> # await until_written(lambda: store.write(mark), refused=say)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from guards.errors import StorageUnavailable

__all__ = ["FIRST_WAIT_SECONDS", "MAX_WAIT_SECONDS", "until_written"]

FIRST_WAIT_SECONDS = 1.0
MAX_WAIT_SECONDS = 10.0  # (each try waits out a lock for up to 8 s itself)

T = TypeVar("T")


async def until_written(
    attempt: Callable[[], Awaitable[T]],
    *,
    refused: Callable[[StorageUnavailable], None],
    wake: asyncio.Event | None = None,
) -> T:
    """``attempt()``'s result once the database took its write; ``refused`` is told of
    each refusal (to say it, not every time: the store's own log says it once a minute).
    ``wake``, once set, ends each wait between tries at once."""
    wait = FIRST_WAIT_SECONDS
    while True:
        try:
            return await attempt()
        except StorageUnavailable as exc:
            refused(exc)
        if wake is None:
            await asyncio.sleep(wait)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), wait)
        wait = min(wait * 2, MAX_WAIT_SECONDS)
