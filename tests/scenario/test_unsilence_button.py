"""The Unsilence button of a silenced alert, as signed block_actions against the real app.

The real app in Slack HTTP mode against the fake Slack Web API, a ManualClock (starts
2026-01-01 00:00 UTC); alert timers run when the test ticks. The last test runs the
same click in shell mode, where buttons are numbered choices.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_alerts import ALERTS, BOT, POLICY, alerts_of, channel_message, dms
from tests.scenario.test_silence_lift import SCOPE, audit, silences, trip

ONE = "1~1767225600000"  # alert #1, tagged with its first firing (the clock's start) in ms
OPEN_BUTTONS = [
    ("Acknowledge", "alert_ack", ONE),
    ("Silence 1h", "alert_silence_1h", ONE),
    ("Escalate now", "alert_escalate", ONE),
    ("Resolve", "alert_resolve", ONE),
]
SILENCED_BUTTONS = [("Unsilence", "alert_unsilence", ONE), ("Resolve", "alert_resolve", ONE)]


def buttons(blocks: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(label, action_id, value) of every button in ``blocks``."""
    return [
        (e["text"]["text"], e["action_id"], e["value"])
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
    ]


def shown(slack: Any) -> list[tuple[str, str, str]]:
    """The buttons of the alert's channel message as Slack now shows it."""
    return buttons(channel_message(slack.fake)["blocks"])


def paged(slack: Any, n: int = 0) -> list[tuple[str, str, str]]:
    """The buttons of the n-th page DMed to U01 as Slack now shows it."""
    call = dms(slack.fake, "U01")[n]
    return buttons(slack.fake.messages[(call.response["channel"], call.response["ts"])]["blocks"])


