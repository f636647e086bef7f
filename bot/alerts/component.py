"""The alerts component: consumes events as they commit and ticks the timers.

Started by the process (``Nightshift._build_components``). It handles the events
left undispatched by a previous run at start, then every event as soon as the bus
announces its commit, and runs :meth:`AlertEngine.tick` every ``TICK_SECONDS`` on
the scheduler. Tests drive it directly: ``await component.process()`` and
``await component.tick()`` after moving a ManualClock.

Example:
    >>> # alerts = ns.extras["alerts"]
    >>> # await alerts.tick()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from bot.alerts import hanging, heartbeats, paging
from bot.alerts.engine import BATCH, AlertEngine
from bot.alerts.escalation import Chain
from bot.alerts.messages import DEFAULT_CHANNEL
from bot.alerts.refused import Memory, on_refused
from bot.alerts.repost import repost_failed
from bot.alerts.trial_sizes import resize_trial_requests
from bot.outbox_delivery import RefusalHook, Refused
from guards.events import Event

if TYPE_CHECKING:
    from bot.app import Nightshift
    from guards.store import Store, Tx

__all__ = ["TICK_SECONDS", "AlertsComponent"]

log = logging.getLogger(__name__)
TICK_SECONDS = 2


class AlertsComponent:
    """Owns the :class:`AlertEngine` of the process (``ns.extras["alerts"]``)."""

    def __init__(self) -> None:
        self._engine: AlertEngine | None = None
        self._store: Store | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._hooked: list[RefusalHook] | None = None
        self._refusals = Memory()  # what refusals the process remembers (bot.alerts.refused)
        # the end of the last span of refused writes the watchdog was told of
        self._refused_until = float("-inf")

    @property
    def engine(self) -> AlertEngine:
        if self._engine is None:
            raise RuntimeError("the alerts component is not started")
        return self._engine

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the alerts component is not started")
        return self._store

    async def start(self, ns: Nightshift) -> None:
        if ns.settings.transport != "shell" and not ns.policy.channels.alerts:
            log.warning(
                "no alerts channel (channels.alerts): alerts go to a channel named %s;"
                " invite the bot there, or name yours in the policy",
                DEFAULT_CHANNEL,
            )
        if ns.settings.transport != "shell" and not Chain.from_policy(ns.policy).steps:
            log.warning(
                "no on-call rotation nor escalation chain (oncall): alerts are posted to the"
                " channel and nobody is paged; name rotations and steps in the policy"
            )
        self._engine = AlertEngine(policy=ns.policy, ledger=ns.ledger)
        ns.clock_watch.deadlines.append(self._clock_stepped)
        ns.clock_watch.on_step.append(self._clock_moved)
        # beats lost while we were down are not missed: the downtime is taken off each
        # agent's silence (a database with no mark of its last run forgives a window)
        now = ns.clock.now()
        known = await ns.store.write(lambda tx: heartbeats.started(tx, now=now))
        self._engine.watching_since = None if known else now
        self._store = ns.store
        ns.extras["alerts"] = self
        ns.bus.subscribe(self._on_event)
        worker = ns.extras.get("outbox")  # started before us (bot.slack.transport_components)
        if worker is not None:  # a call of ours Slack refused: bot.alerts.refused
            self._hooked = worker.refusal_hooks
            self._hooked.append(self._refused)
        try:
            # a post Slack refused for good (a wrong channel, fixed since): posted again
            await self.store.write(lambda tx: repost_failed(self.engine, tx, now=tx.clock.now()))
            # a reload that changed the trial size: the waiting requests say the new one
            await self.store.write(lambda tx: resize_trial_requests(self.engine, tx, ns.breakers))
            await self.process()  # what a previous run left undispatched
            await self.tick()  # timers that fell due while we were down run now, not later
        except Exception:  # rows an earlier run or policy left must not stop the start
            log.exception(
                "alerts: catching up at start failed; the tick retries every %ss", TICK_SECONDS
            )
        self._task = asyncio.create_task(self._run(), name="nightshift-alerts")
        ns.every(TICK_SECONDS, self.tick, name="alerts-tick")
        ns.every(hanging.SWEEP_SECONDS, self.hanging, name="hanging-holds")

    def _refused(self, tx: Tx, refused: Refused) -> bool:
        return on_refused(self.engine, tx, refused, self._refusals)

    def _clock_stepped(self, tx: Tx, seconds: float) -> None:
        """Move the alerts' and the watchdog's stored times with a step of the wall clock."""
        paging.clock_stepped(tx, seconds)
        heartbeats.clock_stepped(tx, seconds)
        engine = self.engine
        if engine.watching_since is not None:
            moved = engine.watching_since + seconds

            def move() -> None:
                engine.watching_since = moved

            tx.after_commit.append(move)

    def _clock_moved(self, seconds: float) -> None:
        """The end of the outages told moves at once, as the store's spans do."""
        self._refused_until += seconds

    async def stop(self, ns: Nightshift) -> None:
        if self._hooked is not None and self._refused in self._hooked:
            self._hooked.remove(self._refused)
        if self._clock_stepped in ns.clock_watch.deadlines:
            ns.clock_watch.deadlines.remove(self._clock_stepped)
        if self._clock_moved in ns.clock_watch.on_step:
            ns.clock_watch.on_step.remove(self._clock_moved)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _on_event(self, event_id: int, event: Event) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.process()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alerts: processing events failed; the tick retries")

    async def process(self) -> int:
        """Handle every undispatched event; returns how many."""
        total = 0
        while True:
            n = await self.store.write(self.engine.process_pending)
            total += n
            if n < BATCH:
                return total

    async def hanging(self) -> int:
        """Raise the holds that began to hang (``alerts.hanging_after``) and resolve the
        alerts of agents with none left; returns how many holds were raised."""
        return await self.store.write(lambda tx: hanging.sweep(self.engine, tx))

    async def tick(self) -> dict[str, int]:
        """Run the timers once (watchdog, events, silences, resolution, chains, updates)."""
        # (a step of the clock since the last look moves the beats first: the batch's hook)
        store = self.store
        told: list[tuple[float, float]] = []

        def tick(tx: Tx) -> dict[str, int]:
            # The spans the database refused writes in are not agents' silence: those that
            # ended since the last tick, and one going on still (this very batch may be
            # the one that ends it: its watchdog must not page for it). Read as the tick
            # runs, not as it is queued: a write just before it may end one (review25 H1).
            told[:] = [
                (outage.since, until)
                for outage, until in store.ended_outages
                if until > self._refused_until
            ]
            refused = list(told)
            if (outage := store.outage()) is not None:
                refused.append((outage.since, tx.clock.now()))
            return self.engine.tick(tx, refused=refused)

        done = await store.write(tick)
        if told:
            self._refused_until = max(until for _, until in told)
        if done["events"] >= BATCH:
            done["events"] += await self.process()
        return done
