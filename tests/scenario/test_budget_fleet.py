"""The budget tree at fleet size: busiest children first, honest counts, exact small amounts.

Through HTTP (``GET /v1/budgets/...``) and signed ``/agent budget`` slash commands.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.api_budget_resets import with_resets
from guards.reservation import ReserveRequest
from guards.scopes import Scope
from guards.tokens import authenticate

AGENT = "acme/alice/bot"
# Spend-rate breakers off: hundreds of quick charges are the point here, not a runaway.
NO_RATE = {"spend_rate": None}
POLICY = {"budgets": {"defaults": {"agent": {"day": "100.00"}}}, "breakers": NO_RATE}
HOT = f"{AGENT}/conv-0255"
HOT_MICROS = 1_950_000
HELD = f"{AGENT}/conv-0010"  # spends little, but holds enough to rank second
HELD_MICROS = 3_000


def conv(i: int) -> str:
    return f"{AGENT}/conv-{i:04d}"


def spent_by(i: int) -> int:
    """What conversation ``i`` spends today: 1,000 µ$ + 10 µ$ per index, the hot one much more."""
    return HOT_MICROS if conv(i) == HOT else 1_000 + 10 * i


async def reserve(app: Any, tok: str, scope: str, micros: int, key: str) -> str:
    body = {"scope": scope, "idempotency_key": key, "max_cost_micros": micros}
    r = await app.request("POST", "/v1/reservations", token=tok, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["reservation_id"])


async def spend(app: Any, tok: str, scope: str, micros: int, key: str) -> None:
    rid = await reserve(app, tok, scope, micros, key)
    body = {"actual_cost_micros": micros, "outcome": "success"}
    s = await app.request("POST", f"/v1/reservations/{rid}/settle", token=tok, json=body)
    assert s.status_code == 200, s.text


async def seed_fleet(app: Any) -> str:
    """260 conversations under one agent (16 clients at a time); conv-0010 also holds."""
    tok: str = await app.token(AGENT)
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with gate:
            await spend(app, tok, conv(i), spent_by(i), f"k{i}")

    await asyncio.gather(*(one(i) for i in range(260)))
    await reserve(app, tok, HELD, HELD_MICROS, "hold")
    return tok


async def tree(app: Any, tok: str, scope: str) -> dict[str, Any]:
    r = await app.request("GET", f"/v1/budgets/{scope}", token=tok)
    assert r.status_code == 200, r.text
    return dict(r.json())


def day(node: dict[str, Any]) -> dict[str, Any]:
    return dict(node["windows"]["day"])


def used(node: dict[str, Any]) -> int:
    return int(day(node)["spent_micros"] + day(node)["held_micros"])


def children_section(reply: dict[str, Any], scope: str) -> str:
    texts = [b["text"]["text"] for b in reply["blocks"] if b["type"] == "section"]
    below = [t for t in texts if t.startswith(f"*Below {scope}*")]
    assert len(below) == 1, texts
    return str(below[0])


# -- the API --------------------------------------------------------------------------------


async def test_the_api_lists_the_busiest_children_first_and_says_how_many_exist(app_factory):
    app = await app_factory(POLICY)
    tok = await seed_fleet(app)
    body = await tree(app, tok, AGENT)

    assert set(body) >= {"scope", "timezone", "levels", "children"}  # the old keys stay
    assert body["children_total"] == 260 and body["children_truncated"] is True
    children = body["children"]
    assert len(children) == 200
    assert [c["scope"] for c in children[:2]] == [HOT, HELD]
    assert all(set(c) == {"scope", "level", "windows"} for c in children)
    assert all(c["level"] == "conversation" for c in children)
    keys = [(-used(c), c["scope"]) for c in children]
    assert keys == sorted(keys)  # busiest first, then by path
    assert day(children[1]) | {"period": None} == {
        "period": None,
        "limit_micros": None,
        "spent_micros": spent_by(10),
        "held_micros": HELD_MICROS,
        "remaining_micros": None,
        "resets_at": "2026-01-02T00:00:00+00:00",
    }

    # The 60 left out are exactly the 60 that used least (conv-0000..0060 but conv-0010).
    listed = {c["scope"] for c in children}
    left_out = [i for i in range(260) if conv(i) not in listed]
    assert left_out == [i for i in range(61) if i != 10]
    assert min(used(c) for c in children) >= max(spent_by(i) for i in left_out)

    # Sums: the listed children plus the left-out ones make the agent's day, to the micro-dollar.
    agent = next(level for level in body["levels"] if level["scope"] == AGENT)
    assert day(agent)["spent_micros"] == sum(spent_by(i) for i in range(260))
    assert day(agent)["held_micros"] == HELD_MICROS
    listed_spent = sum(day(c)["spent_micros"] for c in children)
    assert listed_spent + sum(spent_by(i) for i in left_out) == day(agent)["spent_micros"]

    # One level up, the agent is the only child: nothing is left out.
    user = await tree(app, await app.token("acme/alice"), "acme/alice")
    assert user["children_total"] == 1 and user["children_truncated"] is False
    assert user["children"][0]["scope"] == AGENT and used(user["children"][0]) == used(agent)


async def test_spending_not_yet_written_counts_in_the_order_and_the_numbers(app_factory):
    """A hold made in the same batch as the read ranks its conversation on the exact sums."""
    app = await app_factory(POLICY)
    tok = await seed_fleet(app)
    cold = conv(0)  # spent least today: left out of the 200 until it holds more than anyone

    def hold_then_read(tx: Any) -> dict[str, Any]:
        token = authenticate(tx, tok)
        req = ReserveRequest(scope=cold, idempotency_key="late", max_cost_micros=5_000_000)
        app.ns.ledger.reserve(tx, token=token, req=req)
        return dict(app.ns.ledger.usage_tree(tx, Scope(AGENT)))

    body = await app.store.write(hold_then_read)
    first = body["children"][0]
    assert first["scope"] == cold and day(first)["held_micros"] == 5_000_000
    assert body["children_total"] == 260 and len(body["children"]) == 200
    assert body["children"][1]["scope"] == HOT
    after = await tree(app, tok, AGENT)  # once written, the same answer from the daily rows
    assert after["children"][:2] == with_resets(body)["children"][:2]  # the API adds resets_at


async def test_a_child_whose_spend_dropped_in_the_batch_is_still_ranked_right(app_factory):
    """audit27 mutation F7: a release not yet written drops a child below the 201st on disk;
    the child that then ranks 200th is listed, not the one that dropped."""
    app = await app_factory(POLICY)
    tok = await seed_fleet(app)
    rows = await app.store.fetch(
        "SELECT id FROM reservations WHERE scope = ? AND state = 'held'", (HELD,)
    )

    def release_then_read(tx: Any) -> dict[str, Any]:
        app.ns.ledger.release(tx, token=authenticate(tx, tok), res_id=rows[0][0])
        return dict(app.ns.ledger.usage_tree(tx, Scope(AGENT)))

    body = await app.store.write(release_then_read)  # HELD: 4,100 µ$ on disk, 1,100 now
    listed = [c["scope"] for c in body["children"]]
    assert len(listed) == 200 and listed[0] == HOT
    # the 199 that spent most after HOT, down to conv-0060 (1,600 µ$)
    assert listed[1:] == [conv(i) for i in range(259, 59, -1) if conv(i) != HOT]
    assert HELD not in listed
    after = await tree(app, tok, AGENT)  # once written, the same answer from the daily rows
    assert [c["scope"] for c in after["children"]] == listed


async def test_a_small_tree_is_complete_and_says_so(slack_http):
    slack = await slack_http(POLICY)
    tok = await slack.app.token(AGENT)
    for name, micros in (("a", 1_000_000), ("b", 3_000_000), ("c", 2_000_000)):
        await spend(slack.app, tok, f"{AGENT}/{name}", micros, name)
    body = await tree(slack.app, tok, AGENT)
    assert body["children_total"] == 3 and body["children_truncated"] is False
    assert [c["scope"].rsplit("/", 1)[1] for c in body["children"]] == ["b", "c", "a"]
    agent = next(level for level in body["levels"] if level["scope"] == AGENT)
    assert sum(day(c)["spent_micros"] for c in body["children"]) == day(agent)["spent_micros"]

    reply = await slack.command(f"budget {AGENT}")
    assert children_section(reply, AGENT) == (
        f"*Below {AGENT}* (3)\n"
        "• `b` `day  ` no limit · $3.00 spent\n"
        "• `c` `day  ` no limit · $2.00 spent\n"
        "• `a` `day  ` no limit · $1.00 spent"
    )
    assert "more" not in reply["text"]


# -- Slack ----------------------------------------------------------------------------------


async def test_slack_shows_the_hot_conversation_first_and_counts_the_rest(slack_http):
    slack = await slack_http(POLICY)
    await seed_fleet(slack.app)
    reply = await slack.command(f"budget {AGENT}")
    assert len(reply["blocks"]) <= 50

    text = children_section(reply, AGENT)
    assert len(text) <= 3000
    lines = text.split("\n")
    rows = [line for line in lines if line.startswith("• ")]
    shown = len(rows)
    assert shown >= 25, shown  # as many as fit in one section
    assert lines[0] == f"*Below {AGENT}* (260; the {shown} that spent and hold most today)"
    assert rows[0].startswith("• `conv-0255` `day  ` no limit · $1.95 spent")
    assert rows[1].startswith("• `conv-0010` `day  ` no limit · $0.0011 spent + $0.003 held")
    assert lines[-1] == f"… and {260 - shown} more (`/agent budget {AGENT}/<name>` shows one)"
    assert "… and" not in "\n".join(lines[:-1])  # nothing clipped the list itself

    # The plain-text fallback holds the levels too: fewer rows, the same honest counts.
    fallback = reply["text"]
    assert len(fallback) <= 3000
    below = fallback[fallback.index(f"*Below {AGENT}*") :].split("\n")
    in_text = sum(line.startswith("• ") for line in below)
    assert 0 < in_text <= shown
    assert below[0] == f"*Below {AGENT}* (260; the {in_text} that spent and hold most today)"
    assert below[-1].startswith(f"… and {260 - in_text} more")


async def test_the_namespace_overview_says_how_many_more_namespaces_exist(slack_http):
    names = [f"team-{i:02d}" for i in range(45)]
    policy = {
        "budgets": {"scopes": {name: {"day": "10.00"} for name in names}},
        "breakers": NO_RATE,
    }
    slack = await slack_http(policy)
    tok = await slack.app.token("team-44/u/bot")
    await spend(slack.app, tok, "team-44/u/bot", 2_000_000, "k")

    reply = await slack.command("budget")
    texts = [b["text"]["text"] for b in reply["blocks"]]
    assert len(reply["blocks"]) == 42  # title, 40 namespaces, the rest
    assert texts[0] == (
        "*Budgets by namespace* (45; the 40 that spent and hold most today;"
        " details: `/agent budget <scope>`)"
    )
    assert texts[1].startswith("*team-44*\n") and "$2.00 of $10.00" in texts[1]
    shown = [t.split("*")[1] for t in texts[1:41]]
    assert shown == ["team-44", *names[:39]]  # the busiest, then by name
    assert texts[-1] == "… and 5 more namespaces (`/agent budget <namespace>`)"
    assert reply["text"].endswith(texts[-1])


async def test_a_small_overview_lists_every_namespace_without_a_count(slack_http):
    policy = {"budgets": {"scopes": {"acme": {"day": "10.00"}, "globex": {"day": "5.00"}}}}
    slack = await slack_http(policy)
    reply = await slack.command("budget")
    texts = [b["text"]["text"] for b in reply["blocks"]]
    assert texts[0] == "*Budgets by namespace* (details: `/agent budget <scope>`)"
    assert [t.split("*")[1] for t in texts[1:]] == ["acme", "globex"]
    assert "more namespaces" not in reply["text"]


async def test_holds_and_spend_under_a_cent_never_render_as_zero(slack_http):
    policy = {"budgets": {"scopes": {"tiny/u/bot": {"day": "0.01"}}}}
    slack = await slack_http(policy)
    tok = await slack.app.token("tiny/u/bot")
    await reserve(slack.app, tok, "tiny/u/bot/c1", 1_000, "hold")

    overview = await slack.command("budget")
    assert "*tiny*\n`day  ` no limit · $0.00 spent + $0.001 held" in overview["text"]
    agent = await slack.command("budget tiny/u/bot")
    assert "`day  ` ▓░░░░░░░░░ 10% · $0.00 + $0.001 held of $0.01 · $0.009 left" in agent["text"]
    assert "• `c1` `day  ` no limit · $0.00 spent + $0.001 held" in agent["text"]
    assert "$0.00 held" not in overview["text"] + agent["text"]

    await spend(slack.app, tok, "tiny/u/bot/c2", 4_000, "small")
    after = await slack.command("budget tiny/u/bot")
    assert "$0.004 spent + $0.001 held" in after["text"]  # c2 spent, c1 still holds
    assert "$0.004 + $0.001 held of $0.01 · $0.005 left" in after["text"]
