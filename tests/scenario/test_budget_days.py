"""``/agent budget <scope> yesterday`` and ``<scope> <YYYY-MM-DD>``: a past day's spend per
agent, every agent (audit23 forensics M6: the digest names 5, and ``/agent budget`` only
knew today).

Signed ``/agent`` slash commands against the real app, on a manual clock.
"""

from __future__ import annotations

from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_budget_fleet import spend

DAY = 86_400
FRI_10H = 1_795_770_000.0  # Fri 2026-11-27 10:00 in Berlin (09:00 UTC)
POLICY = {
    "timezone": "Europe/Berlin",
    "budgets": {"defaults": {"agent": {"day": "1.00"}}},
    "breakers": {"spend_rate": None},  # many quick charges are the point here
}
TEAM = "acme/team1"
FRIDAY = "Fri 2026-11-27 (Europe/Berlin)"
# What each of seven agents spent on Friday: the digest names five of them.
FRIDAY_SPEND = [9_000, 105_000, 40_000, 12_000, 75_000, 50_000, 66_000]


def sections(reply: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in reply["blocks"] if b["type"] == "section"]


async def friday_then_saturday(slack_http: Any) -> Any:
    """Seven agents spend on Friday (in Berlin, two of them just before midnight), one more
    and a little of agent-0 on Saturday morning; the clock then reads Saturday 10:00."""
    clock = ManualClock(FRI_10H)
    slack = await slack_http(POLICY, clock=clock)
    tok = await slack.app.token("acme")
    for i, micros in enumerate(FRIDAY_SPEND):
        await spend(slack.app, tok, f"{TEAM}/agent-{i}", micros, f"fri-{i}")
    await spend(slack.app, tok, "acme/team0/other", 30_000, "fri-other")
    clock.advance(13 * 3600 + 59 * 60)  # 23:59 Friday in Berlin, 22:59 UTC
    await spend(slack.app, tok, f"{TEAM}/agent-0", 1_000, "fri-late")
    clock.advance(120)  # 00:01 Saturday in Berlin (still Friday in UTC)
    await spend(slack.app, tok, f"{TEAM}/agent-0", 500_000, "sat-0")
    await spend(slack.app, tok, f"{TEAM}/agent-7", 200_000, "sat-7")
    clock.set(FRI_10H + DAY)
    return slack


async def test_yesterday_lists_every_agent_with_what_it_spent_that_local_day(slack_http):
    slack = await friday_then_saturday(slack_http)
    reply = await slack.command(f"budget {TEAM} yesterday")

    header = reply["blocks"][0]
    assert header["type"] == "header"
    assert header["text"]["text"] == f"Spend of {TEAM} on {FRIDAY}"
    assert reply["text"].startswith(f"*Spend of `{TEAM}` on {FRIDAY}*\n")
    texts = sections(reply)
    team_total = sum(FRIDAY_SPEND) + 1_000
    assert texts[0] == "*acme* · namespace\n`day  ` $0.388 spent"
    assert texts[1] == f"*{TEAM}* · user\n`day  ` $0.358 spent" and team_total == 358_000
    assert texts[2] == (
        f"*Below {TEAM}* (7 that spent that day)\n"
        "• `agent-1` `day  ` $0.105 spent\n"
        "• `agent-4` `day  ` $0.075 spent\n"
        "• `agent-6` `day  ` $0.066 spent\n"
        "• `agent-5` `day  ` $0.05 spent\n"
        "• `agent-2` `day  ` $0.04 spent\n"
        "• `agent-3` `day  ` $0.012 spent\n"
        "• `agent-0` `day  ` $0.01 spent"
    )
    # Saturday's spend and agent-7 (Saturday only) are not Friday's; no limit is drawn
    # against a day that is over, and the reply says why.
    assert "agent-7" not in reply["text"] and "$0.50" not in reply["text"]
    assert " of $1.00" not in reply["text"] and "left" not in reply["text"]
    note = reply["blocks"][-1]
    assert note["type"] == "context"
    assert "limits are not kept per day" in note["elements"][0]["text"]
    assert f"`/agent budget {TEAM}` shows today" in note["elements"][0]["text"]

    same = await slack.command(f"budget {TEAM} 2026-11-27")
    assert same == reply
    agent = await slack.command(f"budget {TEAM}/agent-0 2026-11-27")
    assert agent["blocks"][0]["text"]["text"] == f"Spend of {TEAM}/agent-0 on {FRIDAY}"
    assert f"*{TEAM}/agent-0* · agent\n`day  ` $0.01 spent" in agent["text"]
    assert "Below" not in agent["text"]

    saturday = await slack.command(f"budget {TEAM} 2026-11-28")  # today: so far
    assert saturday["blocks"][0]["text"]["text"] == (
        f"Spend of {TEAM} on Sat 2026-11-28 (Europe/Berlin) so far"
    )
    assert "• `agent-0` `day  ` $0.50 spent" in saturday["text"]
    assert "• `agent-7` `day  ` $0.20 spent" in saturday["text"]


