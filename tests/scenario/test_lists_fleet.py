"""Slash-command lists at fleet size: every "… and N more" counts items, nothing is hidden.

A fleet of 240 agents (6 namespaces × 4 users × 10 agents), 72 jobs, 45 breakers waiting
for a trial approval and a few hundred open alerts, driven through signed slash commands
in HTTP mode. Each answer is checked against Slack's limits (50 blocks, 3,000 characters
per text) and its counts against the database.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Set as AbstractSet
from typing import Any

from guards.clock import ManualClock
from guards.events import BreakerOpened, Event, HeartbeatMissed, RunawayDetected
from guards.store import Tx

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ADMIN = "U0ADMIN"
NAMESPACES = ["acme", "globex", "hooli", "initech", "stark-industries", "umbrella"]
USERS = ["alice", "bob", "carol", "dave"]
KINDS = ["invoice-extractor", "rss-bot", "translation-pipeline-worker", "sql-analyst", "chat"]
AGENTS = [
    f"{ns}/{user}/{KINDS[i % len(KINDS)]}-{i:02d}"
    for ns in NAMESPACES
    for user in USERS
    for i in range(10)
]
SCOPE_IN_LINE = re.compile(r"^[🔴🟢] `([^`]+)`")
MORE = re.compile(r"… and (\d+) more")


def texts_of(block: dict[str, Any]) -> list[str]:
    if block["type"] == "context":
        return [e["text"] for e in block["elements"]]
    text = block.get("text")
    return [text["text"]] if isinstance(text, dict) else []


def assert_fits(reply: dict[str, Any]) -> None:
    """Within Slack's limits by construction: the generic cut never had to act."""
    blocks = reply.get("blocks", [])
    assert len(blocks) <= 50
    for block in blocks:
        limit = 150 if block["type"] == "header" else 3000
        for text in texts_of(block):
            assert len(text) <= limit, (block["type"], len(text))
            assert "not shown (too long)" not in text and "more lines" not in text
    assert len(reply["text"]) <= 3000
    assert "more lines" not in reply["text"]


def more_count(text: str) -> int:
    found = MORE.search(text)
    assert found, text
    return int(found.group(1))


async def heartbeats(
    app: Any, scopes: list[str], *, missed: AbstractSet[str] = frozenset()
) -> None:
    """Agents that beat (10 s ago) or missed their beats (an hour ago, alert raised)."""
    now = app.clock.now()
    rows = [
        (
            s,
            now - 7200 if s in missed else now - 10,
            now - 86400,
            now - 3600 if s in missed else None,
        )
        for s in scopes
    ]
    await app.store.write(
        lambda tx: tx.executemany(
            "INSERT INTO heartbeats (scope, last_seen, status, first_seen, beats, missed_at)"
            " VALUES (?, ?, 'ok', ?, 12, ?)",
            rows,
        )
    )


async def spend(app: Any, scope: str, micros: int) -> None:
    tok = await app.token(scope.rsplit("/", 1)[0])
    r = await app.request(
        "POST",
        "/v1/reservations",
        token=tok,
        json={"scope": scope, "idempotency_key": f"k-{scope}", "max_cost_micros": micros},
    )
    assert r.status_code == 201, r.text
    rid = r.json()["reservation_id"]
    r = await app.request(
        "POST",
        f"/v1/reservations/{rid}/settle",
        token=tok,
        json={"actual_cost_micros": micros, "outcome": "success"},
    )
    assert r.status_code == 200, r.text


def agent_lines(reply: dict[str, Any]) -> list[str]:
    return [
        line
        for block in reply["blocks"]
        if block["type"] == "section"
        for text in texts_of(block)
        for line in text.split("\n")
        if SCOPE_IN_LINE.match(line)
    ]


# -- /agent status --------------------------------------------------------------------------


