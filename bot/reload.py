"""SIGHUP: apply an edited policy file by restarting in place, or keep running.

The policy is read once, at start, and many parts hold what they made of it (budgets,
breakers, the escalation chain, the agents' jobs). So a reload is a restart: the file is
read and checked first, in the running process; an invalid file is logged (naming the
key, as at start-up) and changes nothing. A valid, changed file makes the process drain
as on SIGTERM and then ``exec`` itself: the same PID (a supervisor's ``ExecReload=kill
-HUP $MAINPID`` sees no exit), and the same listening socket, handed over open, so that
agents calling meanwhile wait in its queue for the new process instead of being refused.
Every timer is derived from rows, so the restart loses nothing.

In a terminal, SIGHUP means the terminal closed: the process stops instead (see
``bot.cli_run``).

Example:
    >>> import os, signal
    >>> # os.kill(pid_of_nightshift, signal.SIGHUP)   # after editing nightshift.yml
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from bot.jobs.lint import check_jobs, refused_jobs
from bot.reload_moves import day_moves, oncall_moves
from bot.webhooks_target import reload_lines, secret_files_note
from guards.config import Policy, PolicyError, load_policy
from guards.config_yaml import read_policy_bytes
from guards.events import NIGHTSHIFT
from guards.slow_reads import in_daemon_thread
from guards.store import Tx

__all__ = [
    "INHERITED_FD",
    "applied_when",
    "audit_policy_load",
    "changed_sections",
    "check_reload",
    "check_reload_off_loop",
    "drop_reload_snapshot",
    "hand_over",
    "inherited_socket",
    "reloaded_policy",
    "restart",
    "says_nothing",
]

log = logging.getLogger("nightshift")
INHERITED_FD = "NIGHTSHIFT_LISTEN_FD"  # set for the process a reload starts, by the one before
RELOAD_POLICY = "NIGHTSHIFT_RELOAD_POLICY"  # the snapshot of the policy checked at the SIGHUP


def _as_written(policy: Policy) -> dict[str, Any]:
    """The keys the file set (a release's new defaults are no change of the file's)."""
    written: dict[str, Any] = policy.model_dump(mode="json", exclude_unset=True)
    return written


def _differing(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The keys whose values differ (set, changed or left out), in ``after``'s order."""
    keys = [*after, *(key for key in before if key not in after)]
    return [key for key in keys if before.get(key) != after.get(key)]


def changed_sections(old: Policy, new: Policy) -> list[str]:
    """The top-level keys the file sets differently."""
    return _differing(_as_written(old), _as_written(new))


def applied_when(*, at: float, reloaded: bool) -> str:
    """When the policy this process runs on was applied, for the SIGHUPs that keep it: at
    start, or at a reload's restart (a reload is a start: ``reloaded``), ``at`` in UTC.

    Example:
        >>> applied_when(at=0, reloaded=True)
        'at the reload of 1970-01-01 00:00:00 UTC'
    """
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
    return f"at the reload of {stamp}" if reloaded else f"at start, {stamp}"


