"""Requests of the bot's own workspace only (audit28 C1 L3).

Nightshift is a single-workspace app: one bot token, whose ``auth.test`` names the
workspace (its team) it acts in. Bolt's single-team authorization asks ``auth.test`` once
and keeps its answer, but never compares it with the team a request comes from: the same
app installed in a second workspace (same signing secret) would have that workspace's
members read budgets and statuses, and click buttons, here. This Bolt middleware runs
after Bolt's authorization, for HTTP mode and Socket Mode alike (both feed the same
:class:`~bot.slack.surface.SlackSurface`), and refuses a command, click or form whose
team is not the bot's: a slash command is told, to its sender only, which workspace this
Nightshift serves; a click or form is acknowledged with nothing; a WARNING says so (once a
minute per team). Nothing reaches a handler.

An org-wide install (Enterprise Grid) has no one team: its token's ``auth.test`` names the
organization, and a request of any workspace in it is taken. A request that names no team
is left to the handlers (Slack always names one; only a forger would not, and only the
holder of the signing secret can forge).

Example:
    >>> stranger("T0EVIL", None, ours_team="T0NIGHT", ours_org=None)
    True
    >>> stranger("T0ANY", "E0ORG", ours_team=None, ours_org="E0ORG")
    False
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse

from bot.logs import Throttle

__all__ = ["one_workspace", "stranger"]

log = logging.getLogger(__name__)


def stranger(
    team: str | None, org: str | None, *, ours_team: str | None, ours_org: str | None
) -> bool:
    """Whether a request of ``team`` (in ``org``) comes from outside the bot's workspace."""
    if ours_team is None:  # an org-wide install, or auth.test said nothing: the org decides
        return ours_org is not None and org is not None and org != ours_org
    return team is not None and team != ours_team


Middleware = Callable[..., Awaitable[BoltResponse]]


def one_workspace() -> Middleware:
    """The Bolt middleware (``app.use(one_workspace())``): Bolt passes its arguments by
    name, so it is a function, not a method."""
    said = Throttle()

    async def check(
        context: AsyncBoltContext,
        body: dict[str, Any],
        next_: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse:
        ours = context.authorize_result
        if ours is None or not stranger(
            context.team_id,
            context.enterprise_id,
            ours_team=ours.team_id,
            ours_org=ours.enterprise_id,
        ):
            return await next_()
        where = ours.team_id or ours.enterprise_id or "?"
        team = str(context.team_id or context.enterprise_id or "?")[:40]
        kind = str(body.get("command") or body.get("type") or "request")[:40]
        if (since := said.let_through(team, time.time())) is not None:
            log.warning(
                "refused a Slack %s of workspace %r: this Nightshift serves %s only (its bot"
                " token's, from auth.test); is the app installed in a second workspace?"
                " (said once a minute%s)",
                kind,
                team,
                where,
                since,
            )
        if body.get("command"):  # a slash command: its sender is told, nobody else
            text = (
                f"This Nightshift serves another Slack workspace ({where}), not yours: nothing"
                " was done. Ask its admins to install it for your workspace."
            )
            answer = {"response_type": "ephemeral", "text": text}
            return BoltResponse(
                status=200,
                body=json.dumps(answer),
                headers={"Content-Type": "application/json;charset=utf-8"},
            )
        return BoltResponse(status=200, body="")  # a click or a form: acknowledged, unheard

    return check
