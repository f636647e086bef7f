"""``/agent status`` of a large fleet (review28 R2 H1): 10,000 agents refused before they
started took 16-20 s and held the event loop meanwhile (a reservation sent then waited
14.5 s): the hint line under the list read every agent's scope anew for each of the 45
agents the plain text placed, and the fleet read took two queries per agent. Also: an
agent refused once, months ago, is not of the fleet; one refused today needs a look and
is listed before the healthy ones (L4).

The real app in Slack HTTP mode against a real SQLite file, a ManualClock; the refusals
are written as rows (as a refusal counts them: refusals_daily), the calls through the
HTTP API, the command as a signed slash command.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

from bot.alerts.fleet import fleet
from guards.clock import ManualClock
from guards.store import Tx
from tests.scenario.test_digest_namespaces import REFUSING, berlin, reserve
from tests.scenario.test_status_refused import line_of

TODAY = "2026-01-05"  # Berlin's day at the clock below


def refusals(tx: Tx, agents: list[str], *, day: str, reason: str = "breaker") -> None:
    tx.executemany(
        "INSERT INTO refusals_daily (scope, day, reason, calls, asked_micros, first_at)"
        " VALUES (?, ?, ?, 3, 30000, NULL)",
        [(agent, day, reason) for agent in agents],
    )


async def test_status_of_10000_refused_agents_is_quick_and_holds_no_reservation(
    slack_http: Any,
) -> None:
    slack = await slack_http(REFUSING, clock=ManualClock(berlin(2026, 1, 5, 15)))
    app = slack.app
    today = [f"beta/u{i // 100}/a{i % 100}" for i in range(10_000)]
    months_ago = [f"gone/u{i // 100}/a{i % 100}" for i in range(5_000)]
    await app.store.write(lambda tx: refusals(tx, today, day=TODAY))
    await app.store.write(lambda tx: refusals(tx, months_ago, day="2025-10-01"))
    assert await reserve(app, "acme/u/a", "warm", micros=10_000, model="gpt-4o") == 201

    held = 0.0  # the longest the event loop was away while status ran

    async def ticks(done: asyncio.Event) -> None:
        nonlocal held
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.005)
            held = max(held, time.monotonic() - last)
            last = time.monotonic()

    async def a_call_meanwhile() -> float:
        await asyncio.sleep(0.05)  # the command is under way
        began = time.monotonic()
        assert await reserve(app, "acme/u/a", "meanwhile", micros=10_000, model="gpt-4o") == 201
        return time.monotonic() - began

    done = asyncio.Event()
    ticker = asyncio.create_task(ticks(done))
    began = time.monotonic()
    reply, waited = await asyncio.gather(slack.command("status"), a_call_meanwhile())
    took = time.monotonic() - began
    done.set()
    await ticker
    said = reply["text"]
    # the 10,000 refused today and the one that reserved; not the 5,000 of October
    assert "Fleet: 10,001 agents, 10,000 need a look" in said, said[:300]
    assert "`gone" not in said, said
    assert "those 9,955 are under `beta` (9,955)" in said, said[-400:]
    # before: 5-20 s, the loop held throughout, the reservation waiting as long
    assert took < 2.5, took
    assert held < 1.0, held
    assert waited < 1.0, waited


async def test_the_fleet_read_is_a_constant_number_of_queries(slack_http: Any) -> None:
    slack = await slack_http(REFUSING, clock=ManualClock(berlin(2026, 1, 5, 15)))
    app = slack.app
    assert await reserve(app, "acme/u/a", "r", micros=10_000, model="gpt-4o") == 201

    def queries() -> int:
        conn = sqlite3.connect(app.store.path, isolation_level=None)
        said: list[str] = []
        conn.set_trace_callback(said.append)
        try:
            view = fleet(Tx(conn, app.clock), ledger=app.ns.ledger, now=app.clock.now(), limit=45)
        finally:
            conn.close()
        assert view.total == view.fleet_total
        return len(said)

    few = queries()
    agents = [f"beta/u{i}/a" for i in range(300)]
    await app.store.write(lambda tx: refusals(tx, agents, day=TODAY))
    await app.store.write(
        lambda tx: tx.executemany(
            "INSERT INTO scopes (path, parent, depth, created_at) VALUES (?, NULL, 3, 0)",
            [(f"delta/u{i}/a",) for i in range(300)],
        )
    )
    assert queries() == few  # before: two more per agent (its spend, its refusals today)


async def test_an_agent_refused_today_by_its_budget_is_listed_before_healthy_ones(
    slack_http: Any,
) -> None:
    """review28 R2 L4: it spent $0 and sorted below 45 healthy agents that spent more, so
    its "refused today" was cut from the list."""
    slack = await slack_http(REFUSING, clock=ManualClock(berlin(2026, 1, 5, 15)))
    app = slack.app
    for i in range(50):
        assert await reserve(app, f"acme/u{i}/a", f"r{i}", micros=10_000, model="gpt-4o") == 201
    await app.store.write(lambda tx: refusals(tx, ["zz/u/a"], day=TODAY, reason="budget"))
    reply = await slack.command("status")
    assert "Fleet: 51 agents, 1 needs a look" in reply["text"], reply["text"][:300]
    said = "\n".join(b["text"]["text"] for b in reply["blocks"] if b["type"] == "section")
    line = line_of(said, "zz/u/a")
    assert line.startswith("🔴") and line.endswith("· refused today: 3 over budget"), line
    first = next(ln for ln in said.splitlines() if ln.startswith(("🔴", "🟢")))
    assert first == line, said[:600]
