"""Signed Slack requests that name what Slack would not (audit28 C1): a ``response_url``
off Slack's hosts (L2), a team that is not the bot's workspace (L3).

The whole app in HTTP mode against the fake Slack Web API, every request signed with the
real scheme; a loopback receiver on its own port stands for the host nobody should POST to.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from bot.slack.deliver import foreign_response_url

API = "http://127.0.0.1:8123/api/"


@pytest.fixture
async def sink() -> AsyncIterator[tuple[str, list[str]]]:
    """A receiver on 127.0.0.1 (another port than the fake Slack's): its URL, what it got."""
    got: list[str] = []

    async def record(request: web.Request) -> web.Response:
        got.append(await request.text())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/evil-hook", got
    await runner.cleanup()


async def test_a_response_url_off_slack_is_refused_with_a_warning_and_no_request(
    slack_http: Any, sink: tuple[str, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    evil, got = sink
    slack = await slack_http({"admins": ["U0ADMIN"]})
    caplog.set_level(logging.WARNING, logger="bot.outbox")
    r = await slack.click(action_id="mystery", value="x", response_url=evil)
    assert r.status_code == 200
    # the next answer, to the fake Slack (SLACK_API_URL's origin), goes: the first is done
    r = await slack.click(action_id="mystery", value="y", response_url=slack.fake.response_url())
    await slack.fake.wait_for(lambda: slack.fake.responses["r1"])
    rows = await slack.app.store.fetch(
        "SELECT state, last_error FROM outbox WHERE method = 'response_url' ORDER BY id"
    )
    assert len(rows) == 2 and rows[0]["state"] == "failed"  # the fake's got its answer
    assert got == []  # nothing reached the other host
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        f"response_url names {evil.rsplit('/', 1)[0]}, not Slack's" in line for line in said
    ), said


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://hooks.slack.com/actions/T0/1/abc", True),
        ("https://HOOKS.Slack.com:443/commands/T0/1/abc", True),
        ("https://slack.com/x", True),
        ("http://127.0.0.1:8123/response/r1", True),  # SLACK_API_URL's origin: a local fake
        ("http://hooks.slack.com/actions/T0/1/abc", False),  # not https
        ("https://hooks.slack.com.evil.example/x", False),
        ("https://evilslack.com/x", False),
        ("https://hooks.slack.com@evil.example/x", False),  # the host is evil.example
        ("http://127.0.0.1:8124/response/r1", False),  # another port
        ("https://127.0.0.1:8123/response/r1", False),  # another scheme
        ("file:///etc/passwd", False),
        ("http://[::1/x", False),  # does not parse
        ("", False),
    ],
)
def test_which_response_urls_are_slack_s(url: str, sent: bool) -> None:
    assert (foreign_response_url(url, api_url=API) is None) is sent
