"""Review26 R2 of the policy refusals (audit26 A1): upper-case units that can mean nothing
else load again (L2: refused, a SIGHUP after an upgrade stopped the server); a step with
no `after` is said to have none, with what to write (L1); a key written twice no longer
brings problems that come only from YAML dropping its first copy (L3); a policy folder
that cannot be searched is a one-line refusal at a SIGHUP, not a traceback (L4)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.reload import check_reload
from guards.config import REPEATS_READ_LAST, Policy, PolicyError, load_policy, parse_policy

# -- L2: 2H, 30S, 1D, 1W are read as in lower case; only M is refused --------------------


@pytest.mark.parametrize(
    ("data", "read"),
    [
        ({"reservations": {"ttl_seconds": "2H"}}, lambda p: p.reservations.ttl_seconds == 7200),
        ({"breakers": {"cooldown_seconds": "30S"}}, lambda p: p.breakers.cooldown_seconds == 30),
        ({"retention": {"events": "1W"}}, lambda p: p.retention.events == 7 * 86400),
        ({"retention": {"events": "30D"}}, lambda p: p.retention.events == 30 * 86400),
        (
            {"heartbeats": {"timeout_seconds": "1D"}},
            lambda p: p.heartbeats.timeout_seconds == 86400,
        ),
        ({"validation": {"window_days": "7D"}}, lambda p: p.validation.window_days == 7),
        ({"validation": {"window_days": "2W"}}, lambda p: p.validation.window_days == 14),
        ({"alerts": {"auto_resolve_after": "5m"}}, lambda p: p.alerts.auto_resolve_after == 300),
    ],
)
def test_an_upper_case_unit_that_means_nothing_else_loads_as_in_lower_case(data, read):
    assert read(parse_policy(data))


def test_a_sighup_onto_upper_case_units_is_applied(tmp_path):
    """The old code accepted 2H and 7D; the running one's check must too, and the new
    process the reload starts on it (bot.reload.reloaded_policy) loads it the same way."""
    config = tmp_path / "nightshift.yml"
    config.write_text("reservations: {ttl_seconds: 2H}\nvalidation: {window_days: 7D}\n")
    snapshot = check_reload(str(config), Policy(), had_file=True)
    assert snapshot is not None
    try:
        loaded = load_policy(snapshot)
    finally:
        os.unlink(snapshot)
    assert (loaded.reservations.ttl_seconds, loaded.validation.window_days) == (7200, 7)


# -- L1: a step with no `after` after a timed one ------------------------------------------


def _chain(*steps: dict[str, str]) -> dict[str, Any]:
    rotations = [{"name": "primary", "users": ["U01"]}, {"name": "secondary", "users": ["U02"]}]
    return {"oncall": {"rotations": rotations, "escalation": list(steps)}}


def test_a_step_with_no_after_is_said_to_have_none_and_what_to_write():
    data = _chain(
        {"notify": "rotation:primary"},
        {"notify": "rotation:secondary", "after": "10m"},
        {"notify": "channel"},  # "and then the channel"
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, source="nightshift.yml")
    [line] = str(caught.value).splitlines()[1:]
    assert line == (
        "  oncall.escalation.2.after: this step has no `after`, so it is due at once (0m),"
        " sooner than the 10m of the step before it (oncall.escalation.1.after): steps fire in"
        " the order listed and each `after` counts from when the alert fired, so this one would"
        " fire with the step before it; to follow that step, give it an `after` of at least"
        " 10m (e.g. `after: 15m`)"
    )
    assert "0s" not in line and "list the steps in order" not in line
    # and what it says to write loads, the channel last
    data["oncall"]["escalation"][2]["after"] = "15m"
    assert [s.after for s in parse_policy(data).oncall.escalation] == [0, 600, 900]


# -- L3: a key written twice, and what comes only from its first copy dropped -------------


def _refusal(tmp_path: Path, text: str) -> list[str]:
    file = tmp_path / "nightshift.yml"
    file.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(file)
    return str(caught.value).splitlines()[1:]


def test_a_problem_only_of_a_repeated_key_s_last_copy_is_not_said(tmp_path):
    lines = _refusal(
        tmp_path,
        "oncall:\n"
        "  rotations: [{name: primary, users: [U01AAA]}]\n"
        "timezone: UTC\n"
        "oncall:\n"
        "  escalation: [{notify: 'rotation:primary'}]\n",
    )
    assert lines == [
        "  line 4: key 'oncall' appears twice (first at line 1); write it once, with everything"
        " it holds under it; what it holds is checked once it is written once"
    ]  # not "oncall.escalation.0.notify: unknown rotation 'primary'; … defines none"


def test_the_other_problems_are_said_to_be_read_from_the_last_copy(tmp_path):
    lines = _refusal(
        tmp_path,
        "webhooks: {pager: {url: 'https://pager.example/hook'}}\n"
        "budgets: {defaults: {agent: {day: -1}}}\n"
        "webhooks: {backup: {url: 'https://backup.example/hook'}}\n"
        "oncall:\n"
        "  rotations: [{name: primary, users: [U01AAA]}]\n"
        "  escalation: [{notify: 'webhook:pager'}]\n",
    )
    assert lines[0] == (
        "  line 3: key 'webhooks' appears twice (first at line 1); write it once, with"
        " everything it holds under it"
    )  # nothing under `webhooks` was wrong
    assert lines[1] == f"  {REPEATS_READ_LAST}"
    assert lines[2].startswith("  budgets.defaults.agent.day: ")  # wrong as written too
    assert lines[3].startswith("  oncall.escalation.0.notify: ")  # only of the last copy
    assert len(lines) == 4


def test_a_nested_repeat_leaves_out_only_what_is_under_it(tmp_path):
    lines = _refusal(
        tmp_path,
        "budgets:\n"
        "  scopes:\n"
        "    acme: {day: 5}\n"
        "    acme: {day: -5}\n"
        "  defaults:\n"
        "    agent: {day: -1}\n",
    )
    assert lines[0].startswith("  budgets.scopes: line 4: key 'acme' appears twice")
    assert lines[0].endswith("; what it holds is checked once it is written once")
    assert lines[1:] == [f"  {REPEATS_READ_LAST}", lines[2]]
    assert lines[2].startswith("  budgets.defaults.agent.day: ")


# -- L4: a policy folder that cannot be searched, at a SIGHUP ----------------------------


@contextlib.contextmanager
def _as_nobody() -> Iterator[None]:
    """Run as a user without root's pass through permissions (root ignores a 0700 folder)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_a_sighup_with_the_policy_folder_unsearchable_is_one_line_and_keeps_running(
    tmp_path, caplog
):
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "nightshift.yml").write_text("timezone: UTC\n")
    # as root, run as nobody (the folders of tmp_path shut others out); else shut it
    folder.chmod(0o700 if os.geteuid() == 0 else 0o000)
    config = str(folder / "nightshift.yml")
    try:
        with caplog.at_level(logging.ERROR, logger="nightshift"), _as_nobody():
            assert check_reload(config, Policy(), had_file=True, applied="at start") is None
    finally:
        folder.chmod(0o700)
    [record] = caplog.records
    assert record.exc_info is None
    assert record.getMessage() == (
        f"SIGHUP: {config}: cannot read the policy file: Permission denied; still running on"
        " the policy it last applied (at start)"
    )


def test_a_sighup_with_a_policy_path_too_long_is_one_line_too(tmp_path, caplog):
    config = str(tmp_path / ("x" * 300) / "nightshift.yml")  # ENAMETOOLONG, not "gone"
    with caplog.at_level(logging.ERROR, logger="nightshift"):
        assert check_reload(config, Policy(), had_file=True, applied="at start") is None
    [record] = caplog.records
    assert "cannot read the policy file: File name too long; still running" in (record.getMessage())
