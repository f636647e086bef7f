"""``/agent dedup [scope] [since]``: recent validation rejections (duplicates, runaways).

The items' texts and ids are the agent's: they are cut, then escaped
(:func:`bot.escape.slack_text`), so a ``<http://…|…>`` cut in half or whole shows as text.

Example:
    >>> # /agent dedup acme/alice/rss-bot 24h
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from bot.blocks import clip, context, echo, section
from bot.chat_words import join_duration
from bot.commands import Context, Reply, UsageError, subcommand
from bot.commands_core import local_time, parse_scope_arg
from bot.escape import plain_line, slack_text
from bot.known_scopes import did_you_mean, known_scope, meant, unseen
from guards.config import parse_duration
from guards.store import Tx
from guards.validation.repo import count_rejections, rejections
from guards.validation.types import Rejection
from guards.words import clip_chars, plural

__all__ = ["group", "matched_name", "rejection_line"]

DEFAULT_SINCE = 24 * 3600
LIMIT = 200
SHOWN = 10
MATCHED_CHARS = 40
REASONS = {
    "duplicate": "duplicate",
    "near_duplicate": "near-duplicate",
    "runaway": "runaway batch",
    "empty": "empty",
    "too_large": "too large",
}


def matched_name(r: Rejection) -> str:
    """What a rejection matched: its text if kept, the agent's id quoted, else ``#N``.

    The agent's own ids are quoted (“guid-777”) so that an id ``17`` and internal
    item #17 never look the same. Text and ids are cut to MATCHED_CHARS, then escaped.
    """
    if r.matched_preview:
        return f"“{_short(r.matched_preview)}”"
    if r.matched_ref is not None:
        return f"“{_short(r.matched_ref)}”"
    return f"#{r.matched_item_id}"


def _short(text: str) -> str:
    return slack_text(clip_chars(plain_line(text), MATCHED_CHARS))


def rejection_line(ctx: Context, r: Rejection, times: int = 1) -> str:
    """``03:12 duplicate acme/alice/rss-bot posts — “Bitcoin…” (same as “Bitcoin…”, 01:10)``.

    ``times`` > 1 prefixes ``46×`` (identical rejections grouped; the time is the newest).
    """
    what = REASONS.get(r.reason, r.reason)
    many = f"{times}× " if times > 1 else ""
    line = f"`{local_time(ctx, r.at)}` {many}*{what}* `{r.scope}` {r.stream}"
    if r.reason == "runaway":
        expected = f", expected {r.expected_count}" if r.expected_count is not None else ""
        return f"{line} — {plural(r.batch_size, 'item')}{expected}"
    # masked where shown (any member reads this), not where kept: duplicates are found
    # on the text the agent sent (audit28 C1 M2); marks out, the mask seeing through
    # them (recheck28 Kc L1)
    line += f" — “{slack_text(plain_line(r.preview)[:120])}”"
    if r.matched_item_id is not None:
        like = f"{round(r.similarity * 100)}% like" if r.similarity is not None else "same as"
        if r.reason == "duplicate":
            like = "same as"
        when = f", {local_time(ctx, r.matched_at)}" if r.matched_at else ""
        line += f" ({like} {matched_name(r)}{when})"
    return line


def group(found: list[Rejection]) -> list[tuple[Rejection, int]]:
    """Identical rejections (same scope, stream, reason, text and matched item) as one
    line with a count, in the order of their newest."""
    out: dict[tuple[object, ...], list[Any]] = {}
    for r in found:
        key: tuple[object, ...] = (
            r.scope,
            r.stream,
            r.reason,
            r.preview,
            r.matched_item_id,
            r.matched_ref,
        )
        if r.reason == "runaway":
            key = (r.id,)
        entry = out.setdefault(key, [r, 0])
        entry[1] += 1
    return [(r, n) for r, n in out.values()]


def _parse(args: list[str]) -> tuple[str | None, int, str]:
    args = join_duration(join_duration(args, 1), 0)  # `24 h`, `24 hours`, `90min`
    if len(args) > 2:
        raise UsageError()
    scope: str | None = None
    seconds, since_text = DEFAULT_SINCE, "24h"
    for arg in args:
        if arg.isascii() and arg.isdigit():
            raise UsageError(f"`{arg}` what? Write `{arg}h` for hours (or `{arg}m`, `{arg}d`)")
        try:
            seconds, since_text = parse_duration(arg), arg
            continue
        except ValueError:
            pass
        if scope is not None:
            raise UsageError(f"`{echo(arg, 40)}` is neither a scope nor a duration like 24h")
        scope = parse_scope_arg(arg).path
    if seconds <= 0:
        raise UsageError("since is a duration like 30m, 24h or 7d")
    return scope, seconds, since_text


def _unknown(ctx: Context, tx: Tx, scope: str) -> str | None:
    """What to say about a scope Nightshift does not know (None: it knows it)."""
    if known_scope(ctx.ns.policy, tx, scope):
        return None
    close = meant(ctx.ns.policy, tx, scope)
    again = f" (`/agent dedup {close}`)" if close else ""
    return (
        f"{unseen(scope)}: no output was checked under it, so there is nothing to show."
        f"{did_you_mean(close)}{again}"
    )


async def _namespaces(ctx: Context) -> list[str]:
    """Namespaces with agents: from the hierarchy and from validated streams."""
    rows = await ctx.ns.store.fetch(
        "SELECT path FROM scopes WHERE depth = 1"
        " UNION SELECT DISTINCT agent FROM validation_streams"
    )
    return sorted({str(r[0]).split("/", 1)[0] for r in rows})


@subcommand("dedup", usage="dedup [scope] [since, e.g. 24h]")
async def cmd_dedup(ctx: Context, args: list[str]) -> Reply:
    """Recent validation rejections: duplicates, near-duplicates and runaway batches."""
    scope, seconds, since_text = _parse(args)
    since = ctx.ns.clock.now() - seconds
    scopes = [scope] if scope is not None else await _namespaces(ctx)
    found: list[Rejection] = []
    counts: Counter[str] = Counter()
    for where_scope in scopes:
        found += await rejections(ctx.ns.store, scope=where_scope, since=since, limit=LIMIT)
        counts.update(await count_rejections(ctx.ns.store, scope=where_scope, since=since))
    found.sort(key=lambda r: (r.at, r.id), reverse=True)
    found = found[:LIMIT]
    where = f"`{scope}`" if scope else "every namespace"
    if not found and scope is not None:
        unknown = await ctx.ns.store.read(lambda tx: _unknown(ctx, tx, scope))
        if unknown is not None:  # not an all-clear: nothing was ever checked there
            return Reply.text_only(unknown)
    if not found:
        return Reply.text_only(f"✅ No output rejected in {where} in the last {since_text}.")
    named = Counter({REASONS.get(reason, reason): n for reason, n in counts.items()})
    summary = ", ".join(f"{n} {what}" for what, n in named.most_common())
    more = f" (lines for the newest {LIMIT})" if sum(counts.values()) > len(found) else ""
    title = f"*Rejected output* in {where}, last {since_text}: {summary}{more}"
    grouped = group(found)
    lines = [rejection_line(ctx, r, n) for r, n in grouped[:SHOWN]]
    blocks = [section(title), section(clip("\n".join(lines)))]
    if len(grouped) > SHOWN:
        blocks.append(
            context(
                f"… and {len(grouped) - SHOWN} more lines; narrow with a scope or a shorter since"
            )
        )
    return Reply(text=clip("\n".join([title, *lines])), blocks=blocks)
