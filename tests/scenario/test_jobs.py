"""Scheduled agent jobs, run against a real HTTP target on 127.0.0.1.

Time is a ManualClock: each test moves it and calls the runner's tick itself (the
APScheduler tick is paused so it cannot race the test), except the last test, which
lets the real scheduler fire on an accelerated clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from guards.clock import AcceleratedClock, ManualClock
from guards.config import PolicyError

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
AGENT = "acme/alice/rss-bot"
ADMIN = "U0ADMIN"
SECRET = "s3cret-s3cret-s3cret"


@dataclass
class Target:
    """An agent's job endpoint: records calls; /slow waits for release(), /hang sleeps."""

    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def paths(self) -> list[str]:
        return [c["path"] for c in self.calls]


@pytest.fixture
async def target():
    t = Target()

    async def handle(request: web.Request) -> web.Response:
        t.calls.append(
            {
                "path": request.path,
                "json": await request.json(),
                "secret": request.headers.get("X-Nightshift-Job-Secret"),
            }
        )
        t.arrived.set()
        if request.path == "/slow":
            await t.gate.wait()
        if request.path == "/hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(t.gate.wait(), 5)
        if request.path == "/fail":
            return web.json_response({"error": "boom"}, status=500)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    t.url = f"http://127.0.0.1:{port}"
    yield t
    t.gate.set()
    await runner.cleanup()


def job(target: Target, name: str, cron: str, path: str = "/ok", **extra: Any) -> dict[str, Any]:
    return {"name": name, "cron": cron, "url": target.url + path, "scope": AGENT, **extra}


async def start(app_factory, jobs, **policy):
    app = await app_factory({"admins": [ADMIN], **policy, "jobs": jobs}, clock=ManualClock(T0))
    app.ns.scheduler.pause_job("jobs-tick")  # the test drives the ticks
    return app


async def fire(app, seconds: float, *, wait: bool = True):
    app.clock.advance(seconds)
    runner = app.ns.extras["jobs"]
    decisions = await runner.tick()
    if wait:
        await runner.wait_idle()
    return decisions


async def runs(app, name: str) -> list[tuple[str, str | None]]:
    rows = await app.store.fetch(
        "SELECT state, reason FROM job_runs WHERE job = ? ORDER BY seq", (name,)
    )
    return [(r[0], r[1]) for r in rows]


async def run_rows(app, name: str):
    return await app.store.fetch(
        "SELECT state, reason, detail, http_status, scheduled_for, duration_ms FROM job_runs"
        " WHERE job = ? ORDER BY seq",
        (name,),
    )


# -- running ------------------------------------------------------------------------------


async def test_a_due_job_is_posted_with_its_body_and_secret(app_factory, target):
    app = await start(
        app_factory,
        [
            job(target, "rss-hourly", "0 * * * *", max_runs_per_hour=2, secret=SECRET),
            job(target, "digest-daily", "0 6 * * *", "/daily"),
        ],
    )
    assert await fire(app, 3599) == []  # 00:59:59: nothing due
    assert target.calls == []
    await fire(app, 1)  # 01:00
    assert len(target.calls) == 1
    call = target.calls[0]
    assert call["json"]["job"] == "rss-hourly"
    assert call["json"]["scheduled_for"] == "2026-01-01T01:00:00Z"
    assert call["json"]["run_id"].startswith("run_")
    assert call["secret"] == SECRET
    assert await runs(app, "rss-hourly") == [("succeeded", None)]
    row = (await run_rows(app, "rss-hourly"))[0]
    assert row["http_status"] == 200
    await fire(app, 5 * 3600)  # 06:00: both jobs (rss-hourly coalesces 02:00-06:00)
    derived = app.ns.extras["jobs"].secret("digest-daily")
    daily = [c for c in target.calls if c["path"] == "/daily"]
    assert len(daily) == 1 and daily[0]["secret"] == derived and len(derived) == 64
    assert len(target.calls) == 3


