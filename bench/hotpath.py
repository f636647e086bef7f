"""The ledger hot path over HTTP, against a bare aiohttp endpoint measured in the same run.

wrk (64 keep-alive connections, one thread) drives, in turn, for each of three rounds:
1. a bare aiohttp JSON endpoint (the floor: parse a JSON body, answer JSON);
2. the same plus group commit of one INSERT per request (the issue's prototype);
3. ``nightshift run`` with reserve→settle pairs, breakers enabled;
4. the same with breakers disabled (3 and 4 swap places every other round);
5. reserve-only load, for the reserve latency percentiles;
6. ``nightshift run`` with the ledger's reserve and settle replaced by canned answers
   (HTTP, validation, authentication, group commit and the answer all real): the
   ceiling of everything around the ledger, which no ledger can beat.

Every 2xx from Nightshift is on disk before it is sent (WAL, synchronous=FULL).
Ratios are taken within a round (the shared machine's speed drifts); medians are quoted.
Run: ``make bench`` or ``python -m bench.hotpath [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.wrk_load import CONNECTIONS, LUA_PAIRS, LUA_RESERVE_ONLY, wrk

PY = sys.executable

BARE_APP = """
import json, sys
from aiohttp import web
async def handle(request):
    body = json.loads(await request.read())
    return web.json_response({"ok": True, "echo": body.get("scope")}, status=201)