async def test_status_lists_every_unhealthy_agent_first_and_counts_the_rest(slack_http):
    slack = await slack_http(
        {"admins": [ADMIN], "heartbeats": {"timeout_seconds": "1h"}}, clock=ManualClock(T0)
    )
    app = slack.app
    missed = {a for i, a in enumerate(AGENTS) if i % 17 == 3} | {AGENTS[-1]}
    await heartbeats(app, AGENTS, missed=missed)
    forced = [AGENTS[5], AGENTS[17 * 3 + 3], AGENTS[200], AGENTS[-2]]  # one also missed
    for scope in [*forced, "hooli/carol"]:  # a user's breaker stops its 10 agents
        await app.store.write(lambda tx, s=scope: app.ns.breakers.force_open(tx, s, ADMIN, "test"))
    for scope, micros in [("acme/bob/rss-bot-01", 500_000), ("globex/alice/chat-04", 1_200_000)]:
        await spend(app, scope, micros)
    unhealthy = missed | set(forced) | {a for a in AGENTS if a.startswith("hooli/carol/")}
    assert 25 < len(unhealthy) < 45

    writes = app.ns.store.batches
    reply = await slack.command("status")
    assert app.ns.store.batches == writes  # the whole fleet is read off the writer
    assert_fits(reply)
    blocks = reply["blocks"]
    assert blocks[1]["text"]["text"].startswith(
        f"Fleet: 240 agents, {len(unhealthy)} need a look · open alerts:"
    )
    assert texts_of(blocks[2])[0].startswith("Slack delivery: ")  # first, not cut
    lines = agent_lines(reply)
    scopes = [SCOPE_IN_LINE.match(line).group(1) for line in lines]  # type: ignore[union-attr]
    bad = [s for line, s in zip(lines, scopes, strict=True) if line.startswith("🔴")]
    assert set(bad) == unhealthy and scopes[: len(bad)] == bad  # all of them, first
    assert AGENTS[-1] in bad  # the last agent by name is not dropped
    assert scopes[len(bad) : len(bad) + 2] == ["globex/alice/chat-04", "acme/bob/rss-bot-01"]
    sections = [b for b in blocks if b["type"] == "section"][1:]
    assert all(len(texts_of(b)[0].split("\n")) <= 15 for b in sections)
    more = texts_of(blocks[-1])[0]  # and the namespaces of the rest (audit26 client M1)
    assert more.startswith(f"… and {240 - len(lines)} more agents (healthy) · under `acme` (")
    assert more.endswith(" and `umbrella` (35): `/agent status <scope>` lists one")  # all six

    text = reply["text"].split("\n")
    assert text[0] == blocks[1]["text"]["text"] and text[-2].startswith("Slack delivery: ")
    assert text[-1] == "Times in UTC"
    listed = [line for line in text if SCOPE_IN_LINE.match(line)]
    assert more_count(text[-3]) == 240 - len(listed)


async def test_status_in_a_storm_counts_hidden_unhealthy_agents_beyond_500_rows(slack_http):
    slack = await slack_http({"heartbeats": {"timeout_seconds": "1h"}}, clock=ManualClock(T0))
    app = slack.app
    churn = [f"zz-retired/u{i // 50:02d}/worker-{i:03d}" for i in range(380)]  # sorts last
    missed = {a for a in churn if a.endswith(("0", "5"))}  # 76 agents, all at the end
    await heartbeats(app, AGENTS + churn, missed=missed)

    reply = await slack.command("status")
    assert_fits(reply)
    assert f"Fleet: 620 agents, {len(missed)} need a look" in reply["blocks"][1]["text"]["text"]
    lines = agent_lines(reply)
    assert 30 <= len(lines) <= 45 and all(line.startswith("🔴") for line in lines)
    hidden_bad = len(missed) - len(lines)
    assert texts_of(reply["blocks"][-1]) == [
        f"… and {620 - len(lines)} more agents: {hidden_bad} need a look, 544 healthy"
        f" · those {hidden_bad} are under `zz-retired` ({hidden_bad}): `/agent status <scope>`"
        " lists one"
    ]


