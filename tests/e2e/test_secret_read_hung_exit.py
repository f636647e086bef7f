"""The real process stops on SIGTERM while a webhook's ``secret_file`` read hangs (review26
R3 H1): the read ran on the loop's default executor, and ``asyncio.run`` waits for that
pool's threads at exit, so the process stayed up until the mount answered. It now runs
on a daemon thread of its own.

The hung mount is put in the process by a ``sitecustomize`` module on its PYTHONPATH:
once the file ``hang`` exists, a read of a secret_file never returns (and says it began
by writing ``reading``)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from tests.e2e.test_process import cli, env, start

__all__ = ["env"]  # the fixture, used by name

HUNG_MOUNT = """
import os, threading
import guards.config_webhooks as _hooks

_read, _dir = _hooks.read_secret_file, os.path.dirname(os.path.abspath(__file__))


def _hung(path):
    if os.path.exists(os.path.join(_dir, "hang")):
        open(os.path.join(_dir, "reading"), "w").close()
        threading.Event().wait()  # a mount that never answers
    return _read(path)


_hooks.read_secret_file = _hung
"""


def test_sigterm_stops_the_process_while_a_secret_read_hangs(
    env: dict[str, str], tmp_path: Path
) -> None:
    secret = tmp_path / "pager.secret"
    secret.write_text("s3cret\n")
    Path(env["NIGHTSHIFT_CONFIG"]).write_text(
        yaml.safe_dump(
            {
                "breakers": {"spend_rate": {"max": "1.00", "per_seconds": "10m"}},
                "webhooks": {"pager": {"url": "http://127.0.0.1:9/", "secret_file": str(secret)}},
                "oncall": {
                    "rotations": [{"name": "primary", "users": ["U0ONCALL"]}],
                    "escalation": [
                        {"notify": "rotation:primary", "after": "0m"},
                        {"notify": "webhook:pager", "after": "0m"},
                    ],
                },
            }
        )
    )
    mount = tmp_path / "mount"
    mount.mkdir()
    (mount / "sitecustomize.py").write_text(HUNG_MOUNT)
    env = {**env, "PYTHONPATH": str(mount)}
    assert cli("migrate", env=env).returncode == 0
    token = cli("token", "create", "acme/alice", env=env).stdout.strip().split()[-1]
    proc = start(env)
    try:
        (mount / "hang").touch()  # the mount stops answering (read at start: it did)
        url = f"http://127.0.0.1:{env['NIGHTSHIFT_PORT']}/v1/reservations"
        auth = {"Authorization": f"Bearer {token}"}
        held = httpx.post(
            url,
            headers=auth,
            json={"scope": "acme/alice/bot", "idempotency_key": "k1", "max_cost_micros": 2_000_000},
        )
        assert held.status_code == 201, held.text
        settled = httpx.post(
            f"{url}/{held.json()['reservation_id']}/settle",
            headers=auth,
            json={"actual_cost_micros": 2_000_000, "outcome": "success"},
        )
        assert settled.status_code == 200, settled.text
        deadline = time.monotonic() + 30  # the breaker trips, its P0 pages the webhook
        while not (mount / "reading").exists() and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.1)
        assert (mount / "reading").exists(), "no delivery read the secret_file"
        with sqlite3.connect(env["NIGHTSHIFT_DB"]) as db:
            assert db.execute("SELECT COUNT(*) FROM webhook_deliveries").fetchone()[0] == 1
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("SIGTERM did not stop the process within 10 s") from None
        assert proc.returncode == 0, out
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
