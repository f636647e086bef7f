"""What the policy file took without a word until audit26 A1, each now refused naming the
key and what to write: escalation steps out of order (M1), a key written twice hiding the
file's other problems (L1), `1M` (a minute or a month? L2), zeros that make no sense (L3),
user-group ids that match nobody (L4), and a policy "file" that is a FIFO, a device or
far too large (L5), at start and at a SIGHUP."""

from __future__ import annotations

import logging
import os
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from bot.reload import check_reload
from guards.config import REPEATS_READ_LAST, Policy, PolicyError, load_policy, parse_policy
from guards.config_types import parse_duration
from guards.config_yaml import MAX_POLICY_BYTES

ROTATIONS = [{"name": "primary", "users": ["U01"]}, {"name": "secondary", "users": ["U02"]}]


def refused(data: dict[str, Any]) -> list[str]:
    """The problems a refused policy names, one line each (the title line left out)."""
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, source="nightshift.yml")
    title, *lines = str(caught.value).splitlines()
    assert title == "nightshift.yml: the policy is not valid:"
    return [line.strip() for line in lines]


def chain(*afters: str) -> dict[str, Any]:
    steps = [{"notify": "rotation:primary", "after": after} for after in afters]
    return {"oncall": {"rotations": ROTATIONS, "escalation": steps}}


# -- M1: escalation steps ---------------------------------------------------------------


def test_a_step_sooner_than_the_one_before_it_is_refused_saying_what_to_write():
    assert refused(chain("15m", "5m")) == [
        "oncall.escalation.1.after: 5m is sooner than the 15m of the step before it"
        " (oncall.escalation.0.after): steps fire in the order listed and each `after` counts"
        " from when the alert fired, so this one would fire with the step before it; list"
        " the steps in order of `after`"
    ]


def test_every_step_out_of_order_is_named_with_the_chain_s_other_problems():
    data = chain("0m", "10m", "5m", "3m")
    data["oncall"]["escalation"].append({"notify": "rotation:nobody", "after": "1h"})
    lines = refused(data)
    assert [line.split(":")[0] for line in lines] == [
        "oncall.escalation.4.notify",
        "oncall.escalation.2.after",
        "oncall.escalation.3.after",
    ]
    assert "(oncall.escalation.2.after)" in lines[2]  # each against the step before it


def test_steps_in_order_or_at_the_same_time_load():
    policy = parse_policy(chain("0m", "5m", "5m", "15m"))  # two at once: as written
    assert [step.after for step in policy.oncall.escalation] == [0, 300, 300, 900]
    assert parse_policy(chain("5m")).oncall.escalation[0].after == 300


def test_a_sighup_onto_steps_out_of_order_keeps_the_running_policy(tmp_path, caplog):
    config = tmp_path / "nightshift.yml"
    config.write_text(
        "oncall:\n  rotations: [{name: primary, users: [U01]}]\n  escalation:\n"
        "    - {notify: 'rotation:primary', after: 15m}\n    - {notify: channel, after: 5m}\n"
    )
    with caplog.at_level(logging.ERROR, logger="nightshift"):
        assert check_reload(str(config), Policy(), had_file=True) is None
    [said] = [r.getMessage() for r in caplog.records]
    assert "is not valid; still running on the policy it last applied" in said
    assert "oncall.escalation.1.after: 5m is sooner than the 15m" in said


# -- L1: a key written twice, with the file's other problems -----------------------------


