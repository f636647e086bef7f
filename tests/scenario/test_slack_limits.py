"""Every reply fits Slack's limits: the strict fake Slack refuses what Slack refuses.

Long lists (60 breakers waiting for a trial, 500 open alerts) through each way a reply
leaves (the slash command's ack, the response_url follow-up, chat.postEphemeral),
messages past every limit through the outbox, and the fake's own refusals.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

import bot.slack.surface
from bot.blocks import actions, button, header, section
from bot.outbox import enqueue
from bot.slack.limits import BLOCKS_TEXT, text_chars
from guards.clock import ManualClock
from guards.events import BreakerOpened, Event, HeartbeatMissed, RunawayDetected
from guards.store import Tx
from guards.words import listed
from tests.fakes.block_kit import message_errors
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.scenario.test_lists_fleet import APPROVAL_POLICY, texts_of, trip

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ADMIN = "U0ADMIN"
MORE = re.compile(r"… and (\d+) more")
# agents with names as long as scopes allow (three segments of up to 64 characters)
AGENTS = [
    f"ns-{i % 6}-{'n' * 50}/user-{i % 9}-{'u' * 50}/agent-{i:03d}-{'a' * 50}" for i in range(500)
]


def under(hidden: list[str]) -> str:
    """`` · under `ns-1-…` (3) and `ns-2-…` (7)``: the namespaces of the breakers left out,
    in the list's order, as the "… and N more" line names them."""
    counts = Counter(scope.split("/")[0] for scope in hidden)
    names = [f"`{ns}` ({n})" for ns, n in counts.items()]
    assert len(names) <= 5
    return f" · under {listed(names)}: `/agent breakers <scope>` lists one"


def texts(reply: dict[str, Any]) -> list[str]:
    return [text for block in reply.get("blocks") or [] for text in texts_of(block)]


def hidden(reply: dict[str, Any]) -> int:
    """The N of the reply's last line, "… and N more <items>"."""
    found = MORE.match(texts(reply)[-1])
    assert found, texts(reply)[-1]
    return int(found.group(1))


def slack_accepts(fake: FakeSlack, reply: dict[str, Any]) -> None:
    assert message_errors(reply) is None
    assert not fake.rejections, fake.rejections[0]
    sent = [c for c in fake.calls if c.method.startswith(("chat.", "views.", "response_url"))]
    assert all(c.ok for c in sent), [(c.method, c.response) for c in sent if not c.ok]


async def follow_ups(slack: Any, monkeypatch: Any, command: str) -> list[dict[str, Any]]:
    """The same command answered late, through the response_url and chat.postEphemeral."""
    fake = slack.fake
    monkeypatch.setattr(bot.slack.surface, "ACK_BUDGET", 0.0)  # every answer comes late
    ack = await slack.command(command, response_url=fake.response_url("late"))
    assert ack["text"] == "⏳ Working on it…"
    await fake.wait_for(lambda: fake.responses["late"], within=10)
    await slack.command(command, response_url="", channel_id="C0OPS")
    await fake.wait_for(lambda: fake.calls_of("chat.postEphemeral", ok=True), within=10)
    ephemeral = fake.calls_of("chat.postEphemeral", ok=True)[0].args
    return [fake.responses["late"][0], ephemeral]


# -- /agent breakers ------------------------------------------------------------------------


