"""The demo in a real workspace (SLACK_* variables set): what it needs, and the wait
for Slack before its table.

A workspace can page only its members: ``NIGHTSHIFT_DEMO_USER`` (a member id) plays every
person the story pages; without it the story's made-up people play on and Slack refuses
their DMs (the table counts them apart). ``NIGHTSHIFT_DEMO_CHANNEL`` is where the alerts
and the digest go.

Example:
    >>> MADE_UP_CAST.split(":")[0]  # said as the demo starts without a member to page
    'NIGHTSHIFT_DEMO_USER is not set'
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

from bot.outbox import outbox_health
from guards.config_people import MEMBER_ID
from guards.words import plural

if TYPE_CHECKING:
    from bot.app import Nightshift
    from bot.demo.story import Narrator

__all__ = ["MADE_UP_CAST", "SLACK_HELP", "wait_for_slack", "workspace_problem"]

SLACK_DRAIN_SECONDS = 600
SLACK_HELP = """with Slack variables set (SLACK_BOT_TOKEN ...), the demo plays in a real
workspace and needs NIGHTSHIFT_DEMO_CHANNEL. Either set
  NIGHTSHIFT_DEMO_CHANNEL  the id of a channel the bot is in (alerts and the digest go there)
  NIGHTSHIFT_DEMO_USER     your member id (U...: your profile, ⋯, Copy member ID), to play
                           every person the story pages (Dana and Sam) and get the pages:
                           without it they are made-up members, whose DMs Slack refuses
or unset the SLACK_* variables to play it here, in the shell.
"""
#: what a NIGHTSHIFT_DEMO_USER that is no member id is told (the channel being set)
BAD_USER = """NIGHTSHIFT_DEMO_USER={!r} is not a member id (U0123ABCD): set it to your
member id (U...: your profile, ⋯, Copy member ID) to play every person the story pages
and get the pages, or unset it: the story's made-up people play on, and Slack refuses
their DMs.
"""
MADE_UP_CAST = (
    "NIGHTSHIFT_DEMO_USER is not set: the people this story pages (Dana, Sam) are made-up"
    " members, so Slack refuses their DMs and the table counts them apart. Set it to your"
    " member id (U…) to be paged yourself."
)


def workspace_problem() -> str | None:
    """Why the demo cannot play in the workspace (the lines said on stderr), or None.

    Only what is wrong is said: a bad NIGHTSHIFT_DEMO_USER with the channel set is told
    about the user alone, not that the channel is needed (recheck25_a L4).
    """
    channel = os.environ.get("NIGHTSHIFT_DEMO_CHANNEL", "").strip()
    me = os.environ.get("NIGHTSHIFT_DEMO_USER", "").strip()
    if not channel:
        return SLACK_HELP
    if me and not MEMBER_ID.fullmatch(me):
        return BAD_USER.format(me[:40])
    return None


async def wait_for_slack(ns: Nightshift, narrator: Narrator) -> None:
    """Slack takes about one message a second per channel: let the outbox finish."""
    deadline = time.monotonic() + SLACK_DRAIN_SECONDS
    while time.monotonic() < deadline:
        health = await outbox_health(ns.store)
        if not health.pending:
            return
        waiting = plural(health.pending, "message")
        narrator.out.write(f"\r(waiting for Slack: {waiting} to deliver)   ")
        narrator.out.flush()
        await asyncio.sleep(1)
    narrator.out.write("\nSlack did not take every message in time; see nightshift_outbox_*\n")