def check_reload(
    config: str, current: Policy, *, had_file: bool, applied: str = "at start or at a reload"
) -> str | None:
    """Check the policy file; return a snapshot of it to restart on, or None (said in the
    log) when there is nothing to apply. ``applied`` says when ``current`` was
    (:func:`applied_when`), in the lines that keep running on it.

    The snapshot (a private copy in the temporary directory) is what was checked: the new
    process starts on it, not on the file as it is by then (a second save during the drain
    is not read unchecked).
    """
    try:  # a regular file of at most 1 MiB: a FIFO would hold the server here (audit26 L5)
        raw = read_policy_bytes(Path(config))
    except PolicyError as exc:
        if not _gone(config):  # a folder, a FIFO, a device, too large, no permission
            log.error("SIGHUP: %s; still running on the policy it last applied (%s)", exc, applied)
            return None
        if had_file:
            log.error(  # not "read at start": it may be a later reload's (recheck25 L4)
                "SIGHUP: the policy file %s is gone; still running on the policy it last"
                " applied (%s; a restart now would run on the built-in defaults, with no"
                " budgets)",
                config,
                applied,
            )
        else:
            log.info("SIGHUP: there is still no policy file at %s; nothing to apply", config)
        return None
    if had_file and says_nothing(raw) and _as_written(current):  # (it ran on an empty one)
        log.error(
            "SIGHUP: the policy file %s is empty (a save still being written?); still running"
            " on the policy it last applied (%s). To run on the built-in defaults (no"
            " budgets, nobody paged) on purpose, write {} in it",
            config,
            applied,
        )
        return None
    try:
        fd, snapshot = tempfile.mkstemp(prefix="nightshift-policy-", suffix=".yml")
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
    except OSError as exc:  # no writable temporary directory, a full disk
        log.error(
            "SIGHUP: cannot keep a copy of %s to restart on (%s: %s); still running",
            config,
            tempfile.gettempdir(),
            exc.strerror,
        )
        return None
    try:
        new = load_policy(snapshot, also=refused_jobs, base=_directory(config))
        check_jobs(new, now=time.time(), source=config)  # the jobs' schedules, as at start
        changed = changed_sections(current, new)
    except (PolicyError, OSError, ValueError) as exc:
        os.unlink(snapshot)
        log.error(
            "SIGHUP: %s is not valid; still running on the policy it last applied (%s). %s",
            config,
            applied,
            str(exc).replace(snapshot, config),
        )
        return None
    if not changed:
        os.unlink(snapshot)
        log.info(
            "SIGHUP: %s has not changed since it was read; nothing to apply%s",
            config,
            secret_files_note(current),
        )
        return None
    log.warning(
        "SIGHUP: %s changed (%s): restarting in place to apply it (agents' calls wait meanwhile)",
        config,
        ", ".join(changed),
    )
    if "oncall" in changed or "timezone" in changed:
        for line in oncall_moves(current, new, now=time.time()):
            log.warning("SIGHUP: %s", line)
    if "webhooks" in changed:  # renamed or taken out: where their resolves still go
        for line in reload_lines(current, new):
            log.warning("SIGHUP: %s", line)
    if "budgets" in changed or "timezone" in changed:
        for line in day_moves(current, new, now=time.time()):
            log.warning("SIGHUP: %s", line)
    return snapshot


async def check_reload_off_loop(
    config: str, current: Policy, *, had_file: bool, applied: str
) -> str | None:
    """:func:`check_reload` on a daemon thread of its own (never the loop's shared pool,
    which a hung read would hold, nor one an exit waits for: review26 R3 H1): the files
    it reads (the policy's, each webhook's ``secret_file``, up to
    :data:`~guards.config_webhooks.SECRET_READ_SECONDS` each) may be on a mount that
    hangs, and the loop goes on answering meanwhile (review26 R1 L4). A snapshot made
    after the caller gave up (a stop signal) is removed."""
    return await in_daemon_thread(
        lambda: check_reload(config, current, had_file=had_file, applied=applied),
        name="nightshift-sighup-check",
        abandoned=_drop_snapshot,
    )


def _drop_snapshot(snapshot: str | None) -> None:
    if snapshot:
        with contextlib.suppress(OSError):
            os.unlink(snapshot)


def _directory(config: str) -> Path:
    """Where the policy file ``config`` is: a relative ``secret_file`` is read from there,
    not from the copy's temporary directory."""
    return Path(config).absolute().parent


def _gone(config: str) -> bool:
    """Whether there is no file at ``config`` (or at the end of its link). A folder on
    the way that cannot be searched says nothing of the file: it is unreadable, not gone
    (``Path.exists`` raises PermissionError there, a traceback for a SIGHUP: review26 R2
    L4)."""
    try:
        os.stat(config)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except (OSError, ValueError):  # no permission, a name too long, a loop of links
        return False
    return False


def says_nothing(raw: bytes) -> bool:
    """Whether the file holds no YAML at all (empty, blank, or comments only)."""
    try:
        return yaml.safe_load(raw) is None
    except (yaml.YAMLError, ValueError):  # ValueError: PyYAML's own, of an impossible date
        return False  # said as the file's error when it is read


