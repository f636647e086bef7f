"""Budgets per model (``budgets.models``) through the real server: a namespace's spend on
one model is capped before the call, in the reserve's one step, and says so.

"At most $1.00 a day on claude-opus-4-1 in acme": the reserve that fits exactly is
granted, one micro more is a 402 naming the model; other models and namespaces go on;
a dated snapshot and ``estimate.model`` count; the next day is fresh; the alert is its
own (not the namespace's budget alert) and resolves when the day turns or a reload
raises the limit; ``ledger verify`` recomputes the counters, and the migration backfills
them from the calls made before it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from guards import migrations
from guards.clock import ManualClock
from guards.verify import verify
from tests.scenario.test_alerts import alerts_of
from tests.scenario.test_ledger_api import reserve

ADMIN = "U0ADMIN"
OPUS = "claude-opus-4-1"
DAY = 86_400
POLICY: dict[str, Any] = {
    "admins": [ADMIN],
    "breakers": {"spend_rate": None},  # spend rate is its own matter: not here
    "budgets": {
        "scopes": {"acme": {"day": "20.00"}},
        "models": {"Claude-Opus-4-1": {"day": "1.00"}},  # the key as counted: claude-opus-4-1
    },
}
SPENT_TODAY = (
    "acme's budget for claude-opus-4-1 is spent for today ($1.00 of $1.00): wait until it"
    " resets at 00:00 UTC (in 24h), pick a smaller model, or raise"
    " budgets.models.claude-opus-4-1 in the policy and reload it (SIGHUP)"
)


def verified(db: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        conn.isolation_level = None
        return verify(conn).problems


async def model_alerts(app: Any) -> list[tuple[Any, ...]]:
    rows = await app.store.fetch(
        "SELECT kind, scope, tier, count, resolved_at, resolve_reason, facts FROM alerts"
        " WHERE kind IN ('model_budget_exhausted', 'budget_exhausted') ORDER BY id"
    )
    return [tuple(r) for r in rows]


async def test_a_model_budget_caps_the_namespace_s_spend_on_the_model_before_the_call(
    slack_http: Any, tmp_path: Path
) -> None:
    db = tmp_path / "ns.db"
    slack = await slack_http(POLICY, clock=ManualClock(), db=db)
    app = slack.app
    acme, globex = await app.token("acme"), await app.token("globex")
    bot = "acme/alice/bot"

    assert (await reserve(app, acme, bot, "a", 600_000, model=OPUS)).status_code == 201
    dated = await reserve(app, acme, bot, "b", 300_000, model="Claude-Opus-4-1-20250805")
    assert dated.status_code == 201  # a dated snapshot counts under its undated name
    estimate = {"model": OPUS, "input_tokens": 6_000, "max_output_tokens": 0}  # $0.09
    body = {"scope": bot, "idempotency_key": "c", "estimate": estimate}
    r = await app.request("POST", "/v1/reservations", token=acme, json=body)
    assert (r.status_code, r.json()["held_micros"]) == (201, 90_000)  # estimate.model counts
    exact = await reserve(app, acme, "acme/bob/bot", "d", 10_000, model=OPUS)
    assert exact.status_code == 201  # $1.00 of $1.00: the reserve that fits exactly

    refused = await reserve(app, acme, bot, "e", 1, model=OPUS)
    assert refused.status_code == 402
    assert refused.json() == {
        "error": "budget_exceeded",
        "message": (
            "acme's budget for claude-opus-4-1 for today cannot take $0.000001 more ($0.00"
            " spent and $1.00 held of $1.00, $0.00 left): wait for running calls to settle or"
            " until it resets at 00:00 UTC (in 24h), pick a smaller model, or raise"
            " budgets.models.claude-opus-4-1 in the policy and reload it (SIGHUP)"
        ),
        "level": "model",
        "scope": "acme",
        "model": OPUS,
        "window": "day",
        "limit_micros": 1_000_000,
        "spent_micros": 0,
        "held_micros": 1_000_000,
        "requested_micros": 1,
        "resets_at": "2026-01-02T00:00:00+00:00",  # audit28 C2 L1: when waiting helps
        "wait_until": "2026-01-02T00:00:00+00:00",  # review28 R5 M1: every level's, the latest
    }
    # other models, calls naming none, and other namespaces are not affected
    assert (await reserve(app, acme, bot, "f", 900_000, model="gpt-4o")).status_code == 201
    assert (await reserve(app, acme, bot, "g", 900_000)).status_code == 201
    assert (
        await reserve(app, globex, "globex/x/bot", "h", 1_000_000, model=OPUS)
    ).status_code == 201

    # the money spent: a settle charges the hold's model, whatever its usage names
    rid = dated.json()["reservation_id"]
    usage = {"usage": {"model": "gpt-4o", "input_tokens": 40_000, "output_tokens": 0}}  # $0.10
    s = await app.request("POST", f"/v1/reservations/{rid}/settle", token=acme, json=usage)
    assert s.status_code == 200, s.text
    tree = (await app.request("GET", "/v1/budgets/acme", token=acme)).json()
    assert tree["models"] == [
        {
            "model": OPUS,
            "window": "day",
            "period": "2026-01-01",
            "limit_micros": 1_000_000,
            "spent_micros": 100_000,
            "held_micros": 700_000,
            "remaining_micros": 200_000,
            "resets_at": "2026-01-02T00:00:00+00:00",
        }
    ]
    agent = (await app.request("GET", f"/v1/budgets/{bot}", token=acme)).json()
    assert agent["models"] == tree["models"]  # an agent sees its namespace's model budgets
    shown = await slack.command("budget acme")
    assert (
        "*Per model* (`budgets.models` in the policy)\n• `claude-opus-4-1` `day  `"
        in (shown["text"])
    )
    assert "$0.10 + $0.70 held of $1.00 · $0.20 left" in shown["text"]
    # closing23: an agent's budget showed no model lines, though they refuse its calls
    shown = (await slack.command(f"budget {bot}"))["text"]
    assert "*Per model in acme* (`budgets.models` in the policy)\n• `claude-opus-4-1`" in shown
    assert "$0.10 + $0.70 held of $1.00 · $0.20 left" in shown

    # the alert: one, its own kind, not merged with the namespace's own budget alert
    big = await reserve(app, acme, bot, "i", 50_000_000)  # over acme's $20.00 a day
    assert (big.status_code, big.json()["level"]) == (402, "namespace")
    assert (await reserve(app, acme, bot, "j", 300_000, model=OPUS)).status_code == 402
    await alerts_of(slack).process()
    rows = await model_alerts(app)
    assert [r[:6] for r in rows] == [
        ("model_budget_exhausted", "acme", "P1", 2, None, None),
        ("budget_exhausted", "acme", "P1", 1, None, None),
    ]
    assert '"model":"claude-opus-4-1"' in rows[0][6] and '"level":"model"' in rows[0][6]
    refusals = await app.store.fetch(
        "SELECT scope, reason, calls, asked_micros FROM refusals_daily WHERE scope = ?", (bot,)
    )
    assert [tuple(r) for r in refusals] == [(bot, "budget", 3, 50_300_001)]
    fake = slack.fake

    def model_posts() -> list[str]:
        return [t for t in fake.texts() if "Model budget refused a call" in t]

    await fake.wait_for(lambda: len(fake.texts()) >= 2)  # both alerts posted
    assert len(model_posts()) == 1, fake.texts()
    assert "acme's day budget for claude-opus-4-1" in model_posts()[0]
    assert verified(str(db)) == []

    # a reload raising the model's limit (a restart on the edited file) resolves its alert
    await app.ns.stop()
    raised = {**POLICY, "budgets": {**POLICY["budgets"], "models": {OPUS: {"day": "2.00"}}}}
    slack = await slack_http(raised, clock=ManualClock(), db=db)
    app = slack.app
    await alerts_of(slack).tick()
    rows = await model_alerts(app)
    assert rows[0][4] is not None and rows[0][5] == (
        "the policy raised the day budget for claude-opus-4-1 to $2.00"
    )
    assert rows[1][4] is None  # the namespace's own alert is another matter
    assert (await reserve(app, acme, bot, "k", 300_000, model=OPUS)).status_code == 201
    assert await asyncio.to_thread(main, ["ledger", "verify", "--db", str(db)]) == 0


async def test_the_next_day_the_model_budget_is_fresh_and_its_alert_resolves(
    slack_http: Any,
) -> None:
    clock = ManualClock()
    slack = await slack_http(POLICY, clock=clock)
    app = slack.app
    acme = await app.token("acme")
    rid = (await reserve(app, acme, "acme/a/b", "a", 1_000_000, model=OPUS)).json()
    body = {"actual_cost_micros": 1_000_000}
    path = f"/v1/reservations/{rid['reservation_id']}/settle"
    assert (await app.request("POST", path, token=acme, json=body)).status_code == 200
    refused = await reserve(app, acme, "acme/a/b", "b", 1, model=OPUS)
    assert (refused.status_code, refused.json()["message"]) == (402, SPENT_TODAY)
    await alerts_of(slack).process()
    clock.advance(DAY)
    await alerts_of(slack).tick()
    rows = await model_alerts(app)
    assert [(r[0], r[5]) for r in rows] == [("model_budget_exhausted", "a new day began")]
    assert (await reserve(app, acme, "acme/a/b", "c", 1_000_000, model=OPUS)).status_code == 201
    assert verified(app.ns.settings.db) == []


async def test_200_concurrent_reservations_against_a_budget_for_50_grant_exactly_50(
    app_factory: Any,
) -> None:
    app = await app_factory(POLICY)
    acme = await app.token("acme")
    answers = await asyncio.gather(
        *(reserve(app, acme, f"acme/u{n % 7}/bot", f"k{n}", 20_000, model=OPUS) for n in range(200))
    )
    codes = [a.status_code for a in answers]
    assert (codes.count(201), codes.count(402)) == (50, 150)
    assert {a.json()["level"] for a in answers if a.status_code == 402} == {"model"}
    rows = await app.store.fetch("SELECT spent_micros, held_micros FROM model_usage_daily")
    assert [tuple(r) for r in rows] == [(0, 1_000_000)]
    assert verified(app.ns.settings.db) == []


def _old_database(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database at migration 0039 with calls written as the code of then wrote them."""
    every = migrations._migrations()
    monkeypatch.setattr(migrations, "_migrations", lambda *_: [m for m in every if m[0] < 40])
    with sqlite3.connect(db, isolation_level=None) as conn:
        migrations.apply_migrations(conn, now=0.0)
    monkeypatch.undo()
    day, week, month = "2026-01-01", "2026-W01", "2026-01"
    calls = [  # id, scope, model, state, held, charged, released, journal rows (held, spent)
        ("res_1", "acme/a/bot", "claude-opus-4-1-20250805", "settled", 500_000, 400_000, 100_000,
         [(500_000, 0), (-500_000, 400_000)]),
        ("res_2", "acme/a/bot", "Claude-Opus-4-1", "held", 300_000, 0, 0, [(300_000, 0)]),
        ("res_3", "acme/b/bot", "gpt-4o-2024-08-06", "released", 200_000, 0, 200_000,
         [(200_000, 0), (-200_000, 0)]),
        ("res_4", "acme/b/bot", None, "settled", 100_000, 100_000, 0,
         [(100_000, 0), (-100_000, 100_000)]),
        ("res_5", "globex/c/bot", "claude-opus-4-1-latest", "settled", 50_000, 50_000, 0,
         [(50_000, 0), (-50_000, 50_000)]),
    ]  # fmt: skip
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO tokens (id, scope, hash, created_at) VALUES ('t', 'acme', 'h', 0)"
        )
        for rid, scope, model, state, held, charged, released, journal in calls:
            conn.execute(
                "INSERT INTO reservations (id, token_id, idempotency_key, request_hash, scope,"
                " model, state, held_micros, charged_micros, released_micros, period_day,"
                " period_week, period_month, created_at, expires_at)"
                " VALUES (?, 't', ?, 'h', ?, ?, ?, ?, ?, ?, ?, ?, ?, 1767225600, 1767226200)",
                (rid, rid, scope, model, state, held, charged, released, day, week, month),
            )
            for held_delta, spent_delta in journal:
                conn.execute(
                    "INSERT INTO journal (at, reservation_id, kind, held_delta, spent_delta)"
                    " VALUES (1767225600, ?, 'hold', ?, ?)",
                    (rid, held_delta, spent_delta),
                )
        conn.execute(
            "INSERT INTO credits (at, reservation_id, amount_micros, actor, reason)"
            " VALUES (1767225700, 'res_1', 150000, 'U1', 'unit bug')"
        )
        conn.execute(
            "INSERT INTO usage_daily (scope, day, spent_micros, held_micros) VALUES"
            " ('acme', ?, 350000, 300000), ('acme/a', ?, 250000, 300000),"
            " ('acme/a/bot', ?, 250000, 300000), ('acme/b', ?, 100000, 0),"
            " ('acme/b/bot', ?, 100000, 0), ('globex', ?, 50000, 0),"
            " ('globex/c', ?, 50000, 0), ('globex/c/bot', ?, 50000, 0)",
            (day,) * 8,
        )


