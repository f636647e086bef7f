"""The daily digest: posted per namespace at ``digest.time`` in the namespace's time zone.

Each namespace's digest of a local day is due at ``digest.time`` the next day. A
tick (every 20 s on the scheduler, and once at start) posts the latest due day that
the ``digests`` table does not have yet, so a digest missed while Nightshift was down
is posted once when it comes back, and never twice: the row and the outbox rows are
written in one transaction. Older missed days are not posted (the latest says more).

A post is two outbox rows: ``chat.postMessage`` with the text and blocks to
``channels.digest``, then ``files.upload`` of the chart. The text stands alone if the
upload fails.

Example:
    >>> # poster = DigestPoster(); await poster.start(ns); await poster.tick()
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.digest.build import Built, DigestBuilder
from bot.digest.namespaces import LOOKBACK_SECONDS, digest_namespaces
from bot.digest.queries import day_bounds
from bot.digest.render import chart_legend
from bot.digest.rollup import DigestRollup
from bot.outbox import enqueue
from guards.store import Tx

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["DigestPoster", "PostedDigest", "digest_clock", "due_day"]

log = logging.getLogger(__name__)
TICK_SECONDS = 20


def digest_clock(at: str) -> time:
    """``digest.time`` (``"09:00"``) as a time of day."""
    hour, minute = (int(p) for p in at.split(":"))
    return time(hour, minute)


def due_day(now: float, tz: ZoneInfo, at: str) -> date:
    """The latest local day whose digest is due at ``now`` (it is due at ``at`` next day).

    >>> due_day(1767258000.0, ZoneInfo("UTC"), "09:00")  # 2026-01-01 09:00 UTC
    datetime.date(2025, 12, 31)
    """
    local = datetime.fromtimestamp(now, tz)
    # today's digest time as an instant: on the fall-back night the local hour after it
    # comes round again, and 01:29 the second time is after 01:30 the first (audit17 time L5)
    todays = datetime.combine(local.date(), digest_clock(at), tz).timestamp()
    back = 1 if todays <= now else 2
    return local.date() - timedelta(days=back)


def _before_todays_digest(created_at: float, now: float, tz: ZoneInfo, at: str) -> bool:
    """Whether a namespace began today before today's digest time, which has passed."""
    local = datetime.fromtimestamp(now, tz)
    digest_at = datetime.combine(local.date(), digest_clock(at), tz).timestamp()
    return created_at < digest_at <= now


class PostedDigest:
    """A ``digests`` row: what was posted for one namespace and day."""

    def __init__(self, row: Any) -> None:
        self.namespace: str = row[0]
        self.day: str = row[1]
        self.posted_at: float = row[2]
        self.channel: str = row[3]
        self.text: str = row[4]
        self.blocks: list[dict[str, Any]] = json.loads(row[5])
        self.chart: bool = bool(row[6])


