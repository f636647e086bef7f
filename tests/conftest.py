"""Shared fixtures: a real app on 127.0.0.1 with a real SQLite file, driven over HTTP."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import Nightshift
from bot.settings import Settings
from guards.clock import Clock, ManualClock
from guards.config import parse_policy
from guards.migrations import apply_migrations, connect
from guards.store import Store
from guards.tokens import create_token
from tests.fakes.tls import tls


@dataclass
class RunningApp:
    ns: Nightshift
    clock: Clock
    client: httpx.AsyncClient
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.ns.url

    @property
    def store(self) -> Store:
        return self.ns.store

    async def token(self, scope: str) -> str:
        """A bearer token for ``scope`` (created once per scope)."""
        if scope not in self.tokens:
            _, raw = await self.ns.store.write(lambda tx: create_token(tx, scope=scope))
            self.tokens[scope] = raw
        return self.tokens[scope]

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        return await self.client.request(method, path, json=json, content=content, headers=h)


AppFactory = Callable[..., Awaitable[RunningApp]]

#: The fakes of what an app talks to: set up before ``app_factory`` whatever a test's
#: arguments say, so that they are torn down after its apps (fixtures end in reverse), as
#: Slack stays up while Nightshift stops. Stopped first, a fake Slack cost 1 s in the
#: teardowns of 176 tests (the outbox's drain retrying a Slack that was gone), and 16 s in
#: a few (the fake's stop waiting on a post under way until the Slack client's 15 s timeout).
OUTLIVE_THE_APPS = ("fake_slack", "ticket_slack", "webhook_receiver")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", None)  # (set up in this order)
        if names is None or "app_factory" not in names:
            continue
        fakes = [name for name in names if name in OUTLIVE_THE_APPS]
        names[:] = fakes + [name for name in names if name not in OUTLIVE_THE_APPS]


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database with every migration applied, made once per process: the apps and
    stores below start on a copy of it (as after ``nightshift migrate``). Migrating a new
    file is a transaction per migration, each synced to disk: 0.1 s or more at every app
    a scenario test starts. Starting on a new file is left to the end-to-end tests (each
    process starts on one), tests/unit/test_migrations.py, and any test naming its db."""
    path = tmp_path_factory.mktemp("migrated") / "migrated.db"
    conn = connect(path)
    try:
        apply_migrations(conn, now=ManualClock().now())
    finally:
        conn.close()  # (the last connection: the WAL is checkpointed into the file)
    return path


@pytest.fixture
async def app_factory(tmp_path: Path, migrated: Path) -> AsyncIterator[AppFactory]:
    """Start whole apps in-process; each is stopped when the test ends. Unless ``db`` (or
    NIGHTSHIFT_DB in ``env``) names another, each starts on a copy of ``migrated``."""
    started: list[RunningApp] = []

    async def make(
        policy: dict[str, Any] | None = None,
        *,
        clock: Clock | None = None,
        env: dict[str, str] | None = None,
        db: Path | None = None,
    ) -> RunningApp:
        own = tmp_path / f"app{len(started)}.db"
        values: dict[str, Any] = {
            "NIGHTSHIFT_DB": str(db or own),
            "NIGHTSHIFT_CONFIG": str(tmp_path / "absent.yml"),
            "NIGHTSHIFT_HOST": "127.0.0.1",
            "NIGHTSHIFT_PORT": 0,
            **(env or {}),
        }
        # (a file a start that failed left there is used as it is, as before)
        if values["NIGHTSHIFT_DB"] == str(own) and not own.exists():
            shutil.copy2(migrated, own)  # (0600, as a new one)
        settings = Settings(**values)
        ns = Nightshift(
            settings=settings,
            policy=parse_policy(policy or {}),
            clock=clock or ManualClock(),
        )
        await ns.start()
        client = httpx.AsyncClient(base_url=ns.url, timeout=30, verify=tls())
        app = RunningApp(ns=ns, clock=ns.clock, client=client)
        started.append(app)
        return app

    yield make
    for app in reversed(started):
        await app.client.aclose()
        await app.ns.stop()


@pytest.fixture
async def store(tmp_path: Path, migrated: Path) -> AsyncIterator[Store]:
    """A real SQLite store with every migration applied (a copy of ``migrated``), on a
    manual clock."""
    shutil.copy2(migrated, tmp_path / "store.db")
    s = await Store.open(tmp_path / "store.db", clock=ManualClock())
    yield s
    await s.close()
