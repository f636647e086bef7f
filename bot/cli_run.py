"""``nightshift run`` (the service: signals, reload on SIGHUP) and ``nightshift demo``.

Example:
    >>> # nightshift run            (SIGTERM drains and stops; SIGHUP reloads the policy)
    >>> # nightshift demo --interactive
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import stat
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli import absent, command
from bot.entry import stop_requested
from bot.jobs.lint import refused_jobs
from bot.logs import Throttle
from bot.reload import (
    applied_when,
    check_reload_off_loop,
    drop_reload_snapshot,
    hand_over,
    reloaded_policy,
    restart,
)
from bot.reload_refused import hold_until_the_policy_loads
from bot.settings import Settings
from guards.config import Policy, PolicyError, load_policy
from guards.errors import StorageUnavailable

if TYPE_CHECKING:
    from aiohttp import web

    from bot.app import Nightshift

__all__ = ["cmd_demo", "cmd_run"]

log = logging.getLogger("nightshift")
RELOAD_PROBE_SECONDS = 5.0  # a SIGHUP first writes a row, waiting this long at most
RESTART_RETRY_SECONDS = 5.0  # a reload's restart the database refused starts again after


#: the start's WARNING when the policy file named by NIGHTSHIFT_CONFIG or --config is not
#: there (a typo, an unmounted volume, a config on a tmpfs after a reboot: audit25 L2)
NAMED_POLICY_ABSENT = (
    "no policy file at %s, which NIGHTSHIFT_CONFIG or --config names: running on the built-in"
    " defaults, so none of that policy's budgets, breakers, alerts, rotations or jobs apply"
    " (no budget limits any agent, only the default breakers guard them, nobody is paged)."
    " Fix the path and restart, or put the file back and send SIGHUP"
)


def _policy(settings: Settings) -> Policy:
    if not Path(settings.config).exists():
        # named on purpose (--config, NIGHTSHIFT_CONFIG) but absent: a typo or a file lost
        # (DESIGN: absent means the defaults, so it starts; the WARNING says what that
        # lifts); the default absent: said too, or a service started elsewhere runs with
        # no budgets
        if "config" in settings.model_fields_set:
            log.warning(NAMED_POLICY_ABSENT, settings.config)
        else:
            log.info("no policy file at %s: running on the built-in defaults", settings.config)
    return load_policy(settings.config, also=refused_jobs)


def _slack(settings: Settings) -> None:
    """Refuse a partial or contradictory set of Slack variables (it would mean shell mode)."""
    problem = settings.slack_problem()
    if problem is not None:
        raise ValueError(problem)
    if settings.transport == "socket" and settings.slack_signing_secret:
        log.info("SLACK_SIGNING_SECRET is not used: Socket Mode (SLACK_APP_TOKEN) is")


def _readable_by_others(db: str) -> None:
    """Say so when other users of the machine may read the database (made before files
    were created 0600, or copied in): it holds the jobs' signing key and Slack reply links."""
    try:
        mode = os.stat(db).st_mode
    except OSError:  # not there yet: it is made 0600
        return
    # a folder or a device is refused as a database in its own words: `chmod 600 /tmp*`
    # would be advice to break the machine with (audit26 A1 L6)
    if stat.S_ISREG(mode) and mode & 0o044:
        log.warning(
            "%s can be read by other users of this machine (mode %s): it holds the jobs'"
            " signing key and Slack reply links; chmod 600 %s*",
            db,
            stat.filemode(mode),
            db,
        )


