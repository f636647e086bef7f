"""A stop signal during the start (bot.cli_run): the start is called off, and what it had
begun is undone, the component it was in the middle of starting too (review21 M1: its
half-start stayed live through the drain).

The real app in Slack HTTP mode against a fake Slack whose ``users.info`` never answers,
so the start waits on the on-call lookups (bot.people) when the stop comes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot import people
from bot.app import Nightshift
from bot.cli_run import _start_unless_stopped
from bot.settings import Settings
from guards.clock import ManualClock
from guards.config import parse_policy
from tests.fakes.fixtures import slack_env
from tests.fakes.slack_api import FakeSlack

POLICY = {"oncall": {"rotations": [{"name": "primary", "users": ["U01", "U02"]}]}}


def ours() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("nightshift")]


async def test_a_stop_during_the_on_call_lookups_undoes_the_whole_start(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    fake_slack.stall("users.info")
    values: dict[str, Any] = {
        "NIGHTSHIFT_DB": str(tmp_path / "n.db"),
        "NIGHTSHIFT_CONFIG": str(tmp_path / "absent.yml"),
        "NIGHTSHIFT_HOST": "127.0.0.1",
        "NIGHTSHIFT_PORT": 0,
        **slack_env(fake_slack),
    }
    settings = Settings(**values)
    ns = Nightshift(settings=settings, policy=parse_policy(POLICY), clock=ManualClock())
    stop = asyncio.Event()
    starting = asyncio.create_task(_start_unless_stopped(ns, stop))
    await asyncio.wait_for(fake_slack.stalled.wait(), 10)  # the start waits on Slack now
    stop.set()
    assert await asyncio.wait_for(starting, 5) is False  # called off, well within 10 s
    assert ours() == []  # the lookups, the outbox, the scheduler's: nothing left running
    assert people._RUNNING == {}  # nor is the stopped app asked who left
    assert not ns.scheduler.running
    # the database was closed: another run can take it at once
    again = Nightshift(settings=settings, policy=parse_policy({}), clock=ManualClock())
    await again.start()
    await again.stop()
