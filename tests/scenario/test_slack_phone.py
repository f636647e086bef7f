"""``/agent`` typed on a phone at 3 a.m., as signed slash commands in HTTP mode (audit17
phone): the spaces, quotes, links and escapes phones and Slack put into text; durations
as people write them; words of the buttons; refusals that name whom to ask."""

from __future__ import annotations

from typing import Any

from tests.scenario.test_slack_commands import ADMIN, STRANGER, audit_rows, spend

NBSP = "\u00a0"
POLICY: dict[str, Any] = {
    "admins": [ADMIN],
    "budgets": {"defaults": {"agent": {"day": "10.00"}}},
    "oncall": {"rotations": [{"name": "primary", "users": ["U0ONCALL", "U0DANA"]}]},
}


async def silences(app: Any) -> list[tuple[Any, ...]]:
    rows = await app.store.fetch(
        "SELECT scope, round(expires_at - created_at) FROM silences ORDER BY id"
    )
    return [tuple(r) for r in rows]


async def test_unicode_spaces_and_smart_quotes_read_as_plain_ones(slack_http):
    """M1, M2: a non-breaking space (a paste, a French keyboard) and iOS smart quotes made
    `budget acme` unknown and `“acme/alice”` a bad scope."""
    slack = await slack_http(POLICY)
    await spend(slack.app, "acme/alice/rss-bot", micros=1_000_000, key="k1")
    for text in (
        f"budget{NBSP}acme/alice/rss-bot",
        "budget “acme/alice/rss-bot”",
        "budget ‘acme/alice/rss-bot’.",
        f"budget \u2009acme/alice/rss-bot{NBSP}",
    ):
        reply = await slack.command(text)
        assert "*acme/alice/rss-bot* · agent" in reply["text"], (text, reply["text"])
    done = await slack.command(f"silence{NBSP}acme/alice{NBSP}{NBSP}1h")
    assert "silenced acme/alice and below for 1h" in done["text"], done["text"]


async def test_a_scope_slack_turned_into_a_link_is_read_as_typed(slack_http):
    """M4: `acme.io/alice` arrives as `<http://acme.io/alice|acme.io/alice>`; the kill
    switch could not be thrown on such an agent from Slack."""
    slack = await slack_http(POLICY)
    await spend(slack.app, "acme.io/alice/bot", micros=1_000_000, key="k1")
    reply = await slack.command("budget <http://acme.io/alice/bot|acme.io/alice/bot>")
    assert "*acme.io/alice/bot* · agent" in reply["text"], reply["text"]
    opened = await slack.command("breaker <http://acme.io/alice/bot|acme.io/alice/bot> open")
    assert "forced open" in opened["text"], opened["text"]
    [row] = await slack.app.store.fetch("SELECT key, state FROM breakers")
    assert tuple(row) == ("acme.io/alice/bot", "forced_open")


async def test_a_reason_is_kept_as_typed(slack_http):
    """M2, L9: apostrophes paired up as quotes ate text (`dont restart, its looping`), a
    reason's commas were dropped, and Slack's escapes were stored and shown twice escaped."""
    slack = await slack_http(POLICY)
    await spend(slack.app, "acme/alice/rss-bot", micros=1_000, key="k1")
    await slack.command(
        "breaker acme/alice/rss-bot open don't restart, it’s looping: cost &gt; $5 &amp; more"
    )
    [row] = await slack.app.store.fetch("SELECT reason FROM breakers")
    assert row[0].endswith("don't restart, it's looping: cost > $5 & more"), row[0]
    shown = (await slack.command("breakers"))["text"]
    assert "cost &gt; $5 &amp; more" in shown and "&amp;gt;" not in shown, shown


async def test_durations_as_people_write_them(slack_http):
    """M3: `2 h`, `2 hours`, `30 minutes`, `90min` were refused with a bare usage line (or
    `2 h` read `h` as a rotation), and a bare `30` silenced a P0 for 30 seconds."""
    slack = await slack_http(POLICY)
    for text, seconds in (
        ("silence acme/a 2 h", 7200),
        ("silence acme/b 2 hours", 7200),
        ("silence acme/c 30 minutes", 1800),
        ("silence acme/d 90min", 5400),
        ("silence acme/e 2hrs", 7200),
    ):
        reply = await slack.command(text)
        assert "silenced" in reply["text"], (text, reply["text"])
        assert (await silences(slack.app))[-1] == (text.split()[1], seconds), text
    before = await silences(slack.app)
    bare = await slack.command("silence acme/f 30")
    assert bare["text"].startswith("`30` what? Write `30m` for minutes"), bare["text"]
    assert await silences(slack.app) == before
    override = await slack.command("oncall override <@U0DANA|dana> 2 h")
    assert "<@U0DANA> is on call for primary until" in override["text"], override["text"]
    [row] = await slack.app.store.fetch(
        "SELECT rotation, ends_at - starts_at FROM oncall_overrides"
    )
    assert tuple(row) == ("primary", 7200)
    await spend(slack.app, "acme/alice/rss-bot", micros=1_000, key="k1")
    since = await slack.command("dedup acme 24 h")
    assert "last 24h" in since["text"], since["text"]