async def test_a_run_still_going_makes_the_next_fire_skip(app_factory, target):
    app = await start(app_factory, [job(target, "sync", "*/15 * * * *", "/slow")])
    await fire(app, 15 * 60, wait=False)
    await asyncio.wait_for(target.arrived.wait(), 5)
    await fire(app, 15 * 60, wait=False)
    assert await runs(app, "sync") == [("running", None), ("skipped", "overlap")]
    target.gate.set()
    await app.ns.extras["jobs"].wait_idle()
    assert await runs(app, "sync") == [("succeeded", None), ("skipped", "overlap")]
    assert len(target.calls) == 1
    skipped = (await run_rows(app, "sync"))[1]
    assert "is still running" in skipped["detail"]


async def test_the_run_cap_skips_and_alerts_once_per_hour(app_factory, target):
    app = await start(
        app_factory,
        [job(target, "poll", "* * * * *", max_runs_per_hour=2, allow_frequent=True)],
    )
    for _ in range(4):
        await fire(app, 60)
    assert await runs(app, "poll") == [
        ("succeeded", None),
        ("succeeded", None),
        ("skipped", "run_cap"),
        ("skipped", "run_cap"),
    ]
    assert len(target.calls) == 2
    events = await app.store.fetch(
        "SELECT kind, scope, payload FROM events WHERE kind = 'job_run_cap'"
    )
    assert len(events) == 1 and events[0]["scope"] == AGENT
    await app.ns.extras["alerts"].process()
    alerts = await app.store.fetch(
        "SELECT kind, scope, tier FROM alerts WHERE kind = 'job_run_cap'"
    )
    assert [tuple(a) for a in alerts] == [("job_run_cap", AGENT, "P1")]
    await fire(app, 56 * 60)  # 01:00: a new hour, a fresh cap
    assert (await runs(app, "poll"))[-1] == ("succeeded", None)
    assert len(target.calls) == 3


async def test_paused_jobs_are_not_called_until_resumed(app_factory, slack_http, target, tmp_path):
    db = tmp_path / "jobs.db"
    slack = await slack_http(
        {"admins": [ADMIN], "jobs": [job(target, "rss-hourly", "0 * * * *")]},
        clock=ManualClock(T0),
        db=db,
    )
    app = slack.app
    app.ns.scheduler.pause_job("jobs-tick")
    refused = await slack.command("pause rss-hourly", user="U0STRANGER")
    assert "Only admins can pause rss-hourly" in refused["text"]
    answer = await slack.command("pause rss-hourly")
    assert "rss-hourly paused by <@U0ADMIN>" in answer["text"]
    assert answer.get("response_type") == "in_channel"
    await fire(app, 3600)
    assert target.calls == []
    assert await runs(app, "rss-hourly") == [("skipped", "paused")]
    audit = await app.store.fetch("SELECT actor, action, target FROM audit ORDER BY id")
    assert [tuple(a) for a in audit] == [
        ("U0STRANGER", "refused", "pause rss-hourly"),
        ("U0ADMIN", "job.pause", "rss-hourly"),
    ]
    listing = await slack.command("jobs")
    assert "⏸ *rss-hourly* paused by <@U0ADMIN>" in listing["text"]
    assert "every hour at :00, 24 runs a day (UTC)" in listing["text"]
    assert "last: ⏭ skipped (paused) 01:00" in listing["text"]
    assert "next (skipped while paused): " in listing["text"]

    await slack.command("pause all")
    await slack.command("resume rss-hourly")
    await fire(app, 3600)
    assert target.calls == []  # all jobs are still paused
    assert (await runs(app, "rss-hourly"))[-1] == ("skipped", "paused")
    await slack.command("resume all")
    await fire(app, 3600)
    assert len(target.calls) == 1
    assert (await slack.command("resume all"))["text"] == "No job was paused."
    await slack.command("pause all")
    assert (await slack.command("pause all"))["text"] == "all jobs were already paused."


