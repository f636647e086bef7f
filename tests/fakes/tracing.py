"""The statements the store's writer runs, traced from its own thread.

``sqlite3.Connection.set_trace_callback`` called from the event loop's thread holds the
GIL while it waits for the connection's mutex; the writer thread holds that mutex while
its statement (a batch's ``BEGIN`` riding on the last commit, after the awaited write
already answered) calls the callback set before, which waits for the GIL: a deadlock
(CI hung in test_did_you_mean_policy, session 28). Set and cleared on the writer's own
thread (its one-thread executor), the call waits its turn behind the writer's work.

Example:
    >>> # async with writer_statements(store) as statements:
    >>> #     await store.write(op)
    >>> # [s for s in statements if s.startswith("INSERT")]
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from guards.store import Store

__all__ = ["on_writer", "writer_statements"]


async def on_writer(store: Store, call: Callable[..., object], *args: object) -> None:
    """``call(*args)`` on the writer's own thread, in its turn: a setter of the writer's
    connection (``set_progress_handler``, ``create_function``, ``set_trace_callback``),
    which from the event loop's thread can deadlock as said above."""
    await asyncio.get_running_loop().run_in_executor(store._executor, call, *args)


async def _on_writer(store: Store, callback: Callable[[str], object] | None) -> None:
    await on_writer(store, store._conn.set_trace_callback, callback)


@contextlib.asynccontextmanager
async def writer_statements(store: Store) -> AsyncIterator[list[str]]:
    """The statements the writer's connection runs while the block runs."""
    statements: list[str] = []
    await _on_writer(store, statements.append)
    try:
        yield statements
    finally:
        await _on_writer(store, None)
