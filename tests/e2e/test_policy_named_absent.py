"""A policy file named (NIGHTSHIFT_CONFIG or --config) but absent at start (audit25 L2).

DESIGN: an absent policy file means the built-in defaults, so ``run`` starts; but a file
lost after a reboot (an unmounted volume, a config on a tmpfs) turned a guarded fleet into
an unguarded one with a WARNING that said only "running on the built-in defaults". The
WARNING now names the path and says plainly what no longer applies, once, at start.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from bot.cli_run import _policy
from bot.settings import Settings
from guards.config import Policy
from tests.e2e.test_process import PY, env
from tests.fakes.tls import tls

__all__ = ["env"]  # the fixture, used by name

SAID = (
    "which NIGHTSHIFT_CONFIG or --config names: running on the built-in defaults, so none of"
    " that policy's budgets, breakers, alerts, rotations or jobs apply (no budget limits any"
    " agent, only the default breakers guard them, nobody is paged)."
)


def serve_and_stop(argv: list[str], env: dict[str, str]) -> str:
    """``nightshift run`` until it answers /healthz, then SIGTERM: its whole output."""
    proc = subprocess.Popen(
        [PY, "-m", "bot", "run", *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{env['NIGHTSHIFT_PORT']}/healthz"
        for _ in range(200):
            if proc.poll() is not None:
                break
            try:
                if httpx.get(url, timeout=0.5, verify=tls()).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)  # a real process starting (as test_process's start)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    return out


@pytest.mark.parametrize("how", ["NIGHTSHIFT_CONFIG", "--config"])
def test_a_named_policy_file_absent_starts_on_the_defaults_saying_what_that_lifts(
    env: dict[str, str], tmp_path: Path, how: str
) -> None:
    gone = tmp_path / "mnt" / "policy.yml"
    if how == "NIGHTSHIFT_CONFIG":
        out = serve_and_stop([], {**env, "NIGHTSHIFT_CONFIG": str(gone)})
    else:
        out = serve_and_stop(["--config", str(gone)], env)
    said = [line for line in out.splitlines() if SAID in line]
    assert len(said) == 1, out  # once, at start (not again at the stop)
    assert f"no policy file at {gone}, which NIGHTSHIFT_CONFIG" in said[0]
    line = json.loads(said[0])  # the log is JSON lines when not on a terminal
    assert line["level"] == "warning" and line["msg"].endswith(
        "Fix the path and restart, or put the file back and send SIGHUP"
    )


def test_the_default_policy_file_absent_is_said_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Not named: the INFO line of before (a first `make run` without a policy)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NIGHTSHIFT_CONFIG", raising=False)
    with caplog.at_level(logging.INFO, logger="nightshift"):
        assert _policy(Settings()) == Policy()
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "nightshift"]
    assert said == [
        (logging.INFO, "no policy file at ./nightshift.yml: running on the built-in defaults")
    ]
