"""Starts ``nightshift run`` refuses, under the real process (audit26 A1): a refused start
leaves no file behind and an older database at its schema; a policy file that is not a
file is refused at start and at a SIGHUP without holding either; the listen address is
said as a URL writes it, and a host that does not resolve says so."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from guards import migrations
from tests.e2e.test_process import cli, env, spawn, start
from tests.fakes.ports import free_port
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.fakes.slack_signing import SECRET
from tests.fakes.tls import tls

__all__ = ["env"]


@pytest.fixture
async def fake():
    server = await FakeSlack().start()
    yield server
    await server.stop()


async def run_refused(env: dict[str, str]) -> tuple[int, str]:
    """``nightshift run`` in this loop (the fake Slack answers meanwhile): exit code, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("nightshift run was not refused within 30 s") from None
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def slack_env(env: dict[str, str], fake: FakeSlack, *, mode: str) -> dict[str, str]:
    tokens = (
        {"SLACK_BOT_TOKEN": "xoxb-mistyped", "SLACK_SIGNING_SECRET": SECRET}
        if mode == "http"
        else {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "xapp-mistyped"}
    )
    return {**env, **tokens, "SLACK_API_URL": fake.url}


@pytest.mark.parametrize(("mode", "token"), [("http", "BOT"), ("socket", "APP")])
async def test_a_token_slack_refuses_stops_the_start_before_any_file_is_made(
    env, fake, tmp_path, mode, token
):
    """audit26 A1 M2: the database and its lock file were made and migrated first."""
    rc, err = await run_refused(slack_env(env, fake, mode=mode))
    assert rc == 2, err
    assert f"Slack refuses SLACK_{token}_TOKEN (invalid_auth)" in err
    assert "xoxb-mistyped" not in err and "xapp-mistyped" not in err  # never printed
    assert fake.calls_of("auth.test")  # Slack was asked: the refusal is its word
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no ns.db, -wal, -shm, .lock


async def test_a_refused_token_leaves_an_older_database_at_its_schema(env, fake, monkeypatch):
    """audit26 A1 M2, the upgrade: a new version started with a mistyped token migrated
    the database, and the old version rolled back to then refused it as too new."""
    every = migrations._migrations()
    monkeypatch.setattr(migrations, "_migrations", lambda *_: every[:-1])
    conn = migrations.connect(env["NIGHTSHIFT_DB"])
    migrations.apply_migrations(conn, now=0.0)
    conn.close()
    monkeypatch.undo()

    def schema() -> list[int]:
        with sqlite3.connect(env["NIGHTSHIFT_DB"]) as db:
            return [v for (v,) in db.execute("SELECT version FROM schema_migrations")]

    before = schema()
    assert max(before) == every[-2][0]
    rc, err = await run_refused(slack_env(env, fake, mode="http"))
    assert rc == 2 and "Slack refuses SLACK_BOT_TOKEN (invalid_auth)" in err, err
    assert schema() == before
    assert not lock_made(env["NIGHTSHIFT_DB"])


def lock_made(db: str) -> bool:
    return Path(f"{db}.lock").exists()


def test_escalation_steps_out_of_order_refuse_the_start(env, tmp_path):
    """audit26 A1 M1: the step listed second fired with the first, at 15m, not at 5m."""
    Path(env["NIGHTSHIFT_CONFIG"]).write_text(
        "oncall:\n"
        "  rotations: [{name: primary, users: [U01]}, {name: secondary, users: [U02]}]\n"
        "  escalation:\n"
        "    - {notify: 'rotation:primary', after: 15m}\n"
        "    - {notify: 'rotation:secondary', after: 5m}\n"
    )
    out = cli("run", env=env)
    assert out.returncode == 2, out.stderr
    assert (
        "  oncall.escalation.1.after: 5m is sooner than the 15m of the step before it"
        " (oncall.escalation.0.after): steps fire in the order listed and each `after` counts"
        " from when the alert fired" in out.stderr
    )
    assert "list the steps in order of `after`" in out.stderr
    assert not Path(env["NIGHTSHIFT_DB"]).exists()