async def test_sixty_waiting_trials_fit_every_way_the_reply_leaves(slack_http, monkeypatch):
    slack = await slack_http(APPROVAL_POLICY, clock=ManualClock(T0))
    app, fake = slack.app, slack.fake
    breakers = app.ns.breakers
    await app.store.write(trip(app, AGENTS[:60]))
    app.clock.advance(61)
    await app.store.write(breakers.tick)  # the cool-downs end: 60 wait for an approval
    rows = await app.store.fetch("SELECT COUNT(*) FROM breakers WHERE state = 'half_open_pending'")
    assert rows[0][0] == 60

    reply = await slack.command("breakers")
    slack_accepts(fake, reply)
    shown = [b for b in reply["blocks"] if b["type"] == "section"][1:]
    buttons = [b for b in reply["blocks"] if b["type"] == "actions"]
    # each waiting trial with its two buttons; as many as the text lists too, one line
    # each (audit26 client L4: the text said "… and 42 more" where the blocks said 21)
    assert len(shown) == len(buttons) >= 10
    assert texts(reply)[-1] == (
        f"… and {60 - len(shown)} more breakers, {60 - len(shown)} of them waiting for a trial"
        " approval (approve with `/agent breaker <scope> approve`, or the buttons on their"
        " alerts)" + under(sorted(AGENTS[:60])[len(shown) :])
    )
    assert hidden(reply) + len(shown) == 60
    assert reply["text"].endswith("\n" + texts(reply)[-1]) and len(reply["text"]) <= 3000
    assert reply["text"].count("\n🟡") == len(shown)

    for late in await follow_ups(slack, monkeypatch, "breakers"):
        assert late["blocks"] == reply["blocks"] and late["text"] == reply["text"]
    slack_accepts(fake, reply)


async def test_breakers_forced_open_with_long_reasons_are_cut_by_characters(
    slack_http, monkeypatch
):
    slack = await slack_http({"admins": [ADMIN]}, clock=ManualClock(T0))
    app, fake = slack.app, slack.fake
    reason = "runaway spend on the nightly batch, see the incident doc " * 8  # ~470 characters

    def force(tx: Tx) -> None:
        for agent in AGENTS[:40]:
            app.ns.breakers.force_open(tx, agent, ADMIN, reason)

    await app.store.write(force)
    reply = await slack.command("breakers")
    slack_accepts(fake, reply)
    shown = [b for b in reply["blocks"] if b["type"] == "section"][1:]
    assert 10 <= len(shown) < 40 and text_chars(reply["blocks"]) <= BLOCKS_TEXT
    assert (
        texts(reply)[-1]
        == (  # counted in breakers, and where the others are
            f"… and {40 - len(shown)} more breakers" + under(sorted(AGENTS[:40])[len(shown) :])
        )
    )
    assert MORE.search(reply["text"]).group(1) == str(40 - len(shown))  # type: ignore[union-attr]
    for late in await follow_ups(slack, monkeypatch, "breakers"):
        assert late["blocks"] == reply["blocks"]


# -- /agent alerts --------------------------------------------------------------------------


async def test_five_hundred_open_alerts_fit_and_say_how_many_are_not_shown(slack_http, monkeypatch):
    policy = {
        "admins": [ADMIN],
        "alerts": {"tiers": {"heartbeat_missed": "P2", "runaway": "P1"}},
    }
    slack = await slack_http(policy, clock=ManualClock(T0))
    app, fake = slack.app, slack.fake
    now = app.clock.now()
    events: list[Event] = [
        HeartbeatMissed(at=now, scope=a, last_seen=now - 900, misses=2) for a in AGENTS[:440]
    ]
    events += [
        RunawayDetected(at=now, scope=a, stream="posts", count=90, expected_count=3)
        for a in AGENTS[440:480]
    ]
    events += [
        BreakerOpened(at=now, scope=a, trip="failures", reason="5 failures in a row")
        for a in AGENTS[480:]
    ]

    def emit(tx: Tx) -> None:
        for event in events:
            tx.emit(event)

    await app.store.write(emit)
    await app.ns.extras["alerts"].process()
    rows = await app.store.fetch("SELECT COUNT(*) FROM alerts WHERE resolved_at IS NULL")
    assert rows[0][0] == 500

    every = await slack.command("alerts")
    slack_accepts(fake, every)
    assert every["blocks"][0]["text"]["text"] == "Open alerts: 500"
    assert "Heartbeat missed × 440: " in "\n".join(texts(every))

    one_kind = await slack.command("alerts heartbeat_missed")
    slack_accepts(fake, one_kind)
    listed = [line for t in texts(one_kind) for line in t.split("\n") if line.startswith("`#")]
    assert 10 <= len(listed) < 440
    more = texts(one_kind)[-1]  # and the namespaces of the rest (audit26 client L1)
    assert more.startswith(f"… and {440 - len(listed)} more P2 alerts · under `ns-"), more
    assert more.endswith(  # all six: they fit (review26 R2 M1: five were named)
        " and `ns-5-" + "n" * 50 + "` (71): `/agent alerts heartbeat_missed:<scope>` lists one"
    )
    assert MORE.search(one_kind["text"])

    for late in await follow_ups(slack, monkeypatch, "alerts heartbeat_missed"):
        assert late["blocks"] == one_kind["blocks"]
    await slack.outbox.drain(3)  # the alerts' own posts and storm summaries, all accepted
    slack_accepts(fake, one_kind)


