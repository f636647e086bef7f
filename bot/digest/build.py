"""Build one digest: read a snapshot, add the alert and heartbeat figures, compute, render.

The heavy reads run in a worker thread on their own read-only connection, so the
writer (and every agent's reservation) never waits for a digest.

Example:
    >>> # builder = DigestBuilder(store=ns.store, policy=ns.policy, ledger=ns.ledger,
    >>> #                         prices=ns.prices, clock=ns.clock)
    >>> # built = await builder.build("acme", date(2026, 1, 1))
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from bot.alerts.heartbeats import heartbeat_uptime
from bot.alerts.summary import alert_summary
from bot.digest.chart import spend_chart
from bot.digest.compute import Digest, compute
from bot.digest.queries import RawDay, read_day
from bot.digest.render import render
from guards.clock import Clock
from guards.config import Policy
from guards.ledger import Ledger
from guards.prices import PriceTable
from guards.scopes import subtree
from guards.store import Store

__all__ = ["Built", "DigestBuilder", "collect"]


@dataclass(frozen=True)
class Built:
    digest: Digest
    text: str
    blocks: list[dict[str, Any]]
    png: bytes | None  # None when nobody spent anything in the chart's 7 days


def collect(
    path: str,
    *,
    namespace: str,
    day: date,
    tz: ZoneInfo,
    clock: Clock,
) -> RawDay:
    """Read one day's rows in one snapshot."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA query_only=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA mmap_size=268435456")  # reads straight from the page cache
        conn.execute("BEGIN")
        raw = read_day(conn, namespace=namespace, day=day, tz=tz, now=clock.now())
        conn.execute("COMMIT")
    finally:
        conn.close()
    return raw


class DigestBuilder:
    """Makes digests from one database and policy."""

    def __init__(
        self, *, store: Store, policy: Policy, ledger: Ledger, prices: PriceTable, clock: Clock
    ) -> None:
        self.store = store
        self.policy = policy
        self.ledger = ledger
        self.prices = prices
        self.clock = clock

    def timezone(self, namespace: str) -> ZoneInfo:
        return ZoneInfo(self.policy.namespace_timezone(namespace))

    async def build(self, namespace: str, day: date, *, partial: bool = False) -> Built:
        """The digest of ``namespace`` for local ``day`` (``partial``: the day is not over)."""
        raw = await asyncio.to_thread(
            collect, self.store.path, namespace=namespace, day=day, tz=self.timezone(namespace),
            clock=self.clock,
        )  # fmt: skip
        paths = [namespace, *raw.agent_spent]
        limits, slack_limits = await self.store.write(
            lambda tx: (
                {p: self.ledger.limits(tx, p).get("day") for p in paths},
                self.ledger.run_time_overrides(tx, under=namespace),
            )
        )
        # the alerts of the model outages its traffic met count with the namespace's own
        outages = [
            (o.key, o.opened_at, raw.end if o.closed_at is None else o.closed_at)
            for o in raw.model_outages
        ]
        alerts = await self._alerts(namespace, raw.start, raw.end, also=outages)
        uptime = await self._uptime(namespace, raw.start, min(raw.end, raw.now))
        digest = compute(
            raw,
            policy=self.policy,
            prices=self.prices,
            limits=limits,
            alerts=alerts,
            uptime=uptime,
            partial=partial,
            slack_limits=slack_limits,
        )
        text, blocks = render(digest)
        png = None
        if digest.chart_series:
            png = spend_chart(digest.chart_labels, digest.chart_series)
        return Built(digest, text, blocks, png)

    async def _alerts(
        self,
        namespace: str,
        since: float,
        until: float,
        *,
        also: list[tuple[str, float, float]],
    ) -> dict[str, Any] | None:
        """This namespace's alert figures by tier, with those of the model outages its
        traffic met (``also``: key, from, to) (None: they could not be read)."""
        try:
            summary = await alert_summary(
                self.store, since=since, until=until, scope=namespace, also=also
            )
        except sqlite3.OperationalError:
            return None
        tiers = summary.get("tiers")
        return dict(tiers) if isinstance(tiers, dict) else None

    async def _uptime(self, namespace: str, since: float, until: float) -> dict[str, float]:
        try:
            uptime = await heartbeat_uptime(self.store, since=since, until=until)
        except sqlite3.OperationalError:
            return {}
        lo, hi = subtree(namespace)
        return {scope: f for scope, f in uptime.items() if lo <= scope < hi}
