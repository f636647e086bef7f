"""The process: one store, the guard engine, the HTTP server, the scheduler, the components.

Features plug in as *components*: objects with ``async start(ns)`` and
``async stop(ns)``, created in :meth:`Nightshift._build_components`. They are
started in order after the store and engine, and stopped in reverse order after
the HTTP server stops taking requests.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.alerts import shift_start
from bot.api import build_web_app
from bot.budget_ends import end_limits
from bot.clock_watch import ClockWatch
from bot.commands import load_commands
from bot.metrics import Metrics
from bot.reload import audit_policy_load, inherited_socket
from bot.run_lock import RunLock, serving
from bot.settings import Settings
from bot.start_warnings import (
    say_if_model_budgets_name_unknown,
    say_if_nothing_is_limited,
    say_if_tiers_look_wrong,
    say_what_slack_overrides,
)
from bot.write_probe import Probed, probe_write
from guards.breakers import Breakers
from guards.clock import Clock, SystemClock
from guards.config import Policy
from guards.errors import StorageUnavailable
from guards.events import EventBus
from guards.ledger import Ledger
from guards.prices import PriceTable
from guards.store import Store

__all__ = ["ChecksFirst", "Component", "Nightshift"]

log = logging.getLogger(__name__)
SWEEP_SECONDS = 5
STORE_CLOSE_SECONDS = 3.0  # a stop waits no longer for the last writes (exit within 10 s)
IDLE_CONNECTION_SECONDS = 75.0  # as nginx's keepalive_timeout; see _serve
# a request in flight when a stop or reload begins has this long: past the 2 s a Slack
# request takes at most to be acknowledged (bot.slack.surface), within Slack's 3 s
SHUTDOWN_SECONDS = 2.5
FIRST_RUN_SECONDS = 30  # an upkeep job's first run after start (then every interval)
BREAKER_TICK_SECONDS = 1  # a cool-down's end asks a human for the trial within a second


class Component(Protocol):
    async def start(self, ns: Nightshift) -> None: ...

    async def stop(self, ns: Nightshift) -> None: ...


@runtime_checkable
class ChecksFirst(Protocol):
    """A component with a check that may refuse the start and needs no database (Slack's
    word on its tokens): made before the database is opened, so that a refused start
    leaves no file behind and an older database at its schema (audit26 A1 M2)."""

    async def check_first(self, ns: Nightshift) -> None: ...


class Nightshift:
    """Everything one ``nightshift run`` hosts, wired together."""

    def __init__(
        self,
        *,
        settings: Settings,
        policy: Policy,
        clock: Clock | None = None,
        serve_http: bool = True,
        shell_reads_pipe: bool = True,
    ) -> None:
        self.settings = settings
        # shell mode: read /agent commands piped to stdin (the demo narrates, so it does not)
        self.shell_reads_pipe = shell_reads_pipe
        self.policy = policy
        self.clock: Clock = clock or SystemClock()
        self.bus = EventBus()
        self.metrics = Metrics()
        self.prices = PriceTable({name: p.model_price() for name, p in policy.prices.items()})
        self.ledger = Ledger(policy=policy, prices=self.prices)
        self.breakers = Breakers(policy=policy)
        self.ledger.gates.append(self.breakers)
        self.ledger.gates.append(self.metrics.calls)  # each settle's time, for /metrics
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.components: list[Component] = []
        self.extras: dict[str, Any] = {}
        # Routes components add before the HTTP server starts (e.g. POST /slack/events).
        self.extra_routes: list[web.RouteDef] = []
        self.serve_http = serve_http
        self.port: int | None = None
        self._store: Store | None = None
        self._runner: web.AppRunner | None = None
        self.listening: socket.socket | None = None  # the agent API's socket, once bound
        self.reloaded = False  # started by a reload (SIGHUP), on the socket handed over
        self._lock: RunLock | None = None
        self._open_abandoned = False  # a stop called Store.open off midway
        self._clock_watch: asyncio.Task[None] | None = None
        # the system clock against the monotonic one (components may listen to its steps)
        self.clock_watch = ClockWatch(self.scheduler)
        self.clock_watch.on_step_back.append(self.breakers.clock_stepped_back)
        self.clock_watch.deadlines += [self.ledger.clock_stepped, self.breakers.clock_stepped]
        self._stopped = asyncio.Event()

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("Nightshift is not started")
        return self._store

    async def write_probe(self, within: float) -> str | None:
        """Why the database does not take a write now (None: it does, maybe slowly): the
        probe of a reload before it stops this process (:mod:`bot.write_probe`)."""
        return (await self.write_health(within)).refused

    async def write_health(self, within: float) -> Probed:
        """What writing a row within ``within`` seconds found (/healthz's probe)."""
        store = self._store
        if store is None or not store.serving:
            # still starting: a start writes first thing anyway, and its own row must not
            # be written before the watchdog read the last run's (review27 M2)
            return Probed()
        return await probe_write(store, within=within)

    @property
    def url(self) -> str:
        """The agent API's URL: an IPv6 address in brackets (``http://[::1]:3000``), as a
        URL writes it, or the port would read as part of it (audit26 A1 L9)."""
        host = self.settings.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def _build_components(self) -> list[Component]:
        """The features this process hosts, in start order."""
        from bot.alerts.component import AlertsComponent
        from bot.api_routing import RoutingComponent
        from bot.api_validation import ValidationComponent
        from bot.digest.poster import DigestPoster
        from bot.jobs.guard import EngineBreakers
        from bot.jobs.runner import JobRunner
        from bot.people import People
        from bot.retention import Retention
        from bot.slack import transport_components
        from bot.storage_notice import StorageNotice
        from bot.webhooks import WebhookSender

        # Refuses a runaway job (PolicyError, naming it) before anything starts.
        jobs = JobRunner(
            self.policy,
            now=self.clock.now(),
            breakers=EngineBreakers(self.breakers),
            source=self.settings.config,
        )
        # The outbox worker and the Slack/shell transport chosen from settings.transport.
        # Alerts after the outbox: a restart's backlog of events is handled at start.
        return [
            *transport_components(self),
            StorageNotice(),  # writes refused for a minute: said straight to Slack
            People.component(),  # who left the workspace (users.info), before anyone is paged
            AlertsComponent(),
            ValidationComponent(),
            RoutingComponent(),
            jobs,
            DigestPoster(),
            Retention(),  # old events, outbox rows, validation items...: in small chunks
            WebhookSender(),  # escalation steps that page by HTTP (webhook_deliveries rows)
        ]

    async def start(self) -> None:
        """Bind, check, open the store, start every component, then serve.

        The listening socket is bound first, and the components' checks that need no
        database (:class:`ChecksFirst`) come next: a port in use, an address that cannot
        be bound or a Slack token Slack refuses stops start-up before the database is
        touched. Any later failure undoes what started (components, scheduler, store) and
        is raised.
        """
        load_commands()
        # Built before the database is opened: a refused job or a bad policy stops here.
        self.components = self._build_components()
        sock = self._listen() if self.serve_http else None
        started: list[Component] = []
        try:
            for component in self.components:
                if isinstance(component, ChecksFirst):
                    await component.check_first(self)
            self._lock = RunLock.take(self.settings.db)  # before migrations run
            try:
                self._store = await Store.open(self.settings.db, clock=self.clock, bus=self.bus)
            except asyncio.CancelledError:  # its thread goes on to the end, then closes
                self._open_abandoned = True
                raise
            await self._store.write(
                lambda tx: audit_policy_load(tx, path=self.settings.config, policy=self.policy)
            )
            self.metrics.watch_store(self._store)
            self.metrics.watch_budgets(self.ledger)
            # the clock's steps first: holds must not expire by a step the watch has not seen
            self.store.before_batch.append(self.clock_watch.shift_deadlines)
            self.clock_watch.on_step.append(self._store.clock_stepped)
            self.store.before_batch.append(self.ledger.expire_due)
            self.store.on_rollback.append(self.ledger.forget)
            self.breakers.attach(self.store)
            for component in self.components:
                try:
                    await component.start(self)
                except asyncio.CancelledError:  # a stop called the start off midway:
                    started.append(component)  # what it began is stopped too
                    raise
                started.append(component)
            self.every(SWEEP_SECONDS, self.sweep, name="sweep")
            self.every(
                BREAKER_TICK_SECONDS, self.breakers.sweep, name="breakers", args=[self.store]
            )
            if self.policy.oncall.notify_shift_start:  # a DM as each on-call shift starts
                self.every(
                    shift_start.TICK_SECONDS, shift_start.tick, name="shift-start", args=[self]
                )
            self.scheduler.start()
            self._clock_watch = asyncio.create_task(
                self.clock_watch.run(), name="nightshift-clock-watch"
            )
            await self.breakers.sweep(self.store)  # cool-downs that ended while we were down
            await say_if_nothing_is_limited(self)
            await say_what_slack_overrides(self)
            say_if_tiers_look_wrong(self)
            await say_if_model_budgets_name_unknown(self)
            if sock is not None:
                await self._serve(sock)
            # from here a refusal no longer ends the process: the store's log says it
            # goes on by itself (at start, or in a CLI command, it does not)
            self.store.serving = True
        except BaseException as exc:
            self.components = started
            await self.stop()
            # a reload's restart keeps the socket it was handed when its database refused
            # a write: it starts again on it (bot.cli_run), its callers waiting in its queue
            if sock is not None and not (self.reloaded and isinstance(exc, StorageUnavailable)):
                sock.close()
            raise

    def _listen(self) -> socket.socket:
        """The bound listening socket (OSError naming the address when it cannot be bound).

        After a reload (SIGHUP), the socket the process before handed over: it listened
        all along, so calls made during the restart wait in its queue.
        """
        inherited = self.listening if self.reloaded else inherited_socket()
        if inherited is not None:
            self.listening = inherited
            self.reloaded = True
            return inherited
        host, port = self.settings.host, self.settings.port
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.listening = socket.create_server((host, port), family=family, backlog=1024)
            return self.listening
        except OSError as exc:
            if exc.errno is not None and exc.errno < 0:  # the resolver's (EAI_*): no strerror
                resolver = (exc.strerror or "").split(" (while")[0]  # (create_server's words)
                raise OSError(
                    f"cannot listen on {host}:{port}: the host name {host!r} does not resolve"
                    f" ({resolver}): set NIGHTSHIFT_HOST to an address of this machine"
                    " (127.0.0.1, 0.0.0.0 for every interface, ::1) or a name it resolves"
                ) from None
            # (asyncio's create_server adds "while attempting to bind..." to the strerror)
            why = os.strerror(exc.errno) if exc.errno else exc.strerror
            said = f"cannot listen on {host}:{port}: {why}"
            # (bound before this process takes its own lock: the holder is another one)
            holder = serving(self.settings.db) if exc.errno == errno.EADDRINUSE else None
            if holder is not None:  # the same `run` started twice: say which one has it
                said += f": another Nightshift ({holder}) is running on {self.settings.db};"
                said += " stop it first"
            refused = OSError(said)  # (no "[Errno 98]" before the words)
            refused.errno = exc.errno
            raise refused from None
        except UnicodeError:  # a host name no resolver could take
            raise OSError(f"cannot listen on {host!r}: not a host name") from None

    async def _serve(self, sock: socket.socket) -> None:
        self._runner = web.AppRunner(
            build_web_app(self),
            access_log=None,
            # In-flight requests get this long; one whose body had not all come when the
            # drain began waits for the rest in vain (aiohttp drops data read after that:
            # aiohttp#2298) and is cut then, never run: the client sends it again.
            shutdown_timeout=SHUTDOWN_SECONDS,
            # Lines and headers up to 64 KiB reach the API (and get its JSON errors);
            # aiohttp's own plain-text 400 is left for anything larger.
            max_line_size=65536,
            max_field_size=65536,
            # A connection that sends no complete request for this long is closed: idle
            # keep-alives (clients reconnect) and half-sent headers alike, which would
            # otherwise hold a file descriptor each for an hour (aiohttp's default).
            keepalive_timeout=IDLE_CONNECTION_SECONDS,
            # Bodies are read as sent: a Content-Encoding is refused (415), never inflated.
            auto_decompress=False,
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self.port = sock.getsockname()[1]
        log.info("listening on %s (transport: %s)", self.url, self.settings.transport)

    def every(
        self, seconds: float, job: Callable[..., Awaitable[Any]], *, name: str, **options: Any
    ) -> None:
        """Run ``job`` every ``seconds`` on the scheduler: one at a time, missed runs coalesced.

        The first run comes at most ``FIRST_RUN_SECONDS`` after this call, not a whole
        interval later: an hourly or daily prune still runs in a process restarted more
        often than that. Every upkeep job derives its work from rows, so a skipped, late
        or early run loses nothing.
        """
        # APScheduler fires on the wall clock (so does the injected clock outside tests)
        first = datetime.now(UTC) + timedelta(seconds=min(seconds, FIRST_RUN_SECONDS))
        options.setdefault("next_run_time", first)
        if seconds > FIRST_RUN_SECONDS:  # a busy start must not skip it for a whole interval
            options.setdefault("misfire_grace_time", None)
        args = options.pop("args", ())

        async def upkeep() -> None:
            # Its failure is logged here and never reaches APScheduler, which would
            # clear the frames of its traceback (see guards.store: that once stopped
            # the writer for good); the next run tries again.
            try:
                await job(*args)
                self.metrics.upkeep.labels(job=name).set_to_current_time()
            except StorageUnavailable:
                pass  # the store reports it, once a minute
            except asyncio.CancelledError:
                return  # stopping: its write, if any, is committed or refused by the store
            except Exception:
                log.exception("upkeep job %s failed; it runs again in %ss", name, seconds)

        self.scheduler.add_job(
            upkeep,
            "interval",
            seconds=seconds,
            id=name,
            name=name,  # APScheduler's own lines name the job, not the wrapper
            coalesce=True,
            max_instances=1,
            **options,
        )

    async def sweep(self) -> None:
        """Expire due holds even when no request comes (every write batch does it too),
        and end the limits set in Slack for a while whose time is up."""

        await self.store.write(self.ledger.expire_due)
        # a write of its own: a failure here must not undo the holds' expiry (review29 L5)
        await self.store.write(lambda tx: end_limits(self, tx))

    async def stop(self) -> None:
        """Stop taking work, let components drain, close the database."""
        if self._clock_watch is not None:
            self._clock_watch.cancel()
            self._clock_watch = None
        if self.scheduler.running:  # first: no upkeep starts while requests drain
            self.scheduler.shutdown(wait=False)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for component in reversed(self.components):
            try:
                await asyncio.wait_for(component.stop(self), timeout=5)
            except Exception:
                log.exception("component %r did not stop cleanly", component)
        if self._store is not None:
            await self._store.close(within=STORE_CLOSE_SECONDS)
            self._store = None
        if self._lock is not None:
            # an open called off midway may still hold a connection to the file: closing
            # the file's own lock would drop that connection's locks (review23 L1); the
            # process ends soon, and lets go of it then
            self._lock.release(keep_file=self._open_abandoned)
            self._lock = None
        self._stopped.set()
