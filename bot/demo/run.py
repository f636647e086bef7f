"""``nightshift demo``: one simulated day of a misbehaving fleet, in about 15-40 s.

The real process (HTTP API, engine, alerts, outbox, scheduler, shell transport) runs
on a temporary database; a stepped clock moves the world one simulated minute at a
time, and the fleet talks to the server through the real Python client. The story
follows the operators' nights: a looping agent trips its spend breaker and pages
one person, who acknowledges and later approves a careful trial; an RSS agent's
duplicates are rejected; a conversation hits its cap while its agent carries on; a
provider outage trips a model breaker and routing falls back; an agent goes quiet;
and a ``* 8 * * *`` job is refused before anything starts. It ends with the morning
digest and a table of what was stopped.

The simulated operator is Dana: she clicks the same buttons a person would, through
the shell console (``--interactive`` leaves the clicks to you).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import yaml
from aiohttp import web

from bot.alerts.model import tagged
from bot.alerts.render import KIND_TITLES, trial_request_value
from bot.app import Nightshift
from bot.commands import Context, dispatch_action
from bot.demo.fleet import Fleet, Outage, PretendLLM
from bot.demo.story import DEMO_DAY, Cast, Narrator, demo_policy, refused_job
from bot.demo.summary import summary_table
from bot.demo.workspace import MADE_UP_CAST, wait_for_slack, workspace_problem
from bot.jobs.lint import lint_jobs
from bot.settings import Settings
from guards.clock import ManualClock
from guards.config import parse_policy
from guards.store import Tx
from guards.tokens import Token, create_token

__all__ = ["run_demo"]

AGENTS = [
    "acme/bob/support-bot",
    "acme/bob/summarizer",
    "acme/alice/rss-bot",
    "acme/alice/chat-bot",
    "acme/carol/looper",
]
MINUTE = 60.0
HOUR = 60  # minutes
DAY_MINUTES = 24 * HOUR
DIGEST_MINUTE = DAY_MINUTES + 9 * HOUR + 1
NIGHT_STEP = 5  # minutes per step once the day's story is over
HUMAN_WAIT_SECONDS = 120


class JobTarget:
    """The agent's webhook the scheduled job calls (a tiny server on 127.0.0.1)."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        async def run(request: web.Request) -> web.Response:
            self.runs.append(await request.json())
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/run", run)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/run"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class Operator:
    """Dana, on call: she acknowledges what pages her and approves the careful restart."""

    def __init__(self, ns: Nightshift, *, user: str, interactive: bool, say: Any) -> None:
        self.ns = ns
        self.user = user
        self.interactive = interactive
        self.say = say
        self.console = ns.extras.get("shell")

    async def click(self, action_id: str, value: str) -> bool:
        """Press a button of a shown message, as a person would; False if none is shown."""
        if self.console is not None:
            button = self.console.find_button(action_id, value)
            if button is None:
                return False
            await self.console.click(button)
            return True

        async def admin() -> bool:
            return True

        ctx = Context(ns=self.ns, user_id=self.user, transport="demo", is_admin=admin)
        await dispatch_action(ctx, action_id, value)
        return True

    async def wait_for_human(self, what: str, done: Any) -> bool:
        """In --interactive mode, wait (a bounded time) for the person at the keyboard."""
        if not self.interactive:
            return False
        self.say(
            f"your turn: {what} (type the number of its button, shown as [n], at the prompt;"
            f" I wait {HUMAN_WAIT_SECONDS} s)"
        )
        deadline = time.monotonic() + HUMAN_WAIT_SECONDS
        while time.monotonic() < deadline:
            if await done():
                return True
            await asyncio.sleep(0.2)
        self.say("no answer: Dana takes it from here")
        return False

    async def open_alerts(self) -> list[Any]:
        return await self.ns.store.fetch(
            "SELECT id, kind, scope, tier, posted_at, first_at FROM alerts"
            " WHERE resolved_at IS NULL AND acked_at IS NULL AND posted_at IS NOT NULL"
            " ORDER BY id"
        )


async def run_demo(*, interactive: bool = False, out: TextIO | None = None) -> int:
    """Run the whole story; 0 when it played out.

    With the Slack variables set the demo plays in that workspace, and needs
    ``NIGHTSHIFT_DEMO_CHANNEL``: without it, it says so on stderr before anything else,
    and answers 2."""
    if Settings().transport != "shell" and (problem := workspace_problem()) is not None:
        print(f"nightshift: {problem}", file=sys.stderr, end="")
        return 2
    out = out or sys.stdout
    narrator = Narrator(out)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nightshift-demo-") as tmp:
        target = JobTarget()
        await target.start()
        try:
            return await _story(
                narrator, Path(tmp), target, interactive=interactive, started=started
            )
        finally:
            await target.stop()


