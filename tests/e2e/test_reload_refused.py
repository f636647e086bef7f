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

import asyncio
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from guards.client import GuardClient, Hold, Unavailable
from tests.e2e.test_process import PY, cli, env, spawn
from tests.fakes.ports import free_port
from tests.fakes.tls import tls

__all__ = ["env"]  # the fixture, used by name

OLD_CODE_ACCEPTED = "reservations: {ttl_seconds: 1M}\n"  # read as a minute before audit26


def _run_on(
    env: dict[str, str], listening: socket.socket, *, snapshot: Path | None
) -> subprocess.Popen[str]:
    """``nightshift run`` handed ``listening`` (and, as a reload's restart, ``snapshot``)."""
    fd = listening.fileno()
    handed = {"NIGHTSHIFT_PORT": str(listening.getsockname()[1]), "NIGHTSHIFT_LISTEN_FD": str(fd)}
    if snapshot is not None:
        handed["NIGHTSHIFT_RELOAD_POLICY"] = str(snapshot)
    return subprocess.Popen(
        [PY, "-m", "bot", "run"],
        env={**env, **handed},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        pass_fds=(fd,),
    )


@pytest.fixture
def restarted(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``nightshift run`` as a reload's restart on a snapshot it refuses: (process, URL)."""
    listening = socket.create_server(("127.0.0.1", 0), backlog=64)
    port = listening.getsockname()[1]
    snapshot = tmp_path / "nightshift-policy-checked.yml"
    snapshot.write_text(OLD_CODE_ACCEPTED)
    Path(env["NIGHTSHIFT_CONFIG"]).write_text(OLD_CODE_ACCEPTED)
    proc = _run_on(env, listening, snapshot=snapshot)
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
            r = httpx.get(f"{url}/healthz", timeout=2, verify=tls())
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
    agents = httpx.post(f"{url}/v1/reservations", json={}, timeout=5, verify=tls())
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
        httpx.get(f"{url}/healthz", timeout=2, verify=tls())


def test_a_settle_sent_during_the_hold_is_tried_again_and_charged_once_the_file_is_fixed(
    env, tmp_path
):
    """recheck26 Ka H1: the client raised the hold's 503 at once, as a plain GuardError
    with no note, and the hold expired unsettled: the money the call spent was lost. It is
    tried again within ``patience``, as a ``storage_unavailable`` is, and then raises
    Unavailable with the note naming the settle to send later."""
    config = Path(env["NIGHTSHIFT_CONFIG"])
    config.write_text("reservations: {ttl_seconds: 2m}\n")
    token = cli("token", "create", "acme", env=env).stdout.split()[-1]
    listening = socket.create_server(("127.0.0.1", 0), backlog=64)  # open to the end
    url = f"http://127.0.0.1:{listening.getsockname()[1]}"
    procs = [_run_on(env, listening, snapshot=None)]
    snapshot = tmp_path / "nightshift-policy-checked.yml"

    def fix(held: subprocess.Popen[str]) -> None:
        config.write_text("reservations: {ttl_seconds: 2m}\n")
        held.send_signal(signal.SIGHUP)

    def restart_refused(serving: subprocess.Popen[str]) -> subprocess.Popen[str]:
        """The reload's restart, handed the socket, on a snapshot it refuses: held."""
        serving.send_signal(signal.SIGTERM)
        assert serving.wait(timeout=15) == 0
        snapshot.write_text(OLD_CODE_ACCEPTED)
        config.write_text(OLD_CODE_ACCEPTED)
        procs.append(held := _run_on(env, listening, snapshot=snapshot))
        _healthz(url, held, code=503)
        return held

    async def drive() -> tuple[Unavailable, Hold, Hold]:
        serving = procs[0]
        await asyncio.to_thread(_healthz, url, serving, code=200)
        async with (
            GuardClient(url, token, patience=1.5) as hasty,
            GuardClient(url, token, patience=40) as patient,
        ):
            async with patient.reserve("acme/alice/bot", max_cost_micros=5000) as second:
                with pytest.raises(Unavailable) as lost:
                    async with hasty.reserve("acme/alice/bot", max_cost_micros=5000) as first:
                        held = await asyncio.to_thread(restart_refused, serving)
                        first.settle(actual_cost_micros=700)  # its patience runs out held
                second.settle(actual_cost_micros=1200)
                asyncio.get_running_loop().call_later(3, fix, held)  # while it is tried
            return lost.value, first, second

    try:
        lost, first, second = asyncio.run(drive())
        procs[-1].send_signal(signal.SIGTERM)
        assert procs[-1].wait(timeout=15) == 0
    finally:
        listening.close()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert lost.maybe_sent is False and lost.answered is True, lost
    assert lost.attempts > 1  # tried again meanwhile, not raised at the first 503
    notes = "\n".join(getattr(lost, "__notes__", ()))
    assert f"{first.reservation_id}'s settle was not recorded; send it again when" in notes
    assert f"await guard.settle({first.reservation_id!r}, " in notes
    assert "'actual_cost_micros': 700" in notes
    assert second.result["charged_micros"] == 1200, second.result
    with sqlite3.connect(env["NIGHTSHIFT_DB"]) as db:
        rows = dict(db.execute("SELECT id, state || ' ' || charged_micros FROM reservations"))
    assert rows == {first.reservation_id: "held 0", second.reservation_id: "settled 1200"}


def test_the_holds_503_asks_to_be_sent_again_as_the_storage_one_does(restarted):
    proc, url = restarted
    _healthz(url, proc, code=503)
    answer = httpx.post(f"{url}/v1/reservations/res_x/settle", json={}, timeout=5, verify=tls())
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()


def test_a_policy_file_it_cannot_read_at_the_sighup_keeps_the_hold(restarted, env):
    """recheck26 Ka M1: an OSError at the SIGHUP (a name too long, a folder it cannot
    search) ended the hold, closing the socket. It is one line, and the hold goes on."""
    proc, url = restarted
    _healthz(url, proc, code=503)
    config = Path(env["NIGHTSHIFT_CONFIG"])
    config.unlink()
    config.symlink_to("/tmp/" + "a" * 300)  # ENAMETOOLONG when it is followed
    proc.send_signal(signal.SIGHUP)
    time.sleep(1)
    assert _healthz(url, proc, code=503)["error"] == "policy_refused"
    config.unlink()
    config.write_text("reservations: {ttl_seconds: 1m}\n")
    proc.send_signal(signal.SIGHUP)
    _healthz(url, proc, code=200)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    out = proc.stdout.read() if proc.stdout else ""
    assert (
        "SIGHUP: still refused, still answering 503 policy_refused: "
        f"{config}: cannot read the policy file: File name too long"
    ) in out
    assert "Traceback" not in out


def test_an_empty_or_missing_policy_file_at_the_sighup_keeps_the_hold(restarted, env):
    """recheck26 Ka M2: an empty file at the SIGHUP (an editor's save still being
    written) started the hold's process on the built-in defaults: no budgets, nobody
    paged. It is refused as a reload refuses it, and so is a file that is gone."""
    proc, url = restarted
    _healthz(url, proc, code=503)
    config = Path(env["NIGHTSHIFT_CONFIG"])
    for step in ("empty", "comments", "gone"):
        if step == "gone":
            config.unlink()
        else:
            config.write_text("" if step == "empty" else "# being written\n")
        proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert _healthz(url, proc, code=503)["error"] == "policy_refused", step
    config.write_text("reservations: {ttl_seconds: 1m}\n")
    proc.send_signal(signal.SIGHUP)
    _healthz(url, proc, code=200)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    out = proc.stdout.read() if proc.stdout else ""
    empty = f"the policy file {config} is empty (a save still being written?)"
    assert out.count(empty) == 2, out
    assert "to do that on purpose, write {} in it" in out
    assert f"{config}: cannot read the policy file: No such file or directory" in out
    assert out.count("loads now: starting on it") == 1  # the fixed file's, not before


def _second_run(env: dict[str, str], tmp_path: Path) -> str:
    """What a second ``nightshift run`` on the same database (its own port and a policy
    file it loads) said, once it exited; it must not serve."""
    other = tmp_path / "other.yml"
    other.write_text("reservations: {ttl_seconds: 1m}\n")
    port = free_port()
    proc = spawn({**env, "NIGHTSHIFT_PORT": str(port), "NIGHTSHIFT_CONFIG": str(other)})
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
        raise AssertionError(f"a second run served the same database:\n{out}") from None
    assert proc.returncode != 0, out
    return out


def test_the_hold_keeps_the_one_process_lock_until_it_starts(restarted, env, tmp_path):
    """recheck26 Ka: the process before let go of the database's lock before the exec,
    and the hold took none, so a second `nightshift run` could take the database
    meanwhile (and then the held one could not start). The hold keeps it and hands it on
    to its start."""
    proc, url = restarted
    _healthz(url, proc, code=503)
    assert "another Nightshift (pid " in _second_run(env, tmp_path)
    Path(env["NIGHTSHIFT_CONFIG"]).write_text("reservations: {ttl_seconds: 1m}\n")
    proc.send_signal(signal.SIGHUP)
    _healthz(url, proc, code=200)  # its start took the lock the hold handed on
    assert "another Nightshift (pid " in _second_run(env, tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
