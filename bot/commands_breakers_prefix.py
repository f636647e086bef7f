"""``/agent breaker <prefix>/* approve``: approve every trial waiting under a prefix.

A provider outage leaves one trial request per agent; this answers them in one command
(admins, as a single approve). The reply counts them and names the first
:data:`NAMED_UNDER`. A helper of :mod:`bot.commands_breakers`, which registers the command.

Example:
    >>> # /agent breaker acme/bob/* approve
"""

from __future__ import annotations

from bot.blocks import echo
from bot.commands import Context, Reply, UsageError
from bot.escape import slack_text
from guards.breaker import HALF_OPEN_PENDING
from guards.breaker_kinds import MODEL_PREFIX
from guards.scopes import Scope, ScopeError
from guards.store import Tx

__all__ = ["ANY_UNDER", "NAMED_UNDER", "approve_under", "waiting_under"]

ANY_UNDER = "/*"  # `breaker acme/bob/* approve`: every trial waiting under acme/bob
NAMED_UNDER = 5  # the breakers an approval by prefix names (it counts them all)


def _prefix_of(text: str) -> str:
    """The scope path of ``acme/bob/*``, or UsageError saying what a prefix is."""
    prefix = text[: -len(ANY_UNDER)] if text.endswith(ANY_UNDER) else ""
    if not prefix or "*" in prefix or prefix.startswith(MODEL_PREFIX):
        raise UsageError(
            f"`{echo(text, 60)}` is not a prefix: write a scope path and `/*`, as"
            " `/agent breaker acme/bob/* approve` (a model's breaker: by its own name)."
            " Nothing changed."
        )
    try:
        return Scope.parse(prefix).path
    except ScopeError as exc:
        raise UsageError(f"`{echo(text, 60)}`: {exc}. Nothing changed.") from None


def waiting_under(ctx: Context, tx: Tx, prefix: str, *, itself: bool = False) -> list[str]:
    """The breakers below ``prefix`` (and it, with ``itself``) that wait for an approval."""
    return sorted(
        row.scope
        for row in ctx.ns.breakers.list(tx, within=prefix)
        if row.state == HALF_OPEN_PENDING
        and ((itself and row.scope == prefix) or row.scope.startswith(prefix + "/"))
    )


async def approve_under(ctx: Context, typed: str) -> Reply:
    """``breaker <prefix>/* approve``: approve every trial waiting under the prefix, in
    one write; the reply counts them and names the first :data:`NAMED_UNDER`."""
    prefix = _prefix_of(typed)
    breakers = ctx.ns.breakers

    def approve_all(tx: Tx) -> list[str]:
        waiting = waiting_under(ctx, tx, prefix, itself=True)
        for key in waiting:
            breakers.approve(tx, key, ctx.actor)
        return waiting

    approved = await ctx.ns.store.write(approve_all)
    under = f"`{slack_text(prefix)}`"
    if not approved:
        return Reply.text_only(
            f"No breaker under {under} waits for a trial approval; nothing changed"
            " (`/agent breakers` lists them)."
        )
    names = [slack_text(key[len(prefix) + 1 :] or key) for key in approved[:NAMED_UNDER]]
    more = f" and {len(approved) - NAMED_UNDER} more" if len(approved) > NAMED_UNDER else ""
    count = f"{len(approved)} breaker{'s' if len(approved) != 1 else ''}"
    return Reply.text_only(
        f"<@{ctx.user_id}> approved the trial of {count} under {under}: {', '.join(names)}{more}",
        ephemeral=False,
    )
