"""The Slack Web API client, pointed at ``SLACK_API_URL`` when set (tests use a local fake),
and the check of its bot token at start."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings

__all__ = ["SlackTokenRefused", "check_bot_token", "web_client"]

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
        error = str(exc.response.get("error", "")) if exc.response is not None else ""
        if error in REFUSED_TOKEN:
            said = (
                f"Slack refuses SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token again"
                " (the app's OAuth & Permissions page), or reinstall the app; with it nobody"
                " can be paged"
            )
            if refuse:
                raise SlackTokenRefused(said) from None
            log.error("%s", said)
            return
        log.warning("could not check SLACK_BOT_TOKEN: Slack answered %s; going on", error or exc)
        return
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        log.warning(
            "could not reach Slack to check SLACK_BOT_TOKEN (%s); going on: messages wait"
            " in the outbox until Slack answers",
            exc or type(exc).__name__,
        )
        return
    log.info("Slack: the bot is @%s in %s", answer.get("user"), answer.get("team"))
