"""A catch-up run's record counts the fires that came due unrun, the one it runs for
included (audit25 L3).

A per-minute job down from 06:40:27 to 06:43:37 passed 06:41, 06:42 and 06:43: one run at
start, for 06:43, whose record said "coalesced 2 missed fires into this run", read as 2
missed when 3 were.
"""

from __future__ import annotations

import pytest

from bot.jobs.status import why_failed
from guards.clock import ManualClock
from tests.scenario.test_jobs import T0, job, run_rows, target

__all__ = ["target"]  # the fixture, used by name

DOWN_AT = T0 + 6 * 3600 + 40 * 60 + 27  # 06:40:27
UP_AT = T0 + 6 * 3600 + 43 * 60 + 37  # 06:43:37


@pytest.mark.parametrize(
    ("cron", "down", "up", "fires", "latest"),
    [
        ("* * * * *", DOWN_AT, UP_AT, 3, "06:43:00Z"),  # 06:41, 06:42, 06:43
        ("*/5 * * * *", T0 + 7 * 3600 + 38 * 60, T0 + 7 * 3600 + 52 * 60 + 27, 3, "07:50:00Z"),
    ],
)
async def test_a_catch_up_run_counts_every_fire_that_passed_while_down(
    app_factory, target, tmp_path, cron: str, down: float, up: float, fires: int, latest: str
) -> None:
    db = tmp_path / "down.db"
    jobs = [job(target, "tick", cron, allow_frequent=True, max_runs_per_hour=60)]
    first = await app_factory({"jobs": jobs}, clock=ManualClock(down), db=db)
    first.ns.scheduler.pause_job("jobs-tick")
    await first.ns.stop()
    second = await app_factory({"jobs": jobs}, clock=ManualClock(up), db=db)
    await second.ns.extras["jobs"].wait_idle()
    assert len(target.calls) == 1  # once, for the latest
    assert target.calls[0]["json"]["scheduled_for"] == f"2026-01-01T{latest}"
    rows = await run_rows(second, "tick")
    assert [r["state"] for r in rows] == ["succeeded"]
    assert rows[0]["detail"] == (
        f"{fires} fires came due while Nightshift was down or behind: ran once, for the"
        f" latest (2026-01-01 {latest})"
    )


@pytest.mark.parametrize(
    "begun",
    [
        "3 fires came due while Nightshift was down or behind: ran once, for the latest"
        " (2026-01-01 06:43:00Z)",
        "coalesced 2 missed fires into this run",  # a record of an earlier version
        "coalesced 1 missed fire into this run",
    ],
)
def test_why_a_catch_up_run_failed_leaves_out_its_fires(begun: str) -> None:
    detail = f"{begun}; ConnectError: all connection attempts failed"
    assert why_failed("failed", None, detail) == "ConnectError: all connection attempts failed"
    detail = f"{begun}; no answer from https://agent.example/run within 30s"
    assert why_failed("timeout", None, detail) == "no answer within 30s"
