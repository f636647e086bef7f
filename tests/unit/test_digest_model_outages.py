"""Which model breakers' outages a namespace's digest tells, and what reading them costs.

On a real SQLite file with every migration applied; reservations are written as the
ledger writes them (an id carrying the time, the day's model counters beside them).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.digest import model_outages
from bot.digest.model_outages import Outage, Transition, met_outages
from bot.digest.queries import day_bounds
from guards.breaker_kinds import model_keys
from guards.ledger_rows import reservation_id
from guards.migrations import apply_migrations, connect
from guards.model_budgets import counted_model
from guards.scopes import subtree
from guards.usage import UPSERT_MODEL_DAY, periods_at

BERLIN = ZoneInfo("Europe/Berlin")
HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-5"
KEY = f"model:{HAIKU}"
START, END = day_bounds(datetime(2026, 1, 5).date(), BERLIN)
MINUTE = 60.0


def at(h: int, mi: int = 0) -> float:
    return datetime(2026, 1, 5, h, mi, tzinfo=BERLIN).timestamp()


# haiku's breaker: open from 13:00 to 14:00
OUTAGE: list[Transition] = [
    (KEY, "closed", "open", "3 failures in a row", "failures", at(13), "breaker"),
    (KEY, "open", "closed", "trial passed", None, at(14), "breaker"),
]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(tmp_path / "digest.db")
    apply_migrations(conn, now=0.0)
    yield conn
    conn.close()


def reserve(
    conn: sqlite3.Connection,
    scope: str,
    model: str,
    *whens: float,
    settled_as: str | None = None,
) -> None:
    """Reservations at ``whens`` naming ``model``, as the ledger writes them, in one
    transaction (settled naming ``settled_as`` when given: their model is rewritten and
    the digest's counter has it)."""
    namespace = scope.split("/")[0]
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO reservations (id, token_id, idempotency_key, request_hash, scope, model,"
        " state, held_micros, period_day, period_week, period_month, created_at, expires_at,"
        " counted_model) VALUES (?, 't', ?, 'h', ?, ?, 'held', 1000, ?, ?, ?, ?, ?, ?)",
        [
            (reservation_id(when), f"{scope} {when}", scope, settled_as or model,
             *periods_at(when, BERLIN), when, when + 600, counted_model(model))
            for when in whens
        ],
    )  # fmt: skip
    for day in sorted({periods_at(when, BERLIN)[0] for when in whens}):
        conn.execute(UPSERT_MODEL_DAY, (namespace, counted_model(model), day, 0, 1000))
        if settled_as is not None:
            conn.execute(
                "INSERT INTO digest_model_daily (namespace, day, model, calls, charged_micros,"
                " failed, overruns, overrun_micros) VALUES (?, ?, ?, 1, 0, 0, 0, 0)",
                (namespace, day, settled_as),
            )
    conn.execute("COMMIT")


def met(conn: sqlite3.Connection, namespace: str, transitions: list[Transition]) -> list[Outage]:
    return met_outages(
        lambda _table, sql, params: conn.execute(sql, params).fetchall(),
        transitions,
        namespace=namespace,
        subtree=subtree(namespace),
        start=START,
        stop=END,
        tz=BERLIN,
    )


def test_a_call_on_the_model_from_15_minutes_before_it_opened_until_it_closed_meets_it(db):
    reserve(db, "acme/a/bot", HAIKU, at(12, 50))  # 10 minutes before: its calls tripped it
    reserve(db, "globex/g/bot", HAIKU, at(12, 40))  # 20 minutes before: not part of it
    reserve(db, "globex/g/bot", SONNET, at(13, 30))  # another model while it was open
    reserve(db, "initech/i/bot", f"{HAIKU}-20251001", at(13, 30))  # a dated name is the model's
    reserve(db, "hooli/h/bot", SONNET, at(13, 30), settled_as=HAIKU)  # its settle named haiku
    reserve(db, "umbrella/u/bot", HAIKU, at(9))  # the same day, long before
    reserve(db, "umbrella/u/bot", HAIKU, at(14, 1))  # just after it closed
    assert [o.model for o in met(db, "acme", OUTAGE)] == [HAIKU]
    assert met(db, "initech", OUTAGE)[0].opened_at == at(13)
    assert met(db, "hooli", OUTAGE) != []
    assert met(db, "globex", OUTAGE) == []
    assert met(db, "umbrella", OUTAGE) == []


def test_the_calls_are_read_by_the_outage_s_time_not_the_namespace_s_history(db):
    """review27 R3 M1: the query walked every reservation the namespace ever made (0.5-0.8 s
    per outage at 300,000); it reads the window's ids through the primary key."""
    plan = " ".join(
        str(r[3]) for r in db.execute("EXPLAIN QUERY PLAN " + model_outages._CALLED, (0,) * 11)
    )
    assert "sqlite_autoindex_reservations_1 (id>? AND id<?)" in plan, plan
    assert "scope" not in plan

    # acme made 5,000 haiku calls that morning, beta none: meeting the 13:00 outage with
    # one call each costs them the same
    reserve(db, "acme/a/bot", HAIKU, *(at(6) + i for i in range(5_000)))
    reserve(db, "acme/a/bot", HAIKU, at(13, 5))
    reserve(db, "beta/b/bot", HAIKU, at(13, 5))
    steps = {}
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0

    for namespace in ("acme", "beta"):
        counted[0] = 0
        db.set_progress_handler(tick, 10)
        try:
            assert [o.model for o in met(db, namespace, OUTAGE)] == [HAIKU]
        finally:
            db.set_progress_handler(None, 0)
        steps[namespace] = counted[0] * 10
    assert steps["acme"] < steps["beta"] + 500, steps


def test_a_namespace_that_named_no_such_model_those_days_reads_no_reservation(db):
    reserve(db, "acme/a/bot", SONNET, at(13, 5))
    reserve(db, "acme/a/bot", SONNET, at(13, 10), settled_as="gpt-4.1-mini")
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    try:
        assert met(db, "acme", OUTAGE) == []
    finally:
        db.set_trace_callback(None)
    assert statements and not [s for s in statements if "FROM reservations" in s], statements


def steps_of(conn: sqlite3.Connection, read) -> tuple[object, int]:
    """What ``read()`` returns, and about how many SQLite steps it took."""
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0

    conn.set_progress_handler(tick, 10)
    try:
        found = read()
    finally:
        conn.set_progress_handler(None, 0)
    return found, counted[0] * 10


def test_the_read_of_the_window_stops_at_the_first_call_that_names_the_model(db):
    """recheck27 Kc L1: every reservation of the fleet in the window was read (DISTINCT
    model), however early the namespace's own call on the model came."""
    reserve(db, "acme/a/bot", HAIKU, at(12, 50))  # it met the outage in its lead
    reserve(db, "big/b/bot", SONNET, *(at(13) + i / 10 for i in range(20_000)))
    found, steps = steps_of(db, lambda: [o.model for o in met(db, "acme", OUTAGE)])
    assert found == [HAIKU]
    assert steps < 2_000, steps  # 90; reading the fleet's 20,000 calls took 140,000


def test_a_long_outage_reads_the_days_the_namespace_named_the_model_not_all_of_it(db):
    """recheck27 Kc L1: a kill switch left on for weeks read weeks of the fleet's calls
    for each namespace that named the model, at each day's digest. Only the days its
    counters name (and one either side) are read."""
    day = 86400.0
    forced = [
        (KEY, "closed", "forced_open", "provider incident", None, at(13), "U0DANA"),
        (KEY, "forced_open", "closed", "back", None, at(13) + 20 * day, "U0DANA"),
    ]
    reserve(db, "acme/a/bot", HAIKU, at(10))  # that morning, not in the outage's lead
    reserve(db, "big/b/bot", SONNET, *(at(13) + i * 100 for i in range(17_000)))  # 20 days

    def on(day_no: int) -> list[Outage]:
        start = at(0) + day_no * day
        return met_outages(
            lambda _table, sql, params: db.execute(sql, params).fetchall(),
            forced,
            namespace="acme",
            subtree=subtree("acme"),
            start=start,
            stop=start + day,
            tz=BERLIN,
        )

    found, steps = steps_of(db, lambda: on(10))  # the digest of the 10th day
    assert found == []
    # the span to the end of the day after its counter's: 1,260 calls, 8,900 steps; the
    # 20 days' 17,000 took 119,000
    assert steps < 40_000, steps
    # a sonnet hold settled naming haiku (the kill switch refused none of it) on the 12th
    reserve(db, "acme/a/bot", SONNET, at(13) + 12 * day, settled_as=HAIKU)
    assert [o.model for o in on(10)] == [HAIKU]


@pytest.mark.parametrize(
    ("key", "names"),
    [
        (
            KEY,
            [
                HAIKU, HAIKU.upper(), f"{HAIKU}-20251001", f"{HAIKU}-2025-10-01",
                f"{HAIKU}-latest", f"{HAIKU}-Latest", f"{HAIKU}-latest-20251001",
                f"{HAIKU}-2025100", f"{HAIKU}-202510011", f"{HAIKU}-2025-10-0a", f"{HAIKU}x",
                f"{HAIKU}-v2", "claude-haiku-4", f"{HAIKU}-20251001-latest",
            ],
        ),
        ("model:gpt-4o-2024-08-06", ["gpt-4o", "gpt-4o-2024-08-06", "GPT-4o-2024-08-06-latest"]),
    ],
)  # fmt: skip
def test_a_call_names_the_model_in_sql_as_model_keys_says(db, key, names):
    """The read tests the model in SQL (so it stops at the first): the names it takes for
    the outage's model are those guards.breaker_kinds.model_keys governs by its breaker."""
    outage = [(key, *t[1:]) for t in OUTAGE]
    model = key.removeprefix("model:")
    for i, name in enumerate(names):
        reserve(db, f"n{i}/u/bot", model, at(9))  # its counters name the model that day
        reserve(db, f"n{i}/u/bot", name, at(13, 30))
        expected = key in model_keys(name)
        assert (met(db, f"n{i}", outage) != []) == expected, (name, expected)
