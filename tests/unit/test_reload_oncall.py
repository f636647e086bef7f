"""A SIGHUP's checks of what an edit does to who is on call, and of a half-written file
(audit17 policy H2, H3, M1): the checks run on real files, as `check_reload` does."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.alerts.oncall import Override, on_call
from bot.reload import check_reload
from bot.reload_moves import day_moves, oncall_moves
from guards.config import Policy, load_policy

TWO = "oncall:\n  rotations:\n    - {name: primary, users: [U01, U02], period: day}\n"


def policy_file(tmp_path: Path, text: str) -> tuple[str, Policy]:
    path = tmp_path / "nightshift.yml"
    path.write_text(text)
    return str(path), load_policy(path)


def reload(config: str, current: Policy, text: str) -> str | None:
    Path(config).write_text(text)
    snapshot = check_reload(config, current, had_file=True)
    if snapshot is not None:
        os.unlink(snapshot)
    return snapshot


@pytest.mark.parametrize("text", ["", "\n  \n", "# all commented out\n# budgets:\n"])
def test_an_empty_file_at_a_sighup_is_not_applied(tmp_path, caplog, text):
    """M1: an editor writing in place leaves the file empty for a moment; a SIGHUP then
    ran the process on the built-in defaults: no budgets, nobody paged."""
    config, current = policy_file(tmp_path, TWO)
    with caplog.at_level(logging.ERROR, logger="nightshift"):
        assert reload(config, current, text) is None
    [said] = [r.getMessage() for r in caplog.records]
    assert f"the policy file {config} is empty (a save still being written?)" in said
    assert "write {} in it" in said
    assert reload(config, current, "{}\n") is not None  # the defaults, on purpose
    (tmp_path / "e").mkdir()
    empty_config, empty = policy_file(tmp_path / "e", "")
    caplog.clear()
    assert reload(empty_config, empty, text) is None  # it ran on an empty one: no change
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_edit_that_moves_who_is_on_call_now_is_said(tmp_path, caplog):
    """H2: swapping (or adding) users moved tonight's pages to someone else, and the log
    said only "changed (oncall)"."""
    config, current = policy_file(tmp_path, TWO)
    shift = on_call(
        current.oncall.rotations[0], ZoneInfo(current.timezone), datetime.now(UTC).timestamp()
    )
    was = shift.user
    other = "U02" if was == "U01" else "U01"
    swapped = "oncall:\n  rotations:\n    - {name: primary, users: [U02, U01], period: day}\n"
    with caplog.at_level(logging.WARNING, logger="nightshift"):
        assert reload(config, current, swapped) is not None
    said = [r.getMessage() for r in caplog.records]
    assert any(
        f"rotation primary: by its schedule, on call now is {other}, no longer {was}" in line
        for line in said
    ), said
    assert any(f"`/agent oncall override <@{was}> " in line for line in said), said


def rotations(*rows: dict[str, Any]) -> Policy:
    return Policy.model_validate({"oncall": {"rotations": list(rows)}})


def test_moves_name_a_rotation_that_is_gone_and_nothing_else():
    primary = {"name": "primary", "users": ["U01", "U02", "U03"], "start": "2026-01-05"}
    old = rotations(primary, {"name": "secondary", "users": ["U04"]})
    now = datetime(2026, 1, 6, 12, tzinfo=UTC).timestamp()  # the first week: U01's
    added = rotations(
        {**primary, "users": ["U01", "U02", "U03", "U06"]},  # the new hire, at the end
        {"name": "secondary", "users": ["U04"]},
    )
    renamed = rotations(primary, {"name": "backup", "users": ["U04"]})
    assert oncall_moves(old, added, now=now) == []  # U01 still: nothing to say
    assert oncall_moves(old, old, now=now) == []
    [gone] = oncall_moves(old, renamed, now=now)
    assert gone.startswith("rotation secondary is gone from the policy")


def test_an_override_holds_when_its_rotation_is_renamed_in_another_case():
    """H3: `Secondary` in the file after an override of `secondary`: the override was
    silently dropped and the person who handed over was paged again."""
    policy = Policy.model_validate(
        {"oncall": {"rotations": [{"name": "Secondary", "users": ["U04"]}]}}
    )
    now = datetime(2026, 3, 2, 3, tzinfo=UTC).timestamp()
    covering = Override("secondary", "U07", now - 60, now + 3600, now - 60)
    assert (
        on_call(policy.oncall.rotations[0], ZoneInfo(policy.timezone), now, [covering]).user
        == "U07"
    )


def test_a_change_of_time_zone_says_what_happens_to_the_budget_day():
    """audit17 policy M2: a namespace moved to Pacific/Kiritimati mid-day got a second full
    day's budget within the hour, and the reload said only "changed (budgets)"."""
    old = Policy.model_validate({"budgets": {"scopes": {"acme": {"day": "2.00"}}}})
    moved = Policy.model_validate(
        {"budgets": {"scopes": {"acme": {"day": "2.00", "timezone": "Pacific/Kiritimati"}}}}
    )
    now = datetime(2026, 11, 27, 23, 1, tzinfo=UTC).timestamp()
    [line] = day_moves(old, moved, now=now)
    assert line == (
        "budgets, the digest and the jobs of acme follow Pacific/Kiritimati now (they followed"
        " UTC): the budget day is now 2026-11-28 (it was 2026-11-27): charges stay in the day"
        " they were booked in, so 2026-11-28 starts from what is booked in it"
    )
    assert day_moves(old, old, now=now) == []
    everyone = Policy.model_validate(
        {**old.model_dump(exclude_unset=True), "timezone": "Europe/Berlin"}
    )
    noon = datetime(2026, 11, 27, 12, tzinfo=UTC).timestamp()
    [acme, rest] = day_moves(old, everyone, now=noon)  # acme has no zone of its own
    assert acme.startswith(
        "budgets, the digest and the jobs of acme follow Europe/Berlin now (they followed UTC):"
        " today"
    )
    assert rest.startswith(
        "budgets, the digest and the jobs of every other namespace follow Europe/Berlin now"
    )
    [acme, rest] = day_moves(old, everyone.model_copy(update={"budgets": moved.budgets}), now=now)
    assert acme.startswith("budgets, the digest and the jobs of acme follow Pacific/Kiritimati")
    assert rest.startswith(
        "budgets, the digest and the jobs of every other namespace follow Europe/Berlin now"
    )


def test_words_copy_and_pickle_with_what_was_typed():
    """review17 L: a Word (a str subclass) could not be copied, deep-copied or pickled."""
    import copy
    import pickle

    from bot.chat_words import split_args, typed

    words = split_args("breaker a/b/c open don't, stop.")
    for again in (copy.copy(words), copy.deepcopy(words), pickle.loads(pickle.dumps(words))):
        assert again == words and typed(again[3:]) == "don't, stop."
