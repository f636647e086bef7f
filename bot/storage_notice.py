"""Telling the alerts channel that the database refuses writes, and when it takes them again.

While the database refuses writes (a full disk, another process holding its write lock),
every agent call is answered 503 and nothing else in Slack says so: alerts and replies go
out through the outbox, which lives in that database. So this component looks at
:meth:`guards.store.Store.outage` every :data:`POLL_SECONDS`. Outages less than
:data:`QUIET_SECONDS` apart are one troubled period (a disk hovering at full: one write
that fits ends an outage, the next fills it again; a lock taken and let go): once a period
is :data:`NOTICE_AFTER_SECONDS` old and writes are still refused, it posts one message to
the alerts channel directly (the outbox's own deliverer: Slack's Web API, or the console
in shell mode), "since" the period's first refusal, then one reply in its thread once
writes have been taken for :data:`QUIET_SECONDS`, with the period's length and every write
refused over it. One try each: a post that fails is logged, not retried (the log says the
outage once a minute anyway).

Example:
    >>> # in Nightshift._build_components: [..., StorageNotice()]
    >>> # await ns.extras["storage_notice"].check()  # look now (tests)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.alerts.messages import DEFAULT_CHANNEL
from bot.alerts.render_time import clock_time, duration
from bot.escape import slack_text
from bot.outbox_delivery import Delivered, Deliverer, DeliveryFailed, RetryLater
from guards.store_watch import Outage
from guards.words import plural

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = [
    "NOTICE_AFTER_SECONDS",
    "POLL_SECONDS",
    "QUIET_SECONDS",
    "StorageNotice",
    "command_refused_text",
]

log = logging.getLogger(__name__)
POLL_SECONDS = 5.0  # how often the store's outage is looked at
NOTICE_AFTER_SECONDS = 60.0  # writes refused this long are said in the alerts channel
STOP_POST_SECONDS = 3.0  # a stop during an outage says so, waiting this long at most
MIN_POST_SECONDS = 0.5  # ... but gives its own post this long, even after a slow 🔴
# writes taken this long end a troubled period: outages closer together are one (audit26b M2)
QUIET_SECONDS = 30.0
STOPPED_TEXT = (
    "⚪ Nightshift stops while its database still refuses writes: no end will be posted"
    " here; once it runs again, `/agent status` says whether it can write."
)


def refused_text(outage: Outage, *, tz: ZoneInfo, now: float, lost: bool = False) -> str:
    """The post that writes are refused (``lost``: the database file is gone from its path,
    which only a person mends: its cause says how)."""
    # (a lost file's last writes may be lost with it: no "nothing is lost" then)
    # ("while", not "every call until": a disk hovering at full takes some writes and
    # refuses others in one notice's period: review27 L6)
    until = "" if lost else "; nothing is lost"
    return (
        f"🔴 Nightshift cannot write to its database since"
        f" {clock_time(outage.since, tz, now=now)}: {slack_text(outage.cause, 300)}."
        f" Agent calls are refused with 503 while it cannot{until}."
    )


def command_refused_text(cause: str) -> str:
    """The reply to a Slack command (or button) whose write the database refused: said to
    the person who typed it, not in the agents' "send it again in a few seconds"."""
    return (
        f"Nothing was changed: Nightshift cannot write to its database right now"
        f" ({slack_text(cause, 300)}). Agents' calls are refused too. Run this again in a"
        " minute (if a 🔴 notice is in the alerts channel, once it has its ✅ reply);"
        " `/agent status` says whether it can write."
    )


def accepted_text(outage: Outage, *, ended: float) -> str:
    """The post that writes work again (``outage``: the whole troubled period)."""
    return (
        f"✅ Nightshift writes to its database again after {duration(ended - outage.since)}"
        f" ({plural(outage.refused, 'write')} refused meanwhile)."
    )


@dataclass
class _Period:
    """Outages less than :data:`QUIET_SECONDS` apart (the store's clock): from the first
    refusal ``since`` to ``until`` (writes taken again then; or refused still, at the last
    look), the last ``cause``, and the store's count of refused writes before it."""

    since: float
    until: float
    cause: str
    baseline: int
    said: bool = False  # its 🔴 was posted (or tried)
    thread: Delivered | None = None  # where it was posted (None: not, or it failed)

    def outage(self, refused: int = 0) -> Outage:
        return Outage(since=self.since, cause=self.cause, refused=refused)


