"""The daily digest against a ledger filled through the real API on a ManualClock."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

from guards.clock import ManualClock

BERLIN = ZoneInfo("Europe/Berlin")
ADMIN = "U0ADMIN"
RSS = "acme/alice/rss-bot"
OPS = "acme/bob/ops-bot"
HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-5"
POLICY = {
    "timezone": "Europe/Berlin",
    "admins": [ADMIN],
    "channels": {"digest": "C0DIGEST", "alerts": "C0ALERTS"},
    "budgets": {"defaults": {"agent": {"day": "10.00"}}, "scopes": {"acme": {"day": "200.00"}}},
    "breakers": {"spend_rate": None},  # the test spends fast on purpose
}


def berlin(y, mo, d, h=0, mi=0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN).timestamp()


async def spend(app, scope, *, hold, charge, model, outcome="success", key):
    tok = await app.token(scope.rsplit("/", 1)[0])
    r = await app.request(
        "POST",
        "/v1/reservations",
        token=tok,
        json={"scope": scope, "idempotency_key": key, "max_cost_micros": hold, "model": model},
    )
    assert r.status_code == 201, r.text
    s = await app.request(
        "POST",
        f"/v1/reservations/{r.json()['reservation_id']}/settle",
        token=tok,
        json={"actual_cost_micros": charge, "outcome": outcome},
    )
    assert s.status_code == 200, s.text


async def fill_monday(app):
    """Sunday: $1 on rss-bot. Monday 2026-01-05: $7.00 in five charges, a breaker trip, a dup."""
    app.clock.set(berlin(2026, 1, 4, 12))
    await spend(app, RSS, hold=1_000_000, charge=1_000_000, model=HAIKU, key="sun")
    app.clock.set(berlin(2026, 1, 5, 10))
    await spend(app, RSS, hold=1_000_000, charge=1_000_000, model=HAIKU, key="m1")
    await spend(app, RSS, hold=1_000_000, charge=1_000_000, model=HAIKU, key="m2")
    await spend(app, RSS, hold=500_000, charge=500_000, model=HAIKU, key="m3", outcome="failure")
    await spend(app, OPS, hold=3_000_000, charge=3_000_000, model=SONNET, key="m4")
    await spend(app, OPS, hold=1_000_000, charge=1_500_000, model=SONNET, key="m5")  # overrun
    app.clock.set(berlin(2026, 1, 5, 11))
    await app.store.write(lambda tx: app.ns.breakers.force_open(tx, OPS, ADMIN, "looping"))
    app.clock.set(berlin(2026, 1, 5, 12, 30))
    await app.store.write(lambda tx: app.ns.breakers.force_close(tx, OPS, ADMIN))
    tok = await app.token("acme/alice")
    r = await app.request(
        "POST",
        "/v1/validations",
        token=tok,
        json={"scope": RSS, "stream": "posts", "items": ["Hello world", "Hello world"]},
    )
    assert r.status_code == 200, r.text
    hb = await app.request("POST", "/v1/heartbeats", token=tok, json={"scope": RSS})
    assert hb.status_code == 204, hb.text


async def digest_rows(app):
    rows = await app.store.fetch(
        "SELECT ref, method, channel, args FROM outbox WHERE ref LIKE 'digest:%' ORDER BY id"
    )
    return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]


async def test_the_digest_shows_the_day_s_figures_and_posts_once(app_factory):
    app = await app_factory(POLICY, clock=ManualClock(berlin(2026, 1, 4, 8)))
    app.ns.scheduler.pause_job("digest")
    poster = app.ns.extras["digest"]
    await fill_monday(app)
    app.clock.set(berlin(2026, 1, 6, 8, 59))
    assert await poster.tick() == [("acme", date(2026, 1, 4))]  # Sunday's, due Monday 09:00
    app.clock.set(berlin(2026, 1, 6, 9, 0))
    assert await poster.tick() == [("acme", date(2026, 1, 5))]
    assert await poster.tick() == []

    rows = await digest_rows(app)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("digest:acme:2026-01-04", "chat.postMessage", "C0DIGEST"),
        ("digest:acme:2026-01-04:chart", "files.upload", "C0DIGEST"),
        ("digest:acme:2026-01-05", "chat.postMessage", "C0DIGEST"),
        ("digest:acme:2026-01-05:chart", "files.upload", "C0DIGEST"),
    ]
    text = rows[2][3]["text"]
    assert "Nightshift digest · acme · Mon 2026-01-05 (Europe/Berlin)" in text
    assert "*Spend* $7.00 of $200.00 day budget (4%)" in text
    assert "`acme/bob/ops-bot` $4.50 of $10.00 (45%)" in text
    assert "`acme/alice/rss-bot` $2.50 of $10.00 (25%)" in text
    assert "*By model* claude-sonnet-4-5 $4.50 (2 calls) · claude-haiku-4-5 $2.50 (3 calls)" in text
    assert "1 of 5 calls failed or timed out" in text
    assert "*Model mix* small 60% · medium 40% of 5 calls" in text
    assert "saved $13.00 against always using claude-opus-4-5 (it would have cost $20.00)" in text
    assert "*Overruns* 1 settle charged $0.50 beyond its hold" in text
    assert "*Breakers* 1 trip; longest open: acme/bob/ops-bot 1h 30m" in text
    assert "*Validation* 1 rejection (duplicates 1); 1 item kept out" in text
    assert "top streams: acme/alice/rss-bot `posts` 1" in text
    assert "*Alerts*" in text
    assert "*Heartbeats* uptime acme/alice/rss-bot" in text
    assert text.endswith("— 🟦 acme/bob/ops-bot · 🟧 acme/alice/rss-bot")
    blocks = rows[2][3]["blocks"]
    assert blocks[0]["type"] == "header" and len(blocks) <= 50

    upload = rows[3][3]
    png = base64.b64decode(upload["content_b64"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert upload["filename"] == "nightshift-spend-acme-2026-01-05.png"
    assert upload["initial_comment"] == "🟦 acme/bob/ops-bot · 🟧 acme/alice/rss-bot"
    stored = await app.store.fetch("SELECT namespace, day, chart FROM digests ORDER BY day")
    assert [tuple(r) for r in stored] == [("acme", "2026-01-04", 1), ("acme", "2026-01-05", 1)]


async def test_a_digest_missed_while_down_is_posted_once_on_start(app_factory, tmp_path):
    db = tmp_path / "digest.db"
    first = await app_factory(POLICY, clock=ManualClock(berlin(2026, 1, 5, 10)), db=db)
    await spend(first, RSS, hold=1_000_000, charge=1_000_000, model=HAIKU, key="k")
    await first.ns.stop()
    # down from Monday 10:00 until Wednesday 12:00: Monday's and Tuesday's digests were due
    second = await app_factory(POLICY, clock=ManualClock(berlin(2026, 1, 7, 12)), db=db)
    rows = await digest_rows(second)
    assert [r[0] for r in rows] == ["digest:acme:2026-01-06", "digest:acme:2026-01-06:chart"]
    assert "*Spend* $0.00 of $200.00" in rows[0][3]["text"]
    await second.ns.stop()
    third = await app_factory(POLICY, clock=ManualClock(berlin(2026, 1, 7, 13)), db=db)
    assert len(await digest_rows(third)) == 2


async def test_without_a_digest_channel_nothing_is_posted(app_factory):
    policy = {**POLICY, "channels": {"alerts": "C0ALERTS"}}
    app = await app_factory(policy, clock=ManualClock(berlin(2026, 1, 5, 10)))
    await spend(app, RSS, hold=1_000_000, charge=1_000_000, model=HAIKU, key="k")
    app.clock.set(berlin(2026, 1, 6, 10))
    assert await app.ns.extras["digest"].tick() == []
    assert await digest_rows(app) == []


async def test_the_digest_and_its_chart_reach_slack(slack_http, fake_slack):
    slack = await slack_http(POLICY, clock=ManualClock(berlin(2026, 1, 5, 10)))
    app = slack.app
    app.ns.scheduler.pause_job("digest")
    await spend(app, RSS, hold=1_000_000, charge=1_000_000, model=HAIKU, key="k")
    app.clock.set(berlin(2026, 1, 6, 9, 1))
    assert await app.ns.extras["digest"].tick() == [("acme", date(2026, 1, 5))]
    await fake_slack.wait_for(lambda: fake_slack.calls_of("files.completeUploadExternal", ok=True))
    post = fake_slack.posts("C0DIGEST")[0]
    assert "*Spend* $1.00 of $200.00 day budget" in post.args["text"]
    assert [c.method for c in fake_slack.calls if "upload" in c.method.lower()] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    (png,) = fake_slack.uploads.values()
    assert png.startswith(b"\x89PNG")
    complete = fake_slack.calls_of("files.completeUploadExternal")[0]
    assert complete.args.get("channel_id") == "C0DIGEST"

    reply = await slack.command("digest yesterday")
    assert "as posted to <#C0DIGEST>" in reply["text"]
    assert "*Spend* $1.00 of $200.00 day budget" in reply["text"]
    preview = await slack.command("digest")
    assert "Tue 2026-01-06 so far (09:01 Europe/Berlin)" in preview["text"]
    assert preview.get("response_type", "ephemeral") == "ephemeral"
    typo = await slack.command("digest yesterdy")
    assert "No namespace `yesterdy`" in typo["text"] and "Did you mean `yesterday`?" in typo["text"]
    assert "known: acme" in typo["text"] and "Spend" not in typo["text"]


async def test_the_text_stands_alone_when_the_upload_fails(slack_http, fake_slack):
    slack = await slack_http(POLICY, clock=ManualClock(berlin(2026, 1, 5, 10)))
    app = slack.app
    app.ns.scheduler.pause_job("digest")
    await spend(app, RSS, hold=1_000_000, charge=1_000_000, model=HAIKU, key="k")
    fake_slack.fail("files.getUploadURLExternal", status=200, error="not_allowed_token_type")
    app.clock.set(berlin(2026, 1, 6, 9, 1))
    await app.ns.extras["digest"].tick()
    await fake_slack.wait_for(lambda: fake_slack.calls_of("files.getUploadURLExternal"))
    await fake_slack.wait_for(lambda: fake_slack.posts("C0DIGEST"))
    text = fake_slack.posts("C0DIGEST")[0].args["text"]
    assert "Chart: spend by agent, last 7 days — 🟦 acme/alice/rss-bot" in text
    for _ in range(50):
        states = await app.store.fetch(
            "SELECT method, state FROM outbox WHERE ref LIKE 'digest:%' ORDER BY id"
        )
        if all(s[1] != "pending" for s in states):
            break
        await asyncio.sleep(0.05)
    assert [tuple(s) for s in states] == [
        ("chat.postMessage", "delivered"),
        ("files.upload", "failed"),
    ]


async def test_the_digest_counters_match_the_ledger(app_factory):
    app = await app_factory(POLICY, clock=ManualClock(berlin(2026, 1, 4, 8)))
    await fill_monday(app)
    kept = await app.store.fetch(
        "SELECT namespace, day, model, calls, charged_micros, failed, overruns, overrun_micros"
        " FROM digest_model_daily ORDER BY day, model"
    )
    recomputed = await app.store.fetch(
        "SELECT substr(scope, 1, instr(scope, '/') - 1), period_day, COALESCE(model, ''),"
        " COUNT(*), SUM(charged_micros), SUM(outcome != 'success'), SUM(overrun_micros > 0),"
        " SUM(overrun_micros) FROM reservations WHERE state = 'settled' GROUP BY 1, 2, 3"
        " ORDER BY 2, 3"
    )
    assert [tuple(r) for r in kept] == [tuple(r) for r in recomputed]
    assert [tuple(r) for r in kept] == [
        ("acme", "2026-01-04", HAIKU, 1, 1_000_000, 0, 0, 0),
        ("acme", "2026-01-05", HAIKU, 3, 2_500_000, 1, 0, 0),
        ("acme", "2026-01-05", SONNET, 2, 4_500_000, 0, 1, 500_000),
    ]
    spent = await app.store.fetch(
        "SELECT day, spent_micros FROM usage_daily WHERE scope = 'acme' ORDER BY day"
    )
    assert [tuple(r) for r in spent] == [("2026-01-04", 1_000_000), ("2026-01-05", 7_000_000)]


async def test_a_namespace_that_began_today_gets_its_day_so_far_at_the_digest_time(
    app_factory, caplog
):
    app = await app_factory(POLICY, clock=ManualClock(berlin(2026, 1, 5, 8, 30)))
    app.ns.scheduler.pause_job("digest")
    poster = app.ns.extras["digest"]
    await spend(app, RSS, hold=1_000_000, charge=1_000_000, model=HAIKU, key="k")
    app.clock.set(berlin(2026, 1, 5, 8, 59))
    assert await poster.tick() == []  # not the digest time yet
    app.clock.set(berlin(2026, 1, 5, 9, 0))
    with caplog.at_level(logging.INFO, logger="bot.digest.poster"):
        assert await poster.tick() == [("acme", date(2026, 1, 4))]  # recorded under the due day
    # the log names the day the post shows (audit19 reboot L1: it said 2026-01-04)
    assert "posted the digest of acme for 2026-01-05 so far" in caplog.text
    assert await poster.tick() == []
    rows = await digest_rows(app)
    assert rows[0][0] == "digest:acme:2026-01-04"
    assert "Nightshift digest · acme · Mon 2026-01-05 so far (09:00" in rows[0][3]["text"]
    assert "*Spend* $1.00 of $200.00" in rows[0][3]["text"]
    app.clock.set(berlin(2026, 1, 6, 9, 0))  # the next day: the whole of Monday, as usual
    assert await poster.tick() == [("acme", date(2026, 1, 5))]
    full = (await digest_rows(app))[-2][3]["text"]
    assert "Nightshift digest · acme · Mon 2026-01-05 (Europe/Berlin)" in full


async def test_a_namespace_that_began_after_the_digest_time_waits_for_tomorrow(app_factory):
    app = await app_factory(POLICY, clock=ManualClock(berlin(2026, 1, 5, 15)))
    app.ns.scheduler.pause_job("digest")
    await spend(app, RSS, hold=1_000_000, charge=1_000_000, model=HAIKU, key="k")
    app.clock.set(berlin(2026, 1, 5, 23, 59))
    assert await app.ns.extras["digest"].tick() == []


async def test_digest_yesterday_on_a_namespace_s_first_day_says_there_is_no_full_day(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock(berlin(2026, 1, 5, 8, 30)))
    app = slack.app
    app.ns.scheduler.pause_job("digest")
    await spend(app, RSS, hold=1_000_000, charge=1_000_000, model=HAIKU, key="k")
    app.clock.set(berlin(2026, 1, 5, 9, 0))
    assert await app.ns.extras["digest"].tick() == [("acme", date(2026, 1, 4))]  # today so far
    reply = await slack.command("digest yesterday")
    assert reply["text"] == (
        "`acme` began today at 08:30: it has no full day yet. Its day so far was posted to"
        " <#C0DIGEST> today at 09:00. Today's digest is posted tomorrow at 09:00;"
        " `/agent digest acme` shows today so far."
    )
    assert "Nightshift digest" not in reply["text"]  # not today's partial passed off as yesterday
    app.clock.set(berlin(2026, 1, 6, 9, 0))
    await app.ns.extras["digest"].tick()
    reply = await slack.command("digest yesterday")
    assert "Nightshift digest · acme · Mon 2026-01-05 (Europe/Berlin)" in reply["text"]


async def test_digest_yesterday_says_when_the_day_so_far_really_went_out(slack_http):
    """audit24 C L6: "Its day so far was posted today at 09:00" was read off the clock: a
    catch-up posted later was said to go out at 09:00, and one never posted (no channel)
    was said to have gone out."""
    slack = await slack_http(POLICY, clock=ManualClock(berlin(2026, 1, 5, 8, 30)))
    app = slack.app
    app.ns.scheduler.pause_job("digest")  # the test drives the ticks: down at 09:00
    await spend(app, RSS, hold=1_000_000, charge=1_000_000, model=HAIKU, key="k")
    app.clock.set(berlin(2026, 1, 5, 9, 0))
    due = (await slack.command("digest yesterday"))["text"]
    assert " Its day so far is due at 09:00 and has not gone out yet. " in due, due
    app.clock.set(berlin(2026, 1, 5, 9, 4))  # back up: the catch-up goes out now
    assert await app.ns.extras["digest"].tick() == [("acme", date(2026, 1, 4))]
    app.clock.set(berlin(2026, 1, 5, 9, 30))
    reply = (await slack.command("digest yesterday"))["text"]
    assert " Its day so far was posted to <#C0DIGEST> today at 09:04. " in reply, reply

    quiet = {**POLICY, "channels": {"alerts": "C0ALERTS"}}  # no digest channel
    slack = await slack_http(quiet, clock=ManualClock(berlin(2026, 1, 5, 8, 30)))
    app = slack.app
    app.ns.scheduler.pause_job("digest")
    await spend(app, RSS, hold=1_000_000, charge=1_000_000, model=HAIKU, key="k")
    app.clock.set(berlin(2026, 1, 5, 9, 30))
    assert await app.ns.extras["digest"].tick() == []
    reply = (await slack.command("digest yesterday"))["text"]
    assert reply == (
        "`acme` began today at 08:30: it has no full day yet. No digest is posted: no channel"
        " is set (`channels.digest`); `/agent digest acme` shows today so far."
    )


async def test_the_digest_of_the_first_namespace_says_so_and_names_the_others(slack_http):
    """audit24 C L5: with two namespaces, `/agent digest` showed the first's and its text did
    not say another had one (the note was in the blocks' context only)."""
    policy = {**POLICY, "budgets": {"scopes": {"acme": {"day": "200.00"}, "tok": {"day": "50"}}}}
    slack = await slack_http(policy, clock=ManualClock(berlin(2026, 1, 5, 10)))
    app = slack.app
    await spend(app, RSS, hold=1_000_000, charge=1_000_000, model=HAIKU, key="a")
    await spend(app, "tok/u/bot", hold=1_000_000, charge=500_000, model=HAIKU, key="t")
    reply = await slack.command("digest")
    note = "shown: acme, the first of 2 namespaces; the other: tok (`/agent digest tok`)"
    assert "Nightshift digest · acme · Mon 2026-01-05 so far" in reply["text"]
    assert reply["text"].endswith(note), reply["text"]
    assert reply["blocks"][-1]["elements"][0]["text"].endswith(note)
    named = await slack.command("digest tok")
    assert "Nightshift digest · tok" in named["text"]
    assert named["text"].endswith("other namespaces: acme (`/agent digest acme`)")


async def test_the_digest_names_ten_other_namespaces_and_counts_the_rest(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock(berlin(2026, 1, 5, 10)))
    now = slack.app.clock.now()
    await slack.app.store.write(
        lambda tx: tx.executemany(
            "INSERT INTO scopes (path, parent, depth, created_at) VALUES (?, NULL, 1, ?)",
            [(f"team-{i:02d}", now) for i in range(13)],
        )
    )
    reply = await slack.command("digest team-00")
    text = json.dumps(reply, ensure_ascii=False)
    assert "other namespaces: team-01, team-02" in text
    assert "team-10 and 2 more (`/agent digest team-01`)" in text  # 12 others: 10 named
    typo = await slack.command("digest team-99")
    assert "team-09 and 3 more)" in typo["text"]  # 13 known, 10 named


async def test_a_charge_to_a_day_whose_digest_went_out_is_in_the_next_digest(app_factory):
    """audit16 money M5: a long hold settled after its day's digest was posted was in no
    digest at all (its day's had gone out; the next day's counts that day only)."""
    app = await app_factory(POLICY, clock=ManualClock(berlin(2026, 1, 4, 8)))
    app.ns.scheduler.pause_job("digest")
    poster = app.ns.extras["digest"]
    tok = await app.token("acme/alice")
    app.clock.set(berlin(2026, 1, 4, 23, 57))  # Sunday: a hold of a day's TTL, not settled
    r = await app.request(
        "POST",
        "/v1/reservations",
        token=tok,
        json={
            "scope": f"{RSS}/c2",
            "idempotency_key": "long",
            "max_cost_micros": 2_000_000,
            "ttl_seconds": 86_400,
        },
    )
    rid = r.json()["reservation_id"]
    await spend(app, RSS, hold=1_000_000, charge=800_000, model=HAIKU, key="sun")
    app.clock.set(berlin(2026, 1, 5, 9, 0))
    assert await poster.tick() == [("acme", date(2026, 1, 4))]
    app.clock.set(berlin(2026, 1, 5, 10, 0))  # after Sunday's digest: charged to Sunday
    s = await app.request(
        "POST",
        f"/v1/reservations/{rid}/settle",
        token=tok,
        json={"actual_cost_micros": 1_500_000},
    )
    assert s.status_code == 200, s.text
    sunday = (await digest_rows(app))[0][3]["text"]
    assert "*Spend* $0.80" in sunday and "earlier days" not in sunday
    so_far = await poster.builder.build("acme", date(2026, 1, 5), partial=True)
    assert (
        "*Charged to earlier days* $1.50 from 1 settle that came after its day's digest"
        f" ({RSS} $1.50)" in so_far.text
    )
    app.clock.set(berlin(2026, 1, 6, 9, 0))
    assert await poster.tick() == [("acme", date(2026, 1, 5))]
    monday = (await digest_rows(app))[2][3]["text"]
    assert "*Charged to earlier days* $1.50 from 1 settle" in monday
    app.clock.set(berlin(2026, 1, 7, 9, 0))  # said once: not again in Tuesday's
    assert await poster.tick() == [("acme", date(2026, 1, 6))]
    tuesday = next(r for r in await digest_rows(app) if r[0] == "digest:acme:2026-01-06")[3]
    assert "earlier days" not in tuesday["text"]


NIGHT_POLICY = {
    **POLICY,
    "channels": {"digest": "C0DIGEST", "alerts": "C0ALERTS"},
    "budgets": {
        "defaults": {"agent": {"day": "10.00"}},
        "scopes": {"acme": {"day": "200.00"}, OPS: {"day": "1.00"}, RSS: {"day": "1.00"}},
    },
    "breakers": {"spend_rate": {"max": "2.00", "per_seconds": "10m"}},
    "oncall": {"rotations": [{"name": "primary", "users": ["U01"], "start": "2025-12-29"}]},
}
KILLED, PAGED, IGNORED = "acme/dave/kill-bot", "acme/carol/a-bot", "acme/carol/b-bot"


async def refused(app, scope, *, key):
    """``scope`` asks $1.50 against its $1.00 day budget: a 402 (a P1 posted to the channel)."""
    tok = await app.token(scope.rsplit("/", 1)[0])
    body = {"scope": scope, "idempotency_key": key, "max_cost_micros": 1_500_000}
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 402, r.text


async def test_the_digest_says_who_answered_each_alert_and_a_kill_switch_as_one(slack_http):
    """audit23 forensics M2, L9, L7: "P1 5 (5 not acknowledged) · P2 2 (2 not acknowledged)"
    when the operator's own budget raise, approve and kill switch had resolved them, and
    P2s page nobody; "longest open: …big-bot 17h 36m (still open)" for her kill switch;
    "$0.00 of $1.00" for $0.003 spent, which `/agent budget` showed as $0.003."""
    slack = await slack_http(NIGHT_POLICY, clock=ManualClock(berlin(2026, 1, 5, 8)))
    app = slack.app
    app.ns.scheduler.pause_job("digest")
    alerts = app.ns.extras["alerts"]
    # 08:00 the admin's kill switch on an agent (a P2: it pages nobody)
    await spend(app, KILLED, hold=10_000, charge=3_000, model=HAIKU, key="seen")
    opened = await slack.command(f"breaker {KILLED} open looping on purpose")
    assert "forced open" in opened["text"].lower(), opened
    budget = await slack.command(f"budget {KILLED}")
    assert "$0.003 of $10.00" in budget["text"], budget
    # 10:00 two P1s: the admin answers one by raising the budget; the other clears itself
    app.clock.set(berlin(2026, 1, 5, 10))
    await refused(app, OPS, key="o1")
    await refused(app, RSS, key="r1")
    await alerts.process()
    raised = await slack.command(f"budget set {OPS} 5 day")
    assert "$5.00" in raised["text"], raised
    # 11:00 two spend trips (P0s): U01 acknowledges one after 2 minutes, the other nobody
    app.clock.set(berlin(2026, 1, 5, 11))
    await spend(app, PAGED, hold=3_000_000, charge=2_500_000, model=HAIKU, key="p1")
    await spend(app, IGNORED, hold=3_000_000, charge=2_500_000, model=HAIKU, key="i1")
    await alerts.process()
    rows = await app.store.fetch("SELECT id, scope, tier FROM alerts ORDER BY id")
    ids = {(scope, tier): i for i, scope, tier in rows}
    assert set(ids) == {(KILLED, "P2"), (OPS, "P1"), (RSS, "P1"), (PAGED, "P0"), (IGNORED, "P0")}
    app.clock.set(berlin(2026, 1, 5, 11, 2))
    acked = await slack.command(f"ack {ids[(PAGED, 'P0')]}", user="U01")
    assert "acknowledged" in acked["text"].lower(), acked
    # the next day: RSS's budget alert resolves (a new day began), the digest goes out
    app.clock.set(berlin(2026, 1, 6, 9, 0))
    await alerts.tick()
    assert await app.ns.extras["digest"].tick() == [("acme", date(2026, 1, 5))]
    text = (await digest_rows(app))[-2][3]["text"]
    assert (
        "*Alerts* P0 2: 1 acknowledged (MTTA 2m), 1 not acknowledged (still open)"
        " · P1 2: 1 resolved by a person, 1 not acknowledged (resolved on its own) · P2 1\n"
    ) in text + "\n"
    assert "P2 1 (" not in text  # a P2 asks nobody: a count, not "not acknowledged"
    # money reads as /agent budget read it that day (audit23 forensics L7: "$0.00")
    assert f"`{KILLED}` $0.003 of $10.00 (<1%)" in text
    assert f"`{PAGED}` $2.50 of $10.00 (25%)" in text
    # the kill switch is the longest open breaker: it says who set it, not "stuck"
    assert f"longest open: {KILLED} 16h (forced open by <@{ADMIN}>, still open)" in text, text


async def test_the_digest_counts_the_calls_the_guards_refused_and_what_they_asked(app_factory):
    """audit23 forensics M1: refused calls were counted only in /metrics, which a restart
    empties; the morning after, nobody could say what the guards stopped."""
    policy = {
        **POLICY,
        "breakers": {"spend_rate": None, "max_attempts_per_task": 1},
    }
    app = await app_factory(policy, clock=ManualClock(berlin(2026, 1, 5, 10)))
    app.ns.scheduler.pause_job("digest")
    tok = await app.token("acme")

    async def reserve(scope: str, key: str, micros: int, task: str | None = None) -> int:
        body: dict[str, object] = {
            "scope": scope,
            "idempotency_key": key,
            "max_cost_micros": micros,
        }
        if task:
            body["task_id"] = task
        r = await app.request("POST", "/v1/reservations", token=tok, json=body)
        return int(r.status_code)

    assert await reserve(RSS, "over-1", 11_000_000) == 402  # over its $10.00 day
    assert await reserve(RSS, "over-2", 12_000_000) == 402
    assert await reserve(RSS, "over-2", 12_000_000) == 402  # retried: refused again, counted
    await app.store.write(lambda tx: app.ns.breakers.force_open(tx, RSS, ADMIN, "looping"))
    assert [await reserve(RSS, f"loop-{n}", 100_000) for n in range(3)] == [503] * 3
    assert await reserve(OPS, "t1", 50_000, task="t") == 201
    assert await reserve(OPS, "t2", 50_000, task="t") == 429  # its second attempt
    app.clock.set(berlin(2026, 1, 6, 9, 0))
    assert await app.ns.extras["digest"].tick() == [("acme", date(2026, 1, 5))]
    [row] = [r for r in await digest_rows(app) if r[1] == "chat.postMessage"]
    assert (
        "*Refused* 7 times before a call started (their ceilings $35.35 in all): 3 by a"
        " breaker, 3 over budget, 1 past attempts; most: acme/alice/rss-bot 6, acme/bob/ops-bot 1"
    ) in row[3]["text"]


async def test_digest_yesterday_of_a_namespace_in_another_zone_says_its_own_time(slack_http):
    """audit23 tenants F4: a namespace at UTC+14 that began at 01:24 its time was said to
    have begun "today at 11:24" (the policy's zone), on what was its next day."""
    kiri = "Pacific/Kiritimati"
    budgets = {"defaults": {"agent": {"day": "10.00"}}, "scopes": {"kiri": {"timezone": kiri}}}
    policy = {**POLICY, "budgets": budgets}
    slack = await slack_http(policy, clock=ManualClock(berlin(2026, 1, 5, 12, 24)))  # 01:24 there
    app = slack.app
    app.ns.scheduler.pause_job("digest")
    await spend(app, "kiri/a/bot", hold=1_000, charge=1_000, model=HAIKU, key="k")
    reply = await slack.command("digest yesterday kiri")
    assert reply["text"] == (
        "`kiri` began today at 01:24 (Pacific/Kiritimati): it has no full day yet. Its day so"
        " far is posted today at 09:00 (Pacific/Kiritimati). Today's digest is posted tomorrow"
        " at 09:00; `/agent digest kiri` shows today so far."
    )


async def test_the_digest_s_totals_are_the_sums_of_its_lines_as_shown(slack_http):
    """audit24 agreement F1: three agents charged $0.004 each read "$0.004" apiece under
    "*Spend* $0.01" and "*By model* … $0.01", and three refused asks of $0.001 had "their
    ceilings $0.00 in all"; `/agent budget tiny` and the API said $0.012."""
    policy = {
        **POLICY,
        "budgets": {"defaults": {"agent": {"day": "1.00"}}, "scopes": {"tiny": {"day": "1.00"}}},
        "breakers": {"spend_rate": None, "max_attempts_per_task": 1},
    }
    slack = await slack_http(policy, clock=ManualClock(berlin(2026, 1, 5, 10)))
    app = slack.app
    app.ns.scheduler.pause_job("digest")
    tok = await app.token("tiny")

    async def ask(scope: str, key: str, task: str | None = None) -> int:
        body: dict[str, object] = {"scope": scope, "idempotency_key": key, "max_cost_micros": 1_000}
        if task:
            body["task_id"] = task
        r = await app.request("POST", "/v1/reservations", token=tok, json=body)
        return int(r.status_code)

    for agent in ("a1", "a2", "a3"):
        await spend(app, f"tiny/u/{agent}", hold=10_000, charge=4_000, model=HAIKU, key=agent)
    assert await ask("tiny/u/a1", "t1", task="t") == 201
    assert [await ask("tiny/u/a1", f"t{n}", task="t") for n in (2, 3)] == [429, 429]
    await app.store.write(lambda tx: app.ns.breakers.force_open(tx, "tiny/u/a3", ADMIN, "x"))
    assert await ask("tiny/u/a3", "b1") == 503
    budget = await slack.command("budget tiny")
    assert "$0.012" in budget["text"], budget

    reply = (await slack.command("digest tiny"))["text"]
    assert "*Spend* $0.012 of $1.00 day budget (1%)" in reply, reply
    assert "`tiny/u/a1` $0.004 of $1.00 (<1%)" in reply
    assert "*By model* claude-haiku-4-5 $0.012 (3 calls)" in reply
    assert "(their ceilings $0.003 in all): 2 past attempts, 1 by a breaker" in reply
    # re-priced at the large tier: $0.06, of which the $0.012 spent is not "saved"
    assert "saved $0.048 against always using claude-opus-4-5 (it would have cost $0.06)" in reply
    app.clock.set(berlin(2026, 1, 6, 9, 0))
    assert ("tiny", date(2026, 1, 5)) in await app.ns.extras["digest"].tick()
    posted = next(r for r in await digest_rows(app) if r[0] == "digest:tiny:2026-01-05")[3]
    assert "*Spend* $0.012 of $1.00 day budget (1%)" in posted["text"]
    assert "(their ceilings $0.003 in all)" in posted["text"]


HB_POLICY = {
    **POLICY,
    "heartbeats": {"timeout_seconds": "60s", "misses_before_alert": 2},
    "oncall": {"rotations": [{"name": "ops", "users": ["U01"]}]},
}


async def test_a_namespace_with_only_a_heartbeat_that_paged_gets_its_digest(slack_http):
    """audit26 contract F1: a namespace that never reserved had no digest, even after a
    night of P0 pages for its agents; `/agent digest` said "Nothing to digest yet"."""
    slack = await slack_http(HB_POLICY, clock=ManualClock(berlin(2026, 1, 5, 3)))
    app = slack.app
    app.ns.scheduler.pause_job("digest")
    empty = await slack.command("digest")
    assert empty["text"] == (
        "Nothing to digest yet: no agent has shown up (a reservation, refused call, heartbeat,"
        " job run, route, validation or alert)."
    )
    tok = await app.token("acme/alice")
    hb = await app.request("POST", "/v1/heartbeats", token=tok, json={"scope": RSS})
    assert hb.status_code == 204, hb.text
    app.clock.set(berlin(2026, 1, 5, 3, 2))  # silent for 2 × 60 s: the P0 pages
    await app.ns.extras["alerts"].tick()
    rows = await app.store.fetch("SELECT scope, tier FROM alerts")
    assert [tuple(r) for r in rows] == [(RSS, "P0")]
    assert await app.store.fetch("SELECT path FROM scopes") == []  # it never reserved

    poster = app.ns.extras["digest"]
    app.clock.set(berlin(2026, 1, 5, 8, 59))
    assert await poster.tick() == []  # not the digest time yet
    app.clock.set(berlin(2026, 1, 5, 9, 0))
    assert await poster.tick() == [("acme", date(2026, 1, 4))]  # its day so far
    text = (await digest_rows(app))[0][3]["text"]
    assert "Nightshift digest · acme · Mon 2026-01-05 so far (09:00" in text
    assert "*Alerts* P0 1" in text, text
    assert f"*Heartbeats* uptime {RSS}" in text, text

    reply = await slack.command("digest acme")
    assert "Nightshift digest · acme · Mon 2026-01-05 so far" in reply["text"], reply
    assert "*Alerts* P0 1" in reply["text"]
    yesterday = await slack.command("digest yesterday")
    assert yesterday["text"].startswith("`acme` began today at 03:00: it has no full day yet.")
    typo = await slack.command("digest acne")
    assert "(known: acme). Did you mean `acme`?" in typo["text"], typo
    app.clock.set(berlin(2026, 1, 6, 9, 0))  # the next day: the whole of Monday
    assert await poster.tick() == [("acme", date(2026, 1, 5))]
    full = (await digest_rows(app))[-1][3]["text"]
    assert "Nightshift digest · acme · Mon 2026-01-05 (Europe/Berlin)" in full
    assert "*Alerts* P0 1" in full


async def test_namespaces_of_job_runs_routes_streams_and_alerts_get_a_digest(slack_http):
    """Each way an agent shows itself, without a reservation, gives its namespace a digest."""
    slack = await slack_http(POLICY, clock=ManualClock(berlin(2026, 1, 4, 12)))
    app = slack.app
    app.ns.scheduler.pause_job("digest")
    at = app.clock.now()

    def seed(tx):
        tx.execute(
            "INSERT INTO job_runs (id, job, scope, scheduled_for, decided_at, state)"
            " VALUES ('r1', 'tick', 'jobs/alice/ticker', ?, ?, 'succeeded')",
            (at, at),
        )
        # names that sort between a namespace and its agents ("routes-x" < "routes/…")
        for i, scope in enumerate(
            ("routes/alice/bot", "routes/bob/bot", "routes-x/a/b", "routes.y/a/b", "routes0/a/b")
        ):
            tx.execute(
                "INSERT INTO routing_decisions (id, at, scope, namespace, intent, tier,"
                " wanted_tier, model, degraded, source, reason) VALUES (?, ?, ?, ?, 'chat',"
                " 'small', 'small', 'claude-haiku-4-5', 0, 'rule', 'r')",
                (f"rt{i}", at, scope, scope.split("/")[0]),
            )
        tx.execute(
            "INSERT INTO validation_streams (agent, name, created_at)"
            " VALUES ('streams/alice/bot', 'posts', ?)",
            (at,),
        )
        for scope in ("alerted/alice/bot", "model:claude-haiku-4-5"):
            tx.execute(
                "INSERT INTO alerts (fingerprint, kind, scope, tier, first_at, last_at, facts)"
                " VALUES (?, 'breaker_opened', ?, 'P1', ?, ?, '{}')",
                (f"breaker_opened:{scope}", scope, at, at),
            )

    await app.store.write(seed)
    app.clock.set(berlin(2026, 1, 5, 9, 0))
    posted = await app.ns.extras["digest"].tick()
    names = ["alerted", "jobs", "routes", "routes-x", "routes.y", "routes0", "streams"]
    assert posted == [(n, date(2026, 1, 4)) for n in names]  # Sunday's: they began then
    typo = await slack.command("digest nope")
    assert f"(known: {', '.join(names)})" in typo["text"], typo