# -- /agent budget and /agent jobs --------------------------------------------------------


async def test_the_budget_overview_of_sixty_busy_namespaces_fits_one_message(
    slack_http, monkeypatch
):
    # 40 namespaces with four limits and a hold each were 14,500 characters of blocks:
    # past what Slack takes in one message (msg_blocks_too_long)
    names = [f"namespace-{i:02d}-{'n' * 40}" for i in range(60)]
    limits = {"day": "10.00", "week": "50.00", "month": "100.00", "total": "1000.00"}
    slack = await slack_http(
        {"admins": [ADMIN], "budgets": {"scopes": {name: limits for name in names}}},
        clock=ManualClock(T0),
    )
    app, fake = slack.app, slack.fake
    for name in names:
        r = await app.request(
            "POST",
            "/v1/reservations",
            token=await app.token(name),
            json={"scope": f"{name}/u/bot", "idempotency_key": "k", "max_cost_micros": 1_234_567},
        )
        assert r.status_code == 201, r.text

    reply = await slack.command("budget")
    slack_accepts(fake, reply)
    rows = [t for t in texts(reply) if t.startswith("*namespace-")]
    assert 20 <= len(rows) < 40 and all("$1.234567 held" in row for row in rows)
    assert texts(reply)[0].startswith(f"*Budgets by namespace* (60; the {len(rows)} that spent")
    assert texts(reply)[-1] == (
        f"… and {60 - len(rows)} more namespaces (`/agent budget <namespace>`)"
    )
    assert text_chars(reply["blocks"]) <= BLOCKS_TEXT
    for late in await follow_ups(slack, monkeypatch, "budget"):
        assert late["blocks"] == reply["blocks"]


async def test_jobs_of_agents_with_long_names_are_cut_by_characters(slack_http):
    jobs = [
        {
            "name": f"job-{i:02d}-{'j' * 50}",
            "cron": "0 3 * * *",
            "url": "http://127.0.0.1:9/run",
            "scope": agent,
        }
        for i, agent in enumerate(AGENTS[:40])
    ]
    slack = await slack_http({"admins": [ADMIN], "jobs": jobs}, clock=ManualClock(T0))
    reply = await slack.command("jobs")
    slack_accepts(slack.fake, reply)
    shown = [b for b in reply["blocks"] if b["type"] == "section"]
    assert 15 <= len(shown) < 30 and text_chars(reply["blocks"]) <= BLOCKS_TEXT
    assert texts(reply)[-1] == (
        f"… and {40 - len(shown)} more jobs · `/agent jobs <namespace>` lists one namespace"
    )


def eighty_rotations() -> dict[str, Any]:
    """80 rotations of 12 people with long names, and a chain of 40 steps paging them."""
    rotations = [
        {
            "name": f"rotation-{i:03d}-{'r' * 28}",
            "users": [f"U{i:03d}{j:02d}" for j in range(12)],
            "start": "2025-12-29",
        }
        for i in range(80)
    ]
    chain = [{"notify": f"rotation:{r['name']}", "after": f"{i}m"} for i, r in enumerate(rotations)]
    return {"rotations": rotations, "escalation": chain[:40]}