app = web.Application()
app.router.add_post("/v1/reservations", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""

# The prototype the issue describes: the bare endpoint, plus group commit of one INSERT
# per request (WAL, synchronous=FULL, BEGIN/COMMIT on a writer thread, a reply after
# its batch is on disk). What is left between this and Nightshift is the ledger itself.
GROUP_APP = """
import asyncio, json, sqlite3, sys
from concurrent.futures import ThreadPoolExecutor
from aiohttp import web
writer = ThreadPoolExecutor(1)
conn = sqlite3.connect(sys.argv[2], isolation_level=None, check_same_thread=False)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=FULL")
conn.execute("CREATE TABLE holds (scope TEXT, key TEXT, micros INTEGER)")
pending = []
async def batches(app):
    loop = asyncio.get_running_loop()
    wake = app["wake"] = asyncio.Event()
    async def run():
        while True:
            await wake.wait()
            wake.clear()
            while pending:
                batch = pending[:]
                del pending[:]
                await loop.run_in_executor(writer, conn.execute, "BEGIN IMMEDIATE")
                for _, body in batch:
                    conn.execute("INSERT INTO holds VALUES (?, ?, ?)",
                                 (body.get("scope"), body.get("idempotency_key"),
                                  body.get("max_cost_micros")))
                await loop.run_in_executor(writer, conn.execute, "COMMIT")
                for fut, body in batch:
                    fut.set_result(body.get("scope"))
    task = asyncio.create_task(run())
    yield
    task.cancel()
async def handle(request):
    body = json.loads(await request.read())
    fut = asyncio.get_running_loop().create_future()
    pending.append((fut, body))
    request.app["wake"].set()
    return web.json_response({"ok": True, "echo": await fut}, status=201)
app = web.Application()
app.cleanup_ctx.append(batches)
app.router.add_post("/v1/reservations", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""

# Experiment 6: the process as it runs, but reserve and settle answer at once (inside
# the batch, after authentication) without touching the ledger. Bench-only patching.
CANNED_RUN = """
import itertools, sys
from guards.ledger import Ledger
ids = itertools.count()
def reserve(self, tx, *, token, req):
    return True, {"reservation_id": f"res_canned{next(ids):08x}", "held_micros": 1000,
                  "expires_at": "2026-01-01T00:10:00Z", "state": "held"}
def settle(self, tx, *, token, res_id, req):
    return {"reservation_id": res_id, "state": "settled", "charged_micros": 700,
            "released_micros": 300, "overrun_micros": 0}
Ledger.reserve, Ledger.settle = reserve, settle
from bot.cli import main
sys.exit(main(["run"]))
"""

POLICY = """
budgets:
  defaults:
    agent: {day: 100000.00}
    user: {day: 1000000.00}
  scopes:
    bench: {day: 10000000.00, month: 100000000.00}
reservations: {ttl_seconds: 600}
breakers:
  enabled: %s
  spend_rate: {max: 100000.00, per_seconds: 600}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def run_floor(seconds: int, app: str) -> dict[str, Any]:
    """One of the floors (``BARE_APP``, ``GROUP_APP``) under the reserve-only script."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([PY, "-c", app, str(port), str(Path(tmp) / "floor.db")])
        try:
            wait_up(f"http://127.0.0.1:{port}/", proc)
            return wrk(f"http://127.0.0.1:{port}", LUA_RESERVE_ONLY, seconds)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def run_nightshift(
    seconds: int, *, breakers: bool, script: str, canned: bool = False
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "NIGHTSHIFT_"))},
            "NIGHTSHIFT_DB": str(Path(tmp) / "bench.db"),
            "NIGHTSHIFT_CONFIG": str(Path(tmp) / "policy.yml"),
            "NIGHTSHIFT_PORT": str(free_port()),
        }
        Path(env["NIGHTSHIFT_CONFIG"]).write_text(POLICY % ("true" if breakers else "false"))
        made = subprocess.run(
            [PY, "-m", "bot", "token", "create", "bench"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        token = made.stdout.split()[-1]
        proc = subprocess.Popen(
            [PY, "-c", CANNED_RUN] if canned else [PY, "-m", "bot", "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{env['NIGHTSHIFT_PORT']}"
        try:
            wait_up(url + "/healthz", proc)
            result = wrk(url, script, seconds, token)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
        verify = subprocess.run(
            [PY, "-m", "bot", "ledger", "verify"], env=env, capture_output=True, text=True
        )
        result["ledger_ok"] = verify.returncode == 0
        return result


def _line(name: str, r: dict[str, Any], bare: float) -> str:
    pairs = f"{r['pairs'] / r['seconds']:7.0f} pairs/s" if r["pairs"] else " " * 15
    return (
        f"{name:<30} {r['rps']:8.0f} req/s  {pairs}  p50 {r['p50_us'] / 1000:6.2f} ms"
        f"  p99 {r['p99_us'] / 1000:6.2f} ms  ratio to bare {r['rps'] / bare:.2f}"
        f"  non-2xx {r['non2xx'] + r['refused']}  errors {r['errors']}"
        f"  ledger verify {'OK' if r.get('ledger_ok', True) else 'BROKEN'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of the four runs; medians are reported"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk (a Debian package)")
        return 1
    s = args.seconds
    cpu = platform.processor() or platform.machine()
    print(
        f"== hot path: {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {cpu}, "
        f"wrk -t1 -c{CONNECTIONS} -d{s}s, {args.rounds} rounds"
    )
    # The machine is shared and its speed drifts: the runs of a round follow each other,
    # ratios are taken within a round, and the medians over rounds are what to quote.
    runs: dict[str, list[dict[str, Any]]] = {
        "bare": [],
        "group": [],
        "on": [],
        "off": [],
        "only": [],
        "canned": [],
    }
    for n in range(1, args.rounds + 1):
        bare = run_floor(s, BARE_APP)
        group = run_floor(s, GROUP_APP)
        # on and off swap places every round, so neither always runs in the same slot
        if n % 2:
            on = run_nightshift(s, breakers=True, script=LUA_PAIRS)
            off = run_nightshift(s, breakers=False, script=LUA_PAIRS)
        else:
            off = run_nightshift(s, breakers=False, script=LUA_PAIRS)
            on = run_nightshift(s, breakers=True, script=LUA_PAIRS)
        only = run_nightshift(s, breakers=True, script=LUA_RESERVE_ONLY)
        canned = run_nightshift(s, breakers=True, script=LUA_PAIRS, canned=True)
        for key, r in (
            ("bare", bare),
            ("group", group),
            ("on", on),
            ("off", off),
            ("only", only),
            ("canned", canned),
        ):
            runs[key].append(r)
        print(f"-- round {n}")
        print(_line("bare aiohttp JSON endpoint", bare, bare["rps"]))
        print(_line("bare + group commit, 1 INSERT", group, bare["rps"]))
        print(_line("ledger pairs, breakers on", on, bare["rps"]))
        print(_line("ledger pairs, breakers off", off, bare["rps"]))
        print(_line("reserve only", only, bare["rps"]))
        print(_line("pairs, ledger canned", canned, bare["rps"]))

    def med(key: str, field: str) -> float:
        return float(statistics.median(r[field] for r in runs[key]))

    def med_ratio(a: str, b: str) -> float:
        return float(
            statistics.median(x["rps"] / y["rps"] for x, y in zip(runs[a], runs[b], strict=True))
        )

    pairs = statistics.median(r["pairs"] / r["seconds"] for r in runs["on"])
    broken = sum(not r["ledger_ok"] for key in ("on", "off", "only") for r in runs[key])
    print(f"== medians over {args.rounds} rounds")
    print(
        f"bare aiohttp JSON endpoint   {med('bare', 'rps'):8.0f} req/s"
        "   (load generator floor; must be >= 6000)"
    )
    print(
        f"bare + group commit, 1 INSERT {med('group', 'rps'):7.0f} req/s"
        f"   ratio to bare {med_ratio('group', 'bare'):.2f}  (the issue's prototype)"
    )
    print(
        f"ledger pairs, breakers on    {med('on', 'rps'):8.0f} req/s  {pairs:7.0f} pairs/s"
        f"  p50 {med('on', 'p50_us') / 1000:.2f} ms  p99 {med('on', 'p99_us') / 1000:.2f} ms"
    )
    print(f"ledger pairs, breakers off   {med('off', 'rps'):8.0f} req/s")
    print(
        f"reserve only                 {med('only', 'rps'):8.0f} req/s"
        f"  p50 {med('only', 'p50_us') / 1000:.2f} ms  p99 {med('only', 'p99_us') / 1000:.2f} ms"
        "  (target p99 <= 25 ms)"
    )
    print(
        f"pairs, ledger canned         {med('canned', 'rps'):8.0f} req/s"
        f"   ratio to bare {med_ratio('canned', 'bare'):.2f}"
        "  (the ceiling of everything around the ledger)"
    )
    print(f"ledger verify after every run: {'OK' if not broken else f'{broken} BROKEN'}")
    print(f"RATIO ledger/bare            {med_ratio('on', 'bare'):.2f}  (target >= 0.5)")
    print(f"RATIO breakers on/off        {med_ratio('on', 'off'):.2f}  (target >= 0.9)")
    return 0 if not broken else 1


if __name__ == "__main__":
    raise SystemExit(main())
