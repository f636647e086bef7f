"""A reload's restart whose policy the code installed since refuses (review26 R2 L2).

After an upgrade, a SIGHUP is checked by the old code, which accepts the file, and the
process restarts in place into the new code. When that refuses the file (`1M`, newly
refused), the restarted process exited: no server, the socket closed. It now keeps the
socket it was handed, answers 503 ``policy_refused``, and starts once a SIGHUP finds the
file loading. The old process's hand-over is made here as it makes it: the checked
snapshot in NIGHTSHIFT_RELOAD_POLICY and the listening socket's descriptor in
NIGHTSHIFT_LISTEN_FD (bot.reload.restart).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_process import PY, env

__all__ = ["env"]  # the fixture, used by name

OLD_CODE_ACCEPTED = "reservations: {ttl_seconds: 1M}\n"  # read as a minute before audit26


@pytest.fixture
def restarted(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``nightshift run`` as a reload's restart on a snapshot it refuses: (process, URL)."""
    listening = socket.create_server(("127.0.0.1", 0), backlog=64)
    port = listening.getsockname()[1]
    snapshot = tmp_path / "nightshift-policy-checked.yml"
    snapshot.write_text(OLD_CODE_ACCEPTED)
    Path(env["NIGHTSHIFT_CONFIG"]).write_text(OLD_CODE_ACCEPTED)
    fd = listening.fileno()
    proc = subprocess.Popen(
        [PY, "-m", "bot", "run"],
        env={
            **env,
            "NIGHTSHIFT_PORT": str(port),
            "NIGHTSHIFT_RELOAD_POLICY": str(snapshot),
            "NIGHTSHIFT_LISTEN_FD": str(fd),
        },
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        pass_fds=(fd,),
    )
    listening.close()  # (the process has its own: the old process's is gone by then too)
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _healthz(url: str, proc: subprocess.Popen[str], *, code: int) -> dict[str, str]:
    """/healthz's JSON once it answers ``code`` (the process must stay up meanwhile)."""
    deadline = time.monotonic() + 20
    got = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            r = httpx.get(f"{url}/healthz", timeout=2)
            got = r.status_code
            if got == code:
                body: dict[str, str] = r.json()
                return body
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"/healthz did not answer {code} in 20 s (last {got})")


def test_a_restart_refusing_its_policy_holds_the_socket_until_the_file_is_fixed(
    restarted, env, tmp_path
):
    proc, url = restarted
    body = _healthz(url, proc, code=503)
    assert body["error"] == "policy_refused"
    assert "send SIGHUP again" in body["message"]
    agents = httpx.post(f"{url}/v1/reservations", json={}, timeout=5)
    assert agents.status_code == 503 and agents.json()["error"] == "policy_refused"
    assert not (tmp_path / "nightshift-policy-checked.yml").exists()  # read, then removed

    proc.send_signal(signal.SIGHUP)  # the file as it is: still refused
    time.sleep(1)
    assert _healthz(url, proc, code=503)["error"] == "policy_refused"

    Path(env["NIGHTSHIFT_CONFIG"]).write_text("reservations: {ttl_seconds: 1m}\n")
    proc.send_signal(signal.SIGHUP)
    _healthz(url, proc, code=200)  # started on it, on the same socket and PID
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    out = proc.stdout.read() if proc.stdout else ""
    assert "the reload's restart cannot start: " in out
    assert "reservations.ttl_seconds: '1M': M could be a minute or a month" in out
    assert "(the version installed since the last start refuses this policy" in out
    assert "SIGHUP: still refused, still answering 503 policy_refused" in out
    assert "loads now: starting on it" in out
    assert "nightshift listening on" in out or "listening on" in out


def test_a_stop_signal_while_held_stops_it(restarted):
    proc, url = restarted
    _healthz(url, proc, code=503)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=2)
