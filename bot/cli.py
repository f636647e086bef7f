"""The ``nightshift`` command line (DESIGN.md, "The command line")."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import logging
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.logs import setup_logging
from bot.reload import check_reload, hand_over, reloaded_policy, restart
from bot.settings import Settings
from guards.config import Policy, PolicyError, load_policy
from guards.migrations import (
    BUSY_TIMEOUT_MS,
    SchemaTooNew,
    apply_migrations,
    connect,
    schema_behind,
)
from guards.store import Store
from guards.tokens import create_token, revoke_token
from guards.verify import verify

__all__ = ["main"]

log = logging.getLogger("nightshift")
Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        COMMANDS[name] = fn
        return fn

    return register


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "db", None) is not None:
        overrides["NIGHTSHIFT_DB"] = args.db
    if getattr(args, "config", None) is not None:
        overrides["NIGHTSHIFT_CONFIG"] = args.config
    return Settings(**overrides)


def _policy(settings: Settings) -> Policy:
    if not Path(settings.config).exists():
        # named on purpose (--config, NIGHTSHIFT_CONFIG) but absent: probably a typo; the
        # default absent: said too, or a service started elsewhere runs with no budgets
        named = "config" in settings.model_fields_set
        log.log(
            logging.WARNING if named else logging.INFO,
            "no policy file at %s: running on the built-in defaults",
            settings.config,
        )
    return load_policy(settings.config)


def _slack(settings: Settings) -> None:
    """Refuse a partial or contradictory set of Slack variables (it would mean shell mode)."""
    problem = settings.slack_problem()
    if problem is not None:
        raise ValueError(problem)
    if settings.transport == "socket" and settings.slack_signing_secret:
        log.info("SLACK_SIGNING_SECRET is not used: Socket Mode (SLACK_APP_TOKEN) is")


def _absent(path: str) -> bool:
    return not Path(path).exists()


def _existing_db(settings: Settings) -> None:
    """For commands that only read or change what is there: a missing file is a typo."""
    if _absent(settings.db):
        raise FileNotFoundError(
            f"no database at {settings.db}: check --db / NIGHTSHIFT_DB"
            " (`nightshift migrate` creates one)"
        )


@command("run")
async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import Nightshift

    _slack(settings)
    reloaded = reloaded_policy(settings.config)  # the one a reload checked, if this is one
    policy = reloaded if reloaded is not None else _policy(settings)
    ns = Nightshift(settings=settings, policy=policy)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    had_file = not _absent(settings.config)
    # once a reload is due: the listening socket to hand over, and the policy checked
    reload_to: list[tuple[int | None, str]] = []

    def terminate() -> None:  # SIGTERM, SIGINT: stop, even when a reload was under way
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
        snapshot = check_reload(settings.config, policy, had_file=had_file)
        if snapshot is None:
            return
        reload_to.append((hand_over(ns.listening) if ns.listening else None, snapshot))
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, terminate)
    loop.add_signal_handler(signal.SIGHUP, hang_up)
    # a reload blocked SIGHUP across its exec: one that came meanwhile is handled now
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    await ns.start()
    # Start-up objects live for the whole run: keep them out of every GC pass, and
    # collect the young generation less often (the hot path allocates many short-lived
    # objects and no cycles of note); this trims latency spikes under load.
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    print(f"nightshift listening on {ns.url}", flush=True)
    await stop.wait()
    log.info("stopping: draining work")
    await ns.stop()
    if reload_to:
        log.info("stopped; starting again on the new policy")
        restart(*reload_to[0])
    log.info("stopped")
    return 0


def cli_actor() -> str:
    """Who the audit log says made a change from the command line: ``cli:<login>``."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        who = f"uid{os.getuid()}"
    return f"cli:{who}"


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
    _slack(settings)
    return await run_demo(interactive=args.interactive)


@command("migrate")
async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    conn = connect(settings.db)
    try:
        applied = apply_migrations(conn, now=time.time())
    finally:
        conn.close()
    if applied:
        print(f"applied {len(applied)} migration(s) to {settings.db}: {', '.join(applied)}")
    else:
        print(f"{settings.db} is up to date")
    return 0


@command("token create")
async def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    # It may come before the first `run`, so it makes the database; naming it shows a typo
    new = _absent(settings.db)
    store = await Store.open(settings.db)
    try:
        token, raw = await store.write(
            lambda tx: create_token(tx, scope=args.scope, label=args.label, actor=cli_actor())
        )
    finally:
        await store.close()
    where = f"{settings.db} (a new database)" if new else settings.db
    print(f"created {token.id} for {token.scope} in {where};")
    print("it is shown only once, keep it secret (a server on another database refuses it):")
    print(f"token: {raw}")
    return 0