async def test_eighty_rotations_are_cut_at_whole_rotations_and_keep_the_chain(slack_http):
    """audit24 L3: 80 rotations went in one section clipped mid-rotation ("… and 116 more
    lines", a rotation's hand-off cut off from it) and the escalation chain was lost, with
    47 of the message's 50 blocks unused."""
    oncall = eighty_rotations()
    slack = await slack_http({"admins": [ADMIN], "oncall": oncall}, clock=ManualClock(T0))
    reply = await slack.command("oncall")
    slack_accepts(slack.fake, reply)
    assert text_chars(reply["blocks"]) <= BLOCKS_TEXT
    rows = [row for t in texts(reply) for row in t.split("\n") if row.startswith("*rotation-")]
    hand_offs = [row for t in texts(reply) for row in t.split("\n") if "next hand-off" in row]
    assert 20 < len(rows) < 80 and len(hand_offs) == len(rows)  # whole rotations
    assert f"… and {80 - len(rows)} more rotations" in texts(reply)
    assert any(t.startswith("Escalation: rotation:rotation-000-") for t in texts(reply))
    assert reply["blocks"][-1]["elements"][0]["text"] == "UTC"
    assert len(reply["text"]) <= 3000 and "\nEscalation: rotation:" in reply["text"]
    assert re.search(r"\n… and \d+ more rotations\n", reply["text"])


# -- the safety net: a message past every limit still goes out, and says what was cut -----


def oversized() -> dict[str, Any]:
    rows = "\n".join(f"`#{i}` Heartbeat missed · {AGENTS[i]}" for i in range(60))  # ~11,000
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Storm: " + "x" * 200}},
        section("spacer"),
        actions(
            button("Revert " + "summarize_" * 6 + " (stark-industries)", "routing_revert", "i n"),
            button("Raise budget", "budget_raise", "s" * 2_500),
            block_id="alert:1",
        ),
        *({"type": "section", "text": {"type": "mrkdwn", "text": rows}} for _ in range(3)),
        *(section(f"row {i}") for i in range(60)),
    ]
    return {"text": "fallback\n" * 5_000, "blocks": blocks}


async def test_an_oversized_message_is_cut_to_fit_on_every_outbox_path(slack_http):
    slack = await slack_http({"admins": [ADMIN]}, clock=ManualClock(T0))
    app, fake = slack.app, slack.fake
    message = oversized()
    assert message_errors(message) is not None  # Slack would refuse it as it is

    def write(tx: Tx) -> None:
        enqueue(tx, method="chat.postMessage", args={"channel": "C1", **message}, ref="big")
        args = {"channel": "$ref:big.channel", "ts": "$ref:big.ts", **message}
        enqueue(tx, method="chat.update", args=args, channel="C1")
        url = fake.response_url("big")
        enqueue(tx, method="response_url", args={"url": url, "payload": message})

    await app.store.write(write)
    await slack.outbox.drain(3)
    rows = await app.store.fetch("SELECT method, state, last_error FROM outbox ORDER BY id")
    assert [tuple(r) for r in rows] == [
        ("chat.postMessage", "delivered", None),
        ("chat.update", "delivered", None),
        ("response_url", "delivered", None),
    ]
    ((channel, ts),) = fake.messages
    for shown in (fake.messages[(channel, ts)], fake.responses["big"][0]):
        assert message_errors(shown) is None
        title, _, buttons, note, first = shown["blocks"][:5]
        assert title["text"]["text"].endswith("…") and len(title["text"]["text"]) == 150
        assert [len(b["text"]["text"]) for b in buttons["elements"]] == [75]
        assert texts({"blocks": [note]}) == ["… and 1 more button not shown (too long)"]
        assert first["text"]["text"].endswith("more lines")
        assert MORE.match(texts(shown)[-1]) and texts(shown)[-1].endswith("not shown (too long)")
        assert shown["text"].endswith("more lines") and len(shown["text"]) <= 40_000
    assert not fake.rejections