async def test_the_migration_backfills_the_model_counters_from_the_calls_before_it(
    app_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "old.db"
    _old_database(db, monkeypatch)
    assert await asyncio.to_thread(main, ["migrate", "--db", str(db)]) == 0
    with sqlite3.connect(db) as conn:
        models = conn.execute("SELECT id, counted_model FROM reservations ORDER BY id").fetchall()
        rows = conn.execute("SELECT * FROM model_usage_daily ORDER BY 1, 2").fetchall()
    assert models == [
        ("res_1", OPUS),
        ("res_2", OPUS),
        ("res_3", "gpt-4o"),
        ("res_4", None),
        ("res_5", OPUS),
    ]
    assert rows == [  # res_1 charged $0.40 less the $0.15 credit, res_2 holds $0.30
        ("acme", OPUS, "2026-01-01", 250_000, 300_000),
        ("acme", "gpt-4o", "2026-01-01", 0, 0),
        ("globex", OPUS, "2026-01-01", 50_000, 0),
    ]
    assert verified(str(db)) == []
    # the server on the migrated file sees the day's spend: $0.45 left of acme's $1.00
    app = await app_factory(POLICY, db=db)
    acme = await app.token("acme")
    assert (await reserve(app, acme, "acme/a/bot", "x", 450_001, model=OPUS)).status_code == 402
    assert (await reserve(app, acme, "acme/a/bot", "y", 450_000, model=OPUS)).status_code == 201
    assert verified(str(db)) == []