def test_a_key_written_twice_is_said_with_every_other_problem_at_once(tmp_path):
    file = tmp_path / "nightshift.yml"
    file.write_text("budgets: {defaults: {agent: {day: -1}}}\ntimezone: Nowhere\ntimezone: UTC\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(file)
    title, repeat, note, negative = str(caught.value).splitlines()
    assert title == f"{file}: the policy is not valid:"
    assert repeat == (
        "  line 3: key 'timezone' appears twice (first at line 2); write it once, with"
        " everything it holds under it"
    )
    # the other problems were read from its last copy (review26 R2 L3)
    assert note == f"  {REPEATS_READ_LAST}"
    assert negative.startswith("  budgets.defaults.agent.day: ")


def test_a_key_written_twice_in_a_file_with_no_other_problem_is_still_refused(tmp_path):
    file = tmp_path / "nightshift.yml"
    file.write_text("digest: {time: '09:00'}\ndigest: {time: '10:00'}\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(file)
    assert str(caught.value).splitlines()[1:] == [
        "  line 2: key 'digest' appears twice (first at line 1); write it once, with"
        " everything it holds under it"
    ]


# -- L2: M, a minute or a month? ---------------------------------------------------------
# (2H, 30S, 1D, 1W mean nothing else and load as before: review26 R2 L2,
# tests/unit/test_config_review26.py)


@pytest.mark.parametrize(
    ("data", "key", "write"),
    [
        ({"alerts": {"auto_resolve_after": "1M"}}, "alerts.auto_resolve_after", "1m"),
        ({"reservations": {"ttl_seconds": "1M"}}, "reservations.ttl_seconds", "1m"),
        ({"alerts": {"hanging_after": "5M"}}, "alerts.hanging_after", "5m"),
        ({"retention": {"events": "30M"}}, "retention.events", "30m"),
        (chain("0m", "5M"), "oncall.escalation.1.after", "5m"),
    ],
)
def test_an_upper_case_m_is_refused_naming_the_key_and_what_to_write(data, key, write):
    [line] = refused(data)
    assert line.startswith(f"{key}: ") and "M could be a minute or a month" in line, line
    assert f"write {write} for a minute" in line


def test_an_upper_case_m_says_that_a_month_is_no_unit():
    [line] = refused({"alerts": {"auto_resolve_after": "1M"}})
    assert line.endswith("write 1m for a minute; a month is no unit (write 30d)"), line


@pytest.mark.parametrize(
    ("days", "value"), [("7d", 7), ("1w", 7), ("2w", 14), (14, 14), ("7D", 7), ("1W", 7)]
)
def test_a_count_of_days_takes_days_or_weeks(days, value):
    assert parse_policy({"validation": {"window_days": days}}).validation.window_days == value


@pytest.mark.parametrize("days", ["7 days", "1M", "1m", "2h"])
def test_a_count_of_days_refuses_other_units_saying_what_to_write(days):
    [line] = refused({"validation": {"window_days": days}})
    assert line == f"validation.window_days: {days!r}: write a number of days, as 7, 7d or 1w"


def test_a_slash_command_s_duration_still_takes_any_case():
    assert parse_duration("2H") == 7200  # typed at 3 a.m. (bot.commands_*): not the file


# -- L3: zeros that make no sense --------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"validation": {"burst": {"window_seconds": 0}}}, "validation.burst.window_seconds"),
        ({"alerts": {"repeat_escalation_after": "0s"}}, "alerts.repeat_escalation_after"),
        (
            {"routing": {"promote": {"rejection_window_seconds": 0}}},
            "routing.promote.rejection_window_seconds",
        ),
    ],
)
def test_a_zero_window_is_refused_naming_the_key(data, key):
    [line] = refused(data)
    assert line.startswith(f"{key}: ") and "must be at least 1s" in line, line
    # the burst window's words are the duration's; the two whose feature can be turned
    # off say how (recheck26 Ka L1: off, a 0 is accepted)
    assert "at 0 it would run out the moment it starts" in line or " may be 0" in line


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (
            {"alerts": {"repeat_escalation": 2, "repeat_escalation_after": 0}},
            "alerts.repeat_escalation_after: 0 is out of range while repeat_escalation is 2:"
            " must be at least 1s, or the repeated rounds would come at once (write e.g."
            " 15m); with repeat_escalation: 0 (no repeats) it may be 0",
        ),
        (
            {"routing": {"promote": {"enabled": True, "rejection_window_seconds": "0s"}}},
            "routing.promote.rejection_window_seconds: 0 is out of range while promote is"
            " enabled: must be at least 1s, or no validation rejection would count (write"
            " e.g. 1h); with enabled: false it may be 0",
        ),
    ],
)
def test_a_zero_window_whose_feature_is_on_says_how_to_turn_it_off(data, said):
    assert refused(data) == [said]


def test_a_zero_window_whose_feature_is_off_loads_as_it_did_before_audit26():
    """recheck26 Ka L1: these loaded before; refused, an upgrade took the server into the
    reload hold for a value that does nothing."""
    policy = parse_policy(
        {
            "alerts": {"repeat_escalation": 0, "repeat_escalation_after": 0},
            "routing": {"promote": {"enabled": False, "rejection_window_seconds": 0}},
        },
        source="nightshift.yml",
    )
    assert policy.alerts.repeat_escalation_after == 0
    assert policy.alerts.storm_nudge_every == 900  # a storm's nudges stay spaced
    assert policy.routing.promote.rejection_window_seconds == 0
    with pytest.raises(PolicyError):  # still a duration: negative, or not one, is refused
        parse_policy(
            {"alerts": {"repeat_escalation": 0, "repeat_escalation_after": -1}}, source="x"
        )


