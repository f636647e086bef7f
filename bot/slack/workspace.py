"""Requests of the bot's own workspace (or organization) only (audit28 C1 L3, review28 R4).

Nightshift is a single-workspace app: one bot token, whose ``auth.test`` names the
workspace (its team) it acts in. Bolt's single-team authorization asks ``auth.test`` once
and keeps its answer, but never compares it with the team a request comes from: the same
app installed in a second workspace (same signing secret) would have that workspace's
members read budgets and statuses, and click buttons, here. This Bolt middleware runs
after Bolt's authorization, for HTTP mode and Socket Mode alike (both feed the same
:class:`~bot.slack.surface.SlackSurface`), and refuses a command, click or form whose
team is not the bot's, so nothing reaches a handler, and tells its sender only: a slash
command in its answer, a click by an ephemeral note through its ``response_url`` (sent
by the outbox, to Slack's hosts only), a form (``view_submission``) by an error on its
first input block. A WARNING says so (once a minute per team).

An org-wide install (Enterprise Grid) serves every workspace of its organization:
``auth.test`` says ``is_enterprise_install: true`` and names the organization in
``enterprise_id``. Whether it also names a ``team_id`` is not documented, and Bolt's
``AuthorizeResult`` keeps ``team_id`` and ``enterprise_id`` but not
``is_enterprise_install``, so the middleware asks ``auth.test`` itself (once, when a
request's team is not the token's) and decides by that flag. An org-wide install takes a
request of its organization and refuses one naming no organization or another; a
single-workspace install compares the team. A request that names no team is left to the
handlers of a single-workspace install (Slack always names one; only the holder of the
signing secret can forge).

Example:
    >>> stranger("T0EVIL", None, ours_team="T0NIGHT", ours_org=None, org_wide=False)
    True
    >>> stranger("T0ANY", "E0ORG", ours_team=None, ours_org="E0ORG", org_wide=True)
    False
    >>> stranger("T0EVIL", None, ours_team=None, ours_org="E0ORG", org_wide=True)
    True
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackClientError

from bot.logs import Throttle

__all__ = ["Answer", "one_workspace", "stranger"]

log = logging.getLogger(__name__)

#: Sends ``payload`` to a click's ``response_url`` (the surface's outbox).
Answer = Callable[[str, dict[str, Any]], Awaitable[None]]
Middleware = Callable[..., Awaitable[BoltResponse]]


def stranger(
    team: str | None,
    org: str | None,
    *,
    ours_team: str | None,
    ours_org: str | None,
    org_wide: bool,
) -> bool:
    """Whether a request of ``team`` (in ``org``) comes from outside what the bot serves:
    its organization for an org-wide install (a request of no organization is outside),
    its team otherwise."""
    if org_wide:
        return org is None or org != ours_org
    return ours_team is not None and team is not None and team != ours_team


def _guess_org_wide(ours: AuthorizeResult) -> bool:
    """auth.test's answer without its flag: an organization and no team is org-wide."""
    return ours.team_id is None and ours.enterprise_id is not None


def _first_input(body: dict[str, Any]) -> str | None:
    """The block id a form's error is shown on: its first input block's."""
    view = body.get("view")
    if not isinstance(view, dict):
        return None
    for block in view.get("blocks") or []:
        if isinstance(block, dict) and block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    values = (view.get("state") or {}).get("values") or {}
    return str(next(iter(values))) if isinstance(values, dict) and values else None


def _json(answer: dict[str, Any]) -> BoltResponse:
    return BoltResponse(
        status=200,
        body=json.dumps(answer),
        headers={"Content-Type": "application/json;charset=utf-8"},
    )


def one_workspace(*, answer: Answer | None = None) -> Middleware:
    """The Bolt middleware (``app.use(one_workspace(answer=...))``): Bolt passes its
    arguments by name, so it is a function, not a method. ``answer`` sends a refused
    click's note to its ``response_url``; without it a click is acked with nothing."""
    said = Throttle()
    known: dict[str, bool] = {}  # "org_wide": auth.test's is_enterprise_install

    async def org_wide(context: AsyncBoltContext, ours: AuthorizeResult) -> bool:
        if "org_wide" in known:
            return known["org_wide"]
        try:
            flag = (await context.client.auth_test()).get("is_enterprise_install")
        except (SlackClientError, OSError, TimeoutError) as exc:
            log.warning("auth.test failed (%s): org-wide install guessed from Bolt's", exc)
            return _guess_org_wide(ours)
        known["org_wide"] = flag if isinstance(flag, bool) else _guess_org_wide(ours)
        return known["org_wide"]

    async def check(
        context: AsyncBoltContext,
        body: dict[str, Any],
        next_: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse:
        ours = context.authorize_result
        if ours is None or (ours.team_id is not None and context.team_id == ours.team_id):
            return await next_()
        wide = await org_wide(context, ours)
        if not stranger(
            context.team_id,
            context.enterprise_id,
            ours_team=ours.team_id,
            ours_org=ours.enterprise_id,
            org_wide=wide,
        ):
            return await next_()
        serves = (ours.enterprise_id if wide else ours.team_id or ours.enterprise_id) or "?"
        where = f"another Slack {'organization' if wide else 'workspace'} ({serves})"
        team = str(context.team_id or context.enterprise_id or "?")[:40]
        kind = str(body.get("command") or body.get("type") or "request")[:40]
        if (since := said.let_through(team, time.time())) is not None:
            log.warning(
                "refused a Slack %s of workspace %r: this Nightshift serves %s only (its bot"
                " token's, from auth.test); is the app installed in a second workspace?"
                " (said once a minute%s)",
                kind,
                team,
                serves,
                since,
            )
        text = (
            f"This Nightshift serves {where}, not yours: nothing was done. Ask its admins"
            " to install it for your workspace."
        )
        if body.get("command"):  # a slash command: its sender is told, nobody else
            return _json({"response_type": "ephemeral", "text": text})
        if body.get("type") == "view_submission" and (block := _first_input(body)):
            return _json({"response_action": "errors", "errors": {block: text}})
        url = body.get("response_url")
        if answer is not None and body.get("type") == "block_actions" and isinstance(url, str):
            payload = {"response_type": "ephemeral", "replace_original": False, "text": text}
            await answer(url, payload)  # the outbox sends it to Slack's hosts only
        return BoltResponse(status=200, body="")

    return check