async def test_a_run_a_restart_interrupted_blocks_the_next_until_its_timeout(
    app_factory, target, tmp_path, monkeypatch
):
    """audit9 M3: a deploy cancels Nightshift's request, not the target's work."""
    monkeypatch.setattr("bot.jobs.runner.DRAIN_SECONDS", 0.1)
    db = tmp_path / "deploy.db"
    jobs = [job(target, "sync", "*/15 * * * *", "/slow", timeout_seconds=1200)]
    first = await app_factory({"jobs": jobs}, clock=ManualClock(T0), db=db)
    first.ns.scheduler.pause_job("jobs-tick")
    await fire(first, 15 * 60, wait=False)  # 00:15: the target starts a 20-minute job
    await asyncio.wait_for(target.arrived.wait(), 5)
    await first.ns.stop()
    second = await app_factory({"jobs": jobs}, clock=ManualClock(T0 + 30 * 60), db=db)
    second.ns.scheduler.pause_job("jobs-tick")
    await second.ns.extras["jobs"].wait_idle()  # 00:30 fired at start: skipped
    assert await runs(second, "sync") == [("abandoned", None), ("skipped", "overlap")]
    skipped = (await run_rows(second, "sync"))[1]
    assert "was interrupted by a restart and may still be running, until" in skipped["detail"]
    assert len(target.calls) == 1
    target.gate.set()
    await fire(second, 15 * 60)  # 00:45: past the interrupted run's timeout
    assert (await runs(second, "sync"))[-1] == ("succeeded", None)
    assert len(target.calls) == 2


async def test_a_pause_survives_a_restart(app_factory, target, tmp_path):
    from bot.commands import Context, dispatch

    db = tmp_path / "restart.db"
    jobs = [job(target, "rss-hourly", "0 * * * *")]
    first = await app_factory({"admins": [ADMIN], "jobs": jobs}, clock=ManualClock(T0), db=db)

    async def is_admin() -> bool:
        return True

    ctx = Context(first.ns, user_id=ADMIN, transport="test", is_admin=is_admin)
    reply = await dispatch(ctx, "pause rss-hourly")
    assert "paused" in reply.text
    await first.ns.stop()
    second = await app_factory({"jobs": jobs}, clock=ManualClock(T0 + 3600), db=db)
    await second.ns.extras["jobs"].wait_idle()
    assert target.calls == []
    assert await runs(second, "rss-hourly") == [("skipped", "paused")]


# -- guards from the agent's state --------------------------------------------------------


async def test_an_open_breaker_skips_the_run(app_factory, target):
    app = await start(app_factory, [job(target, "rss-hourly", "0 * * * *")])
    await app.store.write(lambda tx: app.ns.breakers.force_open(tx, AGENT, ADMIN, "maintenance"))
    await fire(app, 3600)
    assert target.calls == []
    assert await runs(app, "rss-hourly") == [("skipped", "breaker_open")]
    row = (await run_rows(app, "rss-hourly"))[0]
    assert row["detail"].startswith(f"{AGENT} is forced open")


async def test_a_spent_budget_skips_the_run(app_factory, target):
    app = await start(
        app_factory,
        [job(target, "rss-hourly", "0 * * * *")],
        budgets={"scopes": {AGENT: {"day": "1.00"}}},
    )
    tok = await app.token("acme/alice")
    r = await app.request(
        "POST",
        "/v1/reservations",
        token=tok,
        json={"scope": AGENT, "idempotency_key": "k1", "max_cost_micros": 1_000_000},
    )
    rid = r.json()["reservation_id"]
    await app.request(
        "POST",
        f"/v1/reservations/{rid}/settle",
        token=tok,
        json={"actual_cost_micros": 1_000_000, "outcome": "success"},
    )
    await fire(app, 3600)
    assert target.calls == []
    assert await runs(app, "rss-hourly") == [("skipped", "budget_spent")]


async def test_a_timeout_is_recorded_as_a_failure(app_factory, target):
    app = await start(
        app_factory, [job(target, "slowpoke", "0 * * * *", "/hang", timeout_seconds=1)]
    )
    await fire(app, 3600)
    row = (await run_rows(app, "slowpoke"))[0]
    assert (row["state"], row["http_status"]) == ("timeout", None)
    assert "within 1s" in row["detail"]
    assert 900 <= row["duration_ms"] < 4000


