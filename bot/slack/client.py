"""The Slack Web API client, pointed at ``SLACK_API_URL`` when set (tests use a local fake)."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings

__all__ = ["web_client"]

TIMEOUT_SECONDS = 15


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
