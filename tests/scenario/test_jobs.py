"""Scheduled agent jobs, run against a real HTTP target on 127.0.0.1.

Time is a ManualClock: each test moves it and calls the runner's tick itself (the
APScheduler tick is paused so it cannot race the test), except the last test, which
lets the real scheduler fire on an accelerated clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from guards.clock import AcceleratedClock, ManualClock
from guards.config import PolicyError
from guards.migrations import begin_immediate, connect

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
AGENT = "acme/alice/rss-bot"
ADMIN = "U0ADMIN"
SECRET = "s3cret-s3cret-s3cret"


@dataclass
class Target:
    """An agent's job endpoint: records calls; /slow waits for release(), /hang sleeps,
    /held waits for ``held`` (set when the test ends)."""

    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    held: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    big_written: int = 0  # bytes of /big's 500 answer the client took before it left

    def paths(self) -> list[str]:
        return [c["path"] for c in self.calls]


@pytest.fixture
async def target():
    t = Target()

    async def handle(request: web.Request) -> web.StreamResponse:
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
        if request.path == "/held":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(t.held.wait(), 30)
        if request.path == "/hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(t.gate.wait(), 5)
        if request.path == "/fail":
            return web.json_response({"error": "boom"}, status=500)
        if request.path == "/explode":
            return web.Response(text="upstream exploded: db connection refused", status=500)
        if request.path == "/hostile":  # markup, a credential and a long body in the answer
            said = "<!channel> see <http://evil.example|Acknowledge> password=hunter2 `x` "
            return web.Response(text=said + "y" * 300, status=502)
        if request.path == "/echo":  # a debug page that shows what it was sent
            headers = dict(request.headers)
            return web.Response(text=f"debug: headers={headers}", status=500)
        if request.path == "/big":  # a 500 with 64 MB of body, streamed
            response = web.StreamResponse(status=500)
            await response.prepare(request)
            with contextlib.suppress(ConnectionError, RuntimeError):
                for _ in range(1024):
                    await response.write(b"x" * 65536)
                    t.big_written += 65536
            return response
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
    t.held.set()
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
    # audit19 cron 5: the listing showed the skip and the run before, not the one going
    status = (await app.ns.extras["jobs"].statuses())[0]
    assert status.going is not None and status.going.state == "running"
    from bot.commands import Context, dispatch

    async def anyone() -> bool:
        return False

    ctx = Context(app.ns, user_id="U1", transport="test", is_admin=anyone)
    listing = (await dispatch(ctx, "jobs")).text
    assert "last: ⏭ skipped (previous run still going) 00:30" in listing, listing
    assert "running: 🏃 00:15" in listing, listing
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


async def test_a_run_cap_of_one_says_one_run(app_factory, target):
    """The skip's detail agrees its count: "1 run this hour", not "1 runs"."""
    app = await start(
        app_factory,
        [job(target, "poll", "* * * * *", max_runs_per_hour=1, allow_frequent=True)],
    )
    for _ in range(2):
        await fire(app, 60)
    skipped = (await run_rows(app, "poll"))[1]
    assert skipped["reason"] == "run_cap"
    assert skipped["detail"] == "1 run this hour reached max_runs_per_hour 1"


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
    assert "Only admins can pause jobs" in refused["text"]
    answer = await slack.command("pause rss-hourly")
    assert "rss-hourly paused by <@U0ADMIN>" in answer["text"]
    assert answer.get("response_type") == "in_channel"
    await fire(app, 3600)
    assert target.calls == []
    assert await runs(app, "rss-hourly") == [("skipped", "paused")]
    audit = await app.store.fetch("SELECT actor, action, target FROM audit ORDER BY id")
    assert [tuple(a) for a in audit] == [
        ("U0STRANGER", "refused", "pause jobs"),
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
    # audit19 cron 6: `resume all` lifts one job's own pause too, and says so
    await slack.command("pause rss-hourly")
    both = await slack.command("resume all")
    assert both["text"].endswith("That lifts the pauses of `rss-hourly` too."), both["text"]


async def test_a_run_a_restart_interrupted_blocks_the_next_until_its_timeout(
    app_factory, target, tmp_path, monkeypatch, caplog
):
    """audit9 M3: a deploy cancels Nightshift's request, not the target's work. audit19
    cron 2: the stop (a SIGHUP's too) said nothing of the run it cut off, and `/agent
    jobs` counted the job as failing."""
    from bot.commands import Context, dispatch

    monkeypatch.setattr("bot.jobs.runner.DRAIN_SECONDS", 0.1)
    db = tmp_path / "deploy.db"
    jobs = [job(target, "sync", "*/15 * * * *", "/slow", timeout_seconds=1200)]
    first = await app_factory({"jobs": jobs}, clock=ManualClock(T0), db=db)
    first.ns.scheduler.pause_job("jobs-tick")
    await fire(first, 15 * 60, wait=False)  # 00:15: the target starts a 20-minute job
    await asyncio.wait_for(target.arrived.wait(), 5)
    with caplog.at_level(logging.WARNING, logger="bot.jobs.runner"):
        await first.ns.stop()
    assert "stopping cut off 1 job run still going after 0.1s (sync): their targets may" in (
        caplog.text
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bot.jobs.runner"):
        second = await app_factory({"jobs": jobs}, clock=ManualClock(T0 + 30 * 60), db=db)
    said = [r.getMessage() for r in caplog.records]
    # the number agrees (recheck24 L3: "1 job(s) scheduled")
    assert any(m.startswith("1 job scheduled; next: sync at") for m in said), said
    second.ns.scheduler.pause_job("jobs-tick")
    await second.ns.extras["jobs"].wait_idle()  # 00:30 fired at start: skipped
    assert await runs(second, "sync") == [("abandoned", None), ("skipped", "overlap")]
    skipped = (await run_rows(second, "sync"))[1]
    assert "was interrupted by a restart and may still be running, until" in skipped["detail"]

    async def anyone() -> bool:
        return False

    listing = await dispatch(
        Context(second.ns, user_id="U1", transport="test", is_admin=anyone), "jobs"
    )
    assert "failing" not in listing.text, listing.text
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
    assert breaker.reason == (
        '2 failures in a row (limit 2); last error: job flaky: HTTP 500: {"error": "boom"}'
    )
    await fire(app, 3600)
    assert await runs(app, "flaky") == [
        ("failed", None),
        ("failed", None),
        ("skipped", "breaker_open"),
    ]
    assert len(target.calls) == 2
    detail = (await run_rows(app, "flaky"))[0]["detail"]
    assert "answered 500" in detail


async def test_a_key_in_a_job_url_s_query_is_not_logged(app_factory, target, caplog):
    """audit21 observe L5: the whole URL, its api_key too, went into the WARNING and the
    run's row at every failed run."""
    flaky = job(target, "leaky", "0 * * * *", "/fail")
    flaky["url"] += "?api_key=QUERYSECRET123&region=eu"
    app = await start(app_factory, [flaky])
    with caplog.at_level(logging.WARNING):
        await fire(app, 3600)
    detail = (await run_rows(app, "leaky"))[0]["detail"]
    assert "api_key=…&region=eu answered 500" in detail, detail
    assert "QUERYSECRET123" not in caplog.text and caplog.text


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


async def test_the_run_cap_s_hour_on_a_half_hour_fall_back_night(app_factory, target):
    """audit14 time M2: on Lord Howe's fall-back night (02:00 +11 -> 01:30 +10:30) "this
    hour" reached 75 minutes back, so a */15 job capped at 4 an hour was skipped twice and
    raised a run-cap alert."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Australia/Lord_Howe")
    start_at = datetime(2026, 4, 5, 0, 50, tzinfo=zone).timestamp()
    sweep = job(target, "health-sweep", "*/15 * * * *", max_runs_per_hour=4)
    app = await app_factory(
        {"timezone": "Australia/Lord_Howe", "jobs": [sweep]}, clock=ManualClock(start_at)
    )
    app.ns.scheduler.pause_job("jobs-tick")
    for _ in range(120):  # two real hours, minute by minute, through the repeated half hour
        await fire(app, 60)
    assert all(state != "skipped" for state, _ in await runs(app, "health-sweep"))
    caps = await app.store.fetch("SELECT COUNT(*) FROM events WHERE kind = 'job_run_cap'")
    assert caps[0][0] == 0


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
    assert row["detail"] == (  # kept by its success; 00:15, 00:30, 00:45 and 01:00 passed
        "4 fires came due while Nightshift was down or behind: ran once, for the latest"
        " (2026-01-01 01:00:00Z)"
    )


async def test_a_fire_older_than_the_grace_is_recorded_as_missed(app_factory, target, tmp_path):
    db = tmp_path / "late.db"
    jobs = [job(target, "report", "0 8 * * *", misfire_grace_seconds=5400)]
    first = await app_factory({"jobs": jobs}, clock=ManualClock(T0), db=db)
    await first.ns.stop()
    second = await app_factory({"jobs": jobs}, clock=ManualClock(T0 + 10 * 3600), db=db)
    await second.ns.extras["jobs"].wait_idle()
    assert target.calls == []
    assert await runs(second, "report") == [("skipped", "missed")]
    # a duration as the alerts word it, "1h 30m" (audit27 style M4: it read "1h30m")
    assert (await run_rows(second, "report"))[0]["detail"] == (
        "1 fire passed while Nightshift was not running, more than 1h 30m ago"
        " (misfire_grace_seconds)"
    )


@pytest.mark.parametrize(
    ("left", "said"),
    [
        (["sync"], "1 job run was interrupted by a restart (sync)"),
        (["a", "b"], "2 job runs were interrupted by a restart (a, b)"),
    ],
)
async def test_runs_a_crash_left_running_are_counted_in_words(
    app_factory, target, tmp_path, caplog, left, said
):
    """The count agrees with its noun and verb: it said "1 job run(s) were interrupted"."""
    db = tmp_path / "crash.db"
    jobs = [job(target, name, "0 3 * * *") for name in left]
    first = await app_factory({"jobs": jobs}, clock=ManualClock(T0), db=db)
    await first.ns.stop()
    with sqlite3.connect(db) as conn:  # what a kill -9 leaves: runs still marked running
        for i, name in enumerate(left):
            conn.execute(
                "INSERT INTO job_runs (id, job, scope, scheduled_for, decided_at, state)"
                " VALUES (?, ?, ?, ?, ?, 'running')",
                (f"r{i}", name, AGENT, T0, T0),
            )
    with caplog.at_level(logging.INFO, logger="bot.jobs.runner"):
        await app_factory({"jobs": jobs}, clock=ManualClock(T0 + 60), db=db)
    assert any(r.getMessage().startswith(said) for r in caplog.records), caplog.text


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


# -- audit13 jobs -------------------------------------------------------------------------


async def test_after_the_clock_goes_back_jobs_keep_firing_and_do_not_run_a_fire_twice(
    app_factory, target
):
    """J1: a step back froze every job for the length of the step (a day, for a short
    excursion forward)."""
    app = await start(app_factory, [job(target, "minutely", "* * * * *", allow_frequent=True)])
    await fire(app, 60)  # 00:01 runs
    await fire(app, 86400)  # the clock jumps a day ahead: one (coalesced) run, tomorrow 00:01
    assert len(target.calls) == 2
    app.clock.set(T0 + 90)  # ... and is put right: 00:01:30 today
    assert [d.run for d in await fire(app, 0)] == []  # nothing due now: the mark came back
    batches = app.store.batches
    for _ in range(3):  # audit19 cron 4: each tick wrote until the clock caught up
        assert await fire(app, 5) == []
    assert app.store.batches == batches
    await fire(app, 15)  # 00:02 runs, not tomorrow
    assert len(target.calls) == 3
    assert target.calls[-1]["json"]["scheduled_for"] == "2026-01-01T00:02:00Z"
    app.clock.set(T0 + 30)  # back over 00:01, which ran: not run again
    await fire(app, 0)
    await fire(app, 45)  # 00:01:15
    assert len(target.calls) == 3
    await fire(app, 60)  # 00:02:15: 00:02 ran too
    await fire(app, 60)  # 00:03:15: a new fire
    assert len(target.calls) == 4


async def test_after_the_clock_goes_back_a_skipped_fire_is_not_decided_again(app_factory, target):
    """review13 L7: a fire skipped while paused ran after the clock went back over it,
    once the job was resumed. A fire is decided once."""
    from bot.jobs import state

    app = await start(app_factory, [job(target, "minutely", "* * * * *", allow_frequent=True)])
    await app.store.write(lambda tx: state.pause(tx, job="minutely", actor="U0ADMIN"))
    await fire(app, 60)  # 00:01, paused: skipped
    await app.store.write(lambda tx: state.resume(tx, job="minutely"))
    await fire(app, 60)  # 00:02 runs
    assert await runs(app, "minutely") == [("skipped", "paused"), ("succeeded", None)]
    app.clock.set(T0 + 30)  # back to 00:00:30, before both fires
    await fire(app, 0)
    await fire(app, 45)  # 00:01:15: 00:01 was decided (skipped) already
    await fire(app, 60)  # 00:02:15: 00:02 ran
    assert len(target.calls) == 1
    assert await runs(app, "minutely") == [("skipped", "paused"), ("succeeded", None)]
    await fire(app, 60)  # 00:03:15: a new fire
    assert len(target.calls) == 2


async def test_a_hundred_hung_targets_do_not_keep_another_job_from_being_sent(app_factory, target):
    """J2: runs shared a pool of 100 connections; the 101st job timed out unsent and
    tripped a healthy agent's breaker."""
    hung = [
        {**job(target, f"h{i}", "* * * * *", "/slow", allow_frequent=True), "scope": f"acme/h/b{i}"}
        for i in range(100)
    ]
    # the hung runs hold their connections 5 s: a probe waiting for one would time out
    probe = job(target, "probe", "* * * * *", "/ok", allow_frequent=True, timeout_seconds=2)
    app = await start(app_factory, [*hung, probe])
    await fire(app, 60, wait=False)
    for _ in range(200):
        if "/ok" in target.paths():
            break
        await asyncio.sleep(0.05)
    assert "/ok" in target.paths()
    target.gate.set()
    await app.ns.extras["jobs"].wait_idle()
    assert await runs(app, "probe") == [("succeeded", None)]


async def test_a_huge_answer_is_not_read_whole(app_factory, target):
    """J4: a 500 MB answer was read into memory, for 200 characters of it."""
    app = await start(app_factory, [job(target, "big", "0 * * * *", "/big", timeout_seconds=30)])
    await fire(app, 3600)
    row = (await run_rows(app, "big"))[0]
    assert (row["state"], row["http_status"]) == ("failed", 500)
    assert row["detail"].endswith("answered 500: " + "x" * 200)
    assert target.big_written < 32 * 1024 * 1024  # it stopped reading, so the target stopped


async def test_a_run_that_fails_in_an_unexpected_way_is_recorded_and_not_left_running(
    app_factory, target
):
    """J3: an error other than httpx's left the run "running" for good, and every later
    fire was skipped as an overlap."""
    import httpx

    app = await start(app_factory, [job(target, "odd", "0 * * * *")])
    jobs = app.ns.extras["jobs"]

    def refuse(request: httpx.Request) -> httpx.Response:
        raise UnicodeEncodeError("ascii", "é", 0, 1, "a header that cannot be sent")

    real = jobs._client
    jobs._client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    try:
        await fire(app, 3600)
    finally:
        await jobs._client.aclose()
        jobs._client = real
    [(state, reason, detail, *_)] = await run_rows(app, "odd")
    assert (state, reason) == ("failed", None) and detail.startswith("UnicodeEncodeError")
    await fire(app, 3600)  # the next fire goes out
    assert await runs(app, "odd") == [("failed", None), ("succeeded", None)]


@pytest.mark.parametrize(
    "url, secret, problem",
    [
        ("http://127.0.0.1:99999/x", None, "a port up to 65535"),
        ("http://deploy:pw@127.0.0.1:9/x", None, "carries no user or password"),
        ("http://127.0.0.1:9/a b", None, "percent-encoded"),
        ("http://127.0.0.1:9/x", "pässwört-0123456789ab", "printable ASCII"),
    ],
)
async def test_a_job_that_could_not_be_sent_stops_start_up(app_factory, url, secret, problem):
    spec = {"name": "x", "cron": "0 * * * *", "url": url, "scope": AGENT}
    if secret:
        spec["secret"] = secret
    with pytest.raises(PolicyError, match=problem) as refused:
        await app_factory({"jobs": [spec]})
    assert "pw@" not in str(refused.value) and "pässwört" not in str(refused.value)


async def test_a_grace_of_zero_still_runs_fires_on_time(app_factory, target):
    """J5: with misfire_grace_seconds 0 every fire was "missed" while Nightshift ran."""
    app = await start(
        app_factory,
        [job(target, "strict", "* * * * *", allow_frequent=True, misfire_grace_seconds=0)],
    )
    await fire(app, 61)  # the tick comes a second after the fire
    await fire(app, 62)
    assert await runs(app, "strict") == [("succeeded", None), ("succeeded", None)]


async def test_a_job_only_agent_s_trial_is_decided_by_its_job_runs(app_factory, target):
    """J6: after a trip, the automatic trial never ended for an agent that only runs jobs:
    its job failed every minute with no further alert."""
    app = await start(
        app_factory,
        [job(target, "flaky", "0 * * * *", "/fail")],
        breakers={
            "failures": {"consecutive": 2, "min_calls": 2, "window_calls": 20},
            "cooldown_seconds": "10m",
            "half_open": {"mode": "auto", "trial_calls": 2},
        },
    )

    async def breaker() -> Any:
        return await app.store.write(lambda tx: app.ns.breakers.get(tx, AGENT))

    await fire(app, 3600)
    await fire(app, 3600)
    assert (await breaker()).state == "open"
    app.clock.advance(600)
    await app.ns.breakers.sweep(app.store)
    assert (await breaker()).state == "half_open"
    await fire(app, 3000)  # 03:00: the trial's run fails: open again, for twice as long
    row = await breaker()
    assert (row.state, row.cooldown_seconds) == ("open", 1200)
    assert "a trial run failed" in row.reason
    rows = await app.store.fetch("SELECT kind FROM events WHERE kind = 'breaker_opened'")
    assert len(rows) == 2  # the re-opening is an event again (its alert fires again)


async def test_job_runs_decide_only_a_trial_no_reservation_is_in(app_factory, target):
    """review13 H2: job runs closed a trial that reservations were deciding, and counted
    runs that began before the trial."""
    app = await start(
        app_factory,
        [job(target, "ping", "*/5 * * * *", "/slow", allow_frequent=True)],
        breakers={"half_open": {"mode": "approval", "trial_calls": 2}},
    )
    jobs = app.ns.extras["jobs"]

    async def breaker() -> Any:
        return await app.store.write(lambda tx: app.ns.breakers.get(tx, AGENT))

    await fire(app, 300, wait=False)  # 00:05: a run begins while the breaker is closed
    await target.arrived.wait()
    app.clock.advance(10)
    await app.store.write(lambda tx: app.ns.breakers.force_open(tx, AGENT, ADMIN, "runaway"))
    await app.store.write(lambda tx: app.ns.breakers.approve(tx, AGENT, ADMIN))
    target.gate.set()
    await jobs.wait_idle()  # it ends well, but it began before the trial: not a trial call
    assert ((await breaker()).state, (await breaker()).trial["succeeded"]) == ("half_open", 0)

    tok = await app.token(AGENT)  # a reservation enters the trial: reservations decide it
    body = {"scope": AGENT, "idempotency_key": "t1", "max_cost_micros": 1000}
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 201, r.text
    for _ in range(3):
        await fire(app, 300)
    row = await breaker()
    assert (row.state, row.trial["succeeded"]) == ("half_open", 0)
    rid = r.json()["reservation_id"]
    settle = {"actual_cost_micros": 500, "outcome": "success"}
    await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=settle)
    assert (await breaker()).trial["succeeded"] == 1  # one call of two: still a trial
    assert (await breaker()).state == "half_open"


async def test_a_job_only_agent_s_trial_closes_on_its_runs(app_factory, target):
    app = await start(
        app_factory,
        [job(target, "ping", "*/5 * * * *", allow_frequent=True)],
        breakers={"half_open": {"mode": "approval", "trial_calls": 2}},
    )
    await app.store.write(lambda tx: app.ns.breakers.force_open(tx, AGENT, ADMIN, "checking"))
    await app.store.write(lambda tx: app.ns.breakers.approve(tx, AGENT, ADMIN))
    await fire(app, 300)
    await fire(app, 300)
    row = await app.store.write(lambda tx: app.ns.breakers.get(tx, AGENT))
    assert (row.state, row.reason) == ("closed", "all 2 trial calls succeeded")


async def tripped_by_a_job(slack_http: Any, target: Any, name: str, path: str) -> Any:
    """A job failing every hour, three runs in: its two failures in a row tripped its
    agent's breaker, and the third run was skipped."""
    slack = await slack_http(
        {
            "admins": [ADMIN],
            "jobs": [job(target, name, "0 * * * *", path)],
            "breakers": {"failures": {"consecutive": 2, "min_calls": 2, "window_calls": 20}},
        },
        clock=ManualClock(T0),
    )
    slack.app.ns.scheduler.pause_job("jobs-tick")
    for _ in range(3):
        await fire(slack.app, 3600)
    return slack


async def test_a_job_its_breaker_stopped_still_counts_as_failing(slack_http, target):
    """J7: `/agent jobs` judged "failing" by the newest row: once the breaker opened, the
    job's skips hid its failures."""
    slack = await tripped_by_a_job(slack_http, target, "flaky", "/fail")
    app = slack.app
    assert (await runs(app, "flaky"))[-1] == ("skipped", "breaker_open")
    listing = (await slack.command("jobs"))["text"]
    assert "1 failing" in listing
    assert "last: ⏭ skipped (breaker open) 03:00" in listing
    assert "last run: ❌ failed 02:00" in listing


async def test_a_job_calling_nightshift_itself_is_warned_about(app_factory, caplog):
    """audit13 jobs J9: it can never succeed (no token is sent) and trips its breaker."""
    import logging

    from tests.fakes.ports import free_port

    port = free_port()
    own = {"name": "own", "cron": "0 * * * *", "url": f"http://localhost:{port}/v1/heartbeats"}
    with caplog.at_level(logging.WARNING):
        await app_factory(
            {"jobs": [{**own, "scope": AGENT}]},
            clock=ManualClock(T0),
            env={"NIGHTSHIFT_PORT": str(port)},
        )
    assert "job own calls Nightshift's own address" in caplog.text


async def test_a_failed_run_s_answer_never_shows_the_job_s_secret(app_factory, target, caplog):
    """audit16 observability L2: a target echoing its request headers put the secret in the
    log and the run's record."""
    app = await start(app_factory, [job(target, "echo", "0 * * * *", "/echo")])
    with caplog.at_level(logging.WARNING, logger="bot.jobs.runner"):
        await fire(app, 3600)
    secret = target.calls[0]["secret"]
    assert secret and len(secret) >= 16
    detail = (await run_rows(app, "echo"))[0]["detail"]
    assert "[the job's secret]" in detail and secret[:8] not in detail  # not even cut
    assert not any(secret[:8] in r.getMessage() for r in caplog.records)


async def test_after_the_clock_goes_back_runs_stamped_later_do_not_count_against_the_cap(
    app_factory, target
):
    """audit19 cron 3: the run cap counted every run of the clock hour, those stamped after
    the new "now" included: fires skipped as run_cap, and a false P1 ("ran 7 times this
    hour")."""
    app = await start(
        app_factory,
        [job(target, "poll", "* * * * *", max_runs_per_hour=2, allow_frequent=True)],
    )
    await fire(app, 1800)  # 00:30: the missed fires coalesce into one run
    await fire(app, 60)  # 00:31
    await fire(app, 60)  # 00:32: the cap
    assert [r[1] for r in await runs(app, "poll")] == [None, None, "run_cap"]
    app.clock.set(T0 + 330)  # the clock goes back to 00:05:30
    await fire(app, 0)
    await fire(app, 30)  # 00:06: no run of this hour is before now
    assert (await runs(app, "poll"))[-1] == ("succeeded", None)
    assert len(target.calls) == 3


# -- why a run failed (audit23 forensics M4) ---------------------------------------------


def _line(text: str, start: str) -> str:
    """The line of ``text`` that starts with ``start``."""
    return next(line for line in text.splitlines() if line.startswith(start))


async def test_jobs_says_why_the_last_run_failed(slack_http, target):
    """audit23 forensics M4: "last: ❌ failed 06:24 in 7 ms", and nothing in Slack said why."""
    slack = await slack_http(
        {"admins": [ADMIN], "jobs": [job(target, "flaky-sync", "0 * * * *", "/explode")]},
        clock=ManualClock(T0),
    )
    slack.app.ns.scheduler.pause_job("jobs-tick")
    await fire(slack.app, 3600)
    reply = await slack.command("jobs")
    last = _line(reply["text"], "last: ")
    assert last.startswith("last: ❌ failed 01:00 in "), last
    assert last.endswith(" ms (HTTP 500: upstream exploded: db connection refused)"), last
    shown = "\n".join(b["text"]["text"] for b in reply["blocks"] if b["type"] == "section")
    assert "(HTTP 500: upstream exploded: db connection refused)" in shown


async def test_a_breaker_job_failures_trip_quotes_the_last_error(slack_http, target):
    """audit23 forensics M4: the breaker said "job flaky-sync run run_…: failed"; the
    listing below the skip said how the last run ended, not why."""
    slack = await tripped_by_a_job(slack_http, target, "flaky-sync", "/explode")
    app = slack.app
    breaker = await app.store.write(lambda tx: app.ns.breakers.get(tx, AGENT))
    assert breaker.reason == (
        "2 failures in a row (limit 2); last error: job flaky-sync: HTTP 500: upstream"
        " exploded: db connection refused"
    )
    listing = (await slack.command("jobs"))["text"]
    assert "last: ⏭ skipped (breaker open) 03:00" in listing
    assert "last run: ❌ failed 02:00 (HTTP 500: upstream exploded: db connection refused)" in (
        listing
    )
    shown = (await slack.command("breakers"))["text"]
    assert "last error: job flaky-sync: HTTP 500: upstream exploded: db connection refused" in (
        shown
    )


async def test_a_failed_run_s_answer_is_masked_escaped_and_cut_where_it_is_shown(
    slack_http, target
):
    """An answer's body is the target's text: it must not ping the channel, show a link that
    looks like Nightshift's, leak a password, or fill a phone's screen."""
    slack = await slack_http(
        {
            "admins": [ADMIN],
            "jobs": [job(target, "hostile", "0 * * * *", "/hostile")],
            "breakers": {"failures": {"consecutive": 1, "min_calls": 1, "window_calls": 20}},
        },
        clock=ManualClock(T0),
    )
    app = slack.app
    app.ns.scheduler.pause_job("jobs-tick")
    await fire(app, 3600)
    reply = await slack.command("jobs")
    last = _line(reply["text"], "last: ")
    assert "(HTTP 502: &lt;!channel&gt; see &lt;http://evil.example|Acknowledge&gt;" in last
    assert "password=… 'x' yyy" in last and "hunter2" not in last
    assert "<!channel>" not in reply["text"] and "<http://evil" not in reply["text"]
    said = last.split("(HTTP 502: ", 1)[1]
    assert said.endswith("…)") and len(last) < 260, last
    breaker = await app.store.write(lambda tx: app.ns.breakers.get(tx, AGENT))
    assert "; last error: job hostile: HTTP 502: <!channel> see" in breaker.reason
    assert "password=…" in breaker.reason and "hunter2" not in breaker.reason
    quoted = breaker.reason.split("last error: ", 1)[1]  # the job's name and what it said
    assert len(quoted) == 200 and quoted.endswith("…"), quoted  # as a settle's error is cut
    shown = (await slack.command("breakers"))["text"]
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown


async def test_jobs_says_a_run_timed_out_or_could_not_be_sent(slack_http, target):
    from tests.fakes.ports import free_port

    closed = f"http://127.0.0.1:{free_port()}/x"
    slack = await slack_http(
        {
            "admins": [ADMIN],
            "jobs": [
                job(target, "slowpoke", "0 * * * *", "/hang", timeout_seconds=1),
                {"name": "gone", "cron": "0 * * * *", "url": closed, "scope": AGENT},
            ],
        },
        clock=ManualClock(T0),
    )
    slack.app.ns.scheduler.pause_job("jobs-tick")
    await fire(slack.app, 3600)
    listing = (await slack.command("jobs"))["text"]
    assert "(no answer within 1s)" in _line(listing.split("*slowpoke*")[1], "last: ")
    gone = _line(listing.split("*gone*")[1], "last: ")
    assert gone.startswith("last: ❌ failed 01:00"), gone
    assert gone.endswith(" (ConnectError: All connection attempts failed)"), gone


async def test_a_run_whose_outcome_the_database_refused_is_recorded_once_it_takes_it(
    app_factory, target, monkeypatch
):
    """audit26 chaos H2: the write of a run's outcome was refused (a lock landed while the
    endpoint answered); the run stayed "running" for good and every later fire was
    skipped as an overlap, until a restart called the successful run abandoned."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    monkeypatch.setattr("bot.written.FIRST_WAIT_SECONDS", 0.05)
    app = await start(app_factory, [job(target, "sync", "*/15 * * * *", "/slow")])
    await fire(app, 15 * 60, wait=False)
    await asyncio.wait_for(target.arrived.wait(), 5)
    other = connect(app.ns.settings.db)
    begin_immediate(other)  # a sqlite3 shell, a backup tool: writes are refused
    try:
        target.gate.set()  # the endpoint answers 200 while the database refuses
        await asyncio.sleep(1.0)
        assert await runs(app, "sync") == [("running", None)]
    finally:
        other.execute("ROLLBACK")
        other.close()
    await app.ns.extras["jobs"].wait_idle()
    assert await runs(app, "sync") == [("succeeded", None)]
    await fire(app, 15 * 60)  # the next fire runs
    assert await runs(app, "sync") == [("succeeded", None), ("succeeded", None)]
    assert len(target.calls) == 2


async def _until(done: Any, what: str) -> None:
    for _ in range(1000):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within 10 s: {what}")


async def _refused_once(caplog: Any) -> None:
    """Until the runner said the database refused a run's outcome."""
    await _until(lambda: "but the database refused to record it" in caplog.text, "refused")


async def test_a_fire_due_while_a_run_s_outcome_waits_on_the_database_runs(
    app_factory, target, monkeypatch, caplog
):
    """review26 M1: the endpoint answered during an outage and the next fire fell due in
    it; once the lock went, the tick's decide landed before the outcome's retry and
    skipped the fire as "overlap: … is still running"."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    monkeypatch.setattr("bot.written.FIRST_WAIT_SECONDS", 3.0)  # the retry is asleep
    app = await start(app_factory, [job(target, "sync", "*/15 * * * *", "/slow")])
    await fire(app, 15 * 60, wait=False)
    await asyncio.wait_for(target.arrived.wait(), 5)
    other = connect(app.ns.settings.db)
    begin_immediate(other)
    try:
        with caplog.at_level(logging.WARNING, logger="bot.jobs.runner"):
            target.gate.set()  # answers 200 while the database refuses
            await _refused_once(caplog)
        app.clock.advance(15 * 60)  # 00:30 falls due during the outage
    finally:
        other.execute("ROLLBACK")
        other.close()
    decisions = await app.ns.extras["jobs"].tick()  # the jobs tick comes first
    assert [(d.run, d.reason) for d in decisions] == [(True, None)], decisions
    await app.ns.extras["jobs"].wait_idle()
    assert await runs(app, "sync") == [("succeeded", None), ("succeeded", None)]
    assert len(target.calls) == 2
    said = [r.getMessage() for r in caplog.records if "refused to record" in r.getMessage()]
    assert said and "next fires wait" not in said[0], said
    assert said[0].endswith("before the job's next fire is decided"), said


async def _sync_and_stuck_running(
    app_factory: Any, target: Any, db: Any
) -> tuple[list[dict[str, Any]], Any]:
    """Two jobs fired at 00:15 and called: ``sync`` (answers when the gate opens) and
    ``stuck`` (never answers); the jobs tick paused. Returns (the jobs, the app)."""
    jobs = [
        job(target, "sync", "*/15 * * * *", "/slow", timeout_seconds=1200),
        job(target, "stuck", "*/15 * * * *", "/held", timeout_seconds=1200),
    ]
    app = await app_factory({"jobs": jobs}, clock=ManualClock(T0), db=db)
    app.ns.scheduler.pause_job("jobs-tick")
    await fire(app, 15 * 60, wait=False)
    await _until(lambda: len(target.calls) == 2, "both jobs called")
    return jobs, app


async def test_a_stop_during_an_outage_records_the_outcome_of_a_run_that_answered(
    app_factory, target, tmp_path, monkeypatch, caplog
):
    """review26 M3: the endpoint had answered, but a stop while the database refused the
    outcome called the run "abandoned: Nightshift stopped during the run", and after the
    restart the next fire within its timeout was skipped as an overlap. A run with no
    answer yet is still abandoned, in the same write."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    monkeypatch.setattr("bot.written.FIRST_WAIT_SECONDS", 30.0)  # the retry is asleep
    monkeypatch.setattr("bot.jobs.runner.DRAIN_SECONDS", 0.1)
    db = tmp_path / "outage.db"
    jobs, first = await _sync_and_stuck_running(app_factory, target, db)
    runner = first.ns.extras["jobs"]
    other = connect(first.ns.settings.db)
    begin_immediate(other)
    locked = True
    try:
        with caplog.at_level(logging.WARNING):
            target.gate.set()  # sync answers 200 while the database refuses
            await _refused_once(caplog)
            stopping = asyncio.create_task(first.ns.stop())
            # the stop cut the runs' tasks off: the lock goes then
            await _until(lambda: not runner._tasks, "the runs cut off")
            other.execute("ROLLBACK")
            locked = False
            await asyncio.wait_for(stopping, 10)
    finally:
        if locked:
            other.execute("ROLLBACK")
        other.close()
    assert "did not stop cleanly" not in caplog.text
    assert "stopping cut off 1 job run still going after 0.1s (stuck):" in caplog.text
    second = await app_factory({"jobs": jobs}, clock=ManualClock(T0 + 30 * 60), db=db)
    second.ns.scheduler.pause_job("jobs-tick")
    await second.ns.extras["jobs"].wait_idle()  # 00:30 fired at start
    assert await runs(second, "sync") == [("succeeded", None), ("succeeded", None)]
    assert await runs(second, "stuck") == [("abandoned", None), ("skipped", "overlap")]
    assert len(target.calls) == 3


@pytest.mark.parametrize(
    ("stop_write", "why"),
    [(1.5, "OperationalError: database is locked"), (0.2, "still waiting for its write lock")],
)
async def test_a_stop_the_database_refuses_throughout_ends_in_time_and_says_what_is_lost(
    app_factory, target, tmp_path, monkeypatch, caplog, stop_write, why
):
    """review26 M3: the abandon write waited out the lock past the time a component has to
    stop ("did not stop cleanly", the HTTP client left open). Now the stop gives the
    database a bounded time, then says which outcomes the next start will not know."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    monkeypatch.setattr("bot.written.FIRST_WAIT_SECONDS", 30.0)
    monkeypatch.setattr("bot.jobs.runner.DRAIN_SECONDS", 0.1)
    monkeypatch.setattr("bot.app.STORE_CLOSE_SECONDS", 0.5)
    monkeypatch.setattr("bot.jobs.outcomes.STOP_WRITE_SECONDS", stop_write)  # (or it waits)
    db = tmp_path / "outage.db"
    jobs, first = await _sync_and_stuck_running(app_factory, target, db)
    runner = first.ns.extras["jobs"]
    other = connect(first.ns.settings.db)
    begin_immediate(other)
    try:
        with caplog.at_level(logging.WARNING):
            target.gate.set()
            await _refused_once(caplog)
            await first.ns.stop()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "did not stop cleanly" not in caplog.text
    assert runner._client is None  # closed
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopping:")]
    assert len(said) == 1, caplog.text
    assert "(job sync run run_" in said[0] and " succeeded; 1 without an answer): " in said[0]
    assert f"): {why}. Unless it takes them before Nightshift exits" in said[0], said
    second = await app_factory({"jobs": jobs}, clock=ManualClock(T0 + 15 * 60 + 1), db=db)
    assert await runs(second, "sync") == [("abandoned", None)]
    assert await runs(second, "stuck") == [("abandoned", None)]