async def _story(
    narrator: Narrator, tmp: Path, target: JobTarget, *, interactive: bool, started: float
) -> int:
    start = DEMO_DAY.timestamp()
    clock = ManualClock(start)
    narrator.now = start
    narrator.title("Nightshift demo: one day of a fleet of agents at acme (Europe/Berlin)")

    narrator.say("The operator's first policy has a daily report job written `* 8 * * *`.")
    first = parse_policy(yaml.safe_load(refused_job(target.url)))
    for plan in lint_jobs(first, now=start):
        narrator.out.write(f"  REFUSED report-daily: {plan.refusal}\n")
    narrator.say("Fixed to `0 8 * * *`; Nightshift starts.")

    values: dict[str, Any] = {
        "NIGHTSHIFT_DB": str(tmp / "demo.db"),
        "NIGHTSHIFT_CONFIG": str(tmp / "nightshift.yml"),
        "NIGHTSHIFT_HOST": "127.0.0.1",
        "NIGHTSHIFT_PORT": 0,
    }
    settings = Settings(**values)  # with SLACK_* variables set: a real workspace
    channel = os.environ.get("NIGHTSHIFT_DEMO_CHANNEL")  # with Slack set: run_demo checked
    me = os.environ.get("NIGHTSHIFT_DEMO_USER", "").strip() or None
    cast = Cast.for_transport(shell=settings.transport == "shell", me=me)  # run_demo checked
    if settings.transport != "shell" and me is None:
        narrator.say(MADE_UP_CAST)
    dana = cast.dana
    policy_text = demo_policy(job_url=target.url, channel=channel or "C0ALERTS", cast=cast)
    (tmp / "nightshift.yml").write_text(policy_text)
    policy = parse_policy(yaml.safe_load(policy_text))
    ns = Nightshift(settings=settings, policy=policy, clock=clock, shell_reads_pipe=False)
    await ns.start()
    # Every upkeep job runs in _upkeep, once a simulated minute after the fleet's calls:
    # left to the scheduler's wall clock, one could fire between the clock's step and the
    # fleet's calls of that minute (recheck25 L3: the duplicate alert resolved "after 1h"
    # at 05:05 just before that minute's burst, in 1 run of 6: another story).
    ns.scheduler.pause()
    fleet: Fleet | None = None
    try:
        if "shell" in ns.extras:
            ns.extras["shell"].user_id = dana  # the person at the keyboard is Dana
        tokens: dict[str, str] = {}
        for agent in AGENTS:
            _, tokens[agent] = await ns.store.write(partial(_token, scope=agent))
        outage = Outage("claude-haiku-4-5", start + 13 * 3600, start + 13 * 3600 + 40 * 60)
        fleet = Fleet(url=ns.url, tokens=tokens, llm=PretendLLM([outage]), say=narrator.say)
        operator = Operator(ns, user=dana, interactive=interactive, say=narrator.say)
        narrator.say(f"API on {ns.url}; 5 agents start work. One simulated minute per step.")
        await _simulate(ns, clock, narrator, fleet, operator, start=start)
        played = time.monotonic() - started  # (not the wait for Slack below)
        if settings.transport != "shell":  # the table counts what Slack answered
            await wait_for_slack(ns, narrator)
        narrator.title("What Nightshift stopped")
        out_lines = await summary_table(ns, fleet.tally, start=start, job_runs=len(target.runs))
        narrator.out.write("\n".join(out_lines) + "\n")
        # `make demo` runs it from .venv without activating it: name the command it can run
        cli = "nightshift" if shutil.which("nightshift") else ".venv/bin/nightshift"
        narrator.out.write(
            f"\n(one simulated day in {played:.0f} s of wall time)\n"
            f"\nNext: `{cli} demo --interactive` to press the buttons yourself;\n"
            f"      `{cli} run` for the real thing in shell mode (type /agent help);\n"
            '      README, "Connecting an agent", to point your agents at it.\n'
        )
        narrator.out.flush()
        return 0
    finally:
        if fleet is not None:
            await fleet.aclose()
        await ns.stop()


def _token(tx: Tx, *, scope: str) -> tuple[Token, str]:
    return create_token(tx, scope=scope, label="demo")


async def _upkeep(ns: Nightshift) -> None:
    """What the scheduler does every few seconds, done at every simulated minute (the
    scheduler is paused: each of its upkeep jobs is here, but the retention's)."""
    alerts = ns.extras["alerts"]
    await ns.sweep()
    await ns.breakers.sweep(ns.store)
    await alerts.process()
    await alerts.hanging()
    await alerts.tick()
    await ns.extras["jobs"].tick()
    await ns.extras["jobs"].wait_idle()
    await ns.extras["digest"].tick()
    await ns.extras["outbox"].pass_once()