@command("token list")
async def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    _existing_db(settings)
    store = await Store.open(settings.db)
    try:
        rows = await store.fetch(
            "SELECT id, scope, label, created_at, revoked_at FROM tokens ORDER BY created_at"
        )
    finally:
        await store.close()
    if not rows:
        print("no tokens yet: nightshift token create <scope>")
        return 0
    from guards.clock import to_datetime

    print(f"{'id':<18} {'scope':<40} {'created (UTC)':<20} {'state':<8} label")
    for r in rows:
        created = to_datetime(r["created_at"]).strftime("%Y-%m-%d %H:%M")
        state = "revoked" if r["revoked_at"] else "active"
        print(f"{r['id']:<18} {r['scope']:<40} {created:<20} {state:<8} {r['label'] or ''}")
    return 0


@command("token revoke")
async def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    _existing_db(settings)
    # the whole token pasted instead of its id: the id is inside; the secret is never shown
    whole = re.match(r"ns_(tok_[0-9a-f]+)_", args.id)
    token_id = whole.group(1) if whole else args.id
    store = await Store.open(settings.db)
    try:
        done = await store.write(lambda tx: revoke_token(tx, token_id=token_id, actor=cli_actor()))
    finally:
        await store.close()
    if not done:
        print(f"no active token {token_id[:80]} (see nightshift token list)", file=sys.stderr)
        return 1
    print(f"revoked {token_id}")
    return 0


def _read_only(path: str) -> sqlite3.Connection:
    """A connection that cannot change the file (verifying a backup must not)."""
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


@command("ledger verify")
async def cmd_ledger_verify(args: argparse.Namespace, settings: Settings) -> int:
    _existing_db(settings)
    conn = _read_only(settings.db)  # nor upgrade a live file an older version serves
    try:
        behind = schema_behind(conn)
        if behind is not None:
            print(f"nightshift: {settings.db}: {behind}", file=sys.stderr)
            return 2
        report = verify(conn)
    finally:
        conn.close()
    print(
        f"checked {report.reservations} reservations, {report.journal_rows} journal rows, "
        f"{report.usage_rows} usage counters"
    )
    if report.ok:
        print("ledger OK: every total matches the journal")
        return 0
    for problem in report.problems[:50]:
        print(f"MISMATCH {problem}")
    print(f"ledger BROKEN: {len(report.problems)} problem(s)")
    return 1


def _backup(db: str, target: Path) -> tuple[str, int]:
    """Copy ``db`` to ``target`` in one snapshot: what the copy's check says ("ok"), and
    its size in bytes."""
    conn = _read_only(db)
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    except sqlite3.Error:
        target.unlink(missing_ok=True)  # half a copy (a full disk) is no backup
        raise
    finally:
        conn.close()
    copy = _read_only(str(target))
    try:
        return str(copy.execute("PRAGMA quick_check").fetchone()[0]), target.stat().st_size
    finally:
        copy.close()


