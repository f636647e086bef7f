"""``nightshift run`` killed with SIGKILL while Slack is down: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.outbox import enqueue
from guards.store import Store
from tests.fakes.ports import free_port
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.fakes.slack_signing import SECRET


@pytest.fixture
async def fake():
    server = await FakeSlack().start()
    yield server
    await server.stop()


async def start(env: dict[str, str]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{env['NIGHTSHIFT_PORT']}/healthz"
    deadline = time.monotonic() + 20
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            assert proc.returncode is None, "nightshift exited"
            try:
                r = await client.get(url, timeout=0.5)
                if r.status_code == 200:
                    assert r.json()["transport"] == "http"
                    return proc
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("nightshift did not start in 20 s")


async def test_undelivered_messages_survive_sigkill_and_go_out_once(tmp_path: Path, fake):
    db = tmp_path / "ns.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "NIGHTSHIFT_"))}
    env.update(
        NIGHTSHIFT_DB=str(db),
        NIGHTSHIFT_CONFIG=str(tmp_path / "absent.yml"),
        NIGHTSHIFT_PORT=str(free_port()),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.url,
    )
    fake.fail("chat.postMessage", status=503, retry_after=None, times=10_000)  # Slack is down
    proc = await start(env)

    store = await Store.open(db)  # a second writer on the same file, as an engine would be
    try:

        def write(tx):
            for channel in ("C1", "C2", "C3"):
                enqueue(
                    tx,
                    method="chat.postMessage",
                    args={"channel": channel, "text": f"alert for {channel}"},
                    ref=f"alert:{channel}",
                )
            enqueue(
                tx,
                method="chat.update",
                args={
                    "channel": "$ref:alert:C1.channel",
                    "ts": "$ref:alert:C1.ts",
                    "text": "acked",
                },
            )

        await store.write(write)
    finally:
        await store.close()

    # the worker picks the rows up (it polls the table) and Slack refuses each
    await fake.wait_for(lambda: len(fake.calls_of("chat.postMessage")) >= 3, within=10)
    assert fake.posts() == []
    proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL

    fake.heal()  # Slack is back
    proc = await start(env)
    try:
        await fake.wait_for(lambda: len(fake.posts()) == 3, within=15)
        await fake.wait_for(lambda: fake.calls_of("chat.update", ok=True), within=5)
        await asyncio.sleep(1.0)  # anything sent twice would show up by now
        assert sorted(fake.texts()) == ["alert for C1", "alert for C2", "alert for C3"]
        (update,) = fake.calls_of("chat.update")
        c1 = fake.posts("C1")[0]
        assert (update.args["channel"], update.args["ts"]) == ("C1", c1.response["ts"])
        assert fake.messages[("C1", c1.response["ts"])]["text"] == "acked"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0

    check = await Store.open(db)
    try:
        states = await check.fetch("SELECT state, COUNT(*) FROM outbox GROUP BY state")
    finally:
        await check.close()
    assert [tuple(r) for r in states] == [("delivered", 4)]


async def test_with_slack_and_no_terminal_every_line_written_is_json(tmp_path: Path, fake):
    """audit21 observe L1: "nightshift listening on …" went to stdout as plain text, at
    every start and reload, for a JSON-lines shipper reading both streams."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "NIGHTSHIFT_"))}
    env.update(
        NIGHTSHIFT_DB=str(tmp_path / "ns.db"),
        NIGHTSHIFT_CONFIG=str(tmp_path / "absent.yml"),
        NIGHTSHIFT_PORT=str(free_port()),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.url,
    )
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout, stderr=stderr,
        )  # fmt: skip
        url = f"http://127.0.0.1:{env['NIGHTSHIFT_PORT']}/healthz"
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    if (await client.get(url, timeout=0.5)).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    lines = [*out.read_text().splitlines(), *err.read_text().splitlines()]
    said = [json.loads(line)["msg"] for line in lines]  # each one JSON
    assert any(msg.startswith("listening on http://127.0.0.1:") for msg in said), said
