"""A database refusing writes for a minute is said in the alerts channel, directly (the
outbox lives in that database), and so is its end (audit24 resources M3)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from typing import Any

from bot.storage_notice import QUIET_SECONDS, STOPPED_TEXT
from guards.migrations import begin_immediate, connect

BODY = {"scope": "acme/alice/bot", "idempotency_key": "k1", "max_cost_micros": 1000}
KEYS = itertools.count(2)


def _new() -> dict[str, Any]:
    """A reservation never sent before: a replay writes no row, which ends no outage."""
    return {**BODY, "idempotency_key": f"k{next(KEYS)}"}


POLICY = {"channels": {"alerts": "C0ALERTS"}}
LOCKED = (
    "🔴 Nightshift cannot write to its database since 00:00: OperationalError: database is"
    " locked (another process holds its write lock: a sqlite3 shell or a backup tool in a"
    " transaction? Nightshift's own commands let go within milliseconds). Agent calls are"
    " refused with 503 while it cannot; nothing is lost."
)


class Locked:
    """Another process holding the database's write lock: every write is refused."""

    def __init__(self, db: str) -> None:
        self.conn = connect(db)
        begin_immediate(self.conn)

    def let_go(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


async def _refused_for_a_minute(app: Any, monkeypatch: Any) -> Locked:
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    token = await app.token("acme")
    notice = app.ns.extras["storage_notice"]
    locked = Locked(app.ns.settings.db)
    r = await app.request("POST", "/v1/reservations", token=token, json=BODY)
    assert r.status_code == 503, r.text
    await notice.check()  # refused, but not for a minute yet: nothing said
    app.clock.advance(61)
    r = await app.request("POST", "/v1/reservations", token=token, json=BODY)
    assert r.status_code == 503, r.text
    await notice.check()
    await notice.check()  # said once
    return locked


async def _write_again(app: Any, *, quiet: bool = True) -> None:
    """A write taken; ``quiet``: then none refused for the quiet time, which ends the
    troubled period (audit26b M2: its ✅ comes then)."""
    token = await app.token("acme")
    r = await app.request("POST", "/v1/reservations", token=token, json=_new())
    assert r.status_code == 201, r.text  # the 503s wrote nothing
    if quiet:
        app.clock.advance(QUIET_SECONDS)


async def test_a_minute_of_refused_writes_is_posted_once_and_its_end_in_the_thread(
    slack_http, monkeypatch
):
    slack = await slack_http(POLICY)
    app = slack.app
    notice = app.ns.extras["storage_notice"]
    locked = await _refused_for_a_minute(app, monkeypatch)
    try:
        posts = [c.args for c in slack.fake.calls_of("chat.postMessage")]
        assert [(p["channel"], p["text"]) for p in posts] == [("C0ALERTS", LOCKED)]
    finally:
        locked.let_go()
    await _write_again(app, quiet=False)
    assert app.store.outage() is None
    await notice.check()  # writes taken, but not for the quiet time yet: no end said
    assert len(slack.fake.calls_of("chat.postMessage")) == 1
    app.clock.advance(QUIET_SECONDS)
    await notice.check()
    await notice.check()
    ended, _ = app.store.ended_outage
    posts = slack.fake.calls_of("chat.postMessage", ok=True)
    assert len(posts) == 2
    reply = posts[1].args
    assert reply["channel"] == "C0ALERTS" and reply["thread_ts"] == posts[0].response["ts"]
    assert reply["text"] == (
        f"✅ Nightshift writes to its database again after 1m 1s ({ended.refused:,} writes"
        " refused meanwhile)."
    )
    assert ended.refused >= 2  # the two reservations, and the upkeep jobs' writes


async def test_a_post_slack_refuses_is_logged_and_not_tried_again(slack_http, monkeypatch, caplog):
    slack = await slack_http(POLICY)
    app = slack.app
    notice = app.ns.extras["storage_notice"]
    slack.fake.fail("chat.postMessage", status=500)
    with caplog.at_level(logging.WARNING, logger="bot.storage_notice"):
        locked = await _refused_for_a_minute(app, monkeypatch)
    locked.let_go()
    assert len(slack.fake.calls_of("chat.postMessage")) == 1  # the one that failed
    said = [r.getMessage() for r in caplog.records if r.name == "bot.storage_notice"]
    assert len(said) == 1 and said[0].startswith(
        "could not tell C0ALERTS that the database refuses writes (Slack answered 500)"
    ), said
    await _write_again(app)
    await notice.check()
    texts = [c.args["text"] for c in slack.fake.calls_of("chat.postMessage", ok=True)]
    assert len(texts) == 1 and texts[0].startswith("✅ Nightshift writes to its database again")


async def test_in_shell_mode_the_notice_goes_to_the_console(app_factory, monkeypatch, capsys):
    app = await app_factory(POLICY)
    locked = await _refused_for_a_minute(app, monkeypatch)
    locked.let_go()
    await _write_again(app)
    await app.ns.extras["storage_notice"].check()
    out = capsys.readouterr().out
    assert (
        f"── #C0ALERTS ──\n{LOCKED}\n── #C0ALERTS (in a thread) ──\n"
        "✅ Nightshift writes to its database again after 1m 1s ("
    ) in out, out


async def test_status_says_first_that_writes_are_refused(slack_http, monkeypatch):
    """audit24 resources M3: during a full disk `/agent status` said "0 need a look" and
    all green, while every agent call was answered 503."""
    slack = await slack_http(POLICY)
    app = slack.app
    r = await app.request(
        "POST", "/v1/heartbeats", token=await app.token("acme"), json={"scope": "acme/a/bot"}
    )
    assert r.status_code == 204, r.text  # a fleet of one, healthy
    locked = await _refused_for_a_minute(app, monkeypatch)
    try:
        reply = await slack.command("status")
        # first, before "0 need a look" (recheck24: second, a glance read all-clear)
        assert reply["text"].startswith(LOCKED + "\nFleet: 1 agent, 0 need a look")
        assert reply["blocks"][1]["text"]["text"] == LOCKED
    finally:
        locked.let_go()
    await _write_again(app)
    reply = await slack.command("status")
    assert "cannot write" not in reply["text"]
    assert reply["text"].startswith("Fleet: 2 agents")


async def test_a_stop_during_an_outage_says_no_end_will_come(slack_http, monkeypatch):
    """review24 M1: the thread lived in memory only; a stop (or a restart) during an
    outage left "🔴 … until it can" with no reply for good."""
    slack = await slack_http(POLICY)
    app = slack.app
    notice = app.ns.extras["storage_notice"]
    locked = await _refused_for_a_minute(app, monkeypatch)
    try:
        await notice.stop(app.ns)
    finally:
        locked.let_go()
    posts = slack.fake.calls_of("chat.postMessage", ok=True)
    assert [p.args["text"] for p in posts] == [LOCKED, STOPPED_TEXT]
    assert posts[1].args["thread_ts"] == posts[0].response["ts"]


async def test_a_stop_during_the_red_post_puts_its_words_in_that_post_s_thread(
    slack_http, monkeypatch
):
    """review27 L8: a stop landing while the 🔴 was being posted cancelled that post's
    wait: the stop's words went top-level, beside a 🔴 Slack did receive."""
    slack = await slack_http(POLICY)
    app, fake = slack.app, slack.fake
    notice = app.ns.extras["storage_notice"]
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    token = await app.token("acme")
    locked = Locked(app.ns.settings.db)
    try:
        r = await app.request("POST", "/v1/reservations", token=token, json=BODY)
        assert r.status_code == 503, r.text
        await notice.check()
        app.clock.advance(61)
        r = await app.request("POST", "/v1/reservations", token=token, json=BODY)
        assert r.status_code == 503, r.text
        fake.stall("chat.postMessage")
        notice._task.cancel()  # the poll's look, run now: it posts the 🔴 and waits
        notice._task = asyncio.create_task(notice.check())
        await asyncio.wait_for(fake.stalled.wait(), 5)
        stopping = asyncio.create_task(notice.stop(app.ns))
        await asyncio.sleep(0.2)  # the stop has cancelled the look, and waits for the 🔴
        fake._stalls.pop("chat.postMessage").set()  # Slack answers the 🔴
        await asyncio.wait_for(stopping, 5)
    finally:
        locked.let_go()
    posts = fake.calls_of("chat.postMessage", ok=True)
    assert [p.args["text"] for p in posts] == [LOCKED, STOPPED_TEXT]
    assert posts[1].args["thread_ts"] == posts[0].response["ts"]


async def test_a_stop_in_the_quiet_time_posts_the_end(slack_http, monkeypatch):
    """Writes taken again, not for the quiet time yet: the 🔴 gets its ✅, not "⚪ stops
    while its database still refuses writes" nor nothing."""
    slack = await slack_http(POLICY)
    app = slack.app
    notice = app.ns.extras["storage_notice"]
    locked = await _refused_for_a_minute(app, monkeypatch)
    locked.let_go()
    await _write_again(app, quiet=False)
    await notice.check()
    await notice.stop(app.ns)
    posts = slack.fake.calls_of("chat.postMessage", ok=True)
    texts = [p.args["text"] for p in posts]
    assert len(texts) == 2 and texts[0] == LOCKED, texts
    assert texts[1].startswith("✅ Nightshift writes to its database again after 1m 1s (")
    assert posts[1].args["thread_ts"] == posts[0].response["ts"]


async def test_a_database_file_gone_is_not_said_to_lose_nothing(slack_http, monkeypatch):
    """review24 M1: a deleted database file's writes are refused too, but its last ones
    may be lost with it: the post does not say "nothing is lost"."""
    monkeypatch.setattr("guards.store_watch.LOST_CHECK_SECONDS", 0.0)
    slack = await slack_http(POLICY)
    app = slack.app
    db = app.ns.settings.db
    moved = f"{db}.moved"
    token = await app.token("acme")
    os.rename(db, moved)
    try:
        r = await app.request("POST", "/v1/reservations", token=token, json=BODY)
        assert r.status_code == 503, r.text
        app.clock.advance(61)
        await app.ns.extras["storage_notice"].check()
    finally:
        os.rename(moved, db)  # put back, as its message says
    text = slack.fake.calls_of("chat.postMessage", ok=True)[0].args["text"]
    assert f"the database file {db} was deleted while Nightshift runs" in text
    assert text.endswith("Agent calls are refused with 503 while it cannot.")
    assert "nothing is lost" not in text


async def _refused_once(app: Any, token: str) -> int:
    """One reservation refused by a lock, then one taken: the writes that outage refused."""
    locked = Locked(app.ns.settings.db)
    try:
        r = await app.request("POST", "/v1/reservations", token=token, json=BODY)
        assert r.status_code == 503, r.text
        await app.ns.extras["storage_notice"].check()
        outage = app.store.outage()
        assert outage is not None
    finally:
        locked.let_go()
    r = await app.request("POST", "/v1/reservations", token=token, json=_new())
    assert r.status_code == 201, r.text  # one write that fits ends that outage
    refused: int = outage.refused
    return refused


async def test_outages_a_few_seconds_apart_are_one_notice_since_the_first(slack_http, monkeypatch):
    """audit26b M2: a disk hovering at full (a little space freed, filled again) refused
    most calls for minutes, each outage ended by one write that fitted: no 🔴 at all, and
    later "since" the last outage's start."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    slack = await slack_http(POLICY)
    app = slack.app
    notice = app.ns.extras["storage_notice"]
    token = await app.token("acme")
    refused = 0
    for _ in range(4):  # refused at 0s, 20s, 40s, 60s; writes taken for 10s after each
        refused += await _refused_once(app, token)
        app.clock.advance(10)
        await notice.check()
        app.clock.advance(10)
    posts = slack.fake.calls_of("chat.postMessage", ok=True)
    assert [p.args["text"] for p in posts] == [LOCKED]  # since the first refusal: 00:00
    app.clock.advance(QUIET_SECONDS - 20)  # quiet since 70s: the period ended at 60s
    await notice.check()
    await notice.check()
    posts = slack.fake.calls_of("chat.postMessage", ok=True)
    assert [p.args["text"] for p in posts[1:]] == [
        f"✅ Nightshift writes to its database again after 1m ({refused:,} writes refused"
        " meanwhile)."
    ]
    assert posts[1].args["thread_ts"] == posts[0].response["ts"]


async def test_outages_further_apart_than_the_quiet_time_are_two_notices(slack_http, monkeypatch):
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    slack = await slack_http(POLICY)
    app = slack.app
    notice = app.ns.extras["storage_notice"]
    for _ in range(2):
        locked = await _refused_for_a_minute(app, monkeypatch)
        locked.let_go()
        await _write_again(app, quiet=False)
        app.clock.advance(QUIET_SECONDS - 1)
        await notice.check()  # a few seconds of writes taken prove little: no end yet
        assert slack.fake.calls_of("chat.postMessage")[-1].args["text"].startswith("🔴")
        app.clock.advance(1)
        await notice.check()
    posts = slack.fake.calls_of("chat.postMessage", ok=True)
    texts = [p.args["text"] for p in posts]
    assert len(texts) == 4, texts
    assert texts[0] == LOCKED
    assert texts[2].startswith("🔴 Nightshift cannot write to its database since 00:01:")
    for red, green in ((0, 1), (2, 3)):
        assert texts[green].startswith("✅ Nightshift writes to its database again after 1m 1s")
        assert posts[green].args["thread_ts"] == posts[red].response["ts"]


async def test_a_command_refused_by_the_database_is_answered_in_words_for_a_person(
    slack_http, monkeypatch
):
    """audit26b L1: "send it again in a few seconds (the operator is told in the log)"
    was the agents' wording, said to the operator, about a disk that stays full."""
    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    slack = await slack_http(POLICY)
    locked = Locked(slack.app.ns.settings.db)
    try:
        reply = await slack.command("silence acme 1h")
    finally:
        locked.let_go()
    assert reply["text"] == (
        "Nothing was changed: Nightshift cannot write to its database right now"
        " (OperationalError: database is locked (another process holds its write lock: a"
        " sqlite3 shell or a backup tool in a transaction? Nightshift's own commands let go"
        " within milliseconds)). Agents' calls are refused too. Run this again in a minute"
        " (if a 🔴 notice is in the alerts channel, once it has its ✅ reply); `/agent status`"
        " says whether it can write."
    )


async def test_a_shell_form_refused_by_the_database_ends_at_once_in_words_for_a_person(
    slack_http, monkeypatch
):
    """audit27 style M2: the shell's form printed the agents' "send it again in a few
    seconds (the operator is told in the log)", then asked its questions again, three
    times, about a database that stays locked."""
    from bot.commands import Context
    from bot.commands_core import budget_raise_view
    from bot.shell_modal import fill_modal

    monkeypatch.setattr("guards.store.LOCK_WAIT_SECONDS", 0.2)
    slack = await slack_http({**POLICY, "admins": ["U0ADMIN"]})

    async def admin() -> bool:
        return True

    ctx = Context(ns=slack.app.ns, user_id="U0ADMIN", transport="shell", is_admin=admin)
    answers = iter(["12", "", ""] * 3)  # amount, window, for how long
    asked: list[str] = []
    said: list[str] = []

    async def ask(question: str) -> str | None:
        asked.append(question)
        return next(answers)

    view = budget_raise_view("acme/alice/bot", {"day": 10_000_000})
    locked = Locked(slack.app.ns.settings.db)
    try:
        result = await fill_modal(ctx, view, ask=ask, say=said.append)
    finally:
        locked.let_go()
    assert result is None
    assert len(asked) == 3  # one round: answering again does not unlock a database
    assert said[1:] == [
        "✗ Nothing was changed: Nightshift cannot write to its database right now"
        " (OperationalError: database is locked (another process holds its write lock: a"
        " sqlite3 shell or a backup tool in a transaction? Nightshift's own commands let go"
        " within milliseconds)). Agents' calls are refused too. Run this again in a minute"
        " (if a 🔴 notice is in the alerts channel, once it has its ✅ reply); `/agent status`"
        " says whether it can write."
    ]
