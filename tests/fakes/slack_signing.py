"""Signed Slack requests for tests: the real ``SignatureVerifier`` scheme, and payload builders.

Example:
    >>> body = command_body("budget acme")
    >>> headers = signed_headers("secret", body)
    >>> sorted(headers)[:2]
    ['Content-Type', 'X-Slack-Request-Timestamp']
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

__all__ = [
    "SECRET",
    "block_actions_body",
    "block_actions_payload",
    "command_body",
    "command_payload",
    "signed_headers",
    "view_submission_body",
    "view_submission_payload",
]

SECRET = "test-signing-secret"
TEAM = {"id": "T0NIGHT", "domain": "nightshift-test"}


def signed_headers(
    secret: str, body: str | bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """``X-Slack-Signature`` and ``X-Slack-Request-Timestamp`` for ``body`` (now by default)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    text = body.decode() if isinstance(body, bytes) else body
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=text)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": str(signature),
    }


def command_payload(
    text: str,
    *,
    user_id: str = "U0ADMIN",
    channel_id: str = "C0OPS",
    response_url: str = "https://hooks.slack.invalid/commands/1",
    trigger_id: str = "111.222.trigger",
) -> dict[str, str]:
    return {
        "token": "legacy-unused",
        "team_id": TEAM["id"],
        "team_domain": TEAM["domain"],
        "channel_id": channel_id,
        "channel_name": "ops",
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": "/agent",
        "text": text,
        "api_app_id": "A0NIGHT",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def command_body(text: str, **kwargs: Any) -> str:
    """A ``/agent <text>`` slash command as Slack posts it (form-encoded)."""
    return urlencode(command_payload(text, **kwargs))


def block_actions_payload(
    *,
    action_id: str,
    value: str,
    user_id: str = "U0ADMIN",
    channel: str = "C0ALERTS",
    ts: str = "1767225601.000001",
    blocks: list[dict[str, Any]] | None = None,
    block_id: str | None = None,
    text: str = "",
    response_url: str = "https://hooks.slack.invalid/actions/1",
    trigger_id: str = "333.444.trigger",
    ephemeral: bool = False,
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": TEAM,
        "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM["id"]},
        "api_app_id": "A0NIGHT",
        "token": "legacy-unused",
        "container": {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": ephemeral,
        },
        "trigger_id": trigger_id,
        "channel": {"id": channel, "name": "alerts"},
        "message": {"type": "message", "ts": ts, "text": text, "blocks": blocks or []},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": block_id or "b1",
                "value": value,
                "text": {"type": "plain_text", "text": action_id},
                "action_ts": str(time.time()),
            }
        ],
    }


def block_actions_body(**kwargs: Any) -> str:
    """A button click as Slack posts it: ``payload=<json>``."""
    return urlencode({"payload": json.dumps(block_actions_payload(**kwargs))})


def view_submission_payload(
    *,
    callback_id: str,
    private_metadata: str,
    values: dict[str, Any],
    user_id: str = "U0ADMIN",
    view_id: str = "V0001",
) -> dict[str, Any]:
    """``values``: {block_id: text} for text inputs, {block_id: {"selected": v}} for selects."""
    state: dict[str, Any] = {}
    for block_id, value in values.items():
        if isinstance(value, dict) and "selected" in value:
            element = {
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": value["selected"]},
                    "value": value["selected"],
                },
            }
        else:
            element = {"type": "plain_text_input", "value": value}
        state[block_id] = {block_id: element}
    return {
        "type": "view_submission",
        "team": TEAM,
        "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM["id"]},
        "api_app_id": "A0NIGHT",
        "token": "legacy-unused",
        "trigger_id": "555.666.trigger",
        "view": {
            "id": view_id,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {"values": state},
        },
    }


def view_submission_body(**kwargs: Any) -> str:
    return urlencode({"payload": json.dumps(view_submission_payload(**kwargs))})