def _said_if_failed(task: asyncio.Task[None]) -> None:
    """A reload that failed in its own code is logged, not dropped (review27 L5)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("SIGHUP: the reload failed; still running", exc_info=exc)


@command("run")
async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import Nightshift

    if stop_requested():  # a SIGTERM or SIGINT while still importing (bot.entry)
        drop_reload_snapshot()  # (a reload's copy of the policy: nothing else to undo yet)
        log.info("a stop signal came during the start: the start was called off")
        log.info("stopped")
        return 0
    _slack(settings)
    _readable_by_others(settings.db)
    try:
        reloaded = reloaded_policy(settings.config)  # the one a reload checked, if this is one
    except PolicyError as refusal:  # by the code installed since: hold the socket, 503
        reloaded = await hold_until_the_policy_loads(settings, refusal)
        if reloaded is None:  # a stop signal came first
            log.info("stopped")
            return 0
    policy = reloaded if reloaded is not None else _policy(settings)
    applied = applied_when(at=time.time(), reloaded=reloaded is not None)
    ns = Nightshift(settings=settings, policy=policy)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    had_file = not absent(settings.config)
    # once a reload is due: the listening socket to hand over, and the policy checked
    reload_to: list[tuple[int | None, str]] = []
    checking: list[asyncio.Task[None]] = []  # a SIGHUP's probe of the database, under way
    said_again = Throttle()  # a restart the database refuses: said once a minute

    def terminate() -> None:  # SIGTERM, SIGINT: stop, even when a reload was under way
        for task in checking:  # (a reload's probe still waiting: no reload then)
            task.cancel()
        if reload_to:
            log.info("a stop signal came during the reload: stopping, not starting again")
            with contextlib.suppress(OSError):
                os.unlink(reload_to[0][1])
            reload_to.clear()
        stop.set()

    def hang_up() -> None:
        if stop.is_set():  # stopping (or already reloading): a reload now would undo a stop
            log.info("SIGHUP while stopping or reloading: ignored (send it again once it runs)")
            return
        if _in_terminal():  # the terminal closed (or ^Z-less job control): stop, say why
            log.warning("SIGHUP in a terminal: stopping (as a service, SIGHUP reloads the policy)")
            stop.set()
            return
        if checking and not checking[0].done():
            log.info("SIGHUP while the last one is being checked: ignored")
            return
        checking[:] = [loop.create_task(reload_if_writable(), name="nightshift-reload")]
        checking[0].add_done_callback(_said_if_failed)

    async def reload_if_writable() -> None:
        # a restart writes at once (the policy's audit row, the watchdog's mark): on a full
        # disk, or under another process's write lock, it would end, and no process would
        # be left (audit26b disk H1, recheck26 N1). So a row is written first.
        if (refused := await ns.write_probe(RELOAD_PROBE_SECONDS)) is not None:
            log.error(
                "SIGHUP: not reloading while the database refuses writes (%s): the restart"
                " could not start; still running on the policy it has. Send SIGHUP again"
                " once it takes writes (/healthz answers 200)",
                refused,
            )
            return
        if stop.is_set():  # a stop signal came while the probe waited
            return
        snapshot = await check_reload_off_loop(  # (its files may be on a mount that hangs)
            settings.config, policy, had_file=had_file, applied=applied
        )
        if snapshot is None:
            return
        reload_to.append((hand_over(ns.listening) if ns.listening else None, snapshot))
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, terminate)
    if stop_requested():  # a SIGTERM or SIGINT while the policy was read (bot.entry): stop
        terminate()
    loop.add_signal_handler(signal.SIGHUP, hang_up)
    # blocked while it loaded (bot.entry; a reload's across its exec too): one that came
    # meanwhile is handled now
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    while True:
        try:
            started = await _start_unless_stopped(ns, stop)
        except StorageUnavailable as exc:
            # A reload's restart whose first writes are refused (a lock or a full disk
            # that came after the SIGHUP's probe: recheck27 R1): exiting would leave no
            # server. It starts again on the socket it was handed, until a stop signal.
            handed = ns.listening
            if not ns.reloaded or handed is None:
                raise
            if (more := said_again.let_through("", time.monotonic())) is not None:
                log.error(
                    "the restart after a reload cannot write to its database (%s): it tries"
                    " again every %gs, answering agents 503 meanwhile. SIGTERM stops it%s",
                    exc.cause,
                    RESTART_RETRY_SECONDS,
                    more,
                )
            # meanwhile every call gets a 503 it may send again (review28 M1: in the
            # socket's queue, it ran after its client had given up)
            refusing = await refuse_meanwhile(handed, exc.cause)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RESTART_RETRY_SECONDS)
            finally:
                await refusing.cleanup()
            if stop.is_set():
                started = False
                break
            ns = Nightshift(settings=settings, policy=policy)
            ns.listening, ns.reloaded = handed, True
            continue
        break
    if started:
        # Start-up objects live for the whole run: keep them out of every GC pass, and
        # collect the young generation less often (the hot path allocates many short-lived
        # objects and no cycles of note); this trims latency spikes under load.
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)
        if ns.settings.transport == "shell" or sys.stdout.isatty():
            # the shell's own screen (and a terminal's): the log's line says it for the rest,
            # whose output a JSON-lines shipper reads (audit21 observe L1)
            print(f"nightshift listening on {ns.url}", flush=True)
        await stop.wait()
        log.info("stopping: draining work")
        await ns.stop()
    else:
        what = "a reload (SIGHUP)" if reload_to else "a stop signal"
        log.info("%s came during the start: the start was called off", what)
    if reload_to:
        log.info("stopped; starting again on the new policy")
        restart(*reload_to[0])
    log.info("stopped")
    return 0


async def refuse_meanwhile(listening: socket.socket, cause: str) -> web.AppRunner:
    """Answer every call on ``listening`` 503 ``storage_unavailable`` (with Retry-After)
    until the runner returned is cleaned up; on a duplicate of the socket, so that the
    cleanup leaves the socket itself open for the next start."""
    # (only here: the CLI's other commands start faster without them)
    from aiohttp import web

    from bot.api import unavailable

    async def refuse(request: web.Request) -> web.Response:
        return unavailable(
            f"Nightshift is restarting and cannot write to its database ({cause}): nothing"
            " was done; send it again in a few seconds"
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, listening.dup()).start()
    return runner


async def _start_unless_stopped(ns: Nightshift, stop: asyncio.Event) -> bool:
    """Start ``ns``; False when a stop signal came first.

    A start may wait on Slack (each token checked, seconds each when Slack does not
    answer): a SIGTERM then calls the start off, which undoes what it started, so the
    process still exits well within the 10 s a service manager gives it. One that came
    before (while the policy was read) calls it off before the port is bound or the
    database opened.
    """
    if stop.is_set():
        return False
    starting = asyncio.create_task(ns.start(), name="nightshift-start")
    signalled = asyncio.create_task(stop.wait(), name="nightshift-stop-signal")
    try:
        await asyncio.wait({starting, signalled}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        signalled.cancel()
    if starting.done():
        starting.result()  # a start that failed raises here
        return True
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    return False


def _in_terminal() -> bool:
    """Whether this process reads or writes a terminal (then SIGHUP means it hung up)."""
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        try:
            if os.isatty(stream.fileno()):
                return True
        except (ValueError, OSError, AttributeError):  # closed, or replaced
            continue
    return False


@command("demo")
async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import run_demo

    if args.interactive and not sys.stdin.isatty():
        print("nightshift: --interactive needs a terminal to type into", file=sys.stderr)
        return 2
    if getattr(args, "db", None) is not None or getattr(args, "config", None) is not None:
        print(
            "nightshift: the demo plays on a temporary database and policy of its own:"
            " --db and --config are not read (drop them)",
            file=sys.stderr,
        )
        return 2
    _slack(settings)
    return await run_demo(interactive=args.interactive)
