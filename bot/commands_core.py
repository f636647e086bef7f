"""Core ``/agent`` subcommands: help, budget, status, audit."""

from __future__ import annotations

from bot.commands import Context, Reply, help_reply, subcommand


@subcommand("help", usage="help")
async def cmd_help(ctx: Context, args: list[str]) -> Reply:
    """Lists the subcommands."""
    return help_reply()