def test_a_fifo_as_the_policy_file_is_refused_at_once(env, tmp_path):
    """audit26 A1 L5: the start blocked in open(2) for ever, deaf to SIGTERM."""
    fifo = tmp_path / "policy.fifo"
    os.mkfifo(fifo)
    out = cli("run", env={**env, "NIGHTSHIFT_CONFIG": str(fifo)})  # (60 s timeout)
    assert out.returncode == 2, out.stderr
    assert f"{fifo}: the policy file is a FIFO (a named pipe), not a regular file" in out.stderr
    assert not Path(env["NIGHTSHIFT_DB"]).exists()


def test_a_sighup_onto_a_fifo_keeps_serving_on_the_policy_it_has(env, tmp_path):
    """audit26 A1 L5, at a reload: reading the FIFO would have held the whole server."""
    policy = Path(env["NIGHTSHIFT_CONFIG"])
    policy.write_text("timezone: UTC\n")
    proc = spawn(env)
    url = f"http://127.0.0.1:{env['NIGHTSHIFT_PORT']}/healthz"
    try:
        _wait_healthy(proc, url)
        policy.unlink()
        os.mkfifo(policy)
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert httpx.get(url, timeout=3, verify=tls()).status_code == 200  # it still answers
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:  # held in open(2): SIGTERM is not even heard
            proc.kill()
            rc = proc.wait()
    out = proc.stdout.read() if proc.stdout else ""
    assert rc == 0, out
    assert f"SIGHUP: {policy}: the policy file is a FIFO (a named pipe), not a regular file" in out
    assert "still running on the policy it last applied (at start" in out


def _wait_healthy(proc, url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(url, timeout=0.5, verify=tls()).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("nightshift did not start in 20 s")


def test_a_host_that_does_not_resolve_says_so(env):
    """audit26 A1 L8: it said "Unknown error -2"."""
    out = cli("run", env={**env, "NIGHTSHIFT_HOST": "no.such.host.invalid"})
    assert out.returncode == 1, out.stderr
    assert (
        f"cannot listen on no.such.host.invalid:{env['NIGHTSHIFT_PORT']}: the host name"
        " 'no.such.host.invalid' does not resolve (" in out.stderr
    )
    assert "set NIGHTSHIFT_HOST to an address of this machine" in out.stderr
    assert "Unknown error" not in out.stderr
    assert not Path(env["NIGHTSHIFT_DB"]).exists()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_an_ipv6_listen_address_is_logged_as_a_url_writes_it(env):
    """audit26 A1 L9: "listening on http://::1:18517" is no URL."""
    port = free_port()
    proc = spawn({**env, "NIGHTSHIFT_HOST": "::1", "NIGHTSHIFT_PORT": str(port)})
    try:
        _wait_healthy(proc, f"http://[::1]:{port}/healthz")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    out = proc.stdout.read() if proc.stdout else ""
    assert f"listening on http://[::1]:{port} (transport: shell)" in out, out
    assert f"http://::1:{port}" not in out


def test_the_permission_warning_is_for_database_files_only(env, tmp_path):
    """audit26 A1 L6: a folder as NIGHTSHIFT_DB got "chmod 600 /tmp*" as advice."""
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    out = cli("run", env={**env, "NIGHTSHIFT_DB": str(folder)})
    assert out.returncode == 1 and "it is a folder: name a database file" in out.stderr
    assert "chmod" not in out.stdout + out.stderr
    assert cli("migrate", env=env).returncode == 0
    os.chmod(env["NIGHTSHIFT_DB"], 0o644)  # a database file others can read: still said
    proc = start(env)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    said = proc.stdout.read() if proc.stdout else ""
    assert f"chmod 600 {env['NIGHTSHIFT_DB']}*" in said
