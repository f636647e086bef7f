"""What a SIGHUP that keeps the policy says of the one it keeps (recheck25_a L4): with the
policy file deleted it said "still running on the policy read at start", also in a
process a reload had started on a policy read at that SIGHUP. It says when the policy in
force was applied: at start, or at the reload that started this process."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.reload import applied_when, check_reload
from guards.config import Policy

AT = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC


def kept(caplog: pytest.LogCaptureFixture, config: Path, applied: str) -> str:
    with caplog.at_level(logging.INFO, logger="nightshift"):
        assert check_reload(str(config), Policy(), had_file=True, applied=applied) is None
    [said] = [r.getMessage() for r in caplog.records]
    caplog.clear()
    return said


def test_a_deleted_policy_file_keeps_the_policy_applied_at_the_last_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = tmp_path / "nightshift.yml"  # deleted after the reload that read it
    said = kept(caplog, gone, applied_when(at=AT, reloaded=True))
    assert said == (
        f"SIGHUP: the policy file {gone} is gone; still running on the policy it last applied"
        " (at the reload of 2026-11-18 11:06:40 UTC; a restart now would run on the built-in"
        " defaults, with no budgets)"
    )
    assert "read at start" not in said
    at_start = kept(caplog, gone, applied_when(at=AT, reloaded=False))
    assert "still running on the policy it last applied (at start, 2026-11-18 11:06:40 UTC;" in (
        at_start
    )


def test_an_empty_or_invalid_file_says_the_same_of_the_policy_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "nightshift.yml"
    applied = applied_when(at=AT, reloaded=True)
    config.write_text("# nothing yet\n")
    current = Policy.model_validate({"timezone": "Europe/Berlin"})  # it ran on a real one
    with caplog.at_level(logging.ERROR, logger="nightshift"):
        assert check_reload(str(config), current, had_file=True, applied=applied) is None
    [empty] = [r.getMessage() for r in caplog.records]
    caplog.clear()
    assert "still running on the policy it last applied (at the reload of 2026-11-18" in empty
    config.write_text("budgets: {nope: 1}\n")
    invalid = kept(caplog, config, applied)
    assert "is not valid; still running on the policy it last applied (at the reload of" in invalid
