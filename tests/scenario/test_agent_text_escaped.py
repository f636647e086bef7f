"""What agents name reaches Slack and the terminal as text: the real app, the fake Slack.

audit11 security H1: a model named ``<!channel>-<http://evil.example|open-me>`` trips
its breaker (a P1 in the alerts channel) and tops the digest's By model line; a task
id carries ``<!here>`` and a fake line; an item's text is cut inside ``<…|…>``; the
same task id in shell mode carries terminal escape sequences. L1: a job endpoint's
answer cannot forge a log line. L2: an admin's kill-switch reason is escaped too.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from guards.clock import ManualClock
from tests.fakes.slack_api import Call

ADMIN = "U0ADMIN"
ALERTS = "C0ALERTS"
DIGEST = "C0DIGEST"
EVIL_MODEL = "<!channel>-<http://evil.example|open-me>"
EVIL_ESCAPED = "&lt;!channel&gt;-&lt;http://evil.example|open-me&gt;"
EVIL_TASK = "<!here> <@U0ADMIN> <http://evil.example|click here> *bold*\nfake: 🟢 all clear"
TERMINAL_TASK = "\x1b]0;pwned-title\x07\x1b[2J\x1b[31mRED\x1b[0m\rOVERWRITE\nfake: 🟢 all clear"
POLICY: dict[str, Any] = {
    "admins": [ADMIN],
    "channels": {"alerts": ALERTS},
    # both default to P2: counted in the digest, never posted
    "alerts": {"tiers": {"attempts_exhausted": "P1", "breaker_opened_manual": "P1"}},
    "breakers": {"max_attempts_per_task": 3},
}
# what Slack reads as markup: a mention, a special mention, a link
MARKUP = re.compile(r"<[@#!]|<https?:|<mailto:")


def shown(call: Call) -> str:
    """A Slack call's text and blocks, as Slack would read them."""
    return str(call.args.get("text") or "") + json.dumps(
        call.args.get("blocks"), ensure_ascii=False
    )


async def reserve(app: Any, tok: str, **body: Any) -> Any:
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 201, r.text
    return r.json()["reservation_id"]


async def settle(app: Any, tok: str, rid: str, outcome: str, micros: int = 10) -> None:
    body = {"actual_cost_micros": micros, "outcome": outcome}
    s = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=body)
    assert s.status_code == 200, s.text


async def reserve_naming(app: Any, tok: str, model: str, **body: Any) -> Any:
    """A reservation naming ``model``. The API refuses a name with markup (400), so one
    comes only from a database an earlier version wrote: the row is given it, as then."""
    refused = await app.request(
        "POST", "/v1/reservations", token=tok, json={**body, "model": model}
    )
    assert refused.status_code == 400 and refused.json()["field"] == "model", refused.text
    rid = await reserve(app, tok, **body, model="gpt-4o")
    await app.ns.store.write(
        lambda tx: tx.execute("UPDATE reservations SET model = ? WHERE id = ?", (model, rid))
    )
    return rid


async def trip_model(app: Any, model: str) -> None:
    """Ten failed settles naming ``model``, spread over five agents: its breaker opens."""
    tok = await app.token("acme/alice")
    for i in range(10):
        scope = f"acme/alice/mb{i % 5}"
        body = {"scope": scope, "idempotency_key": f"mb{i}", "max_cost_micros": 1000}
        await settle(app, tok, await reserve_naming(app, tok, model, **body), "failure")


async def run_out_of_attempts(app: Any, task_id: str, scope: str = "acme/alice/inj") -> None:
    """Three attempts at ``task_id``, and a fourth refused (attempts_exhausted)."""
    tok = await app.token(scope)
    for i in range(3):
        body = {"scope": scope, "idempotency_key": f"t{i}", "max_cost_micros": 1000}
        await settle(app, tok, await reserve(app, tok, **body, task_id=task_id), "success")
    body = {"scope": scope, "idempotency_key": "t3", "max_cost_micros": 1000, "task_id": task_id}
    refused = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert refused.status_code == 429, refused.text


