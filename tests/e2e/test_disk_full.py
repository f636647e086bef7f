"""A disk that takes no more writes, under the real process: what an operator watches says so.

The process's file-size limit (RLIMIT_FSIZE, set from outside with ``prlimit``) at 0 makes
every write to a file fail, as a full disk does (CPython ignores the SIGXFSZ that would
otherwise stop it). audit16 observability H1: ``/healthz`` answered ``200 ok`` and the last
commit's gauge stayed fresh while every reservation got a 503, because an empty transaction
commits without writing.
"""

from __future__ import annotations

import resource
import sqlite3
import time

import httpx

from tests.e2e.test_process import cli, env, start

__all__ = ["env"]

BODY = {"scope": "acme/alice/bot", "max_cost_micros": 1000}


def last_commit(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("nightshift_last_commit_timestamp_seconds "):
            return float(line.split()[-1])
    raise AssertionError("no nightshift_last_commit_timestamp_seconds")


def test_a_full_disk_fails_healthz_and_stales_the_last_commit(env):
    token = cli("token", "create", "acme", env=env).stdout.split()[-1]
    proc = start(env)
    base = f"http://127.0.0.1:{env['NIGHTSHIFT_PORT']}"
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, timeout=15) as http:
            assert (
                http.post("/v1/reservations", json={**BODY, "idempotency_key": "a"}, headers=auth)
            ).status_code == 201
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
            try:
                refused = http.post(
                    "/v1/reservations", json={**BODY, "idempotency_key": "b"}, headers=auth
                )
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"] == "storage_unavailable"
                health = http.get("/healthz")
                assert health.status_code == 503, health.text
                assert health.json()["error"] == "storage_unavailable"
                stale_from = last_commit(http.get("/metrics").text)
                time.sleep(3)  # the alerts tick (every 2 s) writes a row each time it runs
                assert last_commit(http.get("/metrics").text) == stale_from
                assert time.time() - stale_from >= 3
            finally:
                resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
            for _ in range(50):  # the server goes on by itself
                if http.get("/healthz").status_code == 200:
                    break
                time.sleep(0.2)
            assert http.get("/healthz").status_code == 200
            again = http.post(
                "/v1/reservations", json={**BODY, "idempotency_key": "b"}, headers=auth
            )
            assert again.status_code == 201, again.text
            assert "Idempotent-Replayed" not in again.headers  # the 503 wrote nothing
            assert last_commit(http.get("/metrics").text) > stale_from
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    with sqlite3.connect(env["NIGHTSHIFT_DB"]) as db:
        held = db.execute("SELECT COUNT(*) FROM reservations WHERE state = 'held'").fetchone()
    assert held[0] == 2
    verify = cli("ledger", "verify", env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
