"""Socket Mode: apps.connections.open, then commands and clicks over the fake's websocket."""

from __future__ import annotations

import asyncio

import pytest

from bot.blocks import actions, button, section
from bot.outbox import enqueue
from guards.clock import ManualClock
from tests.fakes.fixtures import slack_env
from tests.fakes.slack_signing import block_actions_payload, command_payload
from tests.scenario.test_alerts import waiting_for_a_trial

SCOPE = "acme/alice/rss-bot"


async def test_socket_mode_commands_and_buttons(app_factory, fake_slack):
    policy = {
        "admins": ["U0ADMIN"],
        "breakers": {"spend_rate": {"max": "2.00", "per_seconds": "10m"}, "cooldown_seconds": "1m"},
    }
    app = await app_factory(policy, env=slack_env(fake_slack, mode="socket"), clock=ManualClock())
    assert app.ns.settings.transport == "socket"
    await asyncio.wait_for(fake_slack.socket_connected.wait(), 10)
    # the start's check of the app token, then Bolt's own connection
    checked, opened = fake_slack.calls_of("apps.connections.open")
    assert checked.ok and opened.ok  # the app token was used for both

    envelope = await fake_slack.send_envelope(
        "slash_commands", command_payload("budget set acme/alice/rss-bot 3 day")
    )
    reply = await fake_slack.envelope_reply(envelope)
    assert reply["payload"]["response_type"] == "in_channel"
    assert "to *$3.00* (was no limit)" in reply["payload"]["text"]

    envelope = await fake_slack.send_envelope(
        "slash_commands", command_payload("budget set acme/alice/rss-bot 3 day", user_id="U0X")
    )
    refused = await fake_slack.envelope_reply(envelope)
    assert refused["payload"]["text"].startswith("Only admins can change budgets.")

    await waiting_for_a_trial(app)
    blocks = [
        section("breaker open"),
        actions(button("Approve", "breaker_approve", SCOPE), block_id="b"),
    ]
    args = {"channel": "C0ALERTS", "text": "breaker open", "blocks": blocks}
    await app.store.write(lambda tx: enqueue(tx, method="chat.postMessage", args=args))
    await fake_slack.wait_for(lambda: fake_slack.posts("C0ALERTS"))
    ts = fake_slack.posts("C0ALERTS")[0].response["ts"]
    click = block_actions_payload(
        action_id="breaker_approve", value=SCOPE, ts=ts, blocks=blocks, block_id="b"
    )
    envelope = await fake_slack.send_envelope("interactive", click)
    ack = await fake_slack.envelope_reply(envelope)
    assert ack["envelope_id"] == envelope and not ack.get("payload")
    await fake_slack.wait_for(lambda: fake_slack.calls_of("chat.update", ok=True))
    after = fake_slack.messages[("C0ALERTS", ts)]["blocks"]
    assert after[0] == blocks[0]
    assert after[1]["elements"][0]["text"].startswith("✅ trial (3 calls) approved by <@U0ADMIN>")


async def test_an_app_token_slack_refuses_stops_start_up_saying_so(app_factory, fake_slack):
    """audit16 DESIGN check F1: a refused app token started 'healthy' in Socket Mode: alerts
    went out, but no command or button reached Nightshift, and the log never named it."""
    from bot.slack.client import SlackTokenRefused

    fake_slack.fail("apps.connections.open", status=200, retry_after=None, error="invalid_auth")
    with pytest.raises(SlackTokenRefused) as refused:
        await app_factory({}, env=slack_env(fake_slack, mode="socket"))
    assert "Slack refuses SLACK_APP_TOKEN (invalid_auth)" in str(refused.value)
