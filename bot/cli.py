"""The ``nightshift`` command line (DESIGN.md, "The command line"): the parser, the
registry of subcommands and the checks they share; each subcommand lives in a ``cli_*``
module, named in ``CLI_MODULES`` for its command. A command imports only its own module
(an operator's ``token list`` needs neither the server's aiohttp nor the policy's models).

Example:
    >>> # nightshift --db ops.db token create acme/alice --label rss
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import re
import sqlite3
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.chat_words import duration_word
from bot.entry import release
from bot.logs import setup_logging
from bot.run_lock import serving
from bot.settings import Settings
from guards.config_types import PolicyError, parse_duration
from guards.errors import StorageUnavailable
from guards.migrations import BUSY_TIMEOUT_MS, SchemaTooNew, schema_behind
from guards.read_only import on_read_only_disk, open_read_only, read_only_disk, unfolded_wal
from guards.tokens import operator_acts

__all__ = [
    "SchemaBehind",
    "absent",
    "command",
    "current_db",
    "existing_db",
    "main",
    "read_only",
    "why_not_open",
]

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
COMMANDS: dict[str, Command] = {}
# The module that registers each command's subcommands with @command (a new one adds
# its line): only the one typed is imported
CLI_MODULES: dict[str, str] = {
    "run": "bot.cli_run",
    "demo": "bot.cli_run",
    "migrate": "bot.cli_db",
    "ledger": "bot.cli_db",
    "backup": "bot.cli_db",
    "token": "bot.cli_tokens",
    "jobs": "bot.cli_jobs",
}


def command(name: str) -> Callable[[Command], Command]:
    """Register ``nightshift <name>`` (``"token create"`` for one with an action)."""

    def register(fn: Command) -> Command:
        COMMANDS[name] = fn
        return fn

    return register


def load_cli_commands(typed: str | None = None) -> None:
    """Import the module that registers the command ``typed`` (``"token"``), or every one."""
    for module in sorted(set(CLI_MODULES.values())) if typed is None else [CLI_MODULES[typed]]:
        importlib.import_module(module)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "db", None) is not None:
        overrides["NIGHTSHIFT_DB"] = args.db
    if getattr(args, "config", None) is not None:
        overrides["NIGHTSHIFT_CONFIG"] = args.config
    return Settings(**overrides)


def absent(path: str) -> bool:
    """No file (or folder) at ``path``."""
    return not Path(path).exists()


def existing_db(settings: Settings) -> None:
    """For commands that only read or change what is there: a missing file is a typo."""
    if absent(settings.db):
        raise FileNotFoundError(
            f"no database at {settings.db}: check --db / NIGHTSHIFT_DB"
            " (`nightshift migrate` creates one)"
        )


def files_kept(db: str) -> None:
    """Refuse to open ``db`` while a run serves it without its -wal or -shm: this command
    would make new ones beside the files the run holds open, each would overwrite what
    the other wrote, and its change would be undone when the run stops (recheck23 N2:
    a token revoked this way worked again). The run refuses its own writes then.

    Raises:
        OSError: saying so, and what to do.
    """
    gone = [s for s in ("-wal", "-shm") if absent(f"{db}{s}")]
    if not gone or (holder := serving(db)) is None:
        return
    raise OSError(
        f"{db}: its {' and '.join(gone)} file{'s are' if len(gone) > 1 else ' is'} gone while"
        f" Nightshift ({holder}) serves it: a change made now would be lost when it stops."
        " Stop it with SIGTERM (not kill -9: a clean stop copies its latest writes into the"
        " database), then run this again"
    )


class SchemaBehind(Exception):
    """The database is older than this code: only ``run`` and ``migrate`` upgrade it."""


def read_only(path: str) -> sqlite3.Connection:
    """A connection that cannot change the file (verifying a backup must not) and has
    read it: also on a read-only file system (:mod:`guards.read_only`)."""
    return open_read_only(path, busy_timeout_ms=BUSY_TIMEOUT_MS)


def current_db(settings: Settings) -> None:
    """For commands that use what is there: the file exists and is at this code's schema.

    They never upgrade it (an older version may still serve it; the README's upgrade is
    a backup, then ``run`` or ``migrate``).

    Raises:
        FileNotFoundError: no file there (a typo).
        SchemaBehind: the file is older than this code.
    """
    existing_db(settings)
    files_kept(settings.db)
    conn = read_only(settings.db)
    try:
        behind = schema_behind(conn, read_only_disk=on_read_only_disk(settings.db))
    finally:
        conn.close()
    if behind is not None:
        raise SchemaBehind(f"{settings.db}: {behind}")


LABEL_CHARS = 200  # a token's label: one line of `token list`, as a task id's length


def _label(value: str) -> str:
    if len(value) > LABEL_CHARS:
        raise argparse.ArgumentTypeError(
            f"a label is at most {LABEL_CHARS} characters (this one has {len(value)})"
        )
    return value


EXPIRES_MAX_DAYS = 3660  # a token's --expires-in: ten years at most (none: never)


def _expires_in(value: str) -> int:
    try:  # the policy's durations (30s 5m 2h 1d 2w), and `90min`, `2hrs` as Slack takes them
        word = duration_word(value.strip())
        return parse_duration(word, min_seconds=1, max_days=EXPIRES_MAX_DAYS)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{exc}; leave it out for a token that never expires"
        ) from None


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
    demo = sub.add_parser(  # no --db, --config: it plays on files of its own
        "demo", help="a simulated day of a misbehaving fleet, in shell mode"
    )
    demo.add_argument(
        "--interactive", action="store_true", help="press the buttons yourself at the prompt"
    )
    for option in ("--db", "--config"):  # taken, to be refused in words (`demo` says why)
        demo.add_argument(option, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub.add_parser("migrate", parents=[common], help="apply pending database migrations")
    token = sub.add_parser("token", parents=[common], help="agent tokens").add_subparsers(
        dest="action", required=True, metavar="action"
    )
    create = token.add_parser("create", parents=[common], help="create a token for a scope")
    create.add_argument("scope", help="namespace[/user[/agent[/conversation]]]")
    create.add_argument("--label", type=_label, help="a note to remember it by")
    create.add_argument(
        "--expires-in",
        type=_expires_in,
        metavar="DURATION",
        help="refuse it after this long: 30s, 5m, 2h, 1d, 2w (default: it never expires)",
    )
    create.add_argument(
        "--operator",
        action="store_true",
        help=f"an operator's token: over HTTP, {operator_acts(subtree='the scope and below')};"
        " it reserves nothing (default: an agent's token)",
    )
    token.add_parser("list", parents=[common], help="list tokens")
    revoke = token.add_parser("revoke", parents=[common], help="revoke a token")
    revoke.add_argument("id", help="the token's id (tok_..., see token list), or the whole token")
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


def why_not_open(db: str, exc: sqlite3.Error) -> str:
    """What SQLite's "unable to open database file", "attempt to write a readonly
    database" and "disk I/O error" leave out: why."""
    if Path(db).is_dir():  # ("unable to open", or "disk I/O error" read-only)
        return " (it is a folder: name a database file in it, e.g. nightshift.db)"
    if Path(db).exists() and not Path(db).is_file():  # /dev/null: "disk I/O error"
        return " (it is not a regular file, e.g. a device: name a database file)"
    said = str(exc)
    if "disk I/O error" in said and Path(f"{db}-shm").exists():  # a process has it open
        return (
            " (check the disk; if Nightshift runs on this file, its /healthz says whether its"
            " -wal file was deleted)"
        )
    if "unable to open" not in said and "readonly" not in said:
        return ""
    folder = Path(db).resolve().parent
    if not folder.is_dir():
        return f" (the folder {folder} does not exist)"
    if read_only_disk(folder) or read_only_disk(db):
        return _on_read_only_disk(db, folder)
    if not os.access(folder, os.W_OK):
        # (a WAL database is read through its -shm, even by a command that only reads)
        return (
            f" (the folder {folder} is not writable by this user: SQLite keeps its -wal and"
            " -shm files beside the database; make it writable, or copy the database to a"
            " folder that is)"
        )
    if Path(db).exists() and not os.access(db, os.R_OK | os.W_OK):
        return " (the file is not readable and writable by this user)"
    if "readonly" in said:
        return " (the file, or its folder, is not writable by this user, or its disk is read-only)"
    if not Path(db).exists():  # a folder no file can be made in (/proc, a read-only mount)
        return f" (no file can be made in {folder}: name a database path on a writable disk)"
    return ""