@command("backup")
async def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    """A consistent copy of the database, also while it runs (``VACUUM INTO``: one read
    snapshot, however busy the server; the sqlite3 shell's ``.backup`` starts over at
    every commit and never ends under load)."""
    _existing_db(settings)
    target = Path(args.file)
    if not _absent(args.file):
        print(f"nightshift: {target} exists; name a new file", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        check, size = await asyncio.to_thread(_backup, settings.db, target)
    except sqlite3.Error as exc:  # the copy's fault, not the database's: say so
        why = _why_not_open(args.file, exc)
        print(f"nightshift: cannot write the copy {target}: {exc}{why}", file=sys.stderr)
        return 1
    if check != "ok":
        print(f"nightshift: the copy {target} does not check: {check}", file=sys.stderr)
        return 1
    took = time.monotonic() - started
    print(f"backed up {settings.db} to {target}: {size / 1e6:.1f} MB in {took:.1f} s")
    return 0


@command("jobs preview")
async def cmd_jobs_preview(args: argparse.Namespace, settings: Settings) -> int:
    """The policy's jobs in words with their next fire times; 1 when any is refused."""

    from bot.jobs.lint import lint_jobs

    if _absent(settings.config):
        print(f"no policy file at {settings.config}: the built-in defaults have no jobs")
        if "config" in settings.model_fields_set:  # named, yet absent: a typo, probably
            print(
                f"nightshift: warning: {settings.config} was named (NIGHTSHIFT_CONFIG or"
                " --config) but does not exist: check the path",
                file=sys.stderr,
            )
        return 0
    policy = load_policy(settings.config)
    plans = lint_jobs(policy, now=time.time())
    if not plans:
        print(f"{settings.config} has no jobs")
        return 0
    secrets: dict[str, str] = {}
    if args.secrets:
        from bot.jobs import state

        _existing_db(settings)  # the secrets derive from the key in the server's database
        store = await Store.open(settings.db)
        try:
            key = await store.write(state.secret_key)
        finally:
            await store.close()
        secrets = {j.name: j.secret or state.derived_secret(key, j.name) for j in policy.jobs}
    for plan in plans:
        print("\n".join(plan.lines()))
        if plan.name in secrets:
            print(f"  secret (X-Nightshift-Job-Secret): {secrets[plan.name]}")
        print()
    refused = [p.name for p in plans if p.refused]
    if refused:
        print(f"{len(refused)} of {len(plans)} job(s) refused: {', '.join(refused)}")
        return 1
    print(f"{len(plans)} job(s) OK")
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        default=argparse.SUPPRESS,
        help="SQLite file (default: $NIGHTSHIFT_DB or ./nightshift.db)",
    )
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="policy file (default: $NIGHTSHIFT_CONFIG or ./nightshift.yml)",
    )
    parser = argparse.ArgumentParser(
        prog="nightshift",
        parents=[common],
        description="The on-call teammate for fleets of AI agents.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    sub.add_parser("run", parents=[common], help="serve the API, Slack and the scheduler")
    demo = sub.add_parser(
        "demo", parents=[common], help="a simulated day of a misbehaving fleet, in shell mode"
    )
    demo.add_argument(
        "--interactive", action="store_true", help="press the buttons yourself at the prompt"
    )
    sub.add_parser("migrate", parents=[common], help="apply pending database migrations")
    token = sub.add_parser("token", parents=[common], help="agent tokens").add_subparsers(
        dest="action", required=True, metavar="action"
    )
    create = token.add_parser("create", parents=[common], help="create a token for a scope")
    create.add_argument("scope", help="namespace[/user[/agent[/conversation]]]")
    create.add_argument("--label", help="a note to remember it by")
    token.add_parser("list", parents=[common], help="list tokens")
    revoke = token.add_parser("revoke", parents=[common], help="revoke a token")
    revoke.add_argument("id")
    ledger = sub.add_parser("ledger", parents=[common], help="ledger tools").add_subparsers(
        dest="action", required=True, metavar="action"
    )
    ledger.add_parser("verify", parents=[common], help="recompute totals from the journal")
    backup = sub.add_parser(
        "backup", parents=[common], help="copy the database, also while it runs"
    )
    backup.add_argument("file", help="the new file to write (it must not exist)")
    jobs = sub.add_parser("jobs", parents=[common], help="scheduled agent jobs").add_subparsers(
        dest="action", required=True, metavar="action"
    )
    preview = jobs.add_parser(
        "preview", parents=[common], help="the jobs in words with their next fire times"
    )
    preview.add_argument(
        "--secrets",
        action="store_true",
        help="also print each job's X-Nightshift-Job-Secret (reads the database)",
    )
    return parser


def _why_not_open(db: str, exc: sqlite3.Error) -> str:
    """What SQLite's "unable to open database file" leaves out: why."""
    if "unable to open" not in str(exc):
        return ""
    if Path(db).is_dir():
        return " (it is a folder: name a database file in it, e.g. nightshift.db)"
    folder = Path(db).resolve().parent
    if not folder.is_dir():
        return f" (the folder {folder} does not exist)"
    if not os.access(folder, os.W_OK):
        return (
            f" (the folder {folder} is not writable: SQLite keeps its -wal and -shm files"
            " beside the database)"
        )
    if Path(db).exists() and not os.access(db, os.R_OK | os.W_OK):
        return " (the file is not readable and writable by this user)"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    name = args.command + (f" {args.action}" if getattr(args, "action", None) else "")
    try:
        settings = _settings(args)
    except ValidationError as exc:  # the environment or --db/--config
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "setting"  # the variable's name
            flag = {"NIGHTSHIFT_DB": "db", "NIGHTSHIFT_CONFIG": "config"}.get(name)
            if flag is not None and getattr(args, flag, None) is not None:
                name = f"--{flag}"  # it came from the command line, not the environment
            shown = str(err.get("input"))[:80]
            msg = str(err["msg"]).removeprefix("Value error, ")
            print(f"nightshift: {name}={shown!r}: {msg}", file=sys.stderr)
        return 2
    level = settings.log_level.upper() if args.command == "run" else "WARNING"
    setup_logging(logging.getLevelNamesMapping()[level])
    if name == "run" and (problem := settings.host_problem()) is not None:
        print(f"nightshift: {problem}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(COMMANDS[name](args, settings))
    except PolicyError as exc:
        print(f"nightshift: {exc}", file=sys.stderr)
        return 2
    except SchemaTooNew as exc:
        print(f"nightshift: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:  # name the file: it may come from an environment not in view
        print(f"nightshift: {settings.db}: {exc}{_why_not_open(settings.db, exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `nightshift token list | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # quiet exit flush
        return 0
    except OSError as exc:
        print(f"nightshift: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"nightshift: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
