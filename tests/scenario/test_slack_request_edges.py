"""Signed Slack requests that name what Slack would not (audit28 C1): a ``response_url``
off Slack's hosts (L2), a team that is not the bot's workspace (L3).

The whole app in HTTP mode against the fake Slack Web API, every request signed with the
real scheme; a loopback receiver on its own port stands for the host nobody should POST to.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web

from bot.slack.deliver import foreign_response_url
from guards.clock import ManualClock
from tests.fakes.fixtures import slack_env
from tests.fakes.slack_signing import (
    block_actions_payload,
    command_payload,
    view_submission_payload,
)

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
        f"response_url names {evil.rsplit('/', 1)[0]}, not on Slack's hosts" in line
        for line in said
    ), said


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://hooks.slack.com/actions/T0/1/abc", True),
        ("https://HOOKS.Slack.com:443/commands/T0/1/abc", True),
        ("https://slack.com/x", True),
        ("https://hooks.slack-gov.com/actions/T0/1/abc", True),  # GovSlack (R4 M4)
        ("https://slack-gov.com/x", True),
        ("http://hooks.slack-gov.com/actions/T0/1/abc", False),  # not https
        ("https://evilslack-gov.com/x", False),
        ("https://hooks.slack-gov.com.evil.example/x", False),
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


# -- another workspace (C1 L3) -----------------------------------------------------------

EVIL = {"id": "T0EVIL", "domain": "elsewhere"}
SET = "budget set acme/alice/rss-bot $1 day"


def _elsewhere_command(text: str, **kwargs: Any) -> dict[str, str]:
    return {**command_payload(text, **kwargs), "team_id": EVIL["id"], "team_domain": "x"}


def _elsewhere_click(**kwargs: Any) -> dict[str, Any]:
    payload = block_actions_payload(**kwargs)
    return {**payload, "team": EVIL, "user": {**payload["user"], "team_id": EVIL["id"]}}


async def test_a_command_or_click_of_another_workspace_is_refused_and_said(
    slack_http: Any, caplog: pytest.LogCaptureFixture
) -> None:
    slack = await slack_http({"admins": ["U0ADMIN"]})
    caplog.set_level(logging.WARNING, logger="bot.slack.workspace")
    fake = slack.fake
    r = await slack.post(urlencode(_elsewhere_command(SET, response_url=fake.response_url())))
    assert r.status_code == 200
    assert r.json() == {
        "response_type": "ephemeral",
        "text": "This Nightshift serves another Slack workspace (T0NIGHT), not yours: nothing"
        " was done. Ask its admins to install it for your workspace.",
    }
    assert await slack.app.store.fetch("SELECT * FROM budget_limits") == []
    assert await slack.app.store.fetch("SELECT * FROM audit") == []
    click = _elsewhere_click(action_id="mystery", value="x", response_url=fake.response_url("evil"))
    r = await slack.post(urlencode({"payload": json.dumps(click)}))
    assert (r.status_code, r.text) == (200, "")
    # the clicker is told, to them only, through the click's response_url (review28 R4 L3;
    # the click was acked with nothing before)
    await fake.wait_for(lambda: fake.responses["evil"])
    assert fake.responses["evil"] == [
        {
            "response_type": "ephemeral",
            "replace_original": False,
            "text": "This Nightshift serves another Slack workspace (T0NIGHT), not yours:"
            " nothing was done. Ask its admins to install it for your workspace.",
        }
    ]
    # a form is answered with the same sentence on its first input block
    form = view_submission_payload(
        callback_id="budget_raise_modal",
        private_metadata="acme/alice/rss-bot",
        values={"amount": "$9", "window": {"selected": "day"}},
    )
    form = {**form, "team": EVIL, "user": {**form["user"], "team_id": EVIL["id"]}}
    form["view"]["blocks"] = [
        {"type": "section", "block_id": "intro", "text": {"type": "mrkdwn", "text": "x"}},
        {"type": "input", "block_id": "amount", "element": {"type": "plain_text_input"}},
    ]
    r = await slack.post(urlencode({"payload": json.dumps(form)}))
    assert r.json() == {
        "response_action": "errors",
        "errors": {"amount": fake.responses["evil"][0]["text"]},
    }
    assert await slack.app.store.fetch("SELECT * FROM budget_limits") == []
    # the bot's own workspace is answered as before
    await slack.click(action_id="mystery", value="y", response_url=fake.response_url("home"))
    await fake.wait_for(lambda: fake.responses["home"])
    assert "(was no limit)" in (await slack.command(SET))["text"]
    said = [r.getMessage() for r in caplog.records if r.name == "bot.slack.workspace"]
    assert len(said) == 1, said  # once a minute per workspace: the click was held back
    assert said[0].startswith("refused a Slack /agent of workspace 'T0EVIL': this Nightshift")


async def test_a_refused_click_s_note_goes_to_slack_s_hosts_only(
    slack_http: Any, sink: tuple[str, list[str]]
) -> None:
    evil, got = sink
    slack = await slack_http({"admins": ["U0ADMIN"]})
    click = _elsewhere_click(action_id="mystery", value="x", response_url=evil)
    r = await slack.post(urlencode({"payload": json.dumps(click)}))
    assert (r.status_code, r.text) == (200, "")
    await slack.click(action_id="mystery", value="y", response_url=slack.fake.response_url())
    await slack.fake.wait_for(lambda: slack.fake.responses["r1"])
    rows = await slack.app.store.fetch(
        "SELECT state FROM outbox WHERE method = 'response_url' ORDER BY id"
    )
    assert [row["state"] for row in rows][:1] == ["failed"] and len(rows) == 2
    assert got == []  # the note of the other workspace's click never left for its host


# -- an org-wide install (Enterprise Grid, review28 R4 L2) ---------------------------------

ORG_WIDE = {"is_enterprise_install": True, "enterprise_id": "E0ORG"}
ORG_REFUSED = "This Nightshift serves another Slack organization (E0ORG), not yours"
TEAM_REFUSED = "This Nightshift serves another Slack workspace (T0NIGHT), not yours"


@pytest.mark.parametrize(
    ("auth_test", "cases"),
    [
        # auth.test of an org-wide token, with no team_id, the org's id or one workspace's
        (
            {**ORG_WIDE, "team_id": None},
            [("T0ANY", "E0ORG", None), ("T0EVIL", None, ORG_REFUSED)],
        ),
        (
            {**ORG_WIDE, "team_id": "E0ORG"},
            [
                ("T0NIGHT", "E0ORG", None),
                ("T0ANY", "E0ORG", None),
                ("T0EVIL", "E0EVIL", ORG_REFUSED),
            ],
        ),
        (
            {**ORG_WIDE, "team_id": "T0NIGHT"},
            [("T0ANY", "E0ORG", None), ("T0EVIL", None, ORG_REFUSED)],
        ),
        # a single-workspace install in an organization: the team decides, not the org
        (
            {"enterprise_id": "E0ORG", "is_enterprise_install": False},
            [("T0NIGHT", "E0ORG", None), ("T0ANY", "E0ORG", TEAM_REFUSED)],
        ),
    ],
)
async def test_an_org_wide_install_takes_its_organization_s_workspaces_only(
    slack_http: Any, auth_test: dict[str, Any], cases: list[tuple[str, str | None, str | None]]
) -> None:
    slack = await slack_http({"admins": ["U0ADMIN"]})
    slack.fake.auth_test = auth_test  # before the first request: Bolt asks once and keeps it
    for n, (team, org, refused) in enumerate(cases):
        payload = {**command_payload(f"budget set acme/alice/bot{n} $1 day"), "team_id": team}
        if org is not None:
            payload["enterprise_id"] = org
        r = await slack.post(urlencode(payload))
        text = r.json()["text"]
        if refused is None:
            assert "(was no limit)" in text, (team, org, text)
        else:
            assert text.startswith(refused), (team, org, text)
    limits = await slack.app.store.fetch("SELECT scope FROM budget_limits ORDER BY scope")
    assert len(limits) == sum(refused is None for _, _, refused in cases)


async def test_socket_mode_refuses_another_workspace_the_same_way(
    app_factory: Any, fake_slack: Any
) -> None:
    env = slack_env(fake_slack, mode="socket")
    app = await app_factory({"admins": ["U0ADMIN"]}, env=env, clock=ManualClock())
    await asyncio.wait_for(fake_slack.socket_connected.wait(), 10)
    envelope = await fake_slack.send_envelope("slash_commands", _elsewhere_command(SET))
    reply = await fake_slack.envelope_reply(envelope)
    assert reply["payload"]["text"].startswith("This Nightshift serves another Slack workspace")
    assert await app.store.fetch("SELECT * FROM budget_limits") == []
    envelope = await fake_slack.send_envelope("slash_commands", command_payload(SET))
    assert "(was no limit)" in (await fake_slack.envelope_reply(envelope))["payload"]["text"]