def _on_read_only_disk(db: str, folder: Path) -> str:
    """why_not_open's words for a file system mounted read-only (EROFS), not a
    permission: no user can write there; a copy on a writable disk can be."""
    name = Path(db).name
    if not Path(db).exists():  # a new database, or backup's copy
        return (
            f" (the folder {folder} is on a read-only file system: name a path on a writable disk)"
        )
    if read_only_disk(folder) and unfolded_wal(Path(db).resolve()):
        return (
            f" (the folder {folder} is on a read-only file system, and {name}-wal beside it"
            " holds writes not yet in the database file: SQLite reads them through a -shm"
            f" file, which it cannot make there. Copy {name} and {name}-wal together to a"
            " writable folder and name the copy)"
        )
    where = f"the folder {folder}" if read_only_disk(folder) else "the file"
    return (
        f" ({where} is on a read-only file system: nothing can write the database there,"
        " nor make the -wal and -shm files SQLite writes through; mount it read-write, or"
        " copy the database to a writable folder)"
    )


_USERINFO = re.compile(r"(://)[^/\s]*@")  # a URL's user:password@ (to its last @)


def refused_write(cause: str, *, db: str) -> str:
    """Why the database ``db`` refused a command's write, for the operator who typed it."""
    if "locked" in cause:
        cause += (
            ": another process holds its write lock (a sqlite3 shell or a backup tool in a"
            " transaction?); end it, then run this again"
        )
    elif "readonly" in cause and (read_only_disk(db) or read_only_disk(Path(db).parent)):
        cause += (
            ": the file is on a read-only file system (a read-only mount); mount it"
            " read-write, or copy the database to a writable folder"
        )
    elif "readonly" in cause:
        cause += (
            ": the file (or its folder: SQLite keeps its -wal and -shm files beside it) is not"
            " writable by this user"
        )
    return f"the database refused a write ({cause}); nothing was changed"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:  # --help, or a bad command line: the signals bot.entry held go
        if (code := release()) is not None:  # back first, so one noted meanwhile ends it
            return code  # (a Ctrl-C: 130)
        raise
    load_cli_commands(args.command)
    name = args.command + (f" {args.action}" if getattr(args, "action", None) else "")
    if args.command != "run" and (code := release()) is not None:
        return code  # only `run` keeps the signals bot.entry held; a Ctrl-C came meanwhile
    try:
        settings = _settings(args)
    except ValidationError as exc:  # the environment or --db/--config
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "setting"  # the variable's name
            flag = {"NIGHTSHIFT_DB": "db", "NIGHTSHIFT_CONFIG": "config"}.get(name)
            if flag is not None and getattr(args, flag, None) is not None:
                name = f"--{flag}"  # it came from the command line, not the environment
            shown = _USERINFO.sub(r"\1…@", str(err.get("input")))[:80]  # no password shown
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
    except (SchemaTooNew, SchemaBehind) as exc:
        print(f"nightshift: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:  # name the file: it may come from an environment not in view
        print(f"nightshift: {settings.db}: {exc}{why_not_open(settings.db, exc)}", file=sys.stderr)
        return 1
    except StorageUnavailable as exc:  # (the agents' 503 wording says "send it again")
        why = refused_write(exc.cause, db=settings.db)
        print(f"nightshift: {settings.db}: {why}", file=sys.stderr)
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
