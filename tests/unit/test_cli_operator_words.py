"""What ``nightshift token create --operator`` says an operator's token does, in its
output and its ``--help`` (recheck25 L1): the breakers too (approve a trial, force one
open, close it, over ``/v1/breakers``), as the README's operator tokens section says;
they said alerts and silences only."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main

pytestmark = pytest.mark.usefixtures("keep_logging")

BREAKERS = "approves a breaker's trial, forces a breaker open or closes it there"
ENDPOINTS = "(/v1/alerts, /v1/silences, /v1/breakers)"


def test_the_operator_token_s_line_names_the_breakers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["token", "create", "acme/alice", "--operator", "--db", str(tmp_path / "n.db")]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    [said] = [line for line in lines if line.startswith("an operator token:")]
    assert said == (
        "an operator token: it lists, acknowledges and silences the alerts of acme/alice and"
        f" below, and {BREAKERS} {ENDPOINTS}; it reserves nothing;"
    )
    assert lines[-1].startswith("token: ns_tok_")  # its last word stays the token


def test_the_operator_flag_s_help_names_the_breakers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option: argparse wraps at COLUMNS
    with pytest.raises(SystemExit) as done:
        main(["token", "create", "--help"])
    assert done.value.code == 0
    [flag] = [line for line in capsys.readouterr().out.splitlines() if "--operator " in line]
    assert f"{BREAKERS} {ENDPOINTS}; it reserves nothing" in flag, flag
    assert "the alerts of the scope and below" in flag, flag