async def test_failures_feed_the_agent_breaker(app_factory, target):
    app = await start(
        app_factory,
        [job(target, "flaky", "0 * * * *", "/fail")],
        breakers={"failures": {"consecutive": 2, "min_calls": 2, "window_calls": 20}},
    )
    await fire(app, 3600)
    await fire(app, 3600)
    breaker = await app.store.write(lambda tx: app.ns.breakers.get(tx, AGENT))
    assert breaker.state == "open"
    assert "2 failures in a row" in breaker.reason and "job flaky run run_" in breaker.reason
    await fire(app, 3600)
    assert await runs(app, "flaky") == [
        ("failed", None),
        ("failed", None),
        ("skipped", "breaker_open"),
    ]
    assert len(target.calls) == 2
    detail = (await run_rows(app, "flaky"))[0]["detail"]
    assert "answered 500" in detail


async def test_on_the_night_clocks_go_back_a_fixed_time_job_runs_once(app_factory, target):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    start_at = datetime(2026, 10, 24, 12, tzinfo=berlin).timestamp()
    app = await app_factory(
        {"timezone": "Europe/Berlin", "jobs": [job(target, "nightly", "30 2 * * *")]},
        clock=ManualClock(start_at),
    )
    app.ns.scheduler.pause_job("jobs-tick")
    for _ in range(2 * 26):  # 26 real hours in half-hour steps: past both 02:30s
        await fire(app, 1800)
    assert len(target.calls) == 1
    assert target.calls[0]["json"]["scheduled_for"] == "2026-10-25T00:30:00Z"  # 02:30 CEST


# -- restarts -----------------------------------------------------------------------------


async def test_fires_missed_while_down_coalesce_into_one_run(app_factory, target, tmp_path):
    db = tmp_path / "down.db"
    jobs = [job(target, "sync", "*/15 * * * *")]
    first = await app_factory({"jobs": jobs}, clock=ManualClock(T0), db=db)
    await first.ns.stop()
    second = await app_factory({"jobs": jobs}, clock=ManualClock(T0 + 65 * 60), db=db)
    await second.ns.extras["jobs"].wait_idle()
    assert len(target.calls) == 1  # not four
    assert target.calls[0]["json"]["scheduled_for"] == "2026-01-01T01:00:00Z"
    row = (await run_rows(second, "sync"))[0]
    assert row["state"] == "succeeded"
    assert row["detail"] == "coalesced 3 missed fire(s) into this run"  # kept by its success


async def test_a_fire_older_than_the_grace_is_recorded_as_missed(app_factory, target, tmp_path):
    db = tmp_path / "late.db"
    jobs = [job(target, "report", "0 8 * * *", misfire_grace_seconds="1h")]
    first = await app_factory({"jobs": jobs}, clock=ManualClock(T0), db=db)
    await first.ns.stop()
    second = await app_factory({"jobs": jobs}, clock=ManualClock(T0 + 10 * 3600), db=db)
    await second.ns.extras["jobs"].wait_idle()
    assert target.calls == []
    assert await runs(second, "report") == [("skipped", "missed")]


async def test_a_runaway_job_stops_start_up_naming_it(app_factory, target):
    with pytest.raises(PolicyError, match=r"jobs\.0 \(report-daily\)"):
        await app_factory({"jobs": [job(target, "report-daily", "* 8 * * *")]})


async def test_retention_prunes_old_runs(app_factory, target):
    app = await start(app_factory, [job(target, "rss-hourly", "0 * * * *")])
    await fire(app, 3600)
    app.clock.advance(91 * 86400)
    assert await app.ns.extras["jobs"].prune() == 1
    assert await runs(app, "rss-hourly") == []


# -- the real scheduler -------------------------------------------------------------------


async def test_the_scheduler_fires_jobs_on_its_own(app_factory, target):
    clock = AcceleratedClock(start=T0, factor=600)  # one real second is ten minutes
    app = await app_factory(
        {"jobs": [job(target, "sweep", "*/5 * * * *", max_runs_per_hour=12, allow_frequent=True)]},
        clock=clock,
    )
    for _ in range(60):
        if len(target.calls) >= 2:
            break
        await asyncio.sleep(0.1)
    assert len(target.calls) >= 2
    minutes = {int(c["json"]["scheduled_for"][14:16]) % 5 for c in target.calls}
    assert minutes == {0}
    await app.ns.extras["jobs"].wait_idle()