def reloaded_policy(config: str) -> Policy | None:
    """In the process a reload started: the policy checked at the SIGHUP (None otherwise).

    PolicyError when the code installed since refuses it (bot.reload_refused holds the
    socket then)."""
    snapshot = os.environ.pop(RELOAD_POLICY, None)
    if snapshot is None:
        return None
    try:
        raw = Path(snapshot).read_bytes()
        policy = load_policy(snapshot, missing_ok=False, also=refused_jobs, base=_directory(config))
    except PolicyError as exc:  # the code installed now refuses what the one before accepted
        raise PolicyError(
            f"{str(exc).replace(snapshot, config)}\n(the version installed since the last"
            " start refuses this policy, which the one before accepted at the SIGHUP)"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(snapshot)
    try:
        again = read_policy_bytes(Path(config)) != raw
    except PolicyError:
        again = True
    if again:
        log.warning(
            "%s changed again since the SIGHUP: this run uses the version checked then;"
            " send SIGHUP again to apply the file as it is now",
            config,
        )
    return policy


def drop_reload_snapshot() -> None:
    """In the process a reload started, stopped before it read the policy checked at the
    SIGHUP (a stop signal while it loaded): delete that copy, as reading it would have
    (review28 R1 L1: it was left in the temporary directory, job secrets and all)."""
    _drop_snapshot(os.environ.pop(RELOAD_POLICY, None))


def inherited_socket() -> socket.socket | None:
    """The listening socket handed over by the process before a reload, if any."""
    fd = os.environ.pop(INHERITED_FD, None)
    if fd is None:
        return None
    try:
        sock = socket.socket(fileno=int(fd))
    except (ValueError, OSError) as exc:
        log.warning("the listening socket handed over (fd %s) is unusable: %s", fd, exc)
        return None
    sock.set_inheritable(False)
    return sock


def hand_over(listening: socket.socket) -> int:
    """A descriptor of ``listening`` that outlives the server's close of it: while it is
    open the socket keeps listening, and connections queue for the next process."""
    fd = os.dup(listening.fileno())
    os.set_inheritable(fd, True)
    return fd


def restart(fd: int | None, snapshot: str) -> NoReturn:
    """Replace this process with a new run of the same command, handing it ``fd`` and the
    checked policy ``snapshot``.

    Called once everything has stopped (the database closed): only the socket lives on.
    """
    env = dict(os.environ)
    env[RELOAD_POLICY] = snapshot
    if fd is not None:
        env[INHERITED_FD] = str(fd)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Blocked across the exec (the mask survives it) until the new process handles it:
    # another SIGHUP meanwhile (a file watcher, `systemctl reload` twice) would otherwise
    # end it, its default; blocked, it waits and is handled then (see bot.cli_run).
    # SIGTERM and SIGINT are not: one before the new process's bot.entry.hold() (~30 ms)
    # ends it by that signal and leaves the snapshot (README documents the window;
    # blocking them here needs hold() to unblock them: recheck28 Ka L2).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        os.execve(sys.executable, sys.orig_argv, env)
    except OSError as exc:  # the interpreter is gone (an old release's venv removed, say)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
        with contextlib.suppress(OSError):
            os.unlink(snapshot)
        raise OSError(
            exc.errno,
            f"could not start again after SIGHUP ({sys.executable}: {exc.strerror});"
            " start nightshift by hand",
        ) from None


def section_digests(policy: Policy) -> dict[str, str]:
    """A digest of each top-level key the file sets (what ``policy_loads`` keeps)."""
    return {
        key: hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]
        for key, value in _as_written(policy).items()
    }


def audit_policy_load(tx: Tx, *, path: str, policy: Policy) -> list[str]:
    """Record the policy this start runs on; audit it when it changed since the last start.

    Returns the top-level keys that changed (none on the first start: nothing changed
    then, and nothing is audited).
    """
    digests = section_digests(policy)
    row = tx.one("SELECT digests FROM policy_loads ORDER BY id DESC LIMIT 1")
    changed = _differing(json.loads(row[0]), digests) if row is not None else []
    if row is not None and not changed:
        return []
    tx.execute(
        "INSERT INTO policy_loads (at, path, digests) VALUES (?, ?, ?)",
        (tx.clock.now(), path, json.dumps(digests, sort_keys=True)),
    )
    if changed:
        tx.audit(
            actor=NIGHTSHIFT,
            action="policy.load",
            target=path,
            detail=f"changed since the last start: {', '.join(changed)}",
        )
    return changed
