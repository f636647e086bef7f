"""The Slack Web API client, pointed at ``SLACK_API_URL`` when set (tests use a local fake),
and the check of its bot token at start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from guards.errors import said

__all__ = [
    "SlackTokenRefused",
    "check_app_token",
    "check_at_start",
    "check_bot_token",
    "retry_after",
    "slack_error",
    "web_client",
]

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 15
CHECK_SECONDS = 5.0  # auth.test at start: past this, start without knowing
# what Slack answers for a token it will not take
REFUSED_TOKEN = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)


class SlackTokenRefused(ValueError):
    """Slack refuses the bot token: started, Nightshift would page nobody."""


def web_client(settings: Settings) -> AsyncWebClient:
    """An AsyncWebClient with the bot token; no built-in retries (the outbox retries)."""
    base_url = settings.slack_api_url or AsyncWebClient.BASE_URL
    if not base_url.endswith("/"):
        base_url += "/"
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=base_url,
        timeout=TIMEOUT_SECONDS,
        retry_handlers=[],
    )


def slack_error(exc: SlackApiError) -> tuple[int, str | None]:
    """(HTTP status, Slack's ``error`` code or None) of a refused call, whatever its body
    was: JSON, text from a proxy, or JSON that did not parse."""
    response = exc.response
    status = getattr(response, "status_code", None) or getattr(response, "status", None) or 0
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    return int(status), str(error) if error is not None else None


def retry_after(headers: Any) -> float | None:
    """The seconds of a ``Retry-After`` header (None: none, or not a number)."""
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
    except AttributeError:
        return None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


async def _ask(
    call: Awaitable[Any], *, token: str, fix: str, refused: frozenset[str], refuse: bool
) -> Any | None:
    """Make ``call``, Slack's check of the token named ``token``: its answer, or None.

    An error code in ``refused`` (the token is wrong or revoked) raises
    :class:`SlackTokenRefused` saying ``fix`` (with ``refuse=False``, a reload, it is an
    ERROR instead); anything else (Slack out of reach, a proxy's page) is a WARNING.
    """
    try:
        return await asyncio.wait_for(call, CHECK_SECONDS)
    except SlackApiError as exc:
        status, error = slack_error(exc)
        if error in refused:
            said_so = f"Slack refuses {token} ({error}): {fix}"
            if refuse:
                raise SlackTokenRefused(said_so) from None
            log.error("%s", said_so)
            return None
        why = f"Slack (or a proxy) answered {status}{f' {error}' if error else ''}"
        log.warning("could not check %s: %s; going on", token, why)
    except Exception as exc:  # out of reach, a timeout, a body no client reads: not the token
        log.warning("could not reach Slack to check %s (%s); going on", token, said(exc))
    return None


async def check_bot_token(client: AsyncWebClient, *, refuse: bool) -> None:
    """Ask Slack who the bot token is (``auth.test``) before anything is sent with it.

    A token Slack refuses stops start-up (:class:`SlackTokenRefused`, exit 2), as a
    missing one does: running, Nightshift would page nobody and the first alert of the
    night would be lost. With ``refuse=False`` (a reload: the agents' API must stay up)
    it is an ERROR instead. Slack out of reach or failing is a WARNING: messages wait in
    the outbox until it answers.
    """
    answer = await _ask(
        client.auth_test(),
        token="SLACK_BOT_TOKEN",
        fix="copy the Bot User OAuth Token again (the app's OAuth & Permissions page), or"
        " reinstall the app; with it nobody can be paged",
        refused=REFUSED_TOKEN,
        refuse=refuse,
    )
    if answer is not None:
        data = answer.data if isinstance(answer.data, dict) else {}
        log.info("Slack: the bot is @%s in %s", data.get("user"), data.get("team"))


async def check_app_token(client: AsyncWebClient, app_token: str, *, refuse: bool) -> None:
    """Ask Slack for a Socket Mode connection with the app token (``apps.connections.open``,
    as Bolt does next): a token Slack refuses would leave every command and button
    unheard while alerts still go out, so it stops start-up as a refused bot token does."""
    await _ask(
        client.apps_connections_open(app_token=app_token),
        token="SLACK_APP_TOKEN",
        fix="make an app-level token with the connections:write scope (the app's Basic"
        " Information, App-Level Tokens) and copy it again; with it no command or button"
        " reaches Nightshift",
        refused=REFUSED_TOKEN | {"not_allowed_token_type"},
        refuse=refuse,
    )


async def _check_tokens(client: AsyncWebClient, app_token: str | None, *, refuse: bool) -> None:
    await check_bot_token(client, refuse=refuse)
    if app_token:
        await check_app_token(client, app_token, refuse=refuse)


async def check_at_start(
    client: AsyncWebClient, *, reloaded: bool, app_token: str | None = None
) -> asyncio.Task[None] | None:
    """:func:`check_bot_token` (and :func:`check_app_token` in Socket Mode) for a
    transport's start: awaited on a first start (a refused token stops it); after a
    reload, run beside the server (its answer is only logged, and the agents' API must not
    wait a Slack round trip for it). Returns that task to keep."""
    if not reloaded:
        await _check_tokens(client, app_token, refuse=True)
        return None
    return asyncio.create_task(
        _check_tokens(client, app_token, refuse=False), name="slack-token-check"
    )
