"""Telling the alerts channel that the database refuses writes, and when it takes them again.

While the database refuses writes (a full disk, another process holding its write lock),
every agent call is answered 503 and nothing else in Slack says so: alerts and replies go
out through the outbox, which lives in that database. So this component looks at
:meth:`guards.store.Store.outage` every :data:`POLL_SECONDS` and, once writes have been
refused for :data:`NOTICE_AFTER_SECONDS`, posts one message to the alerts channel
directly (the outbox's own deliverer: Slack's Web API, or the console in shell mode),
then one reply in its thread when writes work again. One try each: a post that fails is
logged, not retried (the log says the outage once a minute anyway).

Example:
    >>> # in Nightshift._build_components: [..., StorageNotice()]
    >>> # await ns.extras["storage_notice"].check()  # look now (tests)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.alerts.messages import DEFAULT_CHANNEL
from bot.alerts.render_time import clock_time, duration
from bot.escape import slack_text
from bot.outbox_delivery import Delivered, Deliverer, DeliveryFailed, RetryLater
from guards.store_watch import Outage

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["NOTICE_AFTER_SECONDS", "POLL_SECONDS", "StorageNotice"]

log = logging.getLogger(__name__)
POLL_SECONDS = 5.0  # how often the store's outage is looked at
NOTICE_AFTER_SECONDS = 60.0  # writes refused this long are said in the alerts channel
STOP_POST_SECONDS = 3.0  # a stop during an outage says so, waiting this long at most
STOPPED_TEXT = (
    "⚪ Nightshift stops while its database still refuses writes: no end will be posted"
    " here; once it runs again, `/agent status` says whether it can write."
)


def refused_text(outage: Outage, *, tz: ZoneInfo, now: float, lost: bool = False) -> str:
    """The post that writes are refused (``lost``: the database file is gone from its path,
    which only a person mends: its cause says how)."""
    # (a lost file's last writes may be lost with it: no "nothing is lost" then)
    until = " meanwhile" if lost else " until it can; nothing is lost"
    return (
        f"🔴 Nightshift cannot write to its database since"
        f" {clock_time(outage.since, tz, now=now)}: {slack_text(outage.cause, 300)}."
        f" Every agent call is refused with 503{until}."
    )


def accepted_text(outage: Outage, *, ended: float) -> str:
    """The post that writes work again."""
    return (
        f"✅ Nightshift writes to its database again after {duration(ended - outage.since)}"
        f" ({outage.refused:,} writes refused meanwhile)."
    )


class StorageNotice:
    """A component (``ns.extras["storage_notice"]``): the outage post and its end."""

    def __init__(self) -> None:
        self._ns: Nightshift | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._said: Outage | None = None  # the outage posted, whose end is not said yet
        self._thread: Delivered | None = None  # where it was posted (None: it failed)

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
        ns.extras["storage_notice"] = self
        self._task = asyncio.create_task(self._run(), name="nightshift-storage-notice")

    async def stop(self, ns: Nightshift) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._said is not None and ns.store.outage() is not None:  # its end is not seen
            thread, self._said, self._thread = self._thread, None, None
            with contextlib.suppress(TimeoutError):  # a stop ends within seconds
                await asyncio.wait_for(
                    self._post(STOPPED_TEXT, thread=thread, what="Nightshift stops"),
                    STOP_POST_SECONDS,
                )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.check()
            except Exception:  # the next look tries again
                log.exception("the storage notice failed; it looks again in %ss", POLL_SECONDS)

    async def check(self) -> None:
        """Post that writes are refused (once they have been for a minute), or that they
        work again (once, after such a post)."""
        async with self._lock:
            store = self.ns.store
            outage = store.outage()
            now = self.ns.clock.now()
            said = self._said
            if said is not None and (outage is None or outage.since != said.since):
                ended = store.ended_outage
                final, at = ended if ended and ended[0].since == said.since else (said, now)
                self._said = None
                thread, self._thread = self._thread, None
                await self._post(
                    accepted_text(final, ended=at),
                    thread=thread,
                    what="the database accepts writes again",
                )
            if (
                self._said is None
                and outage is not None
                and now - outage.since >= NOTICE_AFTER_SECONDS
            ):
                self._said = outage
                lost = store.file_lost() is not None
                self._thread = await self._post(
                    refused_text(outage, tz=ZoneInfo(self.ns.policy.timezone), now=now, lost=lost),
                    thread=None,
                    what="the database refuses writes",
                )

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