async def test_a_long_day_is_cut_with_a_count_of_the_rest(slack_http):
    clock = ManualClock(FRI_10H)
    slack = await slack_http(POLICY, clock=clock)
    tok = await slack.app.token("acme")
    for i in range(120):
        await spend(slack.app, tok, f"acme/big/agent-{i:03d}", 1_000 + 1_000 * i, f"k{i}")
    clock.advance(DAY)
    reply = await slack.command("budget acme/big yesterday")
    below = next(t for t in sections(reply) if t.startswith("*Below acme/big*"))
    lines = below.split("\n")
    rows = [line for line in lines if line.startswith("• ")]
    shown = len(rows)
    assert 20 < shown < 120 and len(below) <= 3000
    assert lines[0] == f"*Below acme/big* (120 that spent that day; the {shown} that spent most)"
    assert rows[0] == "• `agent-119` `day  ` $0.12 spent"
    assert lines[-1] == (
        f"… and {120 - shown} more (`/agent budget acme/big/<name> 2026-11-27` shows one)"
    )
    assert len(reply["text"]) <= 3000 and reply["text"].count("… and") == 1


async def test_bad_days_get_one_line_and_change_nothing(slack_http):
    slack = await friday_then_saturday(slack_http)

    async def said(text: str) -> str:
        reply = await slack.command(text)
        assert "\n" not in reply["text"], reply["text"]
        return str(reply["text"])

    assert await said("budget acme 2026-11-29") == (
        "2026-11-29 is in the future: today is Sat 2026-11-28 in Europe/Berlin"
        " (`/agent budget acme` shows it)."
    )
    for typed in ("2026-13-01", "27/11", "2026-11-2", "20261127", "2026-11-27T10"):
        assert await said(f"budget acme {typed}") == (
            f"`{typed}` is not a day: write `yesterday` or a date as YYYY-MM-DD,"
            " e.g. `/agent budget acme 2026-11-27`."
        ), typed
    word = await slack.command("budget acme friday")  # a word: the usage, with the forms
    assert word["text"] == (
        "`budget acme` takes `yesterday` or a date as YYYY-MM-DD\nusage: `/agent budget [scope]"
        " · budget <scope> <yesterday|YYYY-MM-DD> · budget set <scope> <amount|default>"
        " <day|week|month|total> [for <duration>]`"
    )
    assert await said("budget acme 2026-11-26") == (
        "Nightshift has no spend of `acme` before Fri 2026-11-27 (Europe/Berlin),"
        " the first day it kept: pick that day or a later one."
    )
    assert await said("budget yesterday") == (
        "`budget yesterday` needs a scope: `/agent budget acme yesterday` (namespaces: acme)."
    )
    assert await said(f"budget {TEAM}/agent-7 yesterday") == (
        f"Nothing spent under `{TEAM}/agent-7` on {FRIDAY}; its first day with spend"
        " is Sat 2026-11-28."
    )
    assert await said(f"budget {TEAM}/agent-1 2026-11-28") == (
        f"Nothing spent under `{TEAM}/agent-1` on Sat 2026-11-28 (Europe/Berlin);"
        " its last day with spend before that is Fri 2026-11-27."
    )
    nobody = await said("budget acme/nobody yesterday")
    assert nobody.startswith(f"Nothing spent under `acme/nobody` on {FRIDAY};")
    assert nobody.endswith("; no agent under it has ever spent (a typo?).")
    # The readers changed nothing: the namespace's day is what it was.
    today = await slack.command("budget acme")
    assert "$0.70" in today["text"]


async def test_everyone_may_read_a_past_day(slack_http):
    slack = await friday_then_saturday(slack_http)
    reply = await slack.command(f"budget {TEAM} yesterday", user="U0NOBODY")
    assert reply["blocks"][0]["text"]["text"] == f"Spend of {TEAM} on {FRIDAY}"


async def test_help_lists_the_day_forms(slack_http):
    slack = await slack_http(POLICY)
    help_text = (await slack.command("help"))["text"]
    assert (
        "`/agent budget [scope] · budget <scope> <yesterday|YYYY-MM-DD> · budget set" in help_text
    )
