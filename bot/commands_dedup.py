"""``/agent dedup [scope] [since]``: recent validation rejections (duplicates, runaways).

Example:
    >>> # /agent dedup acme/alice/rss-bot 24h
"""

from __future__ import annotations

from collections import Counter

from bot.commands import Context, Reply, UsageError, clip, context, section, subcommand
from bot.commands_core import clock_time, parse_scope_arg
from guards.config import parse_duration
from guards.validation.repo import rejections
from guards.validation.types import Rejection

__all__ = ["rejection_line"]

DEFAULT_SINCE = 24 * 3600
LIMIT = 50
SHOWN = 25
REASONS = {
    "duplicate": "duplicate",
    "near_duplicate": "near-duplicate",
    "runaway": "runaway batch",
    "empty": "empty",
    "too_large": "too large",
}


def rejection_line(ctx: Context, r: Rejection) -> str:
    """``03:12 duplicate acme/alice/rss-bot/posts — "Breaking: ..." (same as #42, 01:10)``."""
    what = REASONS.get(r.reason, r.reason)
    line = f"`{clock_time(ctx, r.at)}` *{what}* `{r.scope}` {r.stream}"
    if r.reason == "runaway":
        expected = f", expected {r.expected_count}" if r.expected_count is not None else ""
        return f"{line} — {r.batch_size} items{expected}"
    line += f" — “{r.preview[:120]}”"
    if r.matched_item_id is not None:
        like = f"{round(r.similarity * 100)}% like" if r.similarity is not None else "same as"
        when = f", {clock_time(ctx, r.matched_at)}" if r.matched_at else ""
        line += f" ({like} #{r.matched_ref or r.matched_item_id}{when})"
    return line


def _parse(args: list[str]) -> tuple[str | None, int, str]:
    if len(args) > 2:
        raise UsageError()
    scope: str | None = None
    seconds, since_text = DEFAULT_SINCE, "24h"
    for arg in args:
        try:
            seconds, since_text = parse_duration(arg), arg
            continue
        except ValueError:
            pass
        if scope is not None:
            raise UsageError(f"`{arg[:40]}` is neither a scope nor a duration like 24h")
        scope = parse_scope_arg(arg).path
    if seconds <= 0:
        raise UsageError("since is a duration like 30m, 24h or 7d")
    return scope, seconds, since_text


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
    if scope is not None:
        found = await rejections(ctx.ns.store, scope=scope, since=since, limit=LIMIT)
    else:
        found = []
        for namespace in await _namespaces(ctx):
            found += await rejections(ctx.ns.store, scope=namespace, since=since, limit=LIMIT)
        found.sort(key=lambda r: (r.at, r.id), reverse=True)
        found = found[:LIMIT]
    where = f"`{scope}`" if scope else "every namespace"
    if not found:
        return Reply.text_only(f"✅ No output rejected in {where} in the last {since_text}.")
    counts = Counter(REASONS.get(r.reason, r.reason) for r in found)
    summary = ", ".join(f"{n} {what}" for what, n in counts.most_common())
    more = " (the newest 50)" if len(found) >= LIMIT else ""
    title = f"*Rejected output* in {where}, last {since_text}: {summary}{more}"
    lines = [rejection_line(ctx, r) for r in found[:SHOWN]]
    blocks = [section(title), section(clip("\n".join(lines)))]
    if len(found) > SHOWN:
        blocks.append(
            context(f"… and {len(found) - SHOWN} more; narrow with a scope or a shorter since")
        )
    return Reply(text=clip("\n".join([title, *lines])), blocks=blocks)
