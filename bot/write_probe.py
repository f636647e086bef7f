"""Whether the database takes a write now: the probe of ``/healthz``, and of a reload
before it stops this process (audit26b disk H1, recheck26 N1: the restart died at its
first write, leaving no server).

A row is really written (the process's heartbeat: an empty transaction commits on a full
disk too), waited for ``within`` seconds at most, as a probe must not hang with the
writer. A write not done by then is told apart by what the writer does (review28 R5 M3:
a slow but working disk answered a false 503, and Kubernetes restarts a process so
told, which makes its backlog worse):

- it waits for the write lock another process holds (``Store.lock_wait_began``): refused,
  naming the lock, at once (its agents' writes wait 8 s, then get 503s: audit28 L2);
- it commits (``Store.commit_began``, the fsync of a slow disk) for less than
  :data:`STUCK_SECONDS`, or a batch committed while the probe waited: working, slowly:
  not refused, said ``slow``;
- else (one commit for longer than that, or none under way and none done): ``stuck``,
  refused: the disk does not answer.

Example:
    >>> Probed(slow="no write within 0.8s").refused is None
    True
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bot.alerts import heartbeats
from guards.errors import StorageUnavailable
from guards.store import Store

__all__ = ["STUCK_SECONDS", "Probed", "probe_write"]

STUCK_SECONDS = 5.0  # one commit longer than this is a disk that does not answer


@dataclass(frozen=True, slots=True)
class Probed:
    """What a probe found: ``refused`` says why no write goes through (a 503), ``stuck``
    when that is because the writer does not answer (rather than the database refusing);
    ``slow`` says the write is late but the writer works (a 200); ``locked`` that another
    process holds the write lock (agents' writes wait for it, then get 503s)."""

    refused: str | None = None
    stuck: bool = False
    slow: str | None = None
    locked: bool = False


async def probe_write(store: Store, *, within: float) -> Probed:
    """Write the heartbeat's row and say what came of it within ``within`` seconds."""
    if lost := store.file_lost():
        return Probed(refused=lost)
    batches = store.batches
    write = asyncio.ensure_future(store.write(lambda tx: heartbeats.alive(tx, now=tx.clock.now())))
    write.add_done_callback(_taken)
    try:
        await asyncio.wait_for(asyncio.shield(write), within)
    except StorageUnavailable as exc:
        return Probed(refused=exc.cause)
    except TimeoutError:
        return _late(store, within=within, committed=store.batches != batches)
    return Probed()


def _late(store: Store, *, within: float, committed: bool) -> Probed:
    """What a write not done within ``within`` seconds means, from what the writer does."""
    now = time.monotonic()
    if (began := store.lock_wait_began) is not None:  # (a 1 s probe cannot wait 8 s)
        return Probed(
            refused=(
                f"another process holds its write lock, waited for {now - began:.1f}s so far:"
                " a sqlite3 shell or a backup tool in a transaction?"
            ),
            locked=True,
        )
    committing = store.commit_began
    if committed or (committing is not None and now - committing < STUCK_SECONDS):
        return Probed(
            slow=(
                f"no write within {within:g}s, but the database is committing writes (a slow"
                " disk): agents' calls go through, slowly"
            )
        )
    if committing is not None:
        return Probed(
            refused=(
                f"no write within {within:g}s: a commit has waited {now - committing:.1f}s"
                " for the disk"
            ),
            stuck=True,
        )
    return Probed(refused=f"no write went through in {within:g}s", stuck=True)


def _taken(write: asyncio.Future[None]) -> None:
    """Take the outcome of a probe's write nobody awaits once it is late (a refusal then
    is the store's to log, not asyncio's "exception was never retrieved")."""
    if not write.cancelled():
        write.exception()
