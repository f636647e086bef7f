"""The guard engine's state in /metrics (audit16 observability L5): what an operator
alerts on from Prometheus, read from the database at each scrape."""

from __future__ import annotations

import sqlite3
from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_ledger_api import reserve

ADMIN = "U0ADMIN"
AGENT = "acme/alice/bot"
POLICY: dict[str, Any] = {"admins": [ADMIN], "budgets": {"defaults": {"agent": {"day": "1.00"}}}}


def value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no {series} in /metrics")


async def test_breakers_alerts_and_holds_are_in_the_metrics(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme")
    quiet = (await app.client.get("/metrics")).text
    assert value(quiet, 'nightshift_breakers{state="forced_open"}') == 0
    assert value(quiet, 'nightshift_alerts_open{tier="P0"}') == 0
    assert value(quiet, "nightshift_holds") == 0

    assert (await reserve(app, tok, AGENT, "a", 600_000)).status_code == 201
    assert (await reserve(app, tok, f"{AGENT}/c1", "b", 300_000)).status_code == 201
    assert (await reserve(app, tok, AGENT, "c", 600_000)).status_code == 402  # an alert
    await app.ns.extras["alerts"].tick()
    await app.store.write(lambda tx: app.ns.breakers.force_open(tx, AGENT, ADMIN, "looping"))
    app.clock.advance(120)
    text = (await app.client.get("/metrics")).text
    assert value(text, 'nightshift_breakers{state="forced_open"}') == 1
    assert value(text, 'nightshift_breakers{state="open"}') == 0
    assert value(text, "nightshift_breaker_open_longest_seconds") == 120
    assert value(text, 'nightshift_alerts_open{tier="P1"}') >= 1
    assert value(text, 'nightshift_alerts_unacknowledged{tier="P1"}') >= 1
    assert value(text, "nightshift_holds") == 2
    assert value(text, "nightshift_held_micros") == 900_000


async def test_longest_counts_from_leaving_closed_through_later_moves(app_factory):
    """review16 M3: a breaker's `since` restarts at every move; a kill switch lifted into a
    trial (still not closed) read 0 again."""
    app = await app_factory(POLICY)
    await app.store.write(lambda tx: app.ns.breakers.force_open(tx, AGENT, ADMIN, "looping"))
    app.clock.advance(120)
    await app.store.write(lambda tx: app.ns.breakers.approve(tx, AGENT, ADMIN))  # a trial
    app.clock.advance(60)
    text = (await app.client.get("/metrics")).text
    assert value(text, 'nightshift_breakers{state="half_open"}') == 1
    assert value(text, "nightshift_breaker_open_longest_seconds") == 180


async def test_a_database_read_that_fails_does_not_cost_the_scrape(app_factory):
    """review16 M4: /metrics read the database with no guard; the series that say the
    database is in trouble went with a failed read."""
    app = await app_factory(POLICY)
    with sqlite3.connect(app.ns.settings.db, isolation_level=None, timeout=10) as other:
        other.execute("ALTER TABLE alerts RENAME TO alerts_away")  # a read that fails
        try:
            r = await app.client.get("/metrics")
        finally:
            other.execute("ALTER TABLE alerts_away RENAME TO alerts")
    assert r.status_code == 200
    assert value(r.text, "nightshift_state_refresh_errors_total") == 1
    assert "nightshift_storage_refusals_total" in r.text
    assert value((await app.client.get("/metrics")).text, "nightshift_holds") == 0


SPEND_POLICY: dict[str, Any] = {
    "budgets": {"scopes": {"acme": {"day": "200.00", "timezone": "Pacific/Auckland"}}}
}


async def spend(app, token, scope, key, micros):
    r = await reserve(app, token, scope, key, micros)
    assert r.status_code == 201, r.text
    rid = r.json()["reservation_id"]
    r = await app.request(
        "POST", f"/v1/reservations/{rid}/settle", token=token, json={"actual_cost_micros": micros}
    )
    assert r.status_code == 200, r.text


async def test_spend_and_limits_per_namespace_in_its_own_day_and_month(app_factory):
    """audit27 parity #14: /metrics said nothing about money spent."""
    app = await app_factory(SPEND_POLICY, clock=ManualClock(1_767_182_400.0))  # 12-31 12:00Z
    acme, beta = await app.token("acme"), await app.token("beta")
    await spend(app, acme, "acme/alice/bot", "a1", 1_000_000)  # Auckland: 2026-01-01 01:00
    await spend(app, beta, "beta/bob/bot", "b1", 1_500_000)  # UTC: 2025-12-31
    await app.store.write(
        lambda tx: app.ns.ledger.set_limit(
            tx, scope="beta", window="month", limit_micros=50_000_000, actor=ADMIN
        )
    )
    app.clock.advance(12 * 3600)  # 2026-01-01 00:00Z: Auckland's same day, UTC's new month
    await spend(app, acme, "acme/alice/bot", "a2", 500_000)
    await spend(app, beta, "beta/bob/bot", "b2", 500_000)
    text = (await app.client.get("/metrics")).text
    assert value(text, 'nightshift_spent_micros{namespace="acme",window="day"}') == 1_500_000
    assert value(text, 'nightshift_spent_micros{namespace="acme",window="month"}') == 1_500_000
    assert value(text, 'nightshift_spent_micros{namespace="beta",window="day"}') == 500_000
    assert value(text, 'nightshift_spent_micros{namespace="beta",window="month"}') == 500_000
    assert value(text, 'nightshift_budget_limit_micros{namespace="acme",window="day"}') == 2e8
    assert value(text, 'nightshift_budget_limit_micros{namespace="beta",window="month"}') == 5e7
    limits = [line for line in text.splitlines() if line.startswith("nightshift_budget_limit")]
    assert len(limits) == 2  # none where no limit is set

    app.clock.advance(86400)  # a new day everywhere: the day starts at 0, the month goes on
    text = (await app.client.get("/metrics")).text
    assert value(text, 'nightshift_spent_micros{namespace="acme",window="day"}') == 0
    assert value(text, 'nightshift_spent_micros{namespace="acme",window="month"}') == 1_500_000


async def test_spend_series_stop_at_200_namespaces(app_factory):
    app = await app_factory()
    now = app.clock.now()

    def many(tx):
        for n in range(205):
            tx.execute(
                "INSERT INTO scopes (path, parent, depth, created_at) VALUES (?, NULL, 1, ?)",
                (f"ns{n:03d}", now),
            )

    await app.store.write(many)
    text = (await app.client.get("/metrics")).text
    days = [line for line in text.splitlines() if line.startswith("nightshift_spent_micros{")]
    assert len(days) == 400 and 'namespace="ns199"' in days[-1]