# -- the strict fake refuses what Slack refuses ------------------------------------------------


async def test_the_fake_refuses_messages_past_slacks_limits_as_slack_does(fake_slack):
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.url, retry_handlers=[])
    cases: dict[str, dict[str, Any]] = {
        "invalid_blocks": {"blocks": [section(f"{i}") for i in range(51)]},
        "msg_too_long": {"text": "x" * 40_001},
        "msg_blocks_too_long": {"blocks": [section("y" * 2_900) for _ in range(5)]},
    }
    for error, args in cases.items():
        with pytest.raises(SlackApiError) as refused:
            await client.api_call("chat.postMessage", json={"channel": "C1", **args})
        assert refused.value.response["error"] == error
    header_too_long = [
        header("ok"),
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
    ]
    with pytest.raises(SlackApiError) as refused:
        await client.api_call(
            "chat.postEphemeral", json={"channel": "C1", "user": "U1", "blocks": header_too_long}
        )
    assert refused.value.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 151 characters [json-pointer:/blocks/1/text/text]"
    ]
    view = {"type": "modal", "title": {"type": "plain_text", "text": "t" * 25}, "blocks": []}
    with pytest.raises(SlackApiError) as refused:
        await client.views_open(trigger_id="1.2", view=view)
    assert refused.value.response["error"] == "invalid_arguments"
    async with httpx.AsyncClient() as http:
        posted = await http.post(fake_slack.response_url("r"), json=cases["invalid_blocks"])
    assert (posted.status_code, posted.text) == (400, "invalid_blocks")
    assert [r.error for r in fake_slack.rejections] == [
        "invalid_blocks",
        "msg_too_long",
        "msg_blocks_too_long",
        "invalid_blocks",
        "invalid_arguments",
        "invalid_blocks",
    ]
    assert not fake_slack.responses["r"]
    assert not fake_slack.posts() and not fake_slack.views
    fake_slack.rejections.clear()  # provoked on purpose: the fixture fails a test leaving any


async def test_many_bookings_and_a_long_chain_each_keep_their_own_section(slack_http):
    """review24 L1: the bookings, the chain and quiet hours shared one section, clipped at
    3,000 characters: after ten bookings of long rotation names a 40-step chain and the
    quiet hours were cut off ("… and 2 more lines"), though the reply promised them."""
    oncall = eighty_rotations()
    rotations = oncall["rotations"]
    policy = {"admins": [ADMIN], "oncall": oncall, "alerts": {"quiet_hours": "22:00-07:00"}}
    slack = await slack_http(policy, clock=ManualClock(T0))
    for i in range(15):
        name = rotations[i]["name"]
        booked = await slack.command(f"oncall override <@U{i:03d}05> 2h {name} from sat 09:00")
        assert "booked by" in booked["text"], booked["text"]
    reply = await slack.command("oncall")
    slack_accepts(slack.fake, reply)
    assert text_chars(reply["blocks"]) <= BLOCKS_TEXT and len(reply["blocks"]) <= 50
    shown = texts(reply)
    booked_rows = [row for t in shown for row in t.split("\n") if row.startswith("Booked: ")]
    assert len(booked_rows) == 10 and "… and 5 more booked" in "\n".join(shown)
    [escalation] = [t for t in shown if t.startswith("Escalation: ")]
    assert f"rotation:{rotations[39]['name']} after 39m; repeats" in escalation  # whole
    assert escalation.count(" → ") == 39
    assert any(t.startswith("Quiet hours 22:00-07:00") for t in shown)
    assert not [t for t in shown if "more line" in t]  # nothing clipped
    assert re.search(r"^… and \d+ more rotations$", "\n".join(shown), re.M)
    assert shown[-1] == "UTC"