# -- /agent jobs ----------------------------------------------------------------------------


def fleet_jobs(url: str) -> list[dict[str, Any]]:
    jobs = []
    for n, agent in enumerate(AGENTS[::10][:24] * 3):
        name = f"{agent.replace('/', '-')}-{['nightly', 'hourly', 'weekly'][n // 24]}"
        cron = ["0 3 * * *", "0 * * * *", "0 3 * * 1"][n // 24]
        if n in (7, 20):
            cron = "30 0 * * *"  # nightly at 00:30
        jobs.append({"name": name[-64:], "cron": cron, "url": url, "scope": agent})
    return jobs


async def test_jobs_puts_the_footer_first_and_paused_and_failing_jobs_before_the_rest(
    slack_http, caplog
):
    jobs = fleet_jobs("http://127.0.0.1:9/run")  # nothing listens: a run fails
    caplog.set_level(logging.INFO, logger="bot.jobs.runner")
    slack = await slack_http({"admins": [ADMIN], "jobs": jobs}, clock=ManualClock(T0))
    started = [r.getMessage() for r in caplog.records if r.name == "bot.jobs.runner"]
    config = slack.app.ns.settings.config  # the file read, named (audit24 claims C8)
    assert started == [
        f"72 jobs scheduled; next: {jobs[7]['name']} at Thu 2026-01-01 00:30 UTC"
        f" (`nightshift jobs preview --config {config}` shows each)"
    ]
    app = slack.app
    runner = app.ns.extras["jobs"]
    app.clock.advance(31 * 60)  # 00:31: the two 00:30 jobs fire, and fail
    await runner.tick()
    await runner.wait_idle()
    failing = [jobs[7]["name"], jobs[20]["name"]]
    last = jobs[-1]["name"]
    assert "paused by" in (await slack.command(f"pause {last}"))["text"]

    reply = await slack.command("jobs")
    assert_fits(reply)
    blocks = reply["blocks"]
    assert texts_of(blocks[0]) == [
        "72 jobs, 1 paused, 2 failing · `/agent pause <job|all>` stops runs"
    ]
    sections = [texts_of(b)[0] for b in blocks if b["type"] == "section"]
    assert sections[0].startswith(f"⏸ *{last}* paused by <@{ADMIN}>")
    assert [s.split("*")[1] for s in sections[1:3]] == failing
    assert "last: ❌ failed 00:30" in sections[1]
    assert len(sections) == 30 and len(blocks) == 32
    assert texts_of(blocks[-1]) == [
        f"… and {72 - len(sections)} more jobs · `/agent jobs <namespace>` lists one namespace"
    ]
    assert reply["text"].startswith("72 jobs, 1 paused")
    shown = reply["text"].count("▶️ *") + reply["text"].count("⏸ *")
    assert more_count(reply["text"]) == 72 - shown

    one = await slack.command("jobs umbrella")
    assert_fits(one)
    assert texts_of(one["blocks"][0])[0].startswith(
        "12 jobs in umbrella (of 72), 1 paused, 1 failing"
    )
    assert len(one["blocks"]) == 13 and "more jobs" not in one["text"]

    for bad in ("nowhere", "x" * 10_000, "<!channel>"):
        answer = await slack.command(f"jobs {bad}")
        assert_fits(answer)
        assert "jobs run in: acme, globex, hooli" in answer["text"]
        assert "usage: `/agent jobs [namespace]`" in answer["text"]
        assert "<!channel>" not in answer["text"]
    pauses = await app.store.fetch("SELECT job FROM job_pauses")
    assert [r[0] for r in pauses] == [last]


# -- /agent breakers ------------------------------------------------------------------------


# three failures in a row trip an agent; after 60 s its trial waits for an approval
APPROVAL_POLICY: dict[str, Any] = {
    "admins": [ADMIN],
    "breakers": {
        "failures": {"consecutive": 3},
        "cooldown_seconds": "60s",
        "half_open": {"mode": "approval"},
    },
}


def trip(app: Any, agents: list[str]) -> Any:
    """A write: each of ``agents`` fails three times (its breaker opens)."""
    breakers = app.ns.breakers

    def write(tx: Tx) -> None:
        for agent in agents:
            for _ in range(3):
                breakers.record_outcome(tx, agent, failed=True, now=tx.clock.now())

    return write


async def test_breakers_budget_rows_by_blocks_and_count_breakers(slack_http):
    slack = await slack_http(APPROVAL_POLICY, clock=ManualClock(T0))
    app = slack.app
    breakers = app.ns.breakers
    await app.store.write(trip(app, AGENTS[:45]))
    app.clock.advance(61)
    await app.store.write(breakers.tick)  # cool-down over: 45 wait for a trial approval
    await app.store.write(trip(app, AGENTS[100:105]))  # 5 more, still cooling down
    waiting = await app.store.fetch(
        "SELECT COUNT(*) FROM breakers WHERE state = ?", ("half_open_pending",)
    )
    assert waiting[0][0] == 45

    reply = await slack.command("breakers")
    assert_fits(reply)
    blocks = reply["blocks"]
    assert len(blocks) <= 48
    # the count of each state first (audit18 fleet finding 3)
    assert texts_of(blocks[0]) == [
        "*Breakers* — 50 not closed (45 waiting for a trial approval · 5 open)"
    ]
    assert texts_of(blocks[1]) == ["`/agent breaker <scope> approve|open|close`"]
    rows = [b for b in blocks[2:] if b["type"] == "section"]
    buttons = [b for b in blocks if b["type"] == "actions"]
    assert len(rows) == len(buttons) == 22  # two blocks each
    # and what the tail hides that waits for a person, with where to find their buttons
    # and the scope that lists the next ones (audit26 client M1: none was named)
    assert texts_of(blocks[-1]) == [
        f"… and {50 - len(rows)} more breakers, {45 - len(rows)} of them waiting for a trial"
        " approval (approve with `/agent breaker <scope> approve`, or the buttons on their alerts)"
        " · under `acme` (18), `globex` (5) and `hooli` (5): `/agent breakers <scope>` lists one"
    ]
    assert more_count(reply["text"]) == 50 - reply["text"].count("\n🟡")

    every = await slack.command("breakers all")
    assert_fits(every)
    total = len(await app.store.write(lambda tx: breakers.list(tx, True)))
    shown = [b for b in every["blocks"][2:] if b["type"] == "section"]
    assert texts_of(every["blocks"][0]) == [
        f"*Breakers* — 50 not closed of {total} (45 waiting for a trial approval · 5 open)"
    ]
    assert len(shown) == 22  # the waiting ones first, as above
    assert texts_of(every["blocks"][-1]) == [
        f"… and {total - len(shown)} more breakers, {45 - len(shown)} of them waiting for a"
        " trial approval (approve with `/agent breaker <scope> approve`, or the buttons on"
        " their alerts) · under `acme` (18), `globex` (5) and `hooli` (5):"
        " `/agent breakers all <scope>` lists one"
    ]


async def test_breakers_lists_trials_waiting_for_approval_before_kill_switches(slack_http):
    """audit14 acceptance F2: by key alone, 50 kill switches on scopes that sort first hid
    the trials waiting for approval, and their buttons, behind "… and N more"."""
    slack = await slack_http(APPROVAL_POLICY, clock=ManualClock(T0))
    app = slack.app
    breakers = app.ns.breakers
    switched = [f"acme/aa/switch-{i:02d}" for i in range(50)]  # they sort before AGENTS[-3:]

    def kill(tx: Tx) -> None:
        for scope in switched:
            breakers.force_open(tx, scope, ADMIN, "maintenance")

    await app.store.write(kill)
    waiting = AGENTS[-3:]
    await app.store.write(trip(app, waiting))
    app.clock.advance(61)
    await app.store.write(breakers.tick)
    await app.store.write(trip(app, [AGENTS[-4]]))  # open, cooling down

    reply = await slack.command("breakers")
    assert_fits(reply)
    lines = reply["text"].split("\n")
    shown = [line for line in lines if line.startswith(("🟡", "🔴", "⛔"))]
    assert [line[0] for line in shown[:4]] == ["🟡", "🟡", "🟡", "🔴"]
    assert [line.split("*")[1] for line in shown[:3]] == sorted(waiting)  # by key within a state
    buttons = [b for b in reply["blocks"] if b["type"] == "actions"]
    assert len(buttons) == 3
    assert all(line.startswith("⛔") for line in shown[4:])


# -- /agent alerts --------------------------------------------------------------------------


async def emit(app: Any, events: list[Event]) -> None:
    def write(tx: Tx) -> None:
        for e in events:
            tx.emit(e)

    await app.store.write(write)


async def alerts_fleet(slack_http: Any) -> Any:
    policy = {
        "admins": [ADMIN],
        "alerts": {"tiers": {"heartbeat_missed": "P2", "runaway": "P1"}},
    }
    slack = await slack_http(policy, clock=ManualClock(T0))
    app = slack.app
    now = app.clock.now()
    await emit(
        app,
        [HeartbeatMissed(at=now, scope=a, last_seen=now - 900, misses=2) for a in AGENTS]
        + [
            RunawayDetected(at=now, scope=a, stream="posts", count=90, expected_count=3)
            for a in AGENTS[:4]
        ]
        + [
            BreakerOpened(at=now, scope=a, trip="failures", reason="5 failures in a row")
            for a in AGENTS[40:70]
        ],
    )
    await app.ns.extras["alerts"].process()
    return slack


async def test_alerts_group_many_of_a_kind_and_narrow_by_kind_or_scope(slack_http):
    slack = await alerts_fleet(slack_http)
    reply = await slack.command("alerts")
    assert_fits(reply)
    blocks = reply["blocks"]
    assert blocks[0]["text"]["text"] == "Open alerts: 274"
    assert "`/agent alerts <scope|kind>` narrows" in texts_of(blocks[1])[0]
    body = "\n".join(t for b in blocks for t in texts_of(b))
    assert re.search(
        r"Heartbeat missed × 240: `#\d+` acme/alice/invoice-extractor-00, .*, … and 237 more"
        r" \(`/agent alerts heartbeat_missed` lists them\)",
        body,
    )
    assert "Breaker opened on failures × 30: " in body and "… and 27 more" in body
    assert body.count("Runaway output ·") == 4  # four of a kind: one line each
    assert "more P0 alerts" not in body and "more P2 alerts" not in body

    by_kind = await slack.command("alerts heartbeat_missed")
    assert_fits(by_kind)
    assert by_kind["blocks"][0]["text"]["text"] == (
        "Open alerts: 240 matching `heartbeat_missed` (of 274)"
    )
    listed = [
        line
        for b in by_kind["blocks"]
        for t in texts_of(b)
        for line in t.split("\n")
        if line.startswith("`#")
    ]
    assert 15 <= len(listed) <= 21 and all(
        "Heartbeat missed · `heartbeat_missed:" in line for line in listed
    )
    assert texts_of(by_kind["blocks"][-1]) == [  # and how to see them (audit18 fleet)
        f"… and {240 - len(listed)} more P2 alerts · under `acme` ({40 - len(listed)}),"
        " `globex` (40), `hooli` (40), `initech` (40), `stark-industries` (40) and `umbrella`"
        " (40): `/agent alerts heartbeat_missed:<scope>` lists one"  # all six (review26 R2 M1)
    ]
    assert more_count(by_kind["text"]) == 240 - by_kind["text"].count("\n`#")

    family = await slack.command("alerts breaker_opened")
    assert family["blocks"][0]["text"]["text"].startswith("Open alerts: 30 matching")

    scoped = await slack.command("alerts globex/alice")
    assert_fits(scoped)
    assert scoped["blocks"][0]["text"]["text"] == "Open alerts: 20 matching `globex/alice` (of 274)"
    assert "globex/bob" not in scoped["text"] and "acme/" not in scoped["text"]
    assert "Heartbeat missed × 10: " in scoped["text"]
    assert "`/agent alerts heartbeat_missed:globex/alice` lists them" in scoped["text"]
    both = await slack.command("alerts heartbeat_missed:globex/alice/rss-bot-01")
    assert both["blocks"][0]["text"]["text"].startswith("Open alerts: 1 matching")
    none = await slack.command("alerts runaway:globex")
    assert (
        none["text"] == "No open alerts match `runaway:globex` (274 open in all: `/agent alerts`)."
    )


async def test_alerts_filter_refuses_bad_input_clearly_and_changes_nothing(slack_http):
    slack = await alerts_fleet(slack_http)
    app = slack.app

    async def state() -> list[Any]:
        queries = (
            "SELECT id, kind, scope, tier, count, acked_at, resolved_at, silence_id FROM alerts",
            "SELECT * FROM silences",
            "SELECT * FROM audit",
        )
        return [[tuple(r) for r in await app.store.fetch(sql)] for sql in queries]

    before = await state()
    cases = {
        "heartbeat_mised": "Did you mean `heartbeat_missed`?",
        "nobody-here": "is neither a scope Nightshift knows",
        "acme/alice/rss-bot/c1/x": "is neither a scope Nightshift knows",
        "hearbeat:acme": "names no alert kind before the colon",
        "x" * 10_000: "is too long for a filter",
        "<!channel>": "`&lt;!channel&gt;` is neither a scope",
        "'; DROP TABLE alerts; --": "is neither a scope",
    }
    for arg, said in cases.items():
        reply = await slack.command(f'alerts "{arg}"')
        assert_fits(reply)
        assert said in reply["text"], (arg[:40], reply["text"])
        assert "usage: `/agent alerts [scope|kind]`" in reply["text"]
        assert "`heartbeat_missed`" in reply["text"]  # the kinds accepted are listed
        assert "<!channel>" not in reply["text"]
    two = await slack.command("alerts acme hooli")
    assert "takes one filter" in two["text"]
    # a scope in another case: the one meant, before the kinds (closing13: the kinds only)
    for typed, meant in (("Globex/Alice", "globex/alice"), ("runaway:GLOBEX", "runaway:globex")):
        reply = await slack.command(f"alerts {typed}")
        assert (
            f"is neither a scope Nightshift knows nor an alert kind. Did you mean `{meant}`?"
            in (reply["text"])
        ), reply["text"]
    assert await state() == before


async def test_status_counts_agents_that_only_run_jobs_and_lists_them_when_held(slack_http):
    """audit18 fleet finding 1: an agent that only runs jobs never reserves nor beats, so
    with its breaker open (and alerts open) `status` neither counted nor listed it."""
    jobs = [
        {"name": f"sync-{n}", "cron": "0 3 * * *", "url": "http://127.0.0.1:9/run", "scope": s}
        for n, s in enumerate(["acme/ops/sync-bot", "acme/ops/report-bot"])
    ]
    slack = await slack_http({"admins": [ADMIN], "jobs": jobs}, clock=ManualClock(T0))
    app = slack.app
    await heartbeats(app, AGENTS[:3], missed=set())
    await app.store.write(
        lambda tx: app.ns.breakers.force_open(tx, "acme/ops/sync-bot", ADMIN, "test")
    )
    reply = await slack.command("status")
    assert reply["blocks"][1]["text"]["text"].startswith("Fleet: 5 agents, 1 needs a look")
    lines = agent_lines(reply)
    assert lines[0].startswith("🔴") and "acme/ops/sync-bot" in lines[0]
    assert any("acme/ops/report-bot" in line for line in lines)  # healthy, still counted


async def test_status_puts_an_agent_with_an_unanswered_page_among_those_that_need_a_look(
    slack_http,
):
    """audit18 soak finding 2: an agent with three open, unacknowledged P1s was listed 🟢
    and counted healthy; only its heartbeat and its breaker decided."""
    slack = await slack_http({"admins": [ADMIN]}, clock=ManualClock(T0))
    app = slack.app
    await heartbeats(app, AGENTS[:3], missed=set())
    now = app.clock.now()
    runaway = RunawayDetected(at=now, scope=AGENTS[1], stream="posts", count=90, expected_count=3)
    await emit(app, [runaway])
    await app.ns.extras["alerts"].process()
    reply = await slack.command("status")
    assert reply["blocks"][1]["text"]["text"].startswith("Fleet: 3 agents, 1 needs a look")
    first = agent_lines(reply)[0]
    assert first.startswith(f"🔴 `{AGENTS[1]}`") and "1 open alert, 1 P0/P1 unanswered" in first
    [row] = await app.store.fetch("SELECT id FROM alerts")
    await slack.command(f"ack {row[0]}")
    reply = await slack.command("status")
    assert reply["blocks"][1]["text"]["text"].startswith("Fleet: 3 agents, 0 need a look")


async def test_status_names_the_zone_of_its_times_and_whose_day_today_is(slack_http):
    """audit24 agreement F2: "💔 heartbeat missed (last 15:15) · … $0.026508 today" was a
    clock time in the policy's zone (Berlin) beside the day of the namespace's (Auckland,
    already the next day), and the reply named neither."""
    policy = {
        "admins": [ADMIN],
        "timezone": "Europe/Berlin",
        "budgets": {"scopes": {"acme": {"timezone": "Pacific/Auckland"}}},
    }
    berlin_1415 = 1_767_618_900.0  # Mon 2026-01-05 14:15 in Berlin, Tue 02:15 in Auckland
    slack = await slack_http(policy, clock=ManualClock(berlin_1415))
    app = slack.app
    await heartbeats(app, [AGENTS[0], AGENTS[40]], missed={AGENTS[0]})  # acme, globex
    await spend(app, AGENTS[0], 26_508)
    reply = await slack.command("status")
    line = next(li for li in reply["text"].split("\n") if f"`{AGENTS[0]}`" in li)
    assert "💔 heartbeat missed (last 12:15)" in line and "$0.026508 today" in line, line
    said = 'Times in Europe/Berlin · "today" is Mon 2026-01-05; for acme, Tue 2026-01-06' + (
        " (Pacific/Auckland)"
    )
    assert reply["text"].split("\n")[-1] == said, reply["text"]
    assert said in [t for b in reply["blocks"] if b["type"] == "context" for t in texts_of(b)]
    # every namespace on the policy's clock: the zone alone
    slack2 = await slack_http({"admins": [ADMIN]}, clock=ManualClock(berlin_1415))
    await heartbeats(slack2.app, [AGENTS[40]])
    assert (await slack2.command("status"))["text"].split("\n")[-1] == "Times in UTC"


async def test_status_says_which_open_alerts_wait_for_an_answer(slack_http):
    """audit24 agreement F3: "2 open alert(s), 1 not acknowledged" when nobody had
    acknowledged anything: the other was a P2, which waits for the digest, not a person."""
    policy = {"admins": [ADMIN], "alerts": {"tiers": {"heartbeat_missed": "P2", "runaway": "P1"}}}
    slack = await slack_http(policy, clock=ManualClock(T0))
    app = slack.app
    now = app.clock.now()
    await emit(
        app,
        [
            HeartbeatMissed(at=now, scope=AGENTS[1], last_seen=now - 900, misses=2),
            RunawayDetected(at=now, scope=AGENTS[1], stream="posts", count=90, expected_count=3),
        ],
    )
    await app.ns.extras["alerts"].process()
    first = agent_lines(await slack.command("status"))[0]
    assert first.endswith("· 2 open alerts, 1 P0/P1 unanswered"), first
