"""What the alerts remember between refusals (bot.alerts.refused.Memory): a deleted
message is posted again at most once an hour per alert, however many alerts there are
(review21 L3), and a refused channel with nobody to tell is logged once a minute, not
once per post (review20 L3)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.alerts.refused import REPOST_EVERY, Memory, channel_refused
from guards.clock import ManualClock
from tests.scenario.test_alerts import ALERTS, POLICY, alerts_of


def test_each_alert_is_posted_again_at_most_once_an_hour_beyond_a_hundred_alerts() -> None:
    memory, t0 = Memory(), 1_000_000.0
    assert all(memory.may_post_again(alert, t0) for alert in range(1, 251))
    assert not any(memory.may_post_again(alert, t0 + 60) for alert in range(1, 251))
    assert all(memory.may_post_again(alert, t0 + REPOST_EVERY) for alert in range(1, 251))


def test_the_memory_forgets_only_the_alerts_whose_hour_is_over() -> None:
    memory, t0 = Memory(), 1_000_000.0
    for alert in range(10_000):  # a deleting bot's worth, an hour ago
        assert memory.may_post_again(alert, t0)
    assert memory.may_post_again(20_000, t0 + REPOST_EVERY - 1)  # within its hour: kept
    assert memory.may_post_again(20_001, t0 + REPOST_EVERY)  # the full memory is swept
    assert set(memory.posted_again) == {20_000, 20_001}
    assert not memory.may_post_again(20_000, t0 + REPOST_EVERY + 10)


async def test_a_refused_channel_with_nobody_to_tell_is_logged_once_a_minute(
    slack_http: Any, caplog: Any
) -> None:
    lonely = {k: v for k, v in POLICY.items() if k not in ("admins", "oncall")}
    clock = ManualClock()
    slack = await slack_http(lonely, clock=clock)
    engine, memory = alerts_of(slack).engine, Memory()

    async def refused_posts(n: int) -> list[str]:
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            for _ in range(n):
                await slack.app.store.write(
                    lambda tx: channel_refused(engine, tx, ALERTS, "not_in_channel", memory)
                )
        return [r.getMessage() for r in caplog.records if "nobody is told" in r.getMessage()]

    [first] = await refused_posts(20)
    assert f"alerts to {ALERTS} are refused by Slack (not_in_channel)" in first
    clock.advance(61)
    [again] = await refused_posts(1)
    assert again.endswith("; 19 more since the last report"), again
    assert not slack.fake.posts()  # nobody in Slack to tell, nor a row to mark the hour


def test_a_repost_is_remembered_only_once_its_write_committed() -> None:
    """review26 L1: a repost whose write the database refused was remembered as made, and
    the message was not posted again for an hour."""
    memory = Memory()
    t0 = 1_000_000.0
    refused_batch: list[Callable[[], None]] = []  # its after-commit hooks: never run
    assert memory.may_post_again(7, t0, after_commit=refused_batch)
    assert memory.may_post_again(7, t0 + 5)  # the retry may post it
    committed: list[Callable[[], None]] = []
    assert not memory.may_post_again(7, t0 + 10, after_commit=committed)  # noted above
    assert committed == []
