"""Deliver outbox rows to Slack: the Web API, the file upload flow, response URLs.

Slack's answers are sorted into three outcomes for the outbox worker: delivered
(with the message's channel and ``ts``), retry later (``429`` with its
``Retry-After``, 5xx, network errors, Slack's transient error codes) or failed for
good (every other Slack error, e.g. ``channel_not_found``).

A reply to a ``response_url`` goes only to Slack (``https`` on ``slack.com`` or a
``*.slack.com`` host, as Slack's are: ``https://hooks.slack.com/...``) or to the origin of
``SLACK_API_URL`` (a local fake, a proxy): any other URL a signed payload names fails at
once with a WARNING and no request (audit28 C1 L2).

A message whose blocks Slack refuses (``invalid_blocks``, ``msg_blocks_too_long``,
``msg_too_long``: a rule :func:`~bot.slack.limits.fit_args` does not know) is sent
once more as its ``text`` alone, with a WARNING naming the error: the words arrive
without the buttons, rather than not at all.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any
from urllib.parse import SplitResult, urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.outbox import Delivered, DeliveryFailed, RetryLater
from bot.slack.client import retry_after, slack_error
from bot.slack.limits import fit_args

__all__ = ["BLOCKS_REFUSED", "TEXT_ALONE", "SlackDeliverer", "foreign_response_url"]

log = logging.getLogger("bot.outbox")

# ok=false error codes that are worth another try
TRANSIENT = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


#: errors after which a message is sent again as its text alone (no blocks)
BLOCKS_REFUSED = frozenset({"invalid_blocks", "msg_blocks_too_long", "msg_too_long"})
#: the text of a message Slack found too long is cut to this (Slack's advice for ``text``)
TEXT_ALONE = 4000
_TEXT_METHODS = frozenset({"chat.postMessage", "chat.update"})


def text_alone(method: str, args: dict[str, Any], error: str) -> dict[str, Any]:
    """``args`` without blocks (a chat.update clears them: left out, Slack keeps the old
    ones); after ``msg_too_long`` the text is cut with "…".

    Example:
        >>> text_alone("chat.update", {"channel": "C", "ts": "1", "text": "hi",
        ...                            "blocks": [{"type": "x"}]}, "invalid_blocks")
        {'channel': 'C', 'ts': '1', 'text': 'hi', 'blocks': []}
    """
    plain = {k: v for k, v in args.items() if k != "blocks"}
    text = str(args.get("text") or "")
    if error == "msg_too_long" and len(text) > TEXT_ALONE:
        text = text[: TEXT_ALONE - 1] + "…"
    plain["text"] = text
    if method == "chat.update":
        plain["blocks"] = []
    return plain


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _named_origin(url: str) -> str:
    """``url``'s scheme and host (and port) for a message or a log line: no user, path
    or query, unprintable characters as ``?``.

    Example:
        >>> _named_origin("https://user:pw@hooks.slack-gov.com:8443/actions/T1/2/x?q=1")
        'https://hooks.slack-gov.com:8443'
    """
    try:
        parts = urlsplit(url)
        named = f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2]}"
    except ValueError:  # a port that is not a number, a bracket left open
        named = "a URL that does not parse"
    return "".join(c if c.isprintable() else "?" for c in named[:120])


#: Slack's own domains: slack.com, and GovSlack's slack-gov.com (its API
#: https://slack-gov.com/api/, its response_urls on https://hooks.slack-gov.com/…)
SLACK_DOMAINS = ("slack.com", "slack-gov.com")


def _slack_host(host: str) -> bool:
    return any(host == d or host.endswith("." + d) for d in SLACK_DOMAINS)


def foreign_response_url(url: str, *, api_url: str) -> str | None:
    """Why a reply is not sent to ``url``, or None when it is Slack's (``https`` on
    ``slack.com``, GovSlack's ``slack-gov.com`` or a subdomain of either) or on
    ``api_url``'s origin (scheme, host and port).

    Example:
        >>> api = "https://slack.com/api/"
        >>> foreign_response_url("https://hooks.slack.com/actions/T1/2/x", api_url=api)
        >>> foreign_response_url("https://hooks.slack-gov.com/actions/T1/2/x", api_url=api)
        >>> foreign_response_url("http://127.0.0.1:9/hook", api_url=api)[:59]
        "response_url names http://127.0.0.1:9, not on Slack's hosts"
    """
    try:
        parts = urlsplit(url)
        scheme, host, port = _origin(parts)
        if scheme == "https" and _slack_host(host):
            return None
        api = urlsplit(api_url)
        if host and (scheme, host, port) == _origin(api):
            return None
    except ValueError:  # a port that is not a number, a bracket left open
        pass
    return (
        f"response_url names {_named_origin(url)}, not on Slack's hosts (https on slack.com,"
        " slack-gov.com or a subdomain) nor SLACK_API_URL's origin: not sent. Behind a"
        " proxy that rewrites Slack's URLs, set SLACK_API_URL to its origin; otherwise"
        " the request was signed by someone else who knows SLACK_SIGNING_SECRET"
    )


def _classify(exc: SlackApiError) -> Exception:
    status, error = slack_error(exc)
    headers = getattr(exc.response, "headers", {}) or {}
    if status == 429 or error == "ratelimited":
        return RetryLater("rate limited (429)", after=retry_after(headers), kind="ratelimited")
    if status >= 500:
        return RetryLater(f"Slack answered {status}", kind="server_error")
    if error in TRANSIENT:
        return RetryLater(f"Slack error {error}", kind="server_error")
    return DeliveryFailed(f"Slack error {error or status}", error=error or None)


class SlackDeliverer:
    """Performs outbox rows with the real AsyncWebClient (pointed anywhere by base_url)."""

    def __init__(self, client: AsyncWebClient, *, timeout: float = 15) -> None:
        self.client = client
        self.timeout = timeout

    async def deliver(self, method: str, args: dict[str, Any]) -> Delivered:
        args = fit_args(method, args)  # every message leaves within Slack's limits
        try:
            return await self._call(method, args)
        except DeliveryFailed as exc:
            error = exc.error or ""
            if method not in _TEXT_METHODS or error not in BLOCKS_REFUSED or not args.get("text"):
                raise
            if not args.get("blocks") and error != "msg_too_long":
                raise
        log.warning(
            "Slack refused a %s to %s (%s); sent again as its text alone, without blocks",
            method,
            args.get("channel"),
            error,
        )
        return await self._call(method, text_alone(method, args, error))

    async def _call(self, method: str, args: dict[str, Any]) -> Delivered:
        try:
            if method == "response_url":
                return await self._response_url(args)
            if method == "files.upload":
                return await self._upload(args)
            response = await self.client.api_call(method, json=args)
        except SlackApiError as exc:
            raise _classify(exc) from None
        except SlackRequestError as exc:
            raise RetryLater(f"request failed: {exc}", kind="network") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RetryLater(
                f"network error: cannot reach {self._where(method, args)}"
                f" ({type(exc).__name__}{f': {exc}' if str(exc) else ''})",
                kind="network",
            ) from None
        data = response.data if isinstance(response.data, dict) else {}
        return Delivered(
            channel=data.get("channel") or args.get("channel"),
            ts=data.get("ts") or data.get("message_ts"),
        )

    def _where(self, method: str, args: dict[str, Any]) -> str:
        """Where a call that could not connect went: Slack's API, or a response_url's
        host (recheck28 Kc L3: "Slack at <SLACK_API_URL>" named the API for a
        hooks.slack-gov.com that failed), its origin only (its path is a reply link)."""
        if method == "response_url" and isinstance(url := args.get("url"), str):
            return f"the response_url's host {_named_origin(url)}"
        return f"Slack at {self.client.base_url}"

    async def _upload(self, args: dict[str, Any]) -> Delivered:
        try:
            content = base64.b64decode(args.get("content_b64", ""), validate=True)
        except (binascii.Error, ValueError):
            raise DeliveryFailed("files.upload: content_b64 is not base64") from None
        await self.client.files_upload_v2(
            channel=args.get("channel"),
            filename=args.get("filename") or "nightshift.txt",
            title=args.get("title"),
            initial_comment=args.get("initial_comment"),
            content=content,
        )
        return Delivered(channel=args.get("channel"))

    async def _response_url(self, args: dict[str, Any]) -> Delivered:
        url, payload = args.get("url"), args.get("payload")
        if not isinstance(url, str) or not isinstance(payload, dict):
            raise DeliveryFailed("response_url needs args url and payload")
        if (foreign := foreign_response_url(url, api_url=self.client.base_url)) is not None:
            raise DeliveryFailed(foreign)  # logged as a WARNING by the outbox, nothing sent
        hook = AsyncWebhookClient(url, timeout=int(self.timeout), retry_handlers=[])
        response = await hook.send_dict(payload)
        status = response.status_code
        if status == 429:
            after = retry_after(response.headers)
            raise RetryLater("rate limited (429)", after=after, kind="ratelimited")
        if status >= 500:
            raise RetryLater(f"response_url answered {status}", kind="server_error")
        if status >= 400:
            raise DeliveryFailed(f"response_url answered {status}: {response.body[:200]}")
        return Delivered()
