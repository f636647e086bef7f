"""``/agent silence <kind>`` and ``<kind>:<scope>``: read as ``/agent alerts`` reads them
(audit9 H1), and a silence on something nothing has used warns first, with what was meant.

The real app in Slack HTTP mode against the fake Slack Web API, signed slash commands,
a ManualClock (starts 2026-01-01 00:00 UTC); alert timers run when the test ticks.
"""

from __future__ import annotations

from typing import Any

from guards.clock import ManualClock
from guards.events import BreakerOpened, HeartbeatMissed, RunawayDetected
from tests.scenario.test_alerts import ALERTS, BOT, POLICY, alerts_of, dms, emit, used

NEWBOT = "acme/dave/newbot"
ELSEWHERE = "globex/bob/x"


async def missed(app: Any, *scopes: str) -> None:
    """These agents' heartbeats stopped: a P0 each."""
    await emit(
        app,
        *(HeartbeatMissed(at=app.clock.now(), scope=s, last_seen=None, misses=2) for s in scopes),
    )


async def held(app: Any) -> list[tuple[str, str, bool]]:
    """Every alert: its kind, its scope, and whether a silence holds it."""
    rows = await app.store.fetch(
        "SELECT kind, scope, silence_id IS NOT NULL FROM alerts ORDER BY id"
    )
    return [(r[0], r[1], bool(r[2])) for r in rows]


async def outgoing(app: Any) -> str:
    """Everything written to the outbox (posts, pages and edits), as one text."""
    rows = await app.store.fetch("SELECT channel, args FROM outbox ORDER BY id")
    return "\n".join(f"{r[0]} {r[1]}" for r in rows)


async def test_a_kind_is_silenced_on_every_scope_and_nothing_else_is(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await missed(app, BOT)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS) and dms(fake, "U01"))

    reply = await slack.command("silence HEARTBEAT_MISSED 1h", user="U01")  # any case
    assert reply["response_type"] == "in_channel"
    assert reply["text"] == (
        "🔕 <@U01> silenced heartbeat_missed alerts on every scope for 1h (until 01:00);"
        " 1 open alert silenced now. Firings are still recorded."
    )
    # a new agent goes quiet, in another namespace too: nobody is paged, nothing posted
    await missed(app, NEWBOT, ELSEWHERE)
    await emit(app, BreakerOpened(at=app.clock.now(), scope=BOT, trip="spend", reason="r"))
    await alerts_of(slack).process()
    assert await held(app) == [
        ("heartbeat_missed", BOT, True),
        ("heartbeat_missed", NEWBOT, True),
        ("heartbeat_missed", ELSEWHERE, True),
        ("breaker_opened_spend", BOT, False),  # another kind still pages
    ]
    sent = await outgoing(app)
    assert NEWBOT not in sent and ELSEWHERE not in sent
    await fake.wait_for(lambda: len(dms(fake, "U01")) == 2)
    assert "Breaker opened on spend rate" in dms(fake, "U01")[1].args["text"]
    listing = (await slack.command("alerts"))["text"]
    assert "🔕 heartbeat_missed alerts on every scope until 01:00 (by <@U01>)" in listing
    [(target, after)] = await app.store.fetch(
        "SELECT target, after FROM audit WHERE action = 'alert.silence'"
    )
    assert (target, after) == (
        "heartbeat_missed alerts on every scope",
        "2026-01-01T01:00:00+00:00",
    )