# -- L4: admin_groups --------------------------------------------------------------------


def test_admin_groups_take_user_group_ids_only():
    lines = refused({"admin_groups": ["@ops", "", "S0 OPS", "U012ABCDEF", "s0ops", "S0OPS"]})
    assert [line.split(":")[0] for line in lines] == [f"admin_groups.{i}" for i in range(5)]
    assert lines[0] == (
        "admin_groups.0: '@ops' is not a Slack user-group id: write one like S0614TZR7 (in"
        " Slack: People, User groups, the group, ⋯, Copy group ID); a name or an @handle"
        " matches nobody"
    )
    assert parse_policy({"admin_groups": ["S0OPS", "S0614TZR7"]}).admin_groups == [
        "S0OPS",
        "S0614TZR7",
    ]


# -- L5: the policy file is a regular file of at most 1 MiB ------------------------------


def load_within(path: Path, seconds: float = 10.0) -> str:
    """The refusal of ``load_policy(path)``; fails (unblocking it) if it waits."""
    said: list[str] = []

    def load() -> None:
        try:
            load_policy(path)
            said.append("loaded")
        except PolicyError as exc:
            said.append(str(exc))

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(seconds)
    if reader.is_alive():  # held in open(2) on a FIFO: a writer lets it go
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(5)
        pytest.fail(f"reading {path} waited over {seconds}s")
    return said[0]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "policy.yml"
    os.mkfifo(fifo)
    assert load_within(fifo) == (
        f"{fifo}: the policy file is a FIFO (a named pipe), not a regular file: Nightshift"
        " reads its policy only from a file (copy it into one, and name that)"
    )


def test_a_device_is_refused():
    assert load_within(Path("/dev/null")).startswith(
        "/dev/null: the policy file is a character device, not a regular file"
    )


def test_a_folder_is_refused_saying_to_name_the_file_in_it(tmp_path):
    assert load_within(tmp_path) == (
        f"{tmp_path}: cannot read the policy file: Is a directory (name the policy file in"
        " it, e.g. nightshift.yml)"
    )


def test_a_file_over_1_mib_is_refused_and_one_of_1_mib_loads(tmp_path):
    file = tmp_path / "nightshift.yml"
    line = "# " + "x" * 1021 + "\n"  # 1 KiB
    head = "timezone: UTC\n"
    text = head + line * 1024
    file.write_text(text[:MAX_POLICY_BYTES])
    assert load_policy(file).timezone == "UTC"
    file.write_text(text[: MAX_POLICY_BYTES + 1])
    with pytest.raises(PolicyError) as caught:
        load_policy(file)
    assert str(caught.value) == (
        f"{file}: the policy file is over 1 MiB (1,048,577 bytes); a policy takes a few KB:"
        " check that NIGHTSHIFT_CONFIG or --config names the policy file, not a log or a"
        " database"
    )


def test_a_sighup_onto_a_device_or_a_huge_file_keeps_the_running_policy(tmp_path, caplog):
    link = tmp_path / "nightshift.yml"
    link.symlink_to("/dev/null")  # (/dev/zero, read to its end, took every byte of memory)
    huge = tmp_path / "huge.yml"
    huge.write_text("#" * (MAX_POLICY_BYTES + 10))
    with caplog.at_level(logging.ERROR, logger="nightshift"):
        assert check_reload(str(link), Policy(), had_file=True, applied="at start") is None
        assert check_reload(str(huge), Policy(), had_file=True, applied="at start") is None
    device, big = [r.getMessage() for r in caplog.records]
    assert device == (
        f"SIGHUP: {link}: the policy file is a character device, not a regular file:"
        " Nightshift reads its policy only from a file (copy it into one, and name that);"
        " still running on the policy it last applied (at start)"
    )
    assert big.startswith(f"SIGHUP: {huge}: the policy file is over 1 MiB (1,048,586 bytes)")


def test_a_policy_of_everyday_size_loads_as_before(tmp_path):
    file = tmp_path / "nightshift.yml"
    file.write_text(
        textwrap.dedent("""\
        timezone: Europe/Berlin
        admin_groups: [S0OPSTEAM]
        alerts: {auto_resolve_after: 1h, repeat_escalation_after: 15m}
        validation: {window_days: 2w, burst: {window_seconds: 10m}}
        """)
    )
    policy = load_policy(file)
    assert policy.validation.window_days == 14 and policy.alerts.auto_resolve_after == 3600
