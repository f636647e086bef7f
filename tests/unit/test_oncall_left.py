"""Rotations pass over users who left the workspace (audit20 slack H1): the pure rules."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest

from bot.alerts.escalation import Chain, nobody_reason, notify_target
from bot.alerts.oncall import Override, next_change, on_call, present_user, shift_at
from bot.people import People, departed
from guards.clock import ManualClock
from guards.config import Policy, Rotation, parse_policy

UTC = ZoneInfo("UTC")
MON = 1_767_600_000.0  # Mon 5 Jan 2026 08:00 UTC: U01's first shift (hand-off mon 08:00)
WEEKLY = Rotation(name="primary", users=["U01", "U02", "U03"], period="week", handoff="mon 08:00")


def test_the_shift_of_a_user_who_left_goes_to_the_next_user():
    assert shift_at(WEEKLY, UTC, MON).user == "U01"
    now = on_call(WEEKLY, UTC, MON, gone={"U01"})
    assert (now.user, now.skipped) == ("U02", ("U01",))
    assert on_call(WEEKLY, UTC, MON, gone={"U01", "U02"}).user == "U03"
    # the others' shifts stay as scheduled: U02's week is still U02's
    assert on_call(WEEKLY, UTC, MON + 7 * 86400, gone={"U01"}).user == "U02"
    assert present_user(WEEKLY, 2, {"U03"}) == "U01"  # cyclically


def test_with_everyone_gone_nobody_is_on_call():
    now = on_call(WEEKLY, UTC, MON, gone={"U01", "U02", "U03"})
    assert now.user is None
    assert now.skipped == ("U01",)


def test_an_override_of_a_user_who_left_does_not_count():
    cover = Override("primary", "U09", MON - 60, MON + 3600, created_at=MON - 60)
    ghost = Override("primary", "U08", MON - 30, MON + 3600, created_at=MON - 30)
    now = on_call(WEEKLY, UTC, MON, [cover, ghost], gone={"U08"})
    assert (now.user, now.skipped) == ("U09", ("U08",))
    assert on_call(WEEKLY, UTC, MON, [ghost], gone={"U08"}).user == "U01"


def _policy() -> Policy:
    return parse_policy(
        {
            "oncall": {
                "rotations": [
                    {"name": "primary", "users": ["U01"], "handoff": "mon 08:00"},
                    {"name": "secondary", "users": ["U02"], "handoff": "mon 08:00"},
                ],
                "escalation": [
                    {"notify": "rotation:primary", "after": "0m"},
                    {"notify": "rotation:secondary", "after": "5m"},
                    {"notify": "user:U03", "after": "10m"},
                    {"notify": "channel", "after": "20m"},
                ],
            }
        }
    )


@pytest.fixture
async def policy() -> AsyncIterator[Policy]:
    """A policy whose process knows U01 and U03 left (a People with no Slack client)."""
    policy = _policy()
    people = People(oncall=policy.oncall, client=None, clock=ManualClock())
    await people.start([])
    people.gone = frozenset({"U01", "U03"})
    yield policy
    await people.stop()


async def test_a_step_with_everyone_gone_targets_nobody(policy: Policy):
    steps = Chain.from_policy(policy).steps

    def target(i: int) -> str | None:
        return notify_target(steps[i], oncall=policy.oncall, tz=UTC, now=MON, overrides=[])

    # rotation:primary (U01 left), rotation:secondary (U02), user:U03 (left), channel; the
    # chain then does not wait for nobody: the paging decides it, from what a step paged
    # (tests/scenario/test_oncall_left.py)
    assert [target(i) for i in range(4)] == [None, "U02", None, None]


async def test_only_the_running_process_policy_knows_who_left(policy: Policy):
    assert departed(policy.oncall) == {"U01", "U03"}
    other = _policy()  # another policy object (another app in the same test process)
    assert departed(other.oncall) == frozenset()


async def test_the_reason_a_step_pages_nobody_is_worded_by_its_kind(policy: Policy):
    steps = Chain.from_policy(policy).steps
    assert nobody_reason(steps[2], policy.oncall) == "<@U03> left the workspace"
    gone = parse_policy({"oncall": {"rotations": [{"name": "primary", "users": ["U01"]}]}})
    assert nobody_reason(steps[0], gone.oncall).startswith("everyone in rotation primary left")
    # a rotation the policy no longer has (the policy check refuses one; a reload may race)
    assert nobody_reason(steps[1], gone.oncall) == "rotation secondary is not in the policy"


class _Asked:
    """A users.info that records who was asked (and answers that each is still here)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def users_info(self, *, user: str) -> dict[str, object]:
        self.asked.append(user)
        return {"ok": True, "user": {"id": user, "deleted": False}}


async def test_a_stopped_people_starts_no_lookup_when_asked_again():
    """review20 L1: a command during the drain (or a wish queued before the stop) started
    a lookup nobody awaited, on a Slack client being closed."""
    policy = _policy()
    client = _Asked()
    people = People(oncall=policy.oncall, client=client, clock=ManualClock(), ttl_seconds=0)
    await people.start(["U01"])
    assert client.asked == ["U01"]
    people.want(["U02"])  # queued on the loop before the stop ...
    await people.stop()
    people.want(["U03"])  # ... and after it
    await asyncio.to_thread(people.want, ["U04"])  # and from the writer's thread
    for _ in range(5):
        await asyncio.sleep(0)
    assert client.asked == ["U01"]
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "nightshift-people"]
    assert departed(policy.oncall) == frozenset()  # the stopped process is not asked


def test_the_next_hand_off_is_the_next_change_of_person():
    """audit21 oncall 3: `/agent oncall` named the scheduled hand-off while an override
    ran past it (U01 was paged only when the override ended), and a "hand-off" from U02 to
    U02 when the scheduled user had left."""
    week = 7 * 86400
    assert next_change(WEEKLY, UTC, MON) == (MON + week, "U02")
    cover = Override("primary", "U09", MON, MON + week + 3600, created_at=MON)
    assert next_change(WEEKLY, UTC, MON + 60, [cover]) == (MON + week + 3600, "U02")
    short = Override("primary", "U09", MON, MON + 3600, created_at=MON)
    assert next_change(WEEKLY, UTC, MON + 60, [short]) == (MON + 3600, "U01")
    # U02 left: U03 takes U02's week, and U01 hands over to U03 (and U03 keeps two weeks)
    assert next_change(WEEKLY, UTC, MON, gone={"U02"}) == (MON + week, "U03")
    assert next_change(WEEKLY, UTC, MON + week, gone={"U02"}) == (MON + 3 * week, "U01")
    alone = Rotation(name="solo", users=["U01"], period="week", handoff="mon 08:00")
    assert next_change(alone, UTC, MON) is None


class _TimesOut:
    async def users_info(self, *, user: str) -> dict[str, object]:
        raise TimeoutError  # (its str() is empty)


async def test_a_look_up_that_timed_out_says_so(caplog: pytest.LogCaptureFixture):
    """audit26 chaos L1: "could not look up on-call user U01 with Slack ()"."""
    policy = _policy()
    people = People(oncall=policy.oncall, client=_TimesOut(), clock=ManualClock(), ttl_seconds=0)
    with caplog.at_level(logging.WARNING, logger="bot.people"):
        await people.start(["U01"])
        await people.stop()
    said = [r.getMessage() for r in caplog.records if r.name == "bot.people"]
    assert said == [
        "could not look up on-call user U01 with Slack (TimeoutError); tried again in 60s"
    ]
