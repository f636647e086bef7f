"""``nightshift token create | list | revoke``: the API tokens, audited as ``cli:<login>``.

An agent's token reserves and reports; an operator's (``--operator``) acts on its
scope's alerts, silences and breakers (:func:`guards.tokens.operator_acts`).

Example:
    >>> # nightshift token create acme/alice/rss-bot --label "rss bot"
    >>> # nightshift token create acme/alice --operator --label "deploy script"
    >>> # nightshift token create acme/contractor --expires-in 30d
    >>> # nightshift token revoke tok_3f2a...
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sqlite3
import sys
import time

from bot.cli import absent, command, current_db, read_only
from bot.escape import printable
from bot.settings import Settings
from guards.clock import to_datetime
from guards.config_types import in_words
from guards.scopes import Scope
from guards.store import Store
from guards.tokens import create_token, operator_acts, revoke_token

__all__ = ["cli_actor", "cmd_token_create", "cmd_token_list", "cmd_token_revoke"]


def cli_actor() -> str:
    """Who the audit log says made a change from the command line: ``cli:<login>``."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        who = f"uid{os.getuid()}"
    return f"cli:{who}"


@command("token create")
async def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    # Bad input changes nothing: the scope is checked before a database is made (audit25
    # M1: a refused scope left a new migrated file, and the next create no longer said
    # "a new database"). Then it may come before the first `run`, so it makes the
    # database; naming it shows a typo.
    Scope.parse(args.scope)  # ScopeError (a ValueError): exit 2, naming what is wrong
    new = absent(settings.db)
    if not new:
        current_db(settings)  # an older file is upgraded by `run` or `migrate`, not here
    store = await Store.open(settings.db)
    try:
        token, raw = await store.write(
            lambda tx: create_token(
                tx,
                scope=args.scope,
                label=args.label,
                actor=cli_actor(),
                expires_in=args.expires_in,
                operator=args.operator,
            )
        )
    finally:
        await store.close()
    where = f"{settings.db} (a new database)" if new else settings.db
    print(f"created {token.id} for {token.scope} in {where};")
    if token.operator:  # said before the token: its last word stays the token
        acts = operator_acts(subtree=f"{token.scope} and below")
        print(f"an operator token: it {acts}; it reserves nothing;")
    if args.expires_in is not None:  # said before the token: its last word stays the token
        print(
            f"it expires at {_utc(token.expires_at)} UTC (in {in_words(args.expires_in)}):"
            " then it is refused (401);"
        )
    print("it is shown only once, keep it secret (a server on another database refuses it):")
    print(f"token: {raw}")
    return 0


@command("token list")
async def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    current_db(settings)
    conn = read_only(settings.db)  # it only reads: also a database on a read-only disk
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT id, scope, label, created_at, revoked_at, expires_at, operator FROM tokens"
            " ORDER BY created_at"
        ).fetchall()
    finally:
        conn.close()
    if not rows:
        print("no tokens yet: nightshift token create <scope>")
        return 0
    now = time.time()
    print(
        f"{'id':<18} {'scope':<40} {'created (UTC)':<20} {'expires (UTC)':<20} {'state':<8}"
        f" {'kind':<8} label"
    )
    for r in rows:
        created = _utc(r["created_at"])
        expires = "never" if r["expires_at"] is None else _utc(r["expires_at"])
        if r["revoked_at"]:
            state = "revoked"
        elif r["expires_at"] is not None and r["expires_at"] <= now:
            state = "expired"
        else:
            state = "active"
        label = printable(r["label"] or "")  # an escape or a newline shows as such
        kind = "operator" if r["operator"] else "agent"
        print(
            f"{r['id']:<18} {r['scope']:<40} {created:<20} {expires:<20} {state:<8} {kind:<8}"
            f" {label}"
        )
    return 0


def _utc(ts: float) -> str:
    return to_datetime(ts).strftime("%Y-%m-%d %H:%M")


@command("token revoke")
async def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    # the whole token pasted instead of its id (with "Bearer " or a space before it, from a
    # header or a copy): the id is inside; the secret is never shown (audit24 security L4)
    whole = re.search(r"ns_(tok_[0-9a-f]+)_", args.id)
    token_id = whole.group(1) if whole else args.id.strip()
    if "tok_" not in token_id:  # a scope, a label: refused before the database is read
        raise ValueError(
            f"'{printable(token_id[:80])}' is not a token's id: an id starts with tok_ (see"
            " nightshift token list), or paste the whole token"
        )
    current_db(settings)
    store = await Store.open(settings.db)
    try:
        done = await store.write(lambda tx: revoke_token(tx, token_id=token_id, actor=cli_actor()))
    finally:
        await store.close()
    if not done:
        # an id (the secret was left behind above), or what was given when it holds one
        named = "given" if "ns_" in token_id else printable(token_id[:80])
        print(f"no active token {named} (see nightshift token list)", file=sys.stderr)
        return 1
    print(f"revoked {token_id}")
    return 0