class DigestPoster:
    """The digest component; ``ns.extras["digest"]``."""

    def __init__(self) -> None:
        self._ns: Nightshift | None = None
        self._builder: DigestBuilder | None = None
        self._lock = asyncio.Lock()
        self._warned: set[str] = set()

    @property
    def ns(self) -> Nightshift:
        if self._ns is None:
            raise RuntimeError("the digest is not started")
        return self._ns

    @property
    def builder(self) -> DigestBuilder:
        if self._builder is None:
            raise RuntimeError("the digest is not started")
        return self._builder

    async def start(self, ns: Nightshift) -> None:
        self._ns = ns
        self._builder = DigestBuilder(
            store=ns.store, policy=ns.policy, ledger=ns.ledger, prices=ns.prices, clock=ns.clock
        )
        ns.extras["digest"] = self
        ns.ledger.gates.append(DigestRollup())  # before the HTTP server takes a settle
        if not ns.policy.digest.enabled:
            log.info("the daily digest is disabled (digest.enabled: false)")
            return
        ns.every(TICK_SECONDS, self.tick, name="digest")
        try:
            await self.tick()  # a digest missed while we were down
        except Exception:
            log.exception("the digest catch-up failed; the next tick tries again")

    async def stop(self, ns: Nightshift) -> None:
        return None

    async def namespaces(self) -> list[tuple[str, float]]:
        """Namespaces with a digest (an agent of theirs reserved, was refused, beat,
        validated, ran a job, routed or was alerted on), with when each began; by name."""
        since = self.ns.clock.now() - LOOKBACK_SECONDS
        zone = self.builder.timezone
        return await self.ns.store.read(
            lambda tx: digest_namespaces(tx, since=since, timezone=zone)
        )

    async def tick(self) -> list[tuple[str, date]]:
        """Post every namespace's latest due digest that was not posted yet."""
        policy = self.ns.policy
        channel = policy.channels.digest
        if not policy.digest.enabled:
            return []
        posted: list[tuple[str, date]] = []
        async with self._lock:
            now = self.ns.clock.now()
            for namespace, created_at in await self.namespaces():
                tz = self.builder.timezone(namespace)
                day = due_day(now, tz, policy.digest.time)
                first_day = created_at >= day_bounds(day, tz)[1]  # not there on the due day
                if first_day and not _before_todays_digest(created_at, now, tz, policy.digest.time):
                    continue  # its first full day's digest comes tomorrow
                if await self.posted(namespace, day) is not None:
                    continue
                if channel is None:
                    if namespace not in self._warned:
                        log.warning("no digest channel (channels.digest): digests are not posted")
                        self._warned.add(namespace)
                    continue
                if first_day:
                    # A namespace that began today, before the digest time: its day so far,
                    # so a new install sees its digest at the time it set. Recorded under the
                    # due day, so tomorrow's digest of the whole of today still posts.
                    built = await self.builder.build(
                        namespace, day + timedelta(days=1), partial=True
                    )
                else:
                    built = await self.builder.build(namespace, day)
                post = partial(self._post, built=built, channel=channel, day=day)
                if await self.ns.store.write(post):
                    posted.append((namespace, day))
                    shown = built.digest
                    log.info(
                        "posted the digest of %s for %s%s",
                        namespace,
                        shown.day,
                        " so far" if shown.partial else "",
                    )
        return posted

    def _post(self, tx: Tx, *, built: Built, channel: str, day: date) -> bool:
        """Record ``day``'s digest and queue its messages, unless it was posted already."""
        d = built.digest
        shown = d.day.isoformat()
        cur = tx.execute(
            "INSERT OR IGNORE INTO digests (namespace, day, posted_at, channel, text, blocks,"
            " chart) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                d.namespace,
                day.isoformat(),
                # when its figures were read: the next digest's late charges start there,
                # so none that lands while this one is built falls between the two
                d.generated_at,
                channel,
                built.text,
                json.dumps(built.blocks),
                int(built.png is not None),
            ),
        )
        if cur.rowcount == 0:
            return False
        ref = f"digest:{d.namespace}:{day.isoformat()}"
        enqueue(
            tx,
            method="chat.postMessage",
            args={"channel": channel, "text": built.text, "blocks": built.blocks},
            ref=ref,
        )
        if built.png is not None:
            enqueue(
                tx,
                method="files.upload",
                args={
                    "channel": channel,
                    "filename": f"nightshift-spend-{d.namespace}-{shown}.png",
                    "title": f"Spend by agent, last 7 days ({d.namespace}, to {shown})",
                    "initial_comment": chart_legend(d),
                    "content_b64": base64.b64encode(built.png).decode("ascii"),
                },
                ref=f"{ref}:chart",
            )
        return True

    async def posted(self, namespace: str, day: date) -> PostedDigest | None:
        rows = await self.ns.store.fetch(
            "SELECT namespace, day, posted_at, channel, text, blocks, chart FROM digests"
            " WHERE namespace = ? AND day = ?",
            (namespace, day.isoformat()),
        )
        return PostedDigest(rows[0]) if rows else None

    def today(self, namespace: str) -> date:
        tz = self.builder.timezone(namespace)
        return datetime.fromtimestamp(self.ns.clock.now(), tz).date()
