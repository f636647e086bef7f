"""Socket Mode: apps.connections.open, then commands and clicks over the fake's websocket."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.blocks import actions, button, section
from bot.outbox import enqueue
from bot.slack.unhandled import foreign
from guards.clock import ManualClock
from tests.fakes.fixtures import slack_env
from tests.fakes.slack_signing import block_actions_payload, command_payload
from tests.fakes.socket_tickets import TicketSlack
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


async def test_an_envelope_slack_sends_again_is_acknowledged_and_not_run_twice(
    app_factory, fake_slack
):
    """audit26b socket L2: Slack sends an envelope again (same id, ``retry_attempt`` 1)
    when its acknowledgement was late; the command ran twice (two audit rows, two replies).
    audit24 L2: the repeat was acknowledged with no answer, and Slack re-sends precisely
    when the first acknowledgement (with the answer) did not reach it: nobody saw it."""
    app = await app_factory({"admins": ["U0ADMIN"]}, env=slack_env(fake_slack, mode="socket"))
    await asyncio.wait_for(fake_slack.socket_connected.wait(), 10)
    command = command_payload("budget set acme/alice/rss-bot 3 day")
    envelope = await fake_slack.send_envelope("slash_commands", command)
    reply = await fake_slack.envelope_reply(envelope)
    assert "to *$3.00* (was no limit)" in reply["payload"]["text"]

    again = await fake_slack.send_envelope("slash_commands", command, again=envelope)
    ack = await fake_slack.envelope_reply(again)
    assert ack["envelope_id"] == envelope and ack["payload"] == reply["payload"]  # the same
    fresh = await fake_slack.send_envelope("slash_commands", command_payload("help"))
    assert (await fake_slack.envelope_reply(fresh))["payload"]["text"]  # others still run
    rows = await app.store.fetch("SELECT action, after FROM audit WHERE action = 'budget.set'")
    assert [tuple(r) for r in rows] == [("budget.set", "3000000")]


async def acked_bare_then_still_answering(
    fake_slack: Any, envelopes: list[tuple[str, Any]]
) -> None:
    """Each envelope is acknowledged with its id alone, and a command sent after them
    is still answered."""
    for kind, payload in envelopes:
        envelope = await fake_slack.send_envelope(kind, payload)
        ack = await fake_slack.envelope_reply(envelope, within=3.0)
        assert ack == {"envelope_id": envelope}, kind
    fresh = await fake_slack.send_envelope("slash_commands", command_payload("help"))
    assert (await fake_slack.envelope_reply(fresh))["payload"]["text"]  # still answering


async def test_every_envelope_is_acknowledged_also_one_nothing_handles(
    app_factory, fake_slack, caplog
):
    """audit24 L1: an envelope Nightshift has no listener for (``events_api``, an unknown
    type, a ``view_closed``, a click with no action) was never acknowledged, so Slack sends
    it again and counts the failures; the empty click also logged an ERROR with a traceback."""
    caplog.set_level(logging.INFO)
    app = await app_factory({"admins": ["U0ADMIN"]}, env=slack_env(fake_slack, mode="socket"))
    await asyncio.wait_for(fake_slack.socket_connected.wait(), 10)
    no_action = {**block_actions_payload(action_id="alert_ack", value="1"), "actions": []}
    envelopes = [
        ("events_api", {"type": "event_callback", "event": {"type": "app_mention"}}),
        ("something_new", {"type": "whatever"}),
        ("interactive", {"type": "view_closed", "user": {"id": "U0ADMIN"}, "view": {}}),
        ("interactive", no_action),
        ("interactive", {"type": "block_actions", "actions": "not a list"}),
    ]
    await acked_bare_then_still_answering(fake_slack, envelopes)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    assert not await app.store.fetch("SELECT 1 FROM audit")  # nothing ran


async def test_envelopes_nightshift_has_no_use_for_are_ignored_without_bolt_s_warning(
    app_factory, fake_slack, caplog
):
    """review24 L2: a view_closed, a block_suggestion and a slash command naming none were
    acknowledged but passed to Bolt, which logged its multi-line "Unhandled request"
    WARNING for each, where the README says "ignored". L3: "a interactive envelope"."""
    caplog.set_level(logging.INFO)
    await app_factory({"admins": ["U0ADMIN"]}, env=slack_env(fake_slack, mode="socket"))
    await asyncio.wait_for(fake_slack.socket_connected.wait(), 10)
    caplog.clear()
    envelopes = [
        ("interactive", {"type": "view_closed", "user": {"id": "U0ADMIN"}, "view": {}}),
        ("interactive", {"type": "block_suggestion", "action_id": "x", "value": "ac"}),
        ("interactive", {"type": "shortcut", "callback_id": "x"}),
        ("interactive", {"type": ["hostile"] * 100}),
        ("slash_commands", {}),
        ("slash_commands", {"command": "", "text": "help"}),
        ("events_api", {"type": "event_callback", "event": {"type": "app_mention"}}),
        ("interactive", {"type": "block_actions", "actions": "not a list"}),
    ]
    await acked_bare_then_still_answering(fake_slack, envelopes)
    said = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert said == [
        (
            "bot.slack.socket_mode",
            "Slack sent an interactive envelope of the wrong shape (actions must be a list of"
            " objects with an action_id): acknowledged, not run",
        )
    ]
    # review27 R2 M2: a slash command other than /agent is a person waiting: told, logged
    caplog.clear()
    other = {**command_payload("help"), "command": "/nightshift"}
    envelope = await fake_slack.send_envelope("slash_commands", other)
    ack = await fake_slack.envelope_reply(envelope)
    assert ack["payload"] == {"response_type": "ephemeral", "text": foreign("/nightshift")}
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1, warned
    assert warned[0].startswith("Slack sent the slash command /nightshift, which"), warned


async def test_an_app_token_slack_refuses_stops_start_up_saying_so(app_factory, fake_slack):
    """audit16 DESIGN check F1: a refused app token started 'healthy' in Socket Mode: alerts
    went out, but no command or button reached Nightshift, and the log never named it."""
    from bot.slack.client import SlackTokenRefused

    fake_slack.fail("apps.connections.open", status=200, retry_after=None, error="invalid_auth")
    with pytest.raises(SlackTokenRefused) as refused:
        await app_factory({}, env=slack_env(fake_slack, mode="socket"))
    assert "Slack refuses SLACK_APP_TOKEN (invalid_auth)" in str(refused.value)


@pytest.fixture
async def ticket_slack() -> AsyncIterator[TicketSlack]:
    fake = TicketSlack()
    await fake.start()
    yield fake
    await fake.stop()


async def socket_gauge(app) -> float | None:
    text = (await app.client.get("/metrics")).text
    found = re.search(r"^nightshift_slack_socket_connected (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


async def until(predicate, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_socket_down_past_its_url_gets_a_new_url_and_says_so(
    app_factory, ticket_slack, monkeypatch, caplog
):
    """audit26b H1: after Slack dropped the socket and refused reconnects for a while,
    slack_sdk retried the same, by then expired, URL forever: no command nor button reached
    Nightshift again until a restart, and nothing said so (/healthz 200, no metric)."""
    from bot.slack import socket_mode

    monkeypatch.setattr(socket_mode, "PING_SECONDS", 0.2)  # slack_sdk's retry pace
    monkeypatch.setattr(socket_mode, "WATCH_SECONDS", 0.05)
    monkeypatch.setattr(socket_mode, "DOWN_SECONDS", 1.0)
    monkeypatch.setattr(socket_mode, "RETRY_MAX_SECONDS", 1.0)
    caplog.set_level(logging.INFO, logger="bot.slack.socket_mode")
    fake = ticket_slack
    app = await app_factory({"admins": ["U0ADMIN"]}, env=slack_env(fake, mode="socket"))
    await asyncio.wait_for(fake.socket_connected.wait(), 10)

    async def gauge_is(value: float) -> bool:
        return await socket_gauge(app) == value

    await until(lambda: gauge_is(1.0))

    fake.refusing = True  # Slack drops the socket and refuses reconnects for a while
    fake.drop()
    await until(lambda: gauge_is(0.0))
    stale = len(fake.issued)
    # slack_sdk asked for a new URL once and is retrying it
    await until(lambda: _true(any(a == (fake.issued[-1], "refused") for a in fake.attempts)))
    assert (await app.client.get("/healthz")).status_code == 200  # agents go on calling
    fake.expired.update(fake.issued)  # by the time Slack is back, those URLs have expired
    fake.refusing = False

    await asyncio.wait_for(fake.socket_connected.wait(), 10)
    ticket, how = fake.attempts[-1]
    assert how == "open" and int(ticket) > stale
    await until(lambda: gauge_is(1.0))
    envelope = await fake.send_envelope("slash_commands", command_payload("help"))
    assert (await fake.envelope_reply(envelope))["payload"]["text"]

    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == socket_mode.log.name]
    down = [m for level, m in said if level == "WARNING"]
    assert len(down) == 1 and down[0].startswith("Slack Socket Mode has been down for ")
    back = [m for level, m in said if m.startswith("Slack Socket Mode reconnected after ")]
    assert len(back) == 1


async def test_a_socket_mode_outage_logs_one_warning_not_an_error_each_retry(
    app_factory, ticket_slack, monkeypatch, caplog
):
    """audit24 M1: while Slack refused the websocket, slack_sdk logged an ERROR with a
    traceback at each retry ("Failed to connect (error: 503 …); Retrying…", every 10 s),
    where the README promises one WARNING and one INFO when the socket is back."""
    from bot.slack import socket_mode

    monkeypatch.setattr(socket_mode, "PING_SECONDS", 0.1)  # slack_sdk's retry pace
    monkeypatch.setattr(socket_mode, "WATCH_SECONDS", 0.05)
    monkeypatch.setattr(socket_mode, "DOWN_SECONDS", 1.0)
    monkeypatch.setattr(socket_mode, "RETRY_MAX_SECONDS", 1.0)
    caplog.set_level(logging.INFO)
    fake = ticket_slack
    app = await app_factory({"admins": ["U0ADMIN"]}, env=slack_env(fake, mode="socket"))
    await asyncio.wait_for(fake.socket_connected.wait(), 10)
    await until(lambda: _true(socket_mode.log.name in {r.name for r in caplog.records}))
    caplog.clear()

    fake.refusing = True  # Slack down: every websocket answered 503
    fake.drop()
    await until(lambda: _true(sum(how == "refused" for _, how in fake.attempts) >= 12), 10)
    fake.refusing = False
    await asyncio.wait_for(fake.socket_connected.wait(), 10)
    await until(lambda: _true(any("reconnected after" in r.getMessage() for r in caplog.records)))
    envelope = await fake.send_envelope("slash_commands", command_payload("help"))
    assert (await fake.envelope_reply(envelope))["payload"]["text"]

    loud = [(r.name, r.levelname, r.getMessage()[:80]) for r in caplog.records if r.levelno >= 30]
    assert [(name, level) for name, level, _ in loud] == [(socket_mode.log.name, "WARNING")]
    assert loud[0][2].startswith("Slack Socket Mode has been down for ")
    assert app.ns.settings.transport == "socket"


async def _outage(
    app_factory, fake: TicketSlack, monkeypatch, caplog, *, error: str, status: int
) -> tuple[list[tuple[str, str, str]], object]:
    """The app connected; then Slack drops the socket and apps.connections.open answers
    ``status``/``error`` for a while (8 tries and the watch's WARNING), then is back. The lines at
    WARNING and above meanwhile, and the app."""
    from bot.slack import socket_mode

    monkeypatch.setattr(socket_mode, "PING_SECONDS", 0.1)  # slack_sdk's retry pace
    monkeypatch.setattr(socket_mode, "WATCH_SECONDS", 0.05)
    monkeypatch.setattr(socket_mode, "DOWN_SECONDS", 1.0)
    monkeypatch.setattr(socket_mode, "RETRY_MAX_SECONDS", 1.0)
    caplog.set_level(logging.INFO)
    app = await app_factory({"admins": ["U0ADMIN"]}, env=slack_env(fake, mode="socket"))
    await asyncio.wait_for(fake.socket_connected.wait(), 10)
    await until(lambda: _true(socket_mode.log.name in {r.name for r in caplog.records}))
    caplog.clear()
    opened = len(fake.calls_of("apps.connections.open"))

    fake.fail("apps.connections.open", status=status, retry_after=None, error=error, times=10**6)
    fake.drop()
    failed = lambda: len(fake.calls_of("apps.connections.open", ok=False))  # noqa: E731
    await until(lambda: _true(any("been down" in r.getMessage() for r in caplog.records)), 10)
    then = failed()  # the watch's check of the app token, and more tries, come after it
    await until(lambda: _true(failed() >= max(8, then + 3)), 10)
    fake.heal()
    await asyncio.wait_for(fake.socket_connected.wait(), 10)
    await until(lambda: _true(any("reconnected after" in r.getMessage() for r in caplog.records)))
    assert len(fake.calls_of("apps.connections.open")) > opened + 8
    envelope = await fake.send_envelope("slash_commands", command_payload("help"))
    assert (await fake.envelope_reply(envelope))["payload"]["text"]
    loud = [(r.name, r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= 30]
    return loud, app


async def test_slack_s_api_answering_503_for_new_urls_logs_no_error_each_retry(
    app_factory, ticket_slack, monkeypatch, caplog
):
    """review24 M1: slack_sdk logs "Failed to retrieve WSS URL: …" as an ERROR at each try
    that apps.connections.open fails (Slack's Web API degraded): one every 10 s, which the
    quieted retries did not include. review24 M2: the watch's WARNING says the cause."""
    from bot.slack import socket_mode

    loud, _ = await _outage(
        app_factory, ticket_slack, monkeypatch, caplog, error="service_unavailable", status=503
    )
    assert [level for _, level, _ in loud if level != "WARNING"] == []
    [down] = [m for name, _, m in loud if name == socket_mode.log.name]
    assert down.startswith(
        "Slack Socket Mode has been down for 1s (last error: SlackApiError: The request to"
        " the Slack API failed. (url: http://127.0.0.1:"
    )
    assert "status: 503) The server responded with: {'ok': False, 'error': 'service_unav" in down
    assert not [m for name, _, m in loud if name.startswith("slack_sdk")]


async def test_a_revoked_app_token_logs_the_start_s_error_once_in_an_outage(
    app_factory, ticket_slack, monkeypatch, caplog
):
    """review24 M1: with the app token revoked (invalid_auth), slack_sdk's "Failed to
    retrieve WSS URL" came every 10 s beside the watch's one ERROR the README promises."""
    loud, _ = await _outage(
        app_factory, ticket_slack, monkeypatch, caplog, error="invalid_auth", status=200
    )
    errors = [m for _, level, m in loud if level == "ERROR"]
    assert len(errors) == 1 and "SLACK_APP_TOKEN (invalid_auth)" in errors[0], errors
    assert not [m for name, _, m in loud if name.startswith("slack_sdk")]


async def test_the_watch_s_warning_says_slack_s_api_refused_a_new_url(
    app_factory, ticket_slack, monkeypatch, caplog
):
    """review24 M2: an outage's cause (here Slack answering 503 to apps.connections.open
    from the start) was logged nowhere once the retries went to DEBUG."""
    from bot.slack import socket_mode

    monkeypatch.setattr(socket_mode, "PING_SECONDS", 0.1)
    monkeypatch.setattr(socket_mode, "WATCH_SECONDS", 0.05)
    monkeypatch.setattr(socket_mode, "DOWN_SECONDS", 1.0)
    caplog.set_level(logging.INFO)
    fake = ticket_slack
    fake.fail("apps.connections.open", status=503, retry_after=None, times=10**6)
    await app_factory({"admins": ["U0ADMIN"]}, env=slack_env(fake, mode="socket"))
    await until(lambda: _true(any("been down" in r.getMessage() for r in caplog.records)), 10)
    [down] = [r.getMessage() for r in caplog.records if "been down" in r.getMessage()]
    assert (
        f"(last error: SlackApiError: The request to the Slack API failed. (url:"
        f" http://127.0.0.1:{fake.port}/api/apps.connections.open, status: 503)"
        " The server responded with: {'ok': False, 'error': 'service_unavailable'}):"
    ) in down
    assert not [r for r in caplog.records if r.levelno >= 40]


async def _true(value: bool) -> bool:
    return value


async def test_the_socket_gauge_is_only_in_socket_mode(slack_http):
    slack = await slack_http({})
    assert await socket_gauge(slack.app) is None
