"""Which namespaces have a digest and when each began (bot/digest/namespaces.py): what
the digest and `/agent digest` say of them, and what the list costs."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from guards.clock import ManualClock

BERLIN = ZoneInfo("Europe/Berlin")
ADMIN = "U0ADMIN"
POLICY = {
    "timezone": "Europe/Berlin",
    "admins": [ADMIN],
    "channels": {"digest": "C0DIGEST", "alerts": "C0ALERTS"},
}


def berlin(y, mo, d, h=0, mi=0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN).timestamp()


def route(tx, rid: str, scope: str, at: float) -> None:
    tx.execute(
        "INSERT INTO routing_decisions (id, at, scope, namespace, intent, tier, wanted_tier,"
        " model, degraded, source, reason) VALUES (?, ?, ?, ?, 'chat', 'small', 'small',"
        " 'claude-haiku-4-5', 0, 'rule', 'r')",
        (rid, at, scope, scope.split("/")[0]),
    )


def run(tx, rid: str, scope: str, at: float) -> None:
    tx.execute(
        "INSERT INTO job_runs (id, job, scope, scheduled_for, decided_at, state)"
        " VALUES (?, 'tick', ?, ?, ?, 'succeeded')",
        (rid, scope, at, at),
    )


async def test_the_namespace_list_reads_one_index_entry_per_namespace_not_its_routes(
    slack_http,
):
    """review26 H1: a namespace younger than 4 days had all its routes read twice (an
    index without `at`), 3-5 s at 400,000 routes on every digest tick and `/agent digest`."""
    from bot.digest import namespaces

    slack = await slack_http(POLICY, clock=ManualClock(berlin(2026, 1, 5, 12)))
    app = slack.app
    app.ns.scheduler.pause_job("digest")
    now = app.clock.now()

    def seed(tx):
        # a namespace with scopes of its own and an agent scope equal to it (review26 L8:
        # it was listed twice), names that sort between it and its agents, and a
        # route-only namespace that began today
        for i, (scope, ago) in enumerate(
            (
                ("routes", 3 * 86400),
                ("routes/alice/bot", 3600),
                ("routes-x/a/b", 2 * 86400),
                ("routes.y/a/b", 86400),
                ("routes0/a/b", 86400),
            )
        ):
            route(tx, f"rt{i}", scope, now - ago)
        for i in range(40):
            route(tx, f"new{i}", f"newns/u{i % 4}/bot", berlin(2026, 1, 5, 3, i))

    await app.store.write(seed)
    names = ["newns", "routes", "routes-x", "routes.y", "routes0"]
    assert [n for n, _ in await app.ns.extras["digest"].namespaces()] == names
    typo = await slack.command("digest nope")
    assert f"(known: {', '.join(names)})" in typo["text"], typo
    first = await slack.command("digest yesterday newns")
    assert first["text"].startswith("`newns` began today at 03:00: it has no full day yet."), first

    # every read of the routes is one index seek per namespace, whatever their count
    reads = [
        sql
        for name, sql in vars(namespaces).items()
        if not name.startswith("__")
        if isinstance(sql, str) and "routing_decisions" in sql
    ]
    assert reads
    for sql in reads:
        args = ("routes",) * sql.count("?")
        rows = await app.store.fetch(f"EXPLAIN QUERY PLAN {sql}", args)
        plan = " | ".join(row[3] for row in rows)
        assert "INDEX routing_decisions_namespace_at" in plan, (sql, plan)
        assert "SCAN routing_decisions" not in plan and "MULTI-INDEX" not in plan, plan
        assert "scope_settled" not in plan, plan


async def test_a_job_that_moved_namespaces_leaves_its_new_namespace_its_first_day(slack_http):
    """review26 L8: a job's namespace came from its newest run but its first day from its
    first run in any namespace: moved today, its new namespace looked months old (a full
    digest of a yesterday it was not there), and the old one had no digest at all."""
    slack = await slack_http(POLICY, clock=ManualClock(berlin(2026, 1, 5, 3, 0)))
    app = slack.app
    app.ns.scheduler.pause_job("digest")

    def seed(tx):
        for day in range(20, 32):
            run(tx, f"old{day}", "old/alice/ticker", berlin(2025, 12, day, 3))
        for day in range(1, 5):
            run(tx, f"jan{day}", "old/alice/ticker", berlin(2026, 1, day, 3))
        run(tx, "moved", "fresh/alice/ticker", berlin(2026, 1, 5, 3, 0))

    await app.store.write(seed)
    app.clock.set(berlin(2026, 1, 5, 9, 0))
    poster = app.ns.extras["digest"]
    assert await poster.tick() == [("fresh", date(2026, 1, 4)), ("old", date(2026, 1, 4))]
    rows = await app.store.fetch("SELECT namespace, text FROM digests ORDER BY namespace")
    texts = {row[0]: row[1] for row in rows}
    assert "Nightshift digest · fresh · Mon 2026-01-05 so far (09:00" in texts["fresh"]
    assert "Nightshift digest · old · Sun 2026-01-04 (Europe/Berlin)" in texts["old"]
    reply = await slack.command("digest yesterday fresh")
    assert reply["text"].startswith("`fresh` began today at 03:00: it has no full day yet."), reply


REFUSING = {
    **POLICY,
    "budgets": {"defaults": {"agent": {"day": "10.00"}}},
    "breakers": {"spend_rate": None},
}
HAIKU = "claude-haiku-4-5"


async def reserve(app, scope: str, key: str, *, micros: int, model: str = HAIKU) -> int:
    tok = await app.token(scope.rsplit("/", 1)[0])
    r = await app.request(
        "POST",
        "/v1/reservations",
        token=tok,
        json={"scope": scope, "idempotency_key": key, "max_cost_micros": micros, "model": model},
    )
    return int(r.status_code)


async def test_a_namespace_whose_every_call_was_refused_gets_its_digest(slack_http):
    """recheck27 Kc M1: a namespace whose only traffic was refused (here by a model's kill
    switch, which fires no alert of the namespace's) had not "shown up": no digest, and
    `/agent digest nu` said it never had, though its refusals were recorded. A refusal
    dates its namespace from when it came (recheck27 Kd L2: from the start of its day,
    "began today at 00:00" of a call refused at 15:38), unless the namespace showed up
    some other way before; a row counted before migration 0049 (no time) from the start
    of its day, and `digest yesterday` then names no time."""
    slack = await slack_http(REFUSING, clock=ManualClock(berlin(2026, 1, 4, 22)))
    app = slack.app
    app.ns.scheduler.pause_job("digest")
    poster = app.ns.extras["digest"]
    await app.store.write(
        lambda tx: app.ns.breakers.force_open(tx, f"model:{HAIKU}", ADMIN, "provider incident")
    )
    for i in range(3):  # Sunday 22:00: all of nu's calls meet the kill switch
        assert await reserve(app, "nu/u/a", f"n{i}", micros=10_000) == 503
    app.clock.set(berlin(2026, 1, 5, 2))  # Monday 02:00: so does xi's only call
    assert await reserve(app, "xi/u/a", "x", micros=10_000, model=f"{HAIKU}-20251001") == 503
    await app.ns.extras["alerts"].process()
    assert await app.store.fetch("SELECT path FROM scopes") == []  # neither reserved
    assert [r[0] for r in await app.store.fetch("SELECT scope FROM alerts")] == [f"model:{HAIKU}"]

    began = [("nu", berlin(2026, 1, 4, 22)), ("xi", berlin(2026, 1, 5, 2))]
    assert await poster.namespaces() == began
    reply = await slack.command("digest yesterday nu")
    said = reply["text"]
    assert "Nightshift digest · nu · Sun 2026-01-04" in said, said
    assert "*Refused* 3 times before a call started" in said, said
    assert f"model breakers nu's calls met: {HAIKU} 1 trip" in said, said
    typo = await slack.command("digest xj")
    assert "No namespace `xj` has shown up yet (known: nu, xi)." in typo["text"], typo

    app.clock.set(berlin(2026, 1, 5, 9))
    assert await poster.tick() == [("nu", date(2026, 1, 4)), ("xi", date(2026, 1, 4))]
    rows = await app.store.fetch("SELECT namespace, text FROM digests ORDER BY namespace")
    texts = {row[0]: row[1] for row in rows}
    assert "Nightshift digest · nu · Sun 2026-01-04 (Europe/Berlin)" in texts["nu"]
    assert "*Refused* 3 times before a call started" in texts["nu"], texts["nu"]
    assert f"model breakers nu's calls met: {HAIKU} 1 trip" in texts["nu"], texts["nu"]
    assert "Nightshift digest · xi · Mon 2026-01-05 so far (09:00" in texts["xi"]
    assert "*Refused* 1 time before a call started" in texts["xi"], texts["xi"]
    assert (
        f"model breakers xi's calls met: {HAIKU} (open since Sun 04 Jan 22:00, forced open by"
        f" <@{ADMIN}>, still open)"
    ) in texts["xi"], texts["xi"]

    # a namespace that reserved at 10:00 and was refused at 11:00 began at 10:00, as
    # before: its first digest is tomorrow's, not a day so far now
    app.clock.set(berlin(2026, 1, 5, 10))
    assert await reserve(app, "mixed/u/a", "m1", micros=10_000, model="claude-sonnet-4-5") == 201
    app.clock.set(berlin(2026, 1, 5, 11))
    assert await reserve(app, "mixed/u/a", "m2", micros=10_000) == 503
    assert dict(await poster.namespaces())["mixed"] == berlin(2026, 1, 5, 10)
    assert await poster.tick() == []

    # first refused at 15:38, after the digest time: it began then, its first digest is
    # tomorrow's (as one that reserved first then), and `digest yesterday` says 15:38
    app.clock.set(berlin(2026, 1, 5, 15, 38))
    assert await reserve(app, "late/u/a", "l1", micros=10_000) == 503
    app.clock.set(berlin(2026, 1, 5, 16))
    assert await reserve(app, "late/u/a", "l2", micros=10_000) == 503
    assert dict(await poster.namespaces())["late"] == berlin(2026, 1, 5, 15, 38)
    assert await poster.tick() == []
    said = (await slack.command("digest yesterday late"))["text"]
    assert said.startswith("`late` began today at 15:38: it has no full day yet."), said
    # a row counted before 0049 has no time: the start of its day, and no time said
    await app.store.write(
        lambda tx: tx.execute(
            "INSERT INTO refusals_daily (scope, day, reason, calls, asked_micros)"
            " VALUES ('old/u/a', '2026-01-05', 'breaker', 1, 10000)"
        )
    )
    assert dict(await poster.namespaces())["old"] == berlin(2026, 1, 5)
    said = (await slack.command("digest yesterday old"))["text"]
    assert said.startswith("`old` began today: it has no full day yet."), said

    # refusals_daily is never pruned: its agents are read one primary-key seek each
    from bot.digest import namespaces

    rows = await app.store.fetch(f"EXPLAIN QUERY PLAN {namespaces._REFUSED}")
    plan = " | ".join(row[3] for row in rows)
    assert "SCAN refusals_daily" not in plan and "PRIMARY KEY (scope=?)" in plan, plan