async def _simulate(
    ns: Nightshift,
    clock: ManualClock,
    narrator: Narrator,
    fleet: Fleet,
    operator: Operator,
    *,
    start: float,
) -> None:
    acked_page = approved = False
    minute = 0
    while minute <= DIGEST_MINUTE:
        now = start + minute * MINUTE
        clock.set(now)
        narrator.now = now
        await _beats(minute, fleet, narrator)
        await fleet.heartbeats(minute)  # the agents idle through the night, alive
        if minute < DAY_MINUTES:
            await fleet.support_bot(minute, now)
            await fleet.summarizer(minute, now)
            await fleet.rss_bot(minute, now, broken_dedup=3 * HOUR <= minute < 7 * HOUR)
            await fleet.looper(minute, now)
            await fleet.chat_bot(minute, now, long_chat=10 * HOUR <= minute < 10 * HOUR + 40)
        await _upkeep(ns)
        if not acked_page and minute >= 3 * HOUR + 17:
            acked_page = await _ack_the_page(operator, narrator)
        if acked_page and not approved:
            approved = await _approve_trial(operator, narrator, fleet, minute)
        await _ack_the_rest(operator, now)
        # the night is long and quiet after the story: skip ahead in bigger steps
        minute += 1 if minute < DAY_MINUTES or minute >= DIGEST_MINUTE - 1 else NIGHT_STEP


async def _beats(minute: int, fleet: Fleet, narrator: Narrator) -> None:
    if minute == 3 * HOUR:
        narrator.say("rss-bot's de-duplication was 'optimised' away: it starts re-publishing")
    if minute == 3 * HOUR + 5:
        fleet.looping = True
        narrator.say("looper gets stuck re-planning with the largest model, twice a minute")
    if minute == 4 * HOUR:
        fleet.summarizer_stuck = True
        narrator.say("summarizer hangs on a dead socket: no calls, no heartbeats")
    if minute == 5 * HOUR + 30:
        fleet.summarizer_stuck = False
        narrator.say("summarizer's supervisor restarts it: heartbeats are back")
    if minute == 9 * HOUR:  # digest.time on acme's first day (README: `digest.time`)
        narrator.say(
            "digest.time: acme began today, so Nightshift posts its day so far now;"
            " the whole day's digest follows tomorrow at 09:00"
        )
    if minute == 10 * HOUR:
        narrator.say("chat-bot's conversation c42 drags on with a huge context")
    if minute == 13 * HOUR:
        narrator.say("the provider of claude-haiku-4-5 goes down (529 overloaded) for 40 minutes")
    if minute == DAY_MINUTES:
        narrator.say("the day is over; the night passes quietly until the 09:00 digest")
    if minute == DIGEST_MINUTE - 1:
        narrator.title("The morning after: the digest Nightshift posts at 09:00")


def _button_value(alert: Any) -> str:
    """What an alert's buttons carry (its number and first firing, as shown)."""
    return tagged(str(alert["id"]), alert["first_at"])


async def _ack_the_page(operator: Operator, narrator: Narrator) -> bool:
    pages = [a for a in await operator.open_alerts() if a["tier"] == "P0"]
    if not pages:
        return False
    page = pages[0]

    async def acked() -> bool:
        rows = await operator.ns.store.fetch(
            "SELECT acked_at FROM alerts WHERE id = ?", (page["id"],)
        )
        return bool(rows and rows[0]["acked_at"])

    if await operator.wait_for_human(f"acknowledge alert #{page['id']}", acked):
        return True
    narrator.say("Dana's phone buzzes; she acknowledges the page")
    return await operator.click("alert_ack", _button_value(page)) or await acked()


async def _approve_trial(operator: Operator, narrator: Narrator, fleet: Fleet, minute: int) -> bool:
    rows = await operator.ns.store.fetch(
        "SELECT key, since FROM breakers WHERE state = 'half_open_pending' AND key = ?",
        ("acme/carol/looper",),
    )
    if not rows or minute < 3 * HOUR + 30:
        return False
    fleet.looper_fixed = True  # Dana fixed the loop before letting it try again
    scope = rows[0]["key"]

    async def approved() -> bool:
        state = await operator.ns.store.fetch("SELECT state FROM breakers WHERE key = ?", (scope,))
        return bool(state) and state[0]["state"] != "half_open_pending"

    if await operator.wait_for_human(f"approve a trial for {scope}", approved):
        return True
    narrator.say("Dana fixed looper's prompt; she approves a careful trial of 3 calls")
    request = trial_request_value(scope, rows[0]["since"])
    return await operator.click("breaker_approve", request) or await approved()


async def _ack_the_rest(operator: Operator, now: float) -> None:
    """Dana acknowledges what she sees 10 minutes after it is posted (not the P0: see above),
    said first, so the acknowledgement shown next is not read as the page's."""
    for alert in await operator.open_alerts():
        if alert["tier"] == "P0" or now - alert["posted_at"] < 600:
            continue
        what = KIND_TITLES.get(alert["kind"], alert["kind"])
        operator.say(
            f"Dana acknowledges {alert['tier']} #{alert['id']} ({what}), posted 10 min ago"
        )
        await operator.click("alert_ack", _button_value(alert))
