"""audit27 B3 M1: a namespace's digest tells the model breakers its traffic met.

A model's breaker is every namespace's; a namespace's digest counts and names an outage
of it (and counts its alerts) when the namespace called the model from 15 minutes before
the breaker opened until it closed, or was routed around it; the others do not hear of
it. Driven through the real API on a ManualClock, real SQLite, the real digest poster.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.demo.fleet import Tally
from bot.demo.summary import summary_table
from guards.clock import ManualClock
from tests.conftest import RunningApp
from tests.scenario.test_digest import ADMIN, HAIKU, SONNET, berlin, digest_rows, spend

MODEL = f"model:{HAIKU}"
POLICY = {
    "timezone": "Europe/Berlin",
    "admins": [ADMIN],
    "channels": {"digest": "C0DIGEST", "alerts": "C0ALERTS"},
    "budgets": {"defaults": {"agent": {"day": "10.00"}}},
    # three failures in a row across two or more agents trip a model's breaker
    "breakers": {"spend_rate": None, "model_failures": {"consecutive": 3}},
}


async def fail_on_haiku(app: RunningApp, namespace: str, key: str) -> None:
    """Three agents of ``namespace`` each fail one call on haiku: the model trips."""
    for i in range(3):
        await spend(
            app, f"{namespace}/u/m{i}", hold=10_000, charge=1_000, model=HAIKU,
            outcome="failure", key=f"{key}{i}",
        )  # fmt: skip


async def close_model(app: RunningApp) -> None:
    await app.store.write(lambda tx: app.ns.breakers.force_close(tx, MODEL, ADMIN))


async def digests(app: RunningApp) -> dict[str, str]:
    return {r[0].split(":")[1]: r[3]["text"] for r in await digest_rows(app) if "chart" not in r[0]}


async def test_an_outage_is_in_the_digests_of_the_namespaces_its_traffic_met(app_factory):
    app = await app_factory(POLICY, clock=ManualClock(berlin(2026, 1, 5, 0, 30)))
    app.ns.scheduler.pause_job("digest")
    alerts = app.ns.extras["alerts"]
    # 00:30 globex calls haiku, long before the outage: that is not meeting it
    await spend(app, "globex/x/bot", hold=10_000, charge=1_000, model=HAIKU, key="early")
    # 01:10 acme's agents alone trip the model's breaker: its P1 fires
    app.clock.set(berlin(2026, 1, 5, 1, 10))
    await fail_on_haiku(app, "acme", "a")
    breakers = (await app.request("GET", "/v1/breakers", token=await app.token("acme"))).json()
    assert [b["state"] for b in breakers["breakers"] if b["scope"] == MODEL] == ["open"]
    await alerts.process()
    # 01:20 initech is routed around the open breaker; globex calls another model only
    app.clock.set(berlin(2026, 1, 5, 1, 20))
    initech = await app.token("initech/i/bot")
    routed = await app.request(
        "POST",
        "/v1/route",
        token=initech,
        json={"scope": "initech/i/bot", "task": "Classify this ticket as bug or question."},
    )
    assert f"{HAIKU} breaker open" in routed.json()["reason"], routed.text
    await spend(app, "globex/x/bot", hold=10_000, charge=1_000, model=SONNET, key="s1")
    app.clock.set(berlin(2026, 1, 5, 2, 40))
    await close_model(app)
    # 15:00 a second outage, globex's alone
    app.clock.set(berlin(2026, 1, 5, 15))
    await fail_on_haiku(app, "globex", "g")
    await alerts.process()
    app.clock.set(berlin(2026, 1, 5, 15, 30))
    await close_model(app)

    app.clock.set(berlin(2026, 1, 6, 9))
    await alerts.tick()
    posted = await app.ns.extras["digest"].tick()
    assert sorted(posted) == [(n, date(2026, 1, 5)) for n in ("acme", "globex", "initech")]
    texts = await digests(app)

    acme = texts["acme"]
    # the outage is said once, on its own line (review27 R3 L2: it was the longest open too)
    assert (
        f"*Breakers* 1 trip\nmodel breakers acme's calls met: {HAIKU} 1 trip"
        " (open from 01:10 to 02:40)\n*Validation*"
    ) in acme, acme
    assert "*Alerts* P1 1" in acme, acme  # the model's P1, with the namespace's own
    assert "15:00" not in acme  # globex's outage is not acme's

    globex = texts["globex"]
    assert f"model breakers globex's calls met: {HAIKU} 1 trip (open from 15:00 to 15:30)\n" in (
        globex
    ), globex
    assert "01:10" not in globex  # its 00:30 call came long before; its 01:20 one on sonnet
    assert "*Alerts* P1 1" in globex, globex

    initech_text = texts["initech"]
    assert f"model breakers initech's calls met: {HAIKU} 1 trip (open from 01:10" in (
        initech_text
    ), initech_text


async def test_a_namespace_that_never_met_the_model_hears_nothing_of_it(app_factory):
    app = await app_factory(POLICY, clock=ManualClock(berlin(2026, 1, 5, 1)))
    app.ns.scheduler.pause_job("digest")
    await spend(app, "quiet/q/bot", hold=10_000, charge=1_000, model=SONNET, key="q1")
    await fail_on_haiku(app, "acme", "a")
    await app.ns.extras["alerts"].process()
    # the breaker is still open at the day's end: acme is told so, quiet is not
    app.clock.set(berlin(2026, 1, 6, 9))
    await app.ns.extras["digest"].tick()
    texts: dict[str, Any] = await digests(app)
    assert "*Breakers* no trips" in texts["quiet"]
    assert "*Alerts* none" in texts["quiet"]
    assert MODEL not in texts["quiet"] and "model breakers" not in texts["quiet"]
    assert (
        f"model breakers acme's calls met: {HAIKU} 1 trip (open since 01:00, still open at"
        " the day's end)"
    ) in texts["acme"], texts["acme"]
    # said once: not also the longest open, nor "not closed now" (review27 R3 L2)
    assert "longest open" not in texts["acme"] and "not closed now" not in texts["acme"]


async def test_a_namespace_only_refused_by_the_model_s_kill_switch_is_told_of_it(app_factory):
    """review27 R3 M2: a call the kill switch refused leaves no reservation; it met the
    outage all the same (it named the model), so its namespace's digest says which
    breaker its *Refused* line's "by a breaker" was."""
    app = await app_factory(POLICY, clock=ManualClock(berlin(2026, 1, 5, 2)))
    app.ns.scheduler.pause_job("digest")
    await app.store.write(
        lambda tx: app.ns.breakers.force_open(tx, MODEL, ADMIN, "provider incident")
    )
    app.clock.set(berlin(2026, 1, 5, 2, 30))
    zeta = await app.token("zeta/z")
    for i in range(3):
        r = await app.request(
            "POST",
            "/v1/reservations",
            token=zeta,
            json={"scope": "zeta/z/bot", "idempotency_key": f"r{i}", "max_cost_micros": 10_000,
                  "model": HAIKU},
        )  # fmt: skip
        assert r.status_code == 503 and MODEL in r.text, r.text
    await spend(app, "zeta/z/bot", hold=10_000, charge=1_000, model=SONNET, key="s1")
    await spend(app, "quiet/q/bot", hold=10_000, charge=1_000, model=SONNET, key="q1")
    app.clock.set(berlin(2026, 1, 5, 3))
    await close_model(app)
    # refused again in a second spell, which is not zeta's: only quiet's, later
    app.clock.set(berlin(2026, 1, 5, 20))
    await app.store.write(lambda tx: app.ns.breakers.force_open(tx, MODEL, ADMIN, "again"))
    quiet = await app.token("quiet/q")
    r = await app.request(
        "POST",
        "/v1/reservations",
        token=quiet,
        json={"scope": "quiet/q/bot", "idempotency_key": "r", "max_cost_micros": 10_000,
              "model": HAIKU},
    )  # fmt: skip
    assert r.status_code == 503, r.text
    app.clock.set(berlin(2026, 1, 5, 21))
    await close_model(app)

    app.clock.set(berlin(2026, 1, 6, 9))
    await app.ns.extras["digest"].tick()
    texts = await digests(app)
    assert "3 by a breaker" in texts["zeta"], texts["zeta"]
    zeta_text, quiet_text = texts["zeta"], texts["quiet"]
    by = f"forced open by <@{ADMIN}>"
    assert f"zeta's calls met: {HAIKU} 1 trip (open from 02:00 to 03:00, {by})\n" in (zeta_text), (
        zeta_text
    )
    assert f"quiet's calls met: {HAIKU} 1 trip (open from 20:00 to 21:00, {by})\n" in (
        quiet_text
    ), quiet_text
    # each spell of the kill switch is the outage it was in: neither is told of the other
    assert "20:00" not in zeta_text and "02:00" not in quiet_text