async def delivered(app: Any) -> None:
    """Wait until the outbox has delivered everything queued so far."""
    for _ in range(500):
        rows = await app.store.fetch("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
        if rows[0][0] == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the outbox did not drain")


async def posted_p0(slack: Any) -> None:
    """The spend breaker of BOT trips: P0 #1 is posted and pages U01."""
    await trip(slack.app)
    await alerts_of(slack).process()
    await slack.fake.wait_for(lambda: slack.fake.posts(ALERTS) and dms(slack.fake, "U01"))
    assert shown(slack) == OPEN_BUTTONS


async def silenced_p0(slack: Any) -> tuple[Any, int]:
    """P0 #1 posted, then silenced for 1h with the command, every update delivered.

    Returns the silences rows and the number of chat.update calls at that point.
    """
    await posted_p0(slack)
    await slack.command("silence #1 1h", user="U01")
    await slack.fake.wait_for(lambda: shown(slack) == paged(slack) == SILENCED_BUTTONS)
    await delivered(slack.app)
    return await silences(slack.app), len(slack.fake.calls_of("chat.update"))


async def click(slack: Any, action_id: str, value: str = ONE, *, user: str = "U01") -> str:
    """Click a button on the alert's channel message; returns the answer only the clicker sees."""
    fake = slack.fake
    message = channel_message(fake)
    ts = fake.posts(ALERTS)[0].response["ts"]
    answered = len(fake.responses["click"])
    r = await slack.click(
        action_id=action_id,
        value=value,
        user_id=user,
        channel=ALERTS,
        ts=ts,
        blocks=message["blocks"],
        block_id="alert:1",
        text=message["text"],
    )
    assert r.status_code == 200 and r.text == "", r.text
    await fake.wait_for(lambda: len(fake.responses["click"]) > answered)
    reply = fake.responses["click"][-1]
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    return str(reply["text"])


async def silenced_alert(app: Any) -> tuple[Any, ...]:
    row = await app.store.fetch("SELECT silence_id, resolved_at FROM alerts WHERE id = 1")
    return tuple(row[0])


async def test_silence_1h_says_in_place_who_silenced_and_when(slack_http):
    """audit9 M3: like every other button, the message (and the page) names the clicker."""
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await posted_p0(slack)
    app.clock.advance(17 * 60)
    assert await click(slack, "alert_silence_1h", user="U02") == (
        "🔕 you silenced #1 for 1h (until 01:17)"
    )
    line = "🔕 silenced by <@U02> at 00:17 until 01:17; firings are still counted"

    def page() -> dict[str, Any]:
        call = dms(fake, "U01")[0]
        return dict(fake.messages[(call.response["channel"], call.response["ts"])])

    await fake.wait_for(lambda: shown(slack) == paged(slack) == SILENCED_BUTTONS)
    for message in (channel_message(fake), page()):
        context = [b["elements"][0]["text"] for b in message["blocks"] if b["type"] == "context"]
        assert line in context
        assert message["text"].endswith(f"[{line}]")


async def test_unsilence_lifts_the_alerts_silence_and_it_pages_again(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await posted_p0(slack)
    assert await click(slack, "alert_silence_1h") == "🔕 you silenced #1 for 1h (until 01:00)"
    # the engine re-renders the message: Unsilence in place of Silence 1h, no Ack/Escalate
    await fake.wait_for(lambda: shown(slack) == paged(slack) == SILENCED_BUTTONS)
    last = fake.calls_of("chat.update", ok=True)[-1]
    assert buttons(last.args["blocks"]) == SILENCED_BUTTONS
    assert "silenced by <@U01> at 00:00 until 01:00" in json.dumps(last.args["blocks"])
    app.clock.advance(10 * 60)
    await alerts_of(slack).tick()
    assert len(dms(fake, "U01")) == 1 and dms(fake, "U04") == []  # silenced: nobody paged

    reply = await click(slack, "alert_unsilence", user="U01")
    assert reply == (
        "🔔 you lifted the silence on #1 (set by <@U01>, had 50m left); it notifies again."
    )
    [(_, fp, scope, by, _, ended_at, ended_by)] = await silences(app)
    assert (fp, scope, by) == (f"breaker_opened_spend:{BOT}", None, "U01")
    assert (ended_at, ended_by) == (app.clock.now(), "U01")
    [(actor, target, _, _, detail)] = await audit(app, "silence.lift")
    assert (actor, target) == ("U01", f"breaker_opened_spend:{BOT}")
    assert "50m left" in detail
    assert await silenced_alert(app) == (None, None)
    # as the lift does: paged again at once, and the message shows Silence 1h again
    await fake.wait_for(lambda: len(dms(fake, "U01")) == 2)
    # the old page too; Escalate now carries the step a click would take (1: the secondary)
    redrawn = [
        (*b[:2], "1:1~1767225600000") if b[1] == "alert_escalate" else b for b in OPEN_BUTTONS
    ]
    await fake.wait_for(lambda: shown(slack) == paged(slack) == redrawn)
    assert "silenced by" not in json.dumps(channel_message(fake)["blocks"])
    app.clock.advance(5 * 60)  # and the chain goes on to the secondary
    await alerts_of(slack).tick()
    await fake.wait_for(lambda: dms(fake, "U04"))
    await delivered(app)

    # a second click on a stale Unsilence: nothing left to lift
    updates = len(fake.calls_of("chat.update"))
    stale = await slack.click(
        action_id="alert_unsilence",
        value=ONE,
        user_id="U02",
        channel=ALERTS,
        ts=fake.posts(ALERTS)[0].response["ts"],
        blocks=last.args["blocks"],
        block_id="alert:1",
    )
    assert stale.status_code == 200
    await fake.wait_for(lambda: len(fake.responses["click"]) == 3)
    assert fake.responses["click"][-1]["text"] == "#1 is not silenced any more; nothing changed."
    assert len(await audit(app, "silence.lift")) == 1
    assert len(fake.calls_of("chat.update")) == updates


async def test_a_scope_silence_is_named_with_its_command_not_lifted(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await posted_p0(slack)
    await slack.command(f"silence {SCOPE} 2h", user="U01")
    await fake.wait_for(lambda: shown(slack) == paged(slack) == SILENCED_BUTTONS)
    app.clock.advance(60)
    before = await silences(app)

    reply = await click(slack, "alert_unsilence", user="U02")
    assert reply == (
        "Nothing changed: this button lifts only a silence set on #1 itself, and #1 is still"
        f" silenced by {SCOPE} and below (set by <@U01>, until 02:00):"
        f" `/agent silence {SCOPE} off` lifts that one."
    )
    assert await silences(app) == before
    assert await audit(app, "silence.lift") == []
    assert await silenced_alert(app) == (1, None)
    assert len(dms(fake, "U01")) == 1

    # with a silence on the alert as well, the button lifts that one and names the scope's
    await slack.command("silence #1 1h", user="U02")
    reply = await click(slack, "alert_unsilence", user="U02")
    assert reply == (
        "🔔 you lifted the silence on #1 (set by <@U02>, had 1h left), but #1 is still"
        f" silenced by {SCOPE} and below (set by <@U01>, until 02:00):"
        f" `/agent silence {SCOPE} off` lifts that one."
    )
    [scope_silence, alert_silence] = await silences(app)
    assert scope_silence == before[0]  # untouched
    assert alert_silence[1:3] == (f"breaker_opened_spend:{BOT}", None)
    assert alert_silence[5:] == (app.clock.now(), "U02")
    assert await silenced_alert(app) == (1, None)
    assert shown(slack) == SILENCED_BUTTONS
    assert len(dms(fake, "U01")) == 1


async def test_a_stranger_is_refused_and_audited(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    before, updates = await silenced_p0(slack)

    assert await click(slack, "alert_unsilence", user="U0STRANGER") == (
        "Only admins and the people on call (rotations, escalation users, overrides)"
        " can lift silences. Ask <@U0ADMIN>."
    )
    refusals = await app.store.fetch("SELECT actor, action, target FROM audit")
    assert ("U0STRANGER", "refused", "lift silences") in [tuple(r) for r in refusals]
    assert await silences(app) == before
    assert await audit(app, "silence.lift") == []
    assert await silenced_alert(app) == (1, None)
    assert len(fake.calls_of("chat.update")) == updates


async def test_a_bogus_value_is_refused_clearly_and_changes_nothing(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    before, updates = await silenced_p0(slack)

    not_an_alert = "this button does not name an alert"
    for value in ("abc", "", "#1", "²", "9" * 40):
        assert await click(slack, "alert_unsilence", value) == not_an_alert, value
    assert await click(slack, "alert_unsilence", "999999") == (
        "there is no alert #999999; `/agent alerts` lists the open ones"
    )
    assert await silences(app) == before
    assert await audit(app, "silence.lift") == []
    assert await silenced_alert(app) == (1, None)
    assert len(fake.calls_of("chat.update")) == updates


# -- shell mode -------------------------------------------------------------------------


async def until(predicate: Any, within: float = 5.0) -> None:
    """Wait for the outbox to deliver what ``predicate`` looks for."""
    for _ in range(int(within / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not delivered in time")


async def test_shell_shows_unsilence_as_a_numbered_choice_and_it_lifts(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())  # no SLACK_* variables: the shell
    console = app.ns.extras["shell"]
    console.out = out = io.StringIO()
    console.read_input = True  # as on a terminal: someone can type a number
    await trip(app)
    await app.ns.extras["alerts"].process()
    await until(lambda: console.find_button("alert_silence_1h", ONE))

    await console.click(console.find_button("alert_silence_1h", ONE))
    await until(lambda: console.find_button("alert_unsilence", ONE))
    unsilence = console.find_button("alert_unsilence", ONE)

    def labels(channel: str) -> list[list[str]]:  # the buttons of every copy shown there
        return [[b.label for b in m.buttons] for m in console.shown() if m.channel == channel]

    # both copies show it silenced: the channel's message and the page DMed to U01
    assert labels(ALERTS) == labels("U01") == [["Unsilence", "Resolve"]]
    assert f"[{unsilence.number}] Unsilence" in out.getvalue()

    await console.handle_line(str(unsilence.number))  # the operator types the number
    assert (
        "── only for you ──\n🔔 you lifted the silence on #1 (set by @shell, had 1h left);"
        " it notifies again." in out.getvalue()
    )
    open_labels = [b[0] for b in OPEN_BUTTONS]
    # both copies are back to the open buttons, and U01 is paged again (a new DM)
    # (the new page overtakes the edit of the old one: wait for both, not the first)
    await until(lambda: labels(ALERTS) == [open_labels] and len(labels("U01")) == 2)
    await until(lambda: labels("U01") == [open_labels, open_labels])
    assert console.find_button("alert_unsilence", ONE) is None
    [(actor, *_)] = await audit(app, "silence.lift")
    assert actor == "shell"
