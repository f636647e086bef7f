"""Slash-command ack latency in HTTP mode, idle and while the ledger hot path is under load.

Three processes: ``nightshift run`` in HTTP mode (its Web API pointed at a fake Slack
in this process, for ``auth.test``), a load generator (``--load``: concurrent
reserve→settle pairs over httpx), and this one, which sends signed ``/agent``
commands one after another and times each answer (the ack carries the reply).

The floor is the same commands with no load, measured in the same run.
Target (the Slack issue): p99 ack ≤ 200 ms under load; Slack's own deadline is 3 s.

Run: ``python -m bench.slack_ack [--seconds 8] [--concurrency 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

PY = sys.executable
SECRET = "bench-signing-secret"
TARGET_P99_MS = 200.0
COMMANDS = ("help", "budget acme/alice", "breakers")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# -- the load generator (a separate process) ---------------------------------------------------


async def load(url: str, token: str, seconds: float, concurrency: int) -> dict[str, Any]:
    """Reserve→settle pairs from ``concurrency`` keep-alive connections for ``seconds``."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    pairs = refused = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as c:

        async def worker(n: int) -> None:
            nonlocal pairs, refused
            i = 0
            while time.monotonic() < deadline:
                i += 1
                body = {
                    "scope": f"acme/alice/bot{n % 8}/c{n}",
                    "idempotency_key": f"w{n}-{i}",
                    "max_cost_micros": 1000,
                }
                async with c.post("/v1/reservations", json=body) as r:
                    answer = await r.json()
                    if r.status != 201:
                        refused += 1
                        continue
                rid = answer["reservation_id"]
                settle = {"actual_cost_micros": 1, "outcome": "success"}
                async with c.post(f"/v1/reservations/{rid}/settle", json=settle) as s:
                    await s.read()
                    pairs += s.status == 200

        started = time.monotonic()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        elapsed = time.monotonic() - started
    return {"pairs": pairs, "refused": refused, "pairs_per_second": pairs / elapsed}


# -- the measuring side -------------------------------------------------------------------------


def signed(text: str) -> tuple[bytes, dict[str, str]]:
    body = urlencode(
        {
            "team_id": "T0NIGHT",
            "channel_id": "C0OPS",
            "user_id": "U0BENCH",
            "user_name": "bench",
            "command": "/agent",
            "text": text,
            "response_url": "http://127.0.0.1:9/unused",
            "trigger_id": "1.2.3",
        }
    )
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": str(signature),
    }
    return body.encode(), headers


async def measure(client: httpx.AsyncClient, seconds: float) -> dict[str, list[float]]:
    """Each command in turn, one at a time, every 20 ms, for ``seconds``: ms per answer."""
    out: dict[str, list[float]] = {c: [] for c in COMMANDS}
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        text = COMMANDS[i % len(COMMANDS)]
        i += 1
        body, headers = signed(text)
        started = time.perf_counter()
        r = await client.post("/slack/events", content=body, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if r.status_code != 200 or "Working on it" in r.text:
            raise RuntimeError(f"/agent {text}: {r.status_code} {r.text[:200]}")
        out[text].append(elapsed)
        await asyncio.sleep(0.02)
    return out


def summary(name: str, samples: dict[str, list[float]]) -> dict[str, float]:
    every = [v for values in samples.values() for v in values]
    row = {"n": len(every), "p50": pct(every, 50), "p99": pct(every, 99), "max": max(every)}
    print(
        f"  {name:<22} n={row['n']:<5} p50 {row['p50']:6.1f} ms"
        f"   p99 {row['p99']:6.1f} ms   max {row['max']:6.1f} ms"
    )
    for text, values in samples.items():
        print(
            f"      /agent {text:<18} p50 {pct(values, 50):6.1f} ms   p99 {pct(values, 99):6.1f} ms"
        )
    return row


async def spawn(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        PY,
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def run(seconds: float, concurrency: int) -> int:
    from tests.fakes.slack_api import BOT_TOKEN, FakeSlack

    fake = await FakeSlack().start()
    tmp = Path(tempfile.mkdtemp(prefix="nightshift-ack-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "NIGHTSHIFT_"))}
    env.update(
        NIGHTSHIFT_DB=str(tmp / "ns.db"),
        NIGHTSHIFT_CONFIG=str(tmp / "nightshift.yml"),
        NIGHTSHIFT_PORT=str(port),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.url,
    )
    (tmp / "nightshift.yml").write_text("admins: [U0BENCH]\n")
    made, _ = await (await spawn("-m", "bot", "token", "create", "acme", env=env)).communicate()
    token = made.decode().split()[-1]
    server = await spawn("-m", "bot", "run", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            for _ in range(200):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            await measure(client, 1.0)  # warm-up: auth.test, imports, caches
            print(f"slash-command ack latency, HTTP mode, {os.cpu_count()} CPUs")
            idle = summary("idle (floor)", await measure(client, seconds))
            args = (url, token, str(seconds + 2), str(concurrency))
            generator = await spawn("-m", "bench.slack_ack", "--load", *args)
            await asyncio.sleep(1.0)  # let the load reach its pace
            loaded = summary(f"under load ({concurrency} conns)", await measure(client, seconds))
            out, _ = await asyncio.wait_for(generator.communicate(), seconds + 30)
            result = json.loads(out.decode().strip().splitlines()[-1])
        print(
            f"  ledger load: {result['pairs_per_second']:.0f} reserve→settle pairs/s"
            f" ({result['pairs']} pairs, {result['refused']} refused)"
        )
        print(
            f"  ratio loaded/idle: p50 x{loaded['p50'] / idle['p50']:.1f},"
            f" p99 x{loaded['p99'] / idle['p99']:.1f}"
        )
        verdict = "PASS" if loaded["p99"] <= TARGET_P99_MS else "FAIL"
        print(
            f"  target p99 ≤ {TARGET_P99_MS:.0f} ms under load: {verdict} ({loaded['p99']:.1f} ms)"
        )
        return 0
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 15)
        await fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.slack_ack", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per phase (default 8)")
    parser.add_argument("--concurrency", type=int, default=32, help="load connections (32)")
    parser.add_argument("--load", nargs=4, metavar=("URL", "TOKEN", "SECONDS", "CONCURRENCY"))
    args = parser.parse_args(argv)
    if args.load:
        url, token, seconds, concurrency = args.load
        print(json.dumps(asyncio.run(load(url, token, float(seconds), int(concurrency)))))
        return 0
    return asyncio.run(run(args.seconds, args.concurrency))


if __name__ == "__main__":
    raise SystemExit(main())
