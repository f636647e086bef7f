"""A list cut short reaches every item by its hints, however many scopes hold the rest
(review26 R2 M1: five scopes were named and the others only counted, "and 6 more users").

Driven through signed slash commands in HTTP mode. Each test walks the hints as an
operator would: every scope a "… and N more" line names is narrowed to, and every
``+N`` it gives (the scopes that did not fit) is followed, until nothing new turns up;
then it checks that every breaker, every agent that needs a look and every alert was
seen, and that each reply fits Slack's limits. Two fleets: 26 users of ordinary names
(every scope fits in the line), and 100 users of 60-character names (they do not).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from guards.clock import ManualClock
from tests.scenario.test_lists_fleet import (
    APPROVAL_POLICY,
    MORE,
    T0,
    assert_fits,
    heartbeats,
    texts_of,
    trip,
)

BREAKER_LINE = re.compile(r"^[🔴🟡🟠⛔🟢] \*([^*]+)\*")
NEEDS_A_LOOK = re.compile(r"^🔴 `([^`]+)`")
ALERT_ID = re.compile(r"^`#(\d+)`")
TEMPLATE = re.compile(r": `(/agent [^`]*<scope>)` lists one$")
NAMED = re.compile(r"`([^`]+)` \((\d+)\)")
POINTER = re.compile(r"\(`(/agent [^`]+ \+\d+)` names (?:them|it)\)")
GROUP = re.compile(r"\(`(/agent alerts [^`]+)` lists them\)")


async def fleet(slack_http: Any, agents: list[str], tripped: list[str]) -> Any:
    slack = await slack_http(APPROVAL_POLICY, clock=ManualClock(T0))
    await heartbeats(slack.app, agents)
    await slack.app.store.write(trip(slack.app, tripped))  # open, cooling down
    await slack.app.ns.extras["alerts"].process()
    return slack


def lines(reply: dict[str, Any]) -> list[str]:
    return [
        line
        for block in reply["blocks"]
        if block["type"] == "section"
        for text in texts_of(block)
        for line in text.split("\n")
    ]


async def walk(
    slack: Any, start: str, item: re.Pattern[str]
) -> tuple[set[str], list[str], list[dict[str, Any]]]:
    """Every item the replies list, from ``start`` on, following every hint: the
    commands run, and the replies of lists cut short."""
    queue, done, seen, cut = [start], [], set(), []
    while queue:
        command = queue.pop(0)
        if command in done:
            continue
        done.append(command)
        reply = await slack.command(command.removeprefix("/agent "))
        assert_fits(reply)
        assert "(truncated)" not in reply["text"], reply["text"][-300:]
        seen |= {m.group(1) for line in lines(reply) if (m := item.match(line))}
        everything = "\n".join(t for b in reply["blocks"] for t in texts_of(b))
        queue += GROUP.findall(everything)
        for block in reply["blocks"]:
            for text in texts_of(block) if block["type"] == "context" else []:
                if not MORE.match(text):
                    continue
                cut.append(reply)
                template = TEMPLATE.search(text)
                assert template, text
                names = text[: template.start()]
                queue += [template.group(1).replace("<scope>", s) for s, _ in NAMED.findall(names)]
                queue += POINTER.findall(text)
    return seen, done, cut


def hinted(reply: dict[str, Any]) -> list[tuple[str, int]]:
    last = texts_of(reply["blocks"][-1])[0]
    return [(scope, int(n)) for scope, n in NAMED.findall(last)]


def same_count(reply: dict[str, Any]) -> None:
    """The plain text counts what the blocks count, and its hint leads on too."""
    last = texts_of(reply["blocks"][-1])[0]
    said = [line for line in reply["text"].split("\n") if MORE.match(line)]
    assert len(said) == 1 and MORE.match(said[0]).group(1) == MORE.match(last).group(1)  # type: ignore[union-attr]
    assert said[0] == last or POINTER.search(said[0]), said[0]


USERS = [f"acme/user{u:02d}" for u in range(30)]
AGENTS = [f"{user}/agent-{i}" for user in USERS for i in range(4)]
TRIPPED = AGENTS[: 26 * 4]  # 26 users whole: more than one reply lists, under 12+ users


async def test_breakers_hints_name_every_user_past_five(slack_http):
    slack = await fleet(slack_http, AGENTS, TRIPPED)
    seen, _, _ = await walk(slack, "/agent breakers", BREAKER_LINE)
    assert seen == set(TRIPPED), sorted(set(TRIPPED) - seen)[:5]
    first = await slack.command("breakers")
    named = hinted(first)
    assert len(named) >= 12 and all(s.count("/") == 1 for s, _ in named), named
    listed = [m.group(1) for line in lines(first) if (m := BREAKER_LINE.match(line))]
    assert sum(n for _, n in named) == len(TRIPPED) - len(listed)  # every hidden one
    assert "+" not in texts_of(first["blocks"][-1])[0]  # they all fit: no `+N`
    same_count(first)
    every, _, _ = await walk(slack, "/agent breakers all", BREAKER_LINE)
    assert every >= set(TRIPPED)


async def test_status_hints_reach_every_agent_that_needs_a_look(slack_http):
    slack = await fleet(slack_http, AGENTS, TRIPPED)
    seen, _, _ = await walk(slack, "/agent status", NEEDS_A_LOOK)
    assert seen == set(TRIPPED), sorted(set(TRIPPED) - seen)[:5]
    first = await slack.command("status")
    last = texts_of(first["blocks"][-1])[0]
    assert f"need a look, {len(AGENTS) - len(TRIPPED)} healthy · those" in last, last
    assert len(hinted(first)) >= 12


async def test_alerts_hints_reach_every_alert(slack_http):
    slack = await fleet(slack_http, AGENTS, TRIPPED)
    ids = {
        str(r[0])
        for r in await slack.app.store.fetch("SELECT id FROM alerts WHERE resolved_at IS NULL")
    }
    assert len(ids) == len(TRIPPED)
    seen, done, _ = await walk(slack, "/agent alerts", ALERT_ID)  # by the kind's line
    assert "/agent alerts breaker_opened_failures" in done
    assert seen == ids, len(seen)
    first = await slack.command("alerts breaker_opened_failures")
    assert len(hinted(first)) >= 12


LONG_USERS = [f"acme/u{u:02d}-{'x' * 57}" for u in range(100)]
LONG_AGENTS = [f"{user}/{'a' * 60}" for user in LONG_USERS]


async def test_scopes_that_do_not_fit_are_reached_by_plus_n(slack_http):
    slack = await fleet(slack_http, LONG_AGENTS, LONG_AGENTS)
    for start, item, want in (
        ("/agent breakers", BREAKER_LINE, set(LONG_AGENTS)),
        ("/agent status", NEEDS_A_LOOK, set(LONG_AGENTS)),
        ("/agent alerts breaker_opened_failures", ALERT_ID, None),
    ):
        seen, done, cut = await walk(slack, start, item)
        pages = [c for c in done if re.search(r" \+\d+$", c)]
        assert pages, (start, done[:3])  # the names did not fit in one line
        if want is not None:
            assert seen == want, (start, len(seen))
        else:
            assert len(seen) == len(LONG_AGENTS)
        for reply in cut:
            if start == "/agent breakers":  # its text lists the rows the blocks do (L4)
                same_count(reply)
            counts = [n for _, n in hinted(reply)]
            assert counts == sorted(counts, reverse=True)  # a page: the most first
        # a page past the first says where it starts
        page = await slack.command(pages[0].removeprefix("/agent "))
        assert "(past the first " in texts_of(page["blocks"][-1])[0]


async def test_a_bad_plus_n_or_a_model_is_refused_and_changes_nothing(slack_http):
    slack = await fleet(slack_http, AGENTS, TRIPPED)
    app = slack.app

    async def state() -> list[Any]:
        queries = ("SELECT * FROM breakers", "SELECT * FROM audit", "SELECT * FROM scopes")
        return [[tuple(r) for r in await app.store.fetch(sql)] for sql in queries]

    before = await state()
    said: Callable[[str], Any] = slack.command
    for command in (
        "breakers",
        "breakers all",
        "status",
        "alerts",
        "alerts breaker_opened_failures",
    ):
        for bad in ("+", "+x", "+-1", "+1.5", "+1234567", "+<!channel>"):
            reply = await said(f"{command} {bad}")
            assert "a `+` is followed by how many of the scopes" in reply["text"], reply["text"]
            assert "<!channel>" not in reply["text"]
        same = await said(f"{command} +0")
        plain = await said(command)
        assert lines(same) == lines(plain)
        assert texts_of(same["blocks"][-1]) == texts_of(plain["blocks"][-1])
        if MORE.match(texts_of(plain["blocks"][-1])[0]):  # a list cut short (not `alerts`: a
            past = await said(f"{command} +999")  # kind's line of 104 says where they are)
            assert "all named before `+999`" in texts_of(past["blocks"][-1])[0]
    # L5: a model is no scope to narrow to; where its breaker is, in words
    for command in (
        "breakers model:claude-haiku-4-5",
        "breakers all MODEL:gpt-4o",
        "status model:x",
        'breakers "model:<!channel> `x`"',
    ):
        reply = await said(command)
        assert "is a model, not a scope" in reply["text"], reply["text"]
        assert "A model's breaker is in every `/agent breakers` list" in reply["text"]
        assert "each segment is" not in reply["text"] and "<!channel>" not in reply["text"]
    assert await state() == before


async def test_alerts_of_a_model_answer_even_with_none_open(slack_http):
    """recheck26 Ka L3: the `breakers model:<name>` reply recommends `/agent alerts
    model:<name>`, which refused a model with no alerts although its refusal lists
    `model:<name>` as a form. A model Nightshift prices or routes to has no open alerts;
    a name it does not know is refused, with the model meant."""
    slack = await fleet(slack_http, AGENTS[:8], TRIPPED[:4])
    said: Callable[[str], Any] = slack.command
    recommended = (await said("breakers model:claude-haiku-4-5"))["text"]
    assert "`/agent alerts model:<name>` lists its alerts" in recommended
    for command in (
        "alerts model:claude-haiku-4-5",
        "alerts MODEL:Claude-Haiku-4-5",  # breakers' keys are in lower case
        "alerts model:claude-haiku-4-5-20251001",  # a snapshot of a priced model
        "alerts breaker_opened:model:claude-haiku-4-5",
    ):
        reply = await said(command)
        assert reply["text"].startswith("No open alerts match `"), (command, reply["text"])
        assert "(4 open in all: `/agent alerts`)" in reply["text"]
    typo = (await said("alerts model:claude-haiku-4-6x"))["text"]
    assert "names no model Nightshift prices, routes to or has an alert of" in typo, typo
    assert "Did you mean `model:claude-haiku-4-5`?" in typo
    kind_typo = (await said("alerts breaker_opened:model:claude-haiku-4-6x"))["text"]
    assert "Did you mean `breaker_opened:model:claude-haiku-4-5`?" in kind_typo
    hostile = (await said('alerts "model:<!channel> `x`"'))["text"]
    assert "<!channel>" not in hostile and "names no model" in hostile


async def test_a_plus_n_alerts_cannot_use_is_refused_not_dropped(slack_http):
    """recheck26 Ka L4: `alerts +5` and `alerts acme +5` answered the plain list, the
    `+N` dropped without a word. Where no hint names scopes it is refused; where one
    does it is followed, as before."""
    slack = await fleet(slack_http, AGENTS, TRIPPED)
    said: Callable[[str], Any] = slack.command
    before = [tuple(r) for r in await slack.app.store.fetch("SELECT * FROM audit")]
    for command in ("alerts", "alerts acme", "alerts acme/user01"):
        reply = (await said(f"{command} +5"))["text"]
        assert f"`/agent {command}` names no scopes to pass over" in reply, reply
        assert "so `+5` means nothing here: send it without `+5`" in reply
        assert (await said(f"{command} +0"))["text"] == (await said(command))["text"]
    followed = await said("alerts breaker_opened_failures +2")
    assert "(past the first 2 of " in texts_of(followed["blocks"][-1])[0]
    assert [tuple(r) for r in await slack.app.store.fetch("SELECT * FROM audit")] == before


def unsent(reply: dict[str, Any]) -> str:
    """A reply's text without the status's delivery line (the alerts' posts go meanwhile)."""
    return re.sub(r"delivery: [^\n]*", "delivery: …", str(reply["text"]))


def refused_plus(reply: str, command: str) -> bool:
    return (
        f"`/agent {command}` names no scopes to pass over (its list is empty or whole" in reply
        and "so `+5` means nothing here: send it without `+5`" in reply
    )


async def test_a_plus_n_is_refused_alike_on_an_empty_or_a_whole_list(slack_http):
    """recheck26 Kc L1: `alerts +5` with nothing open answered "No open alerts. 🌙" while
    with alerts open an unusable `+N` was refused; `breakers +5` and `status +5` dropped
    it without a word, empty or whole. One rule for the three: a `+N` no hint gives is
    refused (`+0` passes over nothing: the plain list). A `+N` a hint gave is followed,
    as the walks above do. `help` says where a `+N` comes from, for the three."""
    lists = ["alerts", "alerts heartbeat_missed", "breakers", "breakers all", "status"]
    empty = await slack_http(APPROVAL_POLICY, clock=ManualClock(T0))
    small = await fleet(slack_http, AGENTS[:8], TRIPPED[:4])  # every list whole
    narrowed = ["status acme/user00", "breakers acme/user00", "alerts acme/user00"]
    for slack, commands in ((empty, lists), (small, [*lists, *narrowed])):
        said: Callable[[str], Any] = slack.command
        for command in commands:
            reply = (await said(f"{command} +5"))["text"]
            assert refused_plus(reply, command), (command, reply)
            same = [unsent(await said(c)) for c in (f"{command} +0", command)]
            assert same[0] == same[1], same
    plain = [(await empty.command(c))["text"] for c in ("alerts", "breakers", "status")]
    assert plain[0] == "No open alerts. 🌙" and "Every breaker is closed" in plain[1], plain
    assert "No agents yet" in plain[2], plain
    shown = (await empty.command("help"))["blocks"]  # the message (its text is cut short)
    help_lines = [line for b in shown for t in texts_of(b) for line in t.split("\n")]
    for usage in ("alerts [scope|kind]", "breakers [all] [scope]", "status [scope]"):
        [line] = [h for h in help_lines if h.startswith(f"`/agent {usage}` — ")]
        assert line.endswith("; a cut list's hint gives `+N` to name more scopes."), line
