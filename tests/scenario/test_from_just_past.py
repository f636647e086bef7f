"""``from <when>`` typed a few seconds after that time (H1 session 25): within the last
minute it means now, for ``oncall override`` as for ``silence`` (one reader,
:mod:`bot.alerts.when`); a minute or more past, a bare time is the next one and ``today``
is refused. Around midnight, "today" and "tomorrow" are the day it was typed.

The real app in Slack HTTP mode against the fake Slack Web API, signed slash commands,
a ManualClock; the policy's zone is Europe/Berlin (UTC+1 in January).
"""

from __future__ import annotations

from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_alerts import used
from tests.scenario.test_oncall_ahead import overrides, paged, policy
from tests.scenario.test_operator_api import error, operator_token
from tests.scenario.test_silence_ahead import BERLIN, silences

HOUR = 3600
THU_2330 = 1_767_225_600.0 + 22.5 * HOUR  # Thu 01 Jan 2026 23:30 in Berlin
FRI_0000 = THU_2330 + 30 * 60  # Fri 02 Jan 00:00 in Berlin


async def override(slack: Any, at: float, when: str) -> str:
    slack.app.clock.set(at)
    reply = await slack.command(f"oncall override <@U09> 1h {when}")
    return str(reply["text"])


async def test_an_override_from_a_time_typed_20_seconds_later_starts_now(slack_http):
    slack = await slack_http(policy(), clock=ManualClock())
    said = await override(slack, THU_2330 + 20, "from 23:30")
    assert said == (  # and it says it took the start as now (review25 L5)
        "<@U09> is on call for primary until Fri 02 Jan 00:30 (set by <@U0ADMIN>)."
        " `from 23:30` is now (it was 20 s ago)."
    ), said
    assert await overrides(slack) == [("U09", THU_2330 + 20, THU_2330 + 20 + HOUR)]
    assert await paged(slack, "acme/a/now") == "U09"  # on call at once, not tomorrow night


async def test_today_within_the_minute_starts_now_and_past_it_is_refused(slack_http):
    slack = await slack_http(policy(), clock=ManualClock())
    said = await override(slack, THU_2330 + 59, "from today 23:30")
    assert said.startswith("<@U09> is on call for primary until Fri 02 Jan 00:30"), said
    assert said.endswith(" `from today 23:30` is now (it was 59 s ago)."), said
    said = await override(slack, THU_2330 + 60, "from today 23:30")
    assert "`today 23:30` is past" in said and "Nothing was booked" in said, said
    assert len(await overrides(slack)) == 1


async def test_a_minute_past_a_bare_time_books_tomorrows(slack_http):
    slack = await slack_http(policy(), clock=ManualClock())
    said = await override(slack, THU_2330 + 60, "from 23:30")  # 23:31:00: +1 s past it
    assert said == (
        "<@U09> is on call for primary from Fri 02 Jan 23:30 until Sat 03 Jan 00:30"
        " (Europe/Berlin), booked by <@U0ADMIN>."
    ), said
    tomorrow = THU_2330 + 24 * HOUR
    assert await overrides(slack) == [("U09", tomorrow, tomorrow + HOUR)]


async def test_around_midnight_today_and_tomorrow_are_the_day_it_was_typed(slack_http):
    slack = await slack_http(policy(), clock=ManualClock())
    said = await override(slack, FRI_0000 + 20, "from today 00:00")
    assert said.startswith("<@U09> is on call for primary until 01:00"), said
    said = await override(slack, FRI_0000 + 20, "from 00:00")
    assert said.startswith("<@U09> is on call for primary until 01:00"), said
    said = await override(slack, FRI_0000 + 20, "from tomorrow 00:05")
    assert "from Sat 03 Jan 00:05 until 01:05 (Europe/Berlin)" in said, said


async def test_a_silence_from_a_time_just_past_silences_now_also_at_midnight(slack_http):
    slack = await slack_http(BERLIN, clock=ManualClock())
    await used(slack.app)
    slack.app.clock.set(THU_2330 + 20)
    reply = await slack.command("silence acme 1h from 23:30 -- deploy", user="U01")
    assert reply["text"] == (
        "`from 23:30` is now (it was 20 s ago).\n"
        "🔕 <@U01> silenced acme and below for 1h (until Fri 02 Jan 00:30) — deploy."
        " Firings are still recorded."
    ), reply["text"]
    slack.app.clock.set(FRI_0000 + 20)
    reply = await slack.command("silence acme/alice 1h from today 00:00", user="U01")
    now = "`from today 00:00` is now (it was 20 s ago).\n"
    assert reply["text"].startswith(f"{now}🔕 <@U01> silenced acme/alice and below for 1h"), reply
    reply = await slack.command("silence acme/bob 1h from tomorrow 00:05", user="U01")
    assert "from Sat 03 Jan 00:05" in reply["text"], reply["text"]
    slack.app.clock.set(THU_2330 + 24 * HOUR + 60)  # Fri 23:31:00: a minute past
    reply = await slack.command("silence acme/carol 1h from today 23:30", user="U01")
    assert "`today 23:30` is past" in reply["text"], reply["text"]
    starts = [row[1] for row in await silences(slack.app)]
    assert starts == [None, None, FRI_0000 + 24 * HOUR + 5 * 60]


async def test_the_api_and_the_command_agree_at_exactly_a_minute_past(slack_http):
    """review25 L3: POST /v1/silences took a ``starts_at`` exactly 60 s past (``at <
    now - 60``) while ``from`` read it as past (``t > now - 60``): one test now."""
    slack = await slack_http(BERLIN, clock=ManualClock())
    app = slack.app
    await used(app)
    _, op = await operator_token(app, "acme")
    body = {"target": "acme", "duration": "1h", "starts_at": "2026-01-01T23:30:00+01:00"}
    app.clock.set(THU_2330 + 60)  # 23:31:00
    refused = error(
        await app.request("POST", "/v1/silences", token=op, json=body), 400, "invalid_input"
    )
    assert "starts_at '2026-01-01T23:30:00+01:00' is past" in refused["message"], refused
    reply = await slack.command("silence acme 1h from today 23:30", user="U01")
    assert "`today 23:30` is past" in reply["text"], reply["text"]
    assert await silences(app) == []
    app.clock.set(THU_2330 + 59)  # 23:30:59: both mean now
    r = await app.request("POST", "/v1/silences", token=op, json=body)
    assert r.status_code == 201, r.text
    reply = await slack.command("silence acme/bob 1h from today 23:30", user="U01")
    assert reply["text"].startswith("`from today 23:30` is now (it was 59 s ago).\n"), reply
    assert [row[1] for row in await silences(app)] == [None, None]
