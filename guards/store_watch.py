"""What the store watches and tells of its database's trouble: the path no longer naming
the file it writes (nor ``<db>-wal`` the WAL it writes into), and writes the database
refused, logged once a minute, then once when writes are accepted again (every write
for :data:`RECOVERED_SECONDS` went through: one that squeezes in between refusals, on a
disk hovering at full, is no recovery: audit28 L1); meanwhile
:meth:`StorageWatch.outage` says since when, why, and how many were refused
(:class:`guards.store.Store`; telling trouble from a bug: :mod:`guards.store_trouble`).

Example:
    >>> # outage = store.outage()
    >>> # if outage is not None: print(f"refused since {outage.since}: {outage.cause}")
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, replace

from guards.clock import Clock
from guards.config_types import format_seconds
from guards.store_trouble import cause, identity, likely_cause
from guards.words import plural

__all__ = [
    "ENDED_KEPT",
    "LOST_CHECK_SECONDS",
    "RECOVERED_SECONDS",
    "REPORT_EVERY_SECONDS",
    "Outage",
    "StorageWatch",
]

# the store's own logger, whichever module of it logs: operators filter on it
log = logging.getLogger("guards.store")
REPORT_EVERY_SECONDS = 60.0  # a database refusing every batch is logged once a minute
ENDED_KEPT = 64  # outages that ended, kept for whoever has not read them yet
LOST_CHECK_SECONDS = 0.5  # how often a batch looks whether the path still names the file
# writes taken this long, none refused, before the log says they are accepted again (the
# storage notice's ✅ waits as long: bot.storage_notice.QUIET_SECONDS)
RECOVERED_SECONDS = 30.0
WAL_LOST = (
    "the database's WAL file {wal} {why} while Nightshift runs: the latest writes are only in"
    " the files it still holds open; stop Nightshift (SIGTERM, not kill -9: a clean stop copies"
    " them into the database) and start it again; delete -wal and -shm only once it has stopped"
)


@dataclass(frozen=True)
class Outage:
    """Writes refused since ``since`` (Unix seconds, the store's clock: when the first
    write it refused came), the last one for ``cause`` (in a line, with what to do when
    it is known), ``refused`` writes in all (an agent's among them was answered 503). It
    ends at the first commit that writes a row."""

    since: float
    cause: str
    refused: int


class StorageWatch:
    """Whether the database file is still there, and the log of refused writes."""

    path: str
    clock: Clock
    storage_refusals: int  # batches, or single writes, the database refused
    # writes the database refused, over every outage: a reader counts what refused between
    # two of its looks, outages that came and went between them too (the storage notice)
    refused_writes: int = 0
    # a refusal does not end the process (a running server): the log says it goes on by
    # itself; a start or a CLI command exits at one, so it does not
    serving: bool
    _outage: Outage | None
    # the latest outages that ended, each with when (the store's clock): the heartbeat
    # watchdog takes them off agents' silences (their beats were refused then too)
    ended_outages: deque[tuple[Outage, float]]
    _reported_at: float
    _unreported: int
    _said: bool  # the outage going on was named in the log
    # a named troubled period whose writes are taken again, not for RECOVERED_SECONDS yet:
    # its first refusal, when its last outage ended, and every write refused over it
    _recovering: Outage | None = None
    _recovering_from: float = 0.0
    _file: tuple[int, int] | None  # the file opened, to tell if the path still names it
    _wal: tuple[int, int] | None  # and its WAL (SQLite keeps it until the last close)
    _shm: tuple[int, int] | None  # and the WAL's index, which every connection shares
    _lost_checked_at: float
    _lost: str | None
    # when the first write of the batch being written came (the store's clock), or None
    _came: float | None

    def file_lost(self) -> str | None:
        """Why the path no longer names the database this store writes (deleted, or another
        file put there), or ``<db>-wal`` the WAL it writes into, or None. Writes would go
        into the open file and be lost at the next start (the WAL's: at a crash or kill):
        they are refused (503, logged once a minute) and ``/healthz`` fails.

        Three ``stat`` calls. SQLite keeps one WAL file while the store's connection is open:
        a checkpoint empties it in place (the same inode); only the last connection's
        close deletes it."""
        self._lost_checked_at = time.monotonic()
        self._lost = None
        if self._file is None:
            return None
        now = identity(self.path)
        if now != self._file:
            why = "was deleted" if now is None else "is now another file"
            self._lost = (
                f"the database file {self.path} {why} while Nightshift runs: what it writes goes"
                " to the file it opened, which is gone at the next start; put the file back, or"
                " restart it on purpose"
            )
        else:
            for suffix, opened in (("-wal", self._wal), ("-shm", self._shm)):
                if opened is not None and (now := identity(f"{self.path}{suffix}")) != opened:
                    # another process would open a new one beside it: each of the two
                    # would overwrite what the other wrote (recheck23 N2: a -shm deleted)
                    why = "was deleted" if now is None else "was replaced"
                    self._lost = WAL_LOST.format(wal=f"{self.path}{suffix}", why=why)
                    break
        return self._lost

    def _lost_lately(self) -> str | None:
        """:meth:`file_lost`, looked at most every :data:`LOST_CHECK_SECONDS` (a batch asks)."""
        if time.monotonic() - self._lost_checked_at >= LOST_CHECK_SECONDS:
            return self.file_lost()
        return self._lost

    @property
    def ended_outage(self) -> tuple[Outage, float] | None:
        """The last outage that ended, and when (the store's clock)."""
        return self.ended_outages[-1] if self.ended_outages else None

    def outage(self) -> Outage | None:
        """Since when writes are refused, why, and how many (None: they are accepted)."""
        return self._outage

    def clock_stepped(self, seconds: float) -> None:
        """Move the outages' times by a step of the wall clock (+: it went forward), as
        the stored deadlines and the agents' last beats move: a span keeps its real length
        beside beats read in the new frame (review25 M2). On the event loop, at once."""
        if self._outage is not None:
            self._outage = replace(self._outage, since=self._outage.since + seconds)
        if self._came is not None:
            self._came += seconds
        if self._recovering is not None:
            self._recovering = replace(self._recovering, since=self._recovering.since + seconds)
            self._recovering_from += seconds
        ended = [
            (replace(outage, since=outage.since + seconds), until + seconds)
            for outage, until in self.ended_outages
        ]
        self.ended_outages.clear()
        self.ended_outages.extend(ended)

    def _report(self, exc: BaseException, writes: int, *, came: float | None = None) -> None:
        """Log writes the database refused: the first with its traceback when its cause
        is not known (a lock, a full disk or a read-only file is said in words), then one
        line a minute. ``came``: when the first of them came (the store's clock), before
        it waited out a lock for seconds: an outage begins then (audit26 chaos M1)."""
        self.storage_refusals += 1
        self.refused_writes += writes
        last = self._outage
        self._outage = Outage(
            since=last.since
            if last is not None
            else came
            if came is not None
            else self.clock.now(),
            cause=f"{cause(exc)}{likely_cause(exc)}",
            refused=(last.refused if last is not None else 0) + writes,
        )
        now = time.monotonic()
        if now - self._reported_at < REPORT_EVERY_SECONDS:
            self._unreported += writes
            return
        since = (
            f" ({self._unreported} more refused since the last report)" if self._unreported else ""
        )
        first = self._reported_at == float("-inf")
        self._reported_at, self._unreported = now, 0
        self._said = True
        why = likely_cause(exc, goes_on=self.serving)
        # a start, a CLI command or an upkeep job answers no agent (audit26b L2)
        agents = " (agents' calls among them answered 503)" if self.serving else ""
        log.error(
            "the database %s refused writes: %s%s; %s refused%s%s",
            self.path,
            cause(exc),
            why,
            plural(writes, "write"),
            agents,
            since,
            exc_info=exc if first and not why else None,
        )

    def _committed(self, *, refused: bool) -> None:
        """A batch that wrote a row committed (``refused``: one of its operations was
        refused in its savepoint, as a full disk can, while the others went through)."""
        if self._outage is not None and not refused:
            self._accepted()  # the outage is over
        elif self._recovering is not None and self._outage is None and not refused:
            # ... and said so once it stays over; never at a batch with a refusal in it,
            # nor while an outage is on (review28 R5 L4)
            self._still_accepted()

    def _accepted(self) -> None:
        """A commit wrote a row: an outage, if there was one, is over. The log says so once
        writes have gone through for :data:`RECOVERED_SECONDS` (:meth:`_still_accepted`):
        one write that fits into a page freed on a full disk, between refusals, is no end
        to tell an operator of (audit28 L1: "accepts writes again" while every agent's
        call was still refused, and then no line while it went on)."""
        outage = self._outage
        if outage is None:
            return
        now = self.clock.now()
        self._outage = None
        self.ended_outages.append((outage, now))
        # Said once a minute across outages too: a disk hovering at full (freed a little,
        # filled again) wrote two lines a flap, thirty a minute (recheck27 R3). The end
        # of an outage the log never named is no news either, unless it belongs to a
        # named one not over yet.
        said, self._said = self._said, False
        earlier = self._recovering
        if earlier is not None:
            outage = replace(earlier, cause=outage.cause, refused=earlier.refused + outage.refused)
        elif not said:
            return
        self._recovering, self._recovering_from = outage, now

    def _still_accepted(self) -> None:
        """A commit wrote a row, with no outage: the end of a named one is said once its
        writes have been taken for :data:`RECOVERED_SECONDS` (one INFO line)."""
        period = self._recovering
        if period is None or self.clock.now() - self._recovering_from < RECOVERED_SECONDS:
            return
        self._recovering = None
        self._unreported = 0  # (this line counts them)
        log.info(
            "the database %s accepts writes again after %s (%s refused): every write for %s"
            " since went through",
            self.path,
            format_seconds(self._recovering_from - period.since),
            plural(period.refused, "write"),
            format_seconds(RECOVERED_SECONDS),
        )