class StorageNotice:
    """A component (``ns.extras["storage_notice"]``): the outage post and its end."""

    def __init__(self) -> None:
        self._ns: Nightshift | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._period: _Period | None = None  # the troubled period, not over yet
        # the 🔴 post under way: a stop waits for it (its thread is where the stop's words go)
        self._red: asyncio.Future[Delivered | None] | None = None
        # the last look (the store's clock), and the last one that saw no period, with the
        # store's count of refused writes then: whatever was refused after it is a period's
        self._looked_at = float("-inf")
        self._idle_at = float("-inf")
        self._baseline = 0

    @property
    def ns(self) -> Nightshift:
        if self._ns is None:
            raise RuntimeError("the storage notice is not started")
        return self._ns

    @property
    def channel(self) -> str:
        """The alerts channel, as the alert engine names it for the whole fleet."""
        return self.ns.policy.channels.alerts or DEFAULT_CHANNEL

    async def start(self, ns: Nightshift) -> None:
        self._ns = ns
        self._idle_at, self._baseline = ns.clock.now(), ns.store.refused_writes
        ns.clock_watch.on_step.append(self._clock_moved)
        ns.extras["storage_notice"] = self
        self._task = asyncio.create_task(self._run(), name="nightshift-storage-notice")

    async def stop(self, ns: Nightshift) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(ValueError):
            ns.clock_watch.on_step.remove(self._clock_moved)
        period, self._period = self._period, None
        if period is None or not period.said:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_POST_SECONDS  # for both posts: a stop ends within seconds
        red, self._red = self._red, None
        if red is not None and period.thread is None:  # the stop landed during the 🔴 post
            done, _ = await asyncio.wait({red}, timeout=STOP_POST_SECONDS)
            if red in done and not red.cancelled() and red.exception() is None:
                period.thread = red.result()
            red.cancel()  # (if still under way: the stop's words go top-level)
        if ns.store.outage() is not None:  # its end is not seen
            text, what = STOPPED_TEXT, "Nightshift stops"
        else:  # taken again, if not for the quiet time yet: the 🔴 is not left without an end
            text, what = self._ended(period), "the database accepts writes again"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._post(text, thread=period.thread, what=what),
                max(deadline - loop.time(), MIN_POST_SECONDS),
            )

    def _clock_moved(self, seconds: float) -> None:
        """Move the times kept with a step of the wall clock, as the store's outages move
        (a period's length and quiet time are real seconds)."""
        self._idle_at += seconds
        self._looked_at += seconds
        if (period := self._period) is not None:
            period.since += seconds
            period.until += seconds

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.check()
            except Exception:  # the next look tries again
                log.exception("the storage notice failed; it looks again in %ss", POLL_SECONDS)

    async def check(self) -> None:
        """Post that writes are refused (once a troubled period is a minute old and they
        still are), or that they work again (once, after such a post, when the period is
        over: writes taken for :data:`QUIET_SECONDS`)."""
        async with self._lock:
            store = self.ns.store
            outage, ended = store.outage(), store.ended_outage
            now = self.ns.clock.now()
            # refused since the last look: an outage now, or one that ended since
            lately = ended if ended is not None and ended[1] > self._looked_at else None
            period = self._period
            if period is None and (outage is not None or lately is not None):
                # every outage after the last look that saw none is this period's
                starts = [o.since for o, until in store.ended_outages if until > self._idle_at]
                if outage is not None:
                    starts.append(outage.since)
                since = min(starts, default=now)
                period = _Period(since=since, until=since, cause="", baseline=self._baseline)
                self._period = period
            if period is not None:
                if outage is not None:
                    period.until, period.cause = now, outage.cause
                elif lately is not None:
                    period.until, period.cause = max(period.until, lately[1]), lately[0].cause
                if (
                    not period.said
                    and (outage is not None or lately is not None)
                    and now - period.since >= NOTICE_AFTER_SECONDS
                ):
                    period.said = True
                    lost = store.file_lost() is not None
                    tz = ZoneInfo(self.ns.policy.timezone)
                    # shielded: a stop meanwhile waits for it, so that its words go in the
                    # 🔴's thread, not beside a 🔴 Slack did get (review27 L8)
                    self._red = asyncio.ensure_future(
                        self._post(
                            refused_text(period.outage(), tz=tz, now=now, lost=lost),
                            thread=None,
                            what="the database refuses writes",
                        )
                    )
                    period.thread = await asyncio.shield(self._red)
                elif outage is None and now - period.until >= QUIET_SECONDS:
                    self._period = None
                    if period.said:
                        await self._post(
                            self._ended(period),
                            thread=period.thread,
                            what="the database accepts writes again",
                        )
            if self._period is None:
                self._idle_at, self._baseline = now, store.refused_writes
            self._looked_at = now

    def _ended(self, period: _Period) -> str:
        """The ✅ of a period: its length, and every write refused over it."""
        refused = self.ns.store.refused_writes - period.baseline
        return accepted_text(period.outage(refused), ended=period.until)

    async def _post(self, text: str, *, thread: Delivered | None, what: str) -> Delivered | None:
        """One try, straight to Slack (or the console): the outbox cannot take it."""
        args: dict[str, Any] = {"channel": self.channel, "text": text}
        if thread is not None and thread.ts:
            args.update(channel=thread.channel or self.channel, thread_ts=thread.ts)
            args["reply_broadcast"] = True  # seen in the channel too, not only in the thread
        deliverer: Deliverer = self.ns.extras["outbox"].deliverer
        try:
            return await deliverer.deliver("chat.postMessage", args)
        except (RetryLater, DeliveryFailed) as exc:
            log.warning("could not tell %s that %s (%s); not tried again", self.channel, what, exc)
            return None
