"""Pytest fixtures for Slack-level tests: the fake Web API and a signed-request driver.

Use from a conftest (``from tests.fakes.fixtures import fake_slack, slack_http``) or
from the root conftest's ``pytest_plugins``.

Example:
    >>> # async def test_help(slack_http):
    >>> #     slack = await slack_http({"admins": ["U0ADMIN"]})
    >>> #     reply = await slack.command("help")
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fakes.slack_api import APP_TOKEN, BOT_TOKEN, FakeSlack
from tests.fakes.slack_signing import (
    SECRET,
    block_actions_body,
    command_body,
    signed_headers,
    view_submission_body,
)

__all__ = ["SlackDriver", "fake_slack", "slack_env", "slack_http"]

ADMIN = "U0ADMIN"


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    """A running fake Slack Web API (and Socket Mode endpoint) on 127.0.0.1."""
    fake = await FakeSlack().start()
    yield fake
    await fake.stop()
    # Slack would have refused these messages: the test passed on a reply nobody saw.
    refused = [f"{r.method}: {r.error} {r.messages[:3]}" for r in fake.rejections]
    assert not refused, f"Slack would refuse {len(refused)} message(s): {refused}"


def slack_env(fake: FakeSlack, *, mode: str = "http") -> dict[str, str]:
    """The environment that selects ``mode`` ("http" or "socket") against ``fake``."""
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": fake.url}
    if mode == "http":
        env["SLACK_SIGNING_SECRET"] = SECRET
    else:
        env["SLACK_APP_TOKEN"] = APP_TOKEN
    return env


@dataclass
class SlackDriver:
    """Sends signed Slack requests to a running app in HTTP mode."""

    app: Any  # tests.conftest.RunningApp
    fake: FakeSlack
    secret: str = SECRET

    async def post(self, body: str, *, headers: dict[str, str] | None = None) -> httpx.Response:
        h = headers if headers is not None else signed_headers(self.secret, body)
        response: httpx.Response = await self.app.client.post(
            "/slack/events", content=body.encode(), headers=h
        )
        return response

    async def command(self, text: str, *, user: str = ADMIN, **kwargs: Any) -> dict[str, Any]:
        """``/agent <text>``: the ack's JSON body (the reply, when it was quick)."""
        kwargs.setdefault("response_url", self.fake.response_url("cmd"))
        r = await self.post(command_body(text, user_id=user, **kwargs))
        assert r.status_code == 200, r.text
        body = dict(r.json()) if r.content else {}
        self.fake.check_reply("ack", body)  # Slack reads the reply from the ack: same limits
        return body

    async def click(self, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("user_id", ADMIN)
        kwargs.setdefault("response_url", self.fake.response_url("click"))
        return await self.post(block_actions_body(**kwargs))

    async def submit(self, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("user_id", ADMIN)
        return await self.post(view_submission_body(**kwargs))

    @property
    def outbox(self) -> Any:
        return self.app.ns.extras["outbox"]


SlackFactory = Callable[..., Awaitable[SlackDriver]]


@pytest.fixture
async def slack_http(app_factory: Any, fake_slack: FakeSlack) -> SlackFactory:
    """Start the whole app in HTTP mode against the fake; returns a :class:`SlackDriver`.

    The outbox paces each channel at 50 ms instead of 1 s to keep tests fast.
    """

    async def make(policy: dict[str, Any] | None = None, **kwargs: Any) -> SlackDriver:
        env = {**slack_env(fake_slack), **kwargs.pop("env", {})}
        app = await app_factory(policy, env=env, **kwargs)
        app.ns.extras["outbox"].pace_seconds = 0.05
        return SlackDriver(app, fake_slack)

    return make