async def test_button_words_and_typos_get_one_line(slack_http):
    """M8: `acknowledge 2` (the button's word) was unknown, `unsilence` guessed `silence`,
    `on call` was recognised but not run, `resolve` guessed `resume`, and every unknown
    word came with the whole help (some 70 lines on a phone)."""
    slack = await slack_http(POLICY)
    assert "there is no alert #7" in (await slack.command("acknowledge 7"))["text"]
    await slack.command("silence acme/alice 1h")
    lifted = await slack.command("unsilence acme/alice")
    assert "lifted" in lifted["text"], lifted["text"]
    assert await slack.app.store.fetch("SELECT 1 FROM silences WHERE ended_at IS NULL") == []
    oncall = (await slack.command("on call"))["text"]
    assert "primary" in oncall and "I don't know" not in oncall, oncall
    resolve = (await slack.command("resolve 3"))["text"]
    # a command now, as the button does it (audit27 parity #12)
    assert resolve == "there is no alert #3; `/agent alerts` lists the open ones", resolve
    assert "resume" not in resolve
    typo = (await slack.command("budgte acme"))["text"]
    assert typo == "I don't know `budgte`. Did you mean `budget`? `/agent help` lists the commands."


async def test_audit_filters_ignore_case(slack_http):
    """M6: `audit Refused` and `audit @Nightshift` answered "No changes" when there were."""
    slack = await slack_http(POLICY)
    await slack.command("budget set acme $5 day", user=STRANGER)
    await slack.command("budget set acme $5 day")
    for text in ("audit Refused", "audit REFUSED"):
        shown = (await slack.command(text))["text"]
        assert "*refused*" in shown, (text, shown)
    assert "budget.set" in (await slack.command("audit Budget"))["text"]
    assert "budget.set" in (await slack.command("audit ACME"))["text"]
    assert "*refused*" in (await slack.command(f"audit @{STRANGER.lower()}"))["text"]


async def test_a_refusal_names_whom_to_ask(slack_http, fake_slack):
    """M7: "Only admins can ..." said to ask "the admins in the policy file", of no use on a
    phone at 3 a.m.: it names them."""
    fake_slack.groups["S0OPS"] = ["U0OPS"]  # a group Slack knows (else it is not named)
    slack = await slack_http({**POLICY, "admin_groups": ["S0OPS"]})
    refused = await slack.command("budget set acme $5 day", user=STRANGER)
    assert refused["text"] == (
        "Only admins can change budgets. Ask <@U0ADMIN> or <!subteam^S0OPS>."
    ), refused["text"]
    nobody = await slack_http({"budgets": POLICY["budgets"]})
    alone = await nobody.command("budget set acme $5 day", user=STRANGER)
    assert "The policy names no admins: add member ids under `admins:`" in alone["text"]
    assert [r[1] for r in await audit_rows(slack.app)] == ["refused"]


async def test_a_raise_amount_refused_says_it_once(slack_http):
    """L10: "'1 000' is not an amount: '1 000' is not an amount in USD (write ...)"."""
    from bot.commands_core import parse_amount
    from guards.errors import InvalidInput

    for text in ("1 000", "€50", "2k"):
        try:
            parse_amount(text)
        except InvalidInput as exc:
            assert exc.message.count("is not an amount") == 1, exc.message
            assert exc.message.startswith(repr(text)), exc.message
        else:
            raise AssertionError(text)
    slack = await slack_http(POLICY)
    assert slack is not None


async def test_an_amount_typed_with_spaces_between_its_digit_groups_is_one_amount(slack_http):
    """closing13: `budget set acme 1 000 day` (a thin space from a French keyboard, say)
    was a usage error."""
    slack = await slack_http(POLICY)
    await spend(slack.app, "acme/alice/rss-bot", micros=1_000, key="k1")
    done = await slack.command("budget set acme 1\u2009000 day")
    assert "set the *day* budget of `acme` to *$1,000.00*" in done["text"], done["text"]
    done = await slack.command("budget set acme $1 234 567.50 week")
    assert "set the *week* budget of `acme` to *$1,234,567.50*" in done["text"], done["text"]
    for text in (
        "budget set acme 1 00 day",
        "budget set acme 1.5 000 day",
        "budget set acme 5 day x",
    ):
        refused = await slack.command(text)
        assert "usage" in refused["text"], (text, refused["text"])
