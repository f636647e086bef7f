"""A reload's restart whose policy the code installed since refuses: hold the socket.

A SIGHUP's check runs in the process that got it, on the code it started with; the
restart in place then runs the code installed now. After an upgrade that refuses more
(`1M`, steps out of order), the old code accepts a file the new one refuses, and the
restarted process, exiting, would leave no server (review26 R2 L2). Instead it keeps
the listening socket it was handed and answers every call, ``/healthz`` too, ``503
policy_refused`` (nothing was done: an agent may send it again later), logs the refusal
naming the key, and waits: a SIGHUP reads the file again, with the code installed now,
and starts on it once it loads; SIGTERM or SIGINT stops it.

Example:
    >>> # in bot.cli_run: reloaded_policy raised PolicyError in a reload's restart
    >>> # policy = await hold_until_the_policy_loads(settings, refusal)
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bot.entry import stop_requested
from bot.jobs.lint import check_jobs, refused_jobs
from bot.reload import INHERITED_FD, inherited_socket, says_nothing
from bot.run_lock import RunLock
from bot.settings import Settings
from guards.config import Policy, PolicyError, load_policy
from guards.config_yaml import read_policy_bytes

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["POLICY_REFUSED", "hold_until_the_policy_loads"]

log = logging.getLogger("nightshift")

POLICY_REFUSED = "policy_refused"  # the 503's error code while the policy is refused
#: the 503's message (the key and its problem are in the log, not told to any caller)
HELD = (
    "Nightshift restarted after a reload (SIGHUP) and the version installed since refuses"
    " its policy file: nothing was done. An operator must fix the file (the log names the"
    " key) and send SIGHUP again; send this call again then"
)


async def hold_until_the_policy_loads(settings: Settings, refusal: PolicyError) -> Policy | None:
    """In a reload's restart whose policy was refused (``refusal``): answer every call 503
    on the socket handed over until a SIGHUP finds the policy file loading, and return
    that policy (the socket and the one-process lock handed on to the start, as the
    reload handed the socket); None when a stop signal came first. Raises ``refusal``
    when no socket was handed over, and AlreadyRunning when another process serves the
    database (it took it during the restart)."""
    sock = inherited_socket()
    if sock is None:  # (nothing to hold: said as a start's refusal)
        raise PolicyError(f"{refusal}: fix the file, then start nightshift again") from None
    # the one-process lock, as a start takes it: no second `nightshift run` may take the
    # database meanwhile (AlreadyRunning, as a start says it, when one did already)
    lock = RunLock.take(settings.db)
    policy = None
    try:
        policy = await _hold(settings, refusal, sock)
    finally:
        if lock is not None and policy is not None:
            lock.hand_on()  # to the start it returns to
        elif lock is not None:
            lock.release()
    return policy


async def _hold(settings: Settings, refusal: PolicyError, sock: socket.socket) -> Policy | None:
    """:func:`hold_until_the_policy_loads` once its lock is taken."""
    loop = asyncio.get_running_loop()
    stop, hup = asyncio.Event(), asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, hup.set)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})  # (blocked across the exec)
    if stop_requested():
        stop.set()
    log.error(
        "the reload's restart cannot start: %s\nStill listening, every call answered 503 %s"
        " (nothing is guarded, nobody is paged): fix the file and send SIGHUP to start on it,"
        " or SIGTERM to stop",
        refusal,
        POLICY_REFUSED,
    )
    runner = await _refuse_every_call(sock)
    try:
        while True:
            waits = [asyncio.ensure_future(e.wait()) for e in (stop, hup)]
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for waiting in pending:
                waiting.cancel()
            if stop.is_set():
                sock.close()
                return None
            hup.clear()
            try:
                policy = _policy_now(settings.config)
            except (PolicyError, ValueError) as exc:  # (as a reload's check says them)
                log.error("SIGHUP: still refused, still answering 503 %s: %s", POLICY_REFUSED, exc)
                continue
            log.warning("SIGHUP: %s loads now: starting on it", settings.config)
            os.environ[INHERITED_FD] = str(sock.detach())  # for the start, as a reload hands it
            return policy
    finally:
        await runner.cleanup()


def _policy_now(config: str) -> Policy:
    """The policy file as it is now, read with the code installed now (PolicyError when it
    is refused, cannot be read, is gone, or is empty, as a reload refuses it)."""
    try:
        if says_nothing(read_policy_bytes(Path(config))):  # (recheck26 Ka M2)
            raise PolicyError(
                f"the policy file {config} is empty (a save still being written?): starting"
                " on it would run on the built-in defaults (no budgets, nobody paged); to do"
                " that on purpose, write {} in it"
            )
        policy = load_policy(config, missing_ok=False, also=refused_jobs)
        check_jobs(policy, now=time.time(), source=config)
    except OSError as exc:  # a folder it cannot search, a name too long (recheck26 Ka M1)
        raise PolicyError(f"{config}: cannot read the policy file: {exc.strerror or exc}") from None
    return policy


async def _refuse_every_call(sock: socket.socket) -> web.AppRunner:
    """An aiohttp runner answering every request on (a duplicate of) ``sock`` 503."""
    from aiohttp import web  # (only here: the CLI's other commands start faster without it)

    async def refuse(request: web.Request) -> web.Response:
        body = {"status": "unavailable", "error": POLICY_REFUSED, "message": HELD}
        return web.json_response(body, status=503, headers={"Retry-After": "60"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock.dup()).start()  # (a duplicate: the cleanup closes it)
    return runner