async def until(check: Callable[[], bool], within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("never happened")


# -- alerts in Slack ----------------------------------------------------------------------


async def test_a_model_named_like_a_channel_ping_alerts_as_text(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await trip_model(app, EVIL_MODEL)
    await app.ns.extras["alerts"].process()
    await fake.wait_for(lambda: fake.posts(ALERTS))
    [post] = fake.posts(ALERTS)
    assert "<!channel>" not in shown(post) and "<http" not in shown(post)
    assert not MARKUP.search(shown(post)), shown(post)
    assert post.args["text"] == (
        f"🟠 P1 · Breaker opened on failures — model:{EVIL_ESCAPED}: 10 failures in a row"
        " (limit 10); cool-down 15m"
    )
    assert post.args["blocks"][1]["text"]["text"].startswith(f"`model:{EVIL_ESCAPED}`\n")
    # the list of alerts and of breakers name it the same way
    listed = await slack.command("alerts")
    assert f"`breaker_opened_failures:model:{EVIL_ESCAPED}`" in listed["text"]


async def test_a_task_id_with_a_ping_and_a_new_line_is_one_escaped_line_in_a_p1(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    await run_out_of_attempts(app, EVIL_TASK)
    await app.ns.extras["alerts"].process()
    await fake.wait_for(lambda: fake.posts(ALERTS))
    [post] = fake.posts(ALERTS)
    assert not MARKUP.search(shown(post)), shown(post)
    assert post.args["text"] == (
        "🟠 P1 · Task out of attempts — acme/alice/inj: task &lt;!here&gt; &lt;@U0ADMIN&gt;"
        " &lt;http://evil.example|click here&gt; *bold* fake: 🟢 all clear asked for attempt 3"
        " of 3"
    )
    section = post.args["blocks"][1]["text"]["text"]
    assert section.split("\n") == [
        "`acme/alice/inj`",
        "task &lt;!here&gt; &lt;@U0ADMIN&gt; &lt;http://evil.example|click here&gt; *bold*"
        " fake: 🟢 all clear asked for attempt 3 of 3",
    ]


async def test_an_admin_s_kill_switch_reason_is_escaped_in_the_reply_and_the_alert(slack_http):
    slack = await slack_http(POLICY, clock=ManualClock())
    fake, app = slack.fake, slack.app
    reply = await slack.command(
        "breaker acme/alice/rs1 open <!channel> see <http://evil.example|the runbook>"
    )
    assert reply["response_type"] == "in_channel"
    assert not MARKUP.search(reply["text"].replace(f"<@{ADMIN}>", "")), reply["text"]
    assert (
        "forced open by <@U0ADMIN>: &lt;!channel&gt; see &lt;http://evil.example|the runbook&gt;"
        in reply["text"]
    )
    await app.ns.extras["alerts"].process()
    await fake.wait_for(lambda: fake.posts(ALERTS))
    [post] = fake.posts(ALERTS)
    assert not MARKUP.search(shown(post).replace(f"<@{ADMIN}>", "")), shown(post)
    assert "&lt;!channel&gt; see &lt;http://evil.example|the runbook&gt;" in post.args["text"]


# -- the digest ---------------------------------------------------------------------------


async def test_the_posted_digest_names_an_agent_s_model_as_text(slack_http):
    berlin = ZoneInfo("Europe/Berlin")
    policy = {
        "timezone": "Europe/Berlin",
        "admins": [ADMIN],
        "channels": {"digest": DIGEST},
        "breakers": {"spend_rate": None},
    }
    start = datetime(2026, 1, 5, 10, tzinfo=berlin).timestamp()
    slack = await slack_http(policy, clock=ManualClock(start))
    fake, app = slack.fake, slack.app
    app.ns.scheduler.pause_job("digest")
    tok = await app.token("acme/alice")
    for i, model in enumerate([EVIL_MODEL, EVIL_MODEL]):
        body = {"scope": "acme/alice/rss-bot", "idempotency_key": f"d{i}", "max_cost_micros": 10**6}
        await settle(app, tok, await reserve_naming(app, tok, model, **body), "success", 10**6)
    body = {"scope": "acme/alice/rss-bot", "idempotency_key": "d2", "max_cost_micros": 10**6}
    rid = await reserve(app, tok, **body, model="claude-haiku-4-5")
    await settle(app, tok, rid, "success", 10**6)
    app.clock.set(datetime(2026, 1, 6, 9, 1, tzinfo=berlin).timestamp())
    assert await app.ns.extras["digest"].tick() == [("acme", date(2026, 1, 5))]
    await fake.wait_for(lambda: fake.posts(DIGEST))
    [post] = fake.posts(DIGEST)
    assert not MARKUP.search(shown(post)), shown(post)
    assert (
        f"*By model* {EVIL_ESCAPED} $2.00 (2 calls) · claude-haiku-4-5 $1.00 (1 call)"
        in post.args["text"]
    )


# -- /agent dedup -------------------------------------------------------------------------


async def test_dedup_cuts_an_item_inside_a_link_and_shows_the_half_as_text(slack_http):
    slack = await slack_http(POLICY)
    app = slack.app
    tok = await app.token("acme/alice/rss-bot")
    item = "<!channel> hello <http://evil.example|Click to approve> world news"

    async def validate(items: list[Any]) -> None:
        body = {"scope": "acme/alice/rss-bot", "stream": "posts", "items": items}
        r = await app.request("POST", "/v1/validations", token=tok, json=body)
        assert r.status_code == 200, r.text

    await validate([{"id": "<@U0ADMIN>|x", "text": item}])
    await validate([item])
    text = (await slack.command("dedup acme/alice/rss-bot"))["text"]
    assert not MARKUP.search(text), text
    assert (
        "— “&lt;!channel&gt; hello &lt;http://evil.example|Click to approve&gt; world news”"
        " (same as “&lt;!channel&gt; hello &lt;http://evil.example|C…”" in text
    )
    # an old row without a preview names the agent's own id, escaped too
    await app.store.write(
        lambda tx: tx.execute("UPDATE validation_rejections SET matched_preview = NULL")
    )
    text = (await slack.command("dedup acme/alice/rss-bot"))["text"]
    assert "(same as “&lt;@U0ADMIN&gt;|x”" in text and not MARKUP.search(text)


# -- shell mode ---------------------------------------------------------------------------


async def test_shell_mode_prints_an_agent_s_escape_sequences_as_nothing(app_factory):
    app = await app_factory(POLICY, clock=ManualClock())  # no SLACK_*: the shell
    console = app.ns.extras["shell"]
    console.out = out = io.StringIO()
    await run_out_of_attempts(app, TERMINAL_TASK)
    await app.ns.extras["alerts"].process()
    await until(lambda: "Task out of attempts" in out.getvalue())
    printed = out.getvalue()
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", printed), repr(printed)
    assert "\nfake:" not in printed  # no line of its own
    # the task id as plain_line reads it, as in the breaker's reason (recheck28 Kc L1: the
    # alert's task id is masked through invisible characters the same way)
    assert "task RED OVERWRITE fake: 🟢 all clear asked" in printed


# -- the job log (L1) ---------------------------------------------------------------------


@pytest.fixture
async def forging_endpoint() -> AsyncIterator[str]:
    """A job endpoint whose error answer holds a fake log line and an escape sequence."""
    body = "oops\n2026-11-27 12:00:00,000 INFO  bot.app: all jobs healthy\x1b[2K"

    async def handle(request: web.Request) -> web.Response:
        return web.Response(text=body, status=500)

    app = web.Application()
    app.router.add_post("/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/job"
    await runner.cleanup()


async def test_a_job_s_error_answer_is_logged_on_one_line(app_factory, forging_endpoint, caplog):
    job = {"name": "forger", "cron": "0 * * * *", "url": forging_endpoint, "scope": "acme/a/b"}
    app = await app_factory({"admins": [ADMIN], "jobs": [job]}, clock=ManualClock(1_767_225_600))
    app.ns.scheduler.pause_job("jobs-tick")
    runner = app.ns.extras["jobs"]
    caplog.set_level(logging.WARNING, logger="bot.jobs.runner")
    app.clock.advance(3600)
    await runner.tick()
    await runner.wait_idle()
    [record] = [r for r in caplog.records if r.name == "bot.jobs.runner"]
    message = record.getMessage()
    assert "\n" not in message and "\x1b" not in message
    assert message.endswith(
        f"failed: {forging_endpoint} answered 500:"
        " oops\\n2026-11-27 12:00:00,000 INFO  bot.app: all jobs healthy\\x1b[2K"
    )
