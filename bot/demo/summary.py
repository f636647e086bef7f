"""The demo's closing table: what was stopped, and what it saved, read from the database."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING

from bot.demo.fleet import Tally
from bot.digest.model_outages import is_trip
from guards.money import format_usd
from guards.words import plural

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["summary_table"]

LOOPER = "acme/carol/looper"
LOOP_COST_PER_MINUTE = 700_000  # two calls of about $0.35 a minute
LOOP_STARTS_MINUTE = 3 * 60 + 5  # 03:05, when the story makes it loop (run.py's beats)
NOTE_WIDTH = 100  # the notes under the table, wrapped
NIGHT_ENDS_MINUTE = 8 * 60  # when someone would have noticed without Nightshift
# an escalation's DM (bot.alerts.paging enqueues it as alert:<id>:dm:<escalation id>)
DM = "JOIN outbox o ON o.ref = 'alert:' || e.alert_id || ':dm:' || e.id"
# an escalation that paged a person on a rotation, unless Slack refused the DM
PAGED = (
    "e.notify LIKE 'rotation:%' AND e.target IS NOT NULL AND NOT EXISTS (SELECT 1 FROM outbox o"
    " WHERE o.ref = 'alert:' || e.alert_id || ':dm:' || e.id AND o.state = 'failed')"
)


async def _one(ns: Nightshift, sql: str, params: tuple[object, ...] = ()) -> int:
    rows = await ns.store.fetch(sql, params)
    return int(rows[0][0] or 0) if rows else 0


def _people(n: int) -> str:
    return "one person" if n == 1 else f"{n} people"


async def summary_table(ns: Nightshift, tally: Tally, *, start: float, job_runs: int) -> list[str]:
    """Rows of ``what happened | what Nightshift did | what it saved``."""
    rows: list[tuple[str, str, str]] = []
    notes: list[str] = []  # under the table: what a "saved" figure compares

    opened = await ns.store.fetch(
        "SELECT at, figures FROM breaker_transitions WHERE scope = 'acme/carol/looper'"
        " AND to_state = 'open' ORDER BY at LIMIT 1"
    )
    if opened:
        # what it had spent when the breaker opened: the breaker's own figure, as its alert says
        looper_spent = int(json.loads(opened[0]["figures"]).get("spent_micros") or 0)
        paged = await ns.store.fetch(
            "SELECT COUNT(DISTINCT e.target) FROM escalations e JOIN alerts a ON a.id = e.alert_id"
            f" WHERE a.scope = 'acme/carol/looper' AND {PAGED}"
        )
        people = int(paged[0][0] or 0) if paged else 0
        tripped_minute = int((opened[0]["at"] - start) // 60)
        # what it did spend that day, against what its own day budget would have let it
        day_spent = await _one(
            ns,
            "SELECT SUM(charged_micros) FROM reservations WHERE scope = ? OR scope LIKE ?",
            (LOOPER, f"{LOOPER}/%"),
        )
        budget = await ns.store.read(lambda tx: ns.ledger.limits(tx, LOOPER).get("day"))
        rows.append(
            (
                "looper stuck re-planning with the largest model",
                f"spend breaker opened at {tripped_minute // 60:02d}:{tripped_minute % 60:02d} "
                f"after {format_usd(looper_spent)}; {_people(people)} paged, trial approved",
                f"{format_usd(max(0, (budget or 0) - day_spent))} of its day budget *"
                if budget
                else "its day's spend *",
            )
        )
        unguarded = max(0, NIGHT_ENDS_MINUTE - LOOP_STARTS_MINUTE) * LOOP_COST_PER_MINUTE
        notes.append(
            f"* looper spent {format_usd(day_spent)} that day. Without the breaker its own"
            f" {format_usd(budget or 0)} day budget would have stopped it at"
            f" {format_usd(budget or 0)}, so the breaker saved the difference; with no"
            f" Nightshift at all it would have burnt ~{format_usd(unguarded)} by 08:00,"
            " when someone would have noticed."
            if budget
            else f"* with no Nightshift at all it would have burnt ~{format_usd(unguarded)}"
            " by 08:00, when someone would have noticed."
        )
    rows.append(
        (
            "rss-bot re-publishing old items",
            f"{tally.rejected} duplicates rejected, {tally.published} new items published",
            f"{tally.rejected} duplicate posts",
        )
    )
    if tally.conversation_capped:
        capped = tally.conversation_capped.rsplit("/", 1)[-1]
        spent = await _one(
            ns,
            "SELECT SUM(charged_micros) FROM reservations WHERE scope = ?",
            (tally.conversation_capped,),
        )
        rows.append(
            (
                f"chat-bot conversation {capped} running long",
                f"capped at its $2.00 total ({format_usd(spent)} spent); the agent carried on",
                "the agent's other work",
            )
        )
    moves = await ns.store.fetch(
        "SELECT from_state, to_state, actor FROM breaker_transitions WHERE scope LIKE 'model:%'"
    )
    model_trips = sum(1 for m in moves if is_trip(m[0], m[1], m[2]))  # as the digest counts
    rows.append(
        (
            "claude-haiku-4-5 outage (40 min)",
            f"model breaker opened {model_trips}x; {tally.fallbacks} calls routed to the fallback",
            "failed calls and retries",
        )
    )
    missed = await _one(ns, "SELECT COUNT(*) FROM alerts WHERE kind = 'heartbeat_missed'")
    rows.append(
        (
            "summarizer went quiet for 90 min",
            f"{missed} heartbeat alert, resolved when it came back",
            "finding out at breakfast",
        )
    )
    rows.append(
        (
            "daily job written `* 8 * * *`",
            f"refused at load; the fixed `0 8 * * *` ran {job_runs}x (once a day)",
            f"{59 * job_runs} runs",
        )
    )
    # a page is a DM to a person on a rotation that Slack took (or the shell showed); an
    # escalation to the channel is not one, nor a step that paged nobody, nor a DM Slack
    # refused (audit25 L1: a made-up member in a real workspace)
    pages = await _one(ns, f"SELECT COUNT(*) FROM escalations e WHERE {PAGED}")
    refused = await ns.store.fetch(
        f"SELECT COUNT(*), group_concat(DISTINCT o.last_error) FROM escalations e {DM}"
        " WHERE e.notify LIKE 'rotation:%' AND o.state = 'failed'"
    )
    nobody = await _one(
        ns, "SELECT COUNT(*) FROM escalations WHERE notify LIKE 'rotation:%' AND target IS NULL"
    )
    to_channel = await _one(ns, "SELECT COUNT(*) FROM escalations WHERE notify = 'channel'")
    by_tier = await ns.store.fetch(
        "SELECT tier, COUNT(*) AS n, SUM(scope LIKE 'model:%') AS models FROM alerts GROUP BY tier"
    )
    # a model's alert is every namespace's: acme's digest counts it, its calls met the outage
    tiers = ", ".join(
        f"{r['tier']} {r['n']}" + (f" ({r['models']} a model's)" if r["models"] else "")
        for r in by_tier
    )
    woke = plural(pages, "page") + " (DMs)"
    if refused and refused[0][0]:
        woke += f", {plural(refused[0][0], 'page')} refused by Slack ({refused[0][1]})"
    if nobody:  # the same person twice in a row, or nobody of the rotation in the workspace
        woke += f", {plural(nobody, 'step')} that paged nobody"
    if to_channel:
        woke += f", {plural(to_channel, 'escalation')} to the channel"
    rows.append(("alerts", f"{tiers}; P2 only in the digest", woke))

    width = [
        max(len(r[i]) for r in [*rows, ("what happened", "what Nightshift did", "saved")])
        for i in range(3)
    ]
    line = "+".join("-" * (w + 2) for w in width)
    out = [line, _row(("what happened", "what Nightshift did", "saved"), width), line]
    out += [_row(r, width) for r in rows]
    out.append(line)
    return out + [wrapped for note in notes for wrapped in textwrap.wrap(note, NOTE_WIDTH)]


def _row(cells: tuple[str, str, str], width: list[int]) -> str:
    return "|".join(f" {c:<{w}} " for c, w in zip(cells, width, strict=True))