async def test_kind_colon_scope_silences_that_kind_there_and_below_only(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await missed(app, BOT)
    await alerts_of(slack).process()
    filtered = await slack.command("alerts heartbeat_missed:acme")  # the filter alerts takes
    assert "Open alerts: 1 matching `heartbeat_missed:acme`" in filtered["text"]

    reply = await slack.command("silence heartbeat_missed:acme 1h", user="U01")
    assert reply["text"] == (
        "🔕 <@U01> silenced heartbeat_missed alerts on acme and below for 1h (until 01:00);"
        " 1 open alert silenced now. Firings are still recorded."
    )
    await missed(app, NEWBOT, ELSEWHERE)
    await emit(
        app,
        RunawayDetected(at=app.clock.now(), scope=BOT, stream="rss", count=9, expected_count=1),
    )
    await alerts_of(slack).process()
    assert await held(app) == [
        ("heartbeat_missed", BOT, True),
        ("heartbeat_missed", NEWBOT, True),
        ("heartbeat_missed", ELSEWHERE, False),  # not under acme
        ("runaway", BOT, False),  # not that kind
    ]
    sent = await outgoing(app)
    assert NEWBOT not in sent and ELSEWHERE in sent


async def test_a_family_of_kinds_is_silenced_as_alerts_filters_it(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await used(app)
    reply = await slack.command("silence breaker_opened:acme/alice 30m", user="U01")
    assert reply["text"] == (
        "🔕 <@U01> silenced breaker_opened_* alerts on acme/alice and below for 30m"
        " (until 00:30). Firings are still recorded."
    )
    await emit(
        app,
        BreakerOpened(at=app.clock.now(), scope=BOT, trip="spend", reason="r"),
        BreakerOpened(at=app.clock.now(), scope="acme/alice/other", trip="failures", reason="r"),
        RunawayDetected(at=app.clock.now(), scope=BOT, stream="rss", count=9, expected_count=1),
    )
    await alerts_of(slack).process()
    assert await held(app) == [
        ("breaker_opened_spend", BOT, True),
        ("breaker_opened_failures", "acme/alice/other", True),
        ("runaway", BOT, False),
    ]


async def test_a_silence_nothing_has_used_says_so_first_with_what_was_meant(slack_http):
    """A typo would silence nothing: the reply says so before anything else. The silence
    is still made as asked (an agent about to be deployed may be silenced ahead)."""
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    await used(app)  # acme/alice/rss-bot
    reply = await slack.command("silence rss-bot 1h", user="U01")
    assert reply["response_type"] == "in_channel"
    first, second = reply["text"].split("\n")
    assert first == (
        "⚠️ No agent has reserved or sent a heartbeat under `rss-bot` yet (a typo?), and it is"
        " not an alert kind: this silence covers it once something there alerts."
        " Did you mean `acme/alice/rss-bot`?"
    )
    assert second.startswith("🔕 <@U01> silenced rss-bot and below for 1h")
    cases = {
        "Acme/alice": "Did you mean `acme/alice`?",
        "heartbeat_missed:Acme": "Did you mean `heartbeat_missed:acme`?",
        "acme/alice/rss_bot": "Did you mean `acme/alice/rss-bot`?",
        "rss_bot": "Did you mean `acme/alice/rss-bot`?",
        "hearbeat_missed": "not an alert kind (did you mean `heartbeat_missed`?)",
        "acme/alice/rss-bot/c1": "under `acme/alice/rss-bot/c1` yet (a typo?): this silence",
        "nosuch": "under `nosuch` yet (a typo?), and it is not an alert kind: this silence",
        "model:claude-haiku-4.5": "Did you mean `model:claude-haiku-4-5`?",
    }
    for target, said in cases.items():
        warned = await slack.command(f"silence {target} 1h", user="U01")
        assert warned["text"].startswith("⚠️"), target
        assert said in warned["text"], (target, warned["text"])
        assert "🔕 <@U01> silenced" in warned["text"]
    assert "Did you mean" not in (await slack.command("silence nosuch2 1h"))["text"]
    made = await app.store.fetch("SELECT COUNT(*) FROM silences")
    assert made[0][0] == 1 + len(cases) + 1
    # what was meant works
    for target in ("acme/alice/rss-bot", "heartbeat_missed:acme", "model:claude-haiku-4-5"):
        done = await slack.command(f"silence {target} 1h", user="U01")
        assert done["response_type"] == "in_channel", done["text"]


async def test_a_kind_silence_is_lifted_by_its_own_words_and_its_alerts_notify_again(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await missed(app, BOT)
    await alerts_of(slack).process()
    await fake.wait_for(lambda: fake.posts(ALERTS) and dms(fake, "U01"))
    await slack.command("silence heartbeat_missed 2h", user="U02")

    narrower = await slack.command("silence heartbeat_missed:acme off", user="U01")
    assert narrower["text"] == (
        "There is no active silence on heartbeat_missed:acme; nothing changed."
        " heartbeat_missed:acme is still silenced by heartbeat_missed alerts on every scope"
        " (set by <@U02>): `/agent silence heartbeat_missed off` lifts that one."
        " `/agent alerts` lists the active silences."
    )
    app.clock.advance(30 * 60)
    lifted = await slack.command("silence Heartbeat_Missed off", user="U01")
    assert lifted["response_type"] == "in_channel"
    assert lifted["text"] == (
        "🔔 <@U01> lifted the silence on heartbeat_missed (set by <@U02>, had 1h 30m left);"
        " 1 open alert notifies again now."
    )
    await fake.wait_for(lambda: len(dms(fake, "U01")) == 2)  # paged again

    # `kind:scope` on the alert's own scope and the alert's id name the same thing
    await slack.command(f"silence heartbeat_missed:{BOT} 1h", user="U01")
    by_id = await slack.command("silence #1 off", user="U01")
    assert by_id["text"].startswith(
        f"🔔 <@U01> lifted the silence on #1 (heartbeat_missed:{BOT}) (set by <@U01>"
    )
    assert await held(app) == [("heartbeat_missed", BOT, False)]


async def test_silences_made_before_kinds_existed_still_hold_and_can_be_lifted(slack_http):
    """Rows as earlier versions wrote them: a scope nothing used, and `kind:scope` as the
    exact fingerprint. They keep their meaning and a lift by the same words ends them."""
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    now = app.clock.now()

    def earlier(tx: Any) -> None:
        tx.executemany(
            "INSERT INTO silences (fingerprint, scope, created_by, created_at, expires_at)"
            " VALUES (?, ?, 'U02', ?, ?)",
            [(None, "rss-bot", now, now + 3600), (f"heartbeat_missed:{BOT}", None, now, now + 60)],
        )

    await app.store.write(earlier)
    await missed(app, BOT)
    await alerts_of(slack).process()
    assert await held(app) == [("heartbeat_missed", BOT, True)]
    listing = (await slack.command("alerts"))["text"]
    assert "🔕 rss-bot and below until 01:00 (by <@U02>)" in listing
    typo = await slack.command("silence rss-bot off", user="U01")
    assert typo["text"].startswith("🔔 <@U01> lifted the silence on rss-bot (set by <@U02>")
    exact = await slack.command(f"silence heartbeat_missed:{BOT} off", user="U01")
    assert exact["text"].startswith(
        f"🔔 <@U01> lifted the silence on heartbeat_missed:{BOT} (set by <@U02>, had 1m left);"
        " 1 open alert notifies again now."
    )
    ended = await app.store.fetch("SELECT ended_by FROM silences ORDER BY id")
    assert [r[0] for r in ended] == ["U01", "U01"]
    assert await held(app) == [("heartbeat_missed", BOT, False)]


async def test_a_number_that_is_not_an_alert_id_is_refused_not_made_a_scope(slack_http):
    """audit13 Slack L3: `silence -1 1h` silenced a scope named "-1" for an hour."""
    slack = await slack_http(POLICY, clock=ManualClock())
    for target in ("-1", "1.5", "1e3", "#-2"):
        reply = await slack.command(f"silence {target} 1h")
        assert reply["response_type"] == "ephemeral", reply
        assert "is not an alert id: ids are whole numbers" in reply["text"], reply["text"]
    assert await slack.app.store.fetch("SELECT id FROM silences") == []


async def test_alerts_of_one_namespace_list_only_the_silences_that_may_hold_them(slack_http):
    """audit23 tenants F5: `alerts kiri` ended with every team's silences."""
    slack = await slack_http(POLICY, clock=ManualClock())
    app = slack.app
    for target in ("globex 1h", "acme/alice 1h", "heartbeat_missed 1h", f"runaway:{BOT} 1h"):
        reply = await slack.command(f"silence {target}", user="U01")
        assert "🔕 <@U01> silenced" in reply["text"], reply["text"]
    await missed(app, ELSEWHERE, NEWBOT)
    await alerts_of(slack).process()
    acme = (await slack.command("alerts acme"))["text"]
    assert "🔕 acme/alice and below" in acme  # below it
    assert f"🔕 runaway alerts on {BOT} and below" in acme
    assert "🔕 heartbeat_missed alerts on every scope" in acme  # it holds acme's too
    assert "globex" not in acme
    narrow = (await slack.command(f"alerts {NEWBOT}"))["text"]
    assert "🔕 acme/alice" not in narrow and "globex" not in narrow and "every scope" in narrow
    assert "globex and below" in (await slack.command("alerts"))["text"]  # all: every one
    # recheck31 L3: a kind narrows the silences too (those of another kind hold none)
    kind = (await slack.command("alerts heartbeat_missed"))["text"]
    assert "🔕 heartbeat_missed alerts on every scope" in kind and "globex and below" in kind
    assert "runaway alerts" not in kind, kind


async def test_a_silence_ending_next_year_names_the_year(slack_http):
    """audit24 security L5: on 2026-11-28 a 366-day silence read "until Mon 29 Nov 14:16",
    as if it ended tomorrow; the audit log's row read "Nov 29 14:16". A date half a year or
    more away names its year now, as `ls -l` does."""
    slack = await slack_http(POLICY, clock=ManualClock(1_795_874_400.0))  # Sat 28 Nov 2026 14:00
    reply = await slack.command("silence heartbeat_missed 366d", user="U01")
    assert "for 366d (until Mon 29 Nov 2027 14:00)" in reply["text"]
    short = await slack.command("silence runaway 2d", user="U01")
    assert "for 2d (until Mon 30 Nov 14:00)" in short["text"]  # soon: no year
    long = await slack.command("silence budget_exhausted 200d", user="U01")
    assert "for 200d (until Wed 16 Jun 2027 14:00)" in long["text"]
    listing = (await slack.command("alerts"))["text"]
    assert "until Mon 29 Nov 2027 14:00" in listing
    audit = (await slack.command("audit 5 each alert.silence"))["text"]
    assert "— → Mon 29 Nov 2027 14:00" in audit and "— → Mon 30 Nov 14:00" in audit


async def test_a_reason_with_control_characters_is_refused_in_slack_as_over_http(slack_http):
    """review28 R4 L1: `/agent silence … -- reason` took ESC, BEL and bidi controls that
    POST /v1/silences refuses, and GET /v1/silences gave them back raw."""
    slack = await slack_http(POLICY, clock=ManualClock())
    await used(slack.app, BOT)
    for reason in ("maint \u202eevil\u202c", "\x1b[31mred\x1b[0m", "bell\x07 done"):
        reply = await slack.command(f"silence {BOT} 1h -- {reason}", user="U01")
        assert "the reason holds a control character" in reply["text"], reply
        assert "nothing changed" in reply["text"]
    assert await slack.app.store.fetch("SELECT id FROM silences") == []
    ok = await slack.command(f"silence {BOT} 1h -- provider maintenance", user="U01")
    assert "provider maintenance" in ok["text"], ok