async def test_the_digest_and_the_demo_s_table_count_a_model_s_trips_by_one_rule(app_factory):
    """review27 R3 L1: the digest counted a person's "Keep open" during a running trial as
    a trip (not on a waiting one), and a kill switch set during a trial; the demo's table
    counted every move into open. Both count the breaker's trip and failed trials only."""
    app = await app_factory(POLICY, clock=ManualClock(berlin(2026, 1, 5, 0, 50)))
    app.ns.scheduler.pause_job("digest")
    await spend(app, "acme/a/bot", hold=10_000, charge=1_000, model=HAIKU, key="early")
    moves = [
        ("closed", "open", "3 failures in a row", "failures", (1, 0), "breaker"),  # a trip
        ("open", "half_open", "trial", None, (1, 10), "breaker"),
        ("half_open", "open", "kept open", "failures", (1, 11), ADMIN),  # stops the trial
        ("open", "half_open_pending", "waiting", None, (1, 20), "breaker"),
        ("half_open_pending", "open", "kept open", "failures", (1, 21), ADMIN),
        ("open", "half_open", "trial", None, (1, 30), "breaker"),
        ("half_open", "open", "trial failed", "trial", (1, 31), "breaker"),  # a trip
        ("open", "half_open", "trial", None, (1, 40), "breaker"),
        ("half_open", "forced_open", "kill switch", "manual", (1, 41), ADMIN),
        ("forced_open", "closed", "closed by hand", None, (2, 0), ADMIN),
    ]
    await app.store.write(
        lambda tx: tx.executemany(
            "INSERT INTO breaker_transitions (scope, from_state, to_state, reason, trip, actor,"
            " at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(MODEL, a, b, r, t, who, berlin(2026, 1, 5, *hm)) for a, b, r, t, hm, who in moves],
        )
    )
    app.clock.set(berlin(2026, 1, 6, 9))
    await app.ns.extras["digest"].tick()
    acme = (await digests(app))["acme"]
    met = f"model breakers acme's calls met: {HAIKU} 2 trips (open from 01:00 to 02:00, forced"
    assert met in acme, acme
    table = await summary_table(app.ns, Tally(), start=berlin(2026, 1, 5), job_runs=1)
    assert any("model breaker opened 2x;" in row for row in table), table
