"""The Slack Web API client, pointed at ``SLACK_API_URL`` when set (tests use a local fake),
and the check of its bot token at start."""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from guards.errors import said

__all__ = [
    "SlackTokenRefused",
    "check_app_token",
    "check_at_start",
    "check_bot_token",
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


async def check_bot_token(client: AsyncWebClient, *, refuse: bool) -> None:
    """Ask Slack who the bot token is (``auth.test``) before anything is sent with it.

    A token Slack refuses stops start-up (:class:`SlackTokenRefused`, exit 2), as a
    missing one does: running, Nightshift would page nobody and the first alert of the
    night would be lost. With ``refuse=False`` (a reload: the agents' API must stay up)
    it is an ERROR instead. Slack out of reach or failing is a WARNING: messages wait in
    the outbox until it answers.
    """
    try:
        answer = await asyncio.wait_for(client.auth_test(), CHECK_SECONDS)
    except SlackApiError as exc:
        status, error = slack_error(exc)
        if error in REFUSED_TOKEN:
            refused = (
                f"Slack refuses SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token again"
                " (the app's OAuth & Permissions page), or reinstall the app; with it nobody"
                " can be paged"
            )
            if refuse:
                raise SlackTokenRefused(refused) from None
            log.error("%s", refused)
            return
        log.warning(
            "could not check SLACK_BOT_TOKEN: Slack (or a proxy) answered %s%s; going on:"
            " messages wait in the outbox until Slack answers",
            status,
            f" {error}" if error else "",
        )
        return
    except Exception as exc:  # out of reach, a timeout, a body no client reads: not the token
        log.warning(
            "could not reach Slack to check SLACK_BOT_TOKEN (%s); going on: messages wait"
            " in the outbox until Slack answers",
            said(exc),
        )
        return
    data = answer.data if isinstance(answer.data, dict) else {}
    log.info("Slack: the bot is @%s in %s", data.get("user"), data.get("team"))


async def check_app_token(client: AsyncWebClient, app_token: str, *, refuse: bool) -> None:
    """Ask Slack for a Socket Mode connection with the app token (``apps.connections.open``,
    as Bolt does next): a token Slack refuses would leave every command and button
    unheard while alerts still go out, so it stops start-up as a refused bot token does."""
    try:
        await asyncio.wait_for(client.apps_connections_open(app_token=app_token), CHECK_SECONDS)
    except SlackApiError as exc:
        status, error = slack_error(exc)
        if error in REFUSED_TOKEN or error == "not_allowed_token_type":
            refused = (
                f"Slack refuses SLACK_APP_TOKEN ({error}): make an app-level token with the"
                " connections:write scope (the app's Basic Information, App-Level Tokens) and"
                " copy it again; with it no command or button reaches Nightshift"
            )
            if refuse:
                raise SlackTokenRefused(refused) from None
            log.error("%s", refused)
            return
        log.warning(
            "could not check SLACK_APP_TOKEN: Slack (or a proxy) answered %s%s; going on",
            status,
            f" {error}" if error else "",
        )
    except Exception as exc:  # out of reach, a timeout: not the token
        log.warning("could not reach Slack to check SLACK_APP_TOKEN (%s); going on", said(exc))


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
