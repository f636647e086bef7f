"""Pure pieces of the Slack surface: Block Kit plumbing, text rendering, parsing, admins."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.admins import Admins, AdminsUnknown
from bot.blocks import actions, button, context, header, section
from bot.commands import MESSAGE_ONLY, SUBCOMMANDS, Reply, UsageError, help_reply, load_commands
from bot.commands_budget import window_line
from bot.commands_core import budget_raise_view
from bot.commands_dedup import _parse
from bot.shell import plain, render_text
from bot.slack.client import retry_after
from bot.slack.payloads import view_values
from bot.slack.render import replace_actions, reply_payload
from guards.clock import ManualClock
from guards.config import Policy


def test_reply_payload_keeps_within_slack_limits():
    reply = Reply(
        text="x" * 5000, blocks=[section(f"line {i}") for i in range(60)], ephemeral=False
    )
    payload = reply_payload(reply)
    assert payload["response_type"] == "in_channel"
    assert len(payload["blocks"]) == 50
    assert payload["blocks"][-1] == context("… and 11 more blocks not shown (too long)")
    assert len(payload["text"]) <= 3000


def test_replace_actions_keeps_the_facts_and_swaps_the_clicked_buttons():
    blocks = [
        header("Breaker opened"),
        section("spend rate"),
        actions(button("Ack", "alert_ack", "1"), block_id="first"),
        actions(button("Approve", "breaker_approve", "s"), block_id="second"),
    ]
    out = replace_actions(blocks, "second", "✅ approved")
    assert out[:3] == blocks[:3] and out[3] == context("✅ approved")
    fallback = replace_actions(blocks, "unknown", "done")
    assert [b["type"] for b in fallback] == ["header", "section", "context"]


def test_render_text_numbers_buttons_and_reads_markup():
    blocks = [
        header("Budget spent"),
        section("*acme/alice/rss-bot* by <@U1|dana> in <#C1|alerts>, see <https://x.io|docs>"),
        {"type": "divider"},
        context("since 03:10"),
        actions(
            button("Acknowledge", "alert_ack", "1"), button("Silence 1h", "alert_silence_1h", "1")
        ),
    ]
    numbers = iter(range(7, 100))
    seen = []

    def number(element, block_id):
        seen.append(element["action_id"])
        return next(numbers)

    text = render_text(blocks, on_button=number)
    assert text.splitlines() == [
        "■ Budget spent",
        "*acme/alice/rss-bot* by @dana in #alerts, see docs (https://x.io)",
        "─" * 40,
        "  since 03:10",
        "  [7] Acknowledge   [8] Silence 1h",
    ]
    assert seen == ["alert_ack", "alert_silence_1h"]
    assert render_text([], "plain <@U2> &amp; <!here>") == "plain @U2 & @here"
    assert plain("<mailto:a@b.c>") == "mailto:a@b.c"


def test_window_lines_have_bars_and_figures():
    limited = {
        "spent_micros": 4_200_000,
        "held_micros": 300_000,
        "limit_micros": 10_000_000,
        "remaining_micros": 5_500_000,
    }
    assert window_line("day", limited) == (
        "`day  ` ▓▓▓▓░░░░░░ 45% · $4.20 + $0.30 held of $10.00 · $5.50 left"
    )
    over = {
        "spent_micros": 12_000_000,
        "held_micros": 0,
        "limit_micros": 10_000_000,
        "remaining_micros": 0,
    }
    assert window_line("total", over).startswith("`total` ▓▓▓▓▓▓▓▓▓▓ 120% ·")
    free = {
        "spent_micros": 1_000_000,
        "held_micros": 0,
        "limit_micros": None,
        "remaining_micros": None,
    }
    assert window_line("day", free) == "`day  ` no limit · $1.00 spent"


def test_budget_raise_view_and_submitted_values():
    view = budget_raise_view("acme/a/b", {"day": 10_000_000})
    assert view["callback_id"] == "budget_raise_modal"
    assert view["private_metadata"] == '{"scope":"acme/a/b","shown":{"day":10000000}}'
    assert len(view["title"]["text"]) <= 24
    state = {
        "values": {
            "amount": {"amount": {"type": "plain_text_input", "value": "12.50"}},
            "window": {"window": {"type": "static_select", "selected_option": {"value": "week"}}},
        }
    }
    assert view_values({"state": state}) == {"amount": "12.50", "window": "week"}


def test_dedup_arguments():
    assert _parse([]) == (None, 86400, "24h")
    assert _parse(["acme/alice", "2h"]) == ("acme/alice", 7200, "2h")
    assert _parse(["30m", "acme"]) == ("acme", 1800, "30m")
    for bad in (["acme", "bob"], ["a", "b", "c"], ["0s"], ["ac me"]):
        with pytest.raises(UsageError):
            _parse(bad)


def test_retry_after_header_parsing():
    assert retry_after({"Retry-After": "7"}) == 7.0
    assert retry_after({"retry-after": "0.5"}) == 0.5
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after({}) is None


class GroupsClient:
    """Answers usergroups.users.list like Slack (a fake, counting calls)."""

    def __init__(self, groups: dict[str, list[str]]) -> None:
        self.groups = groups
        self.calls = 0
        self.down = False

    async def usergroups_users_list(self, *, usergroup):
        self.calls += 1
        if self.down:
            raise ConnectionError("slack is down")
        return {"ok": True, "users": self.groups.get(usergroup, [])}


async def test_admins_from_ids_and_cached_groups():
    clock = ManualClock()
    client = GroupsClient({"S1": ["U02"]})
    policy = Policy.model_validate({"admins": ["U01"], "admin_groups": ["S1"]})
    admins = Admins(policy=policy, client=client, clock=clock, ttl_seconds=60)
    assert await admins.is_admin("U01") and client.calls == 0
    assert await admins.is_admin("U02") and not await admins.is_admin("U03")
    assert client.calls == 1
    clock.advance(61)
    client.down = True  # Slack unreachable: the last known members still count
    assert await admins.is_admin("U02")
    fresh = Admins(policy=policy, client=client, clock=clock)
    with pytest.raises(AdminsUnknown, match=r"whether you are in <!subteam\^S1>"):
        await fresh.is_admin("U02")  # nothing known: fail closed, saying why
    nobody = Admins(policy=policy, client=None, clock=clock)
    assert not await nobody.is_admin("U02") and await nobody.is_admin("U01")


def test_manifest_declares_the_command_and_only_the_scopes_used():
    from pathlib import Path

    import yaml

    manifest = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/agent" and command["usage_hint"].startswith("help")
    assert command["should_escape"] is True  # mentions arrive as <@U…> for `oncall override`
    # chat.postMessage/update/postEphemeral, the slash command, usergroups.users.list, files.*,
    # users.info (on-call people who left the workspace)
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "chat:write",
        "commands",
        "usergroups:read",
        "files:write",
        "users:read",
    }
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert len(manifest["display_information"]["description"]) <= 140


async def test_shell_console_prints_messages_and_tracks_their_buttons():
    import base64
    import io

    from bot.shell import ShellConsole

    out = io.StringIO()
    console = ShellConsole(out=out, read_input=True)  # someone can type a button's number
    blocks = [
        section("*P0* breaker opened"),
        actions(button("Ack", "alert_ack", "7"), button("Silence 1h", "alert_silence_1h", "7")),
    ]
    posted = await console.deliver(
        "chat.postMessage", {"channel": "C0A", "text": "t", "blocks": blocks}
    )
    assert (posted.channel, posted.ts) == ("C0A", "shell.1")
    assert "── #C0A ──\n*P0* breaker opened\n  [1] Ack   [2] Silence 1h\n" in out.getvalue()
    found = console.find_button("alert_silence_1h", "7")
    assert found is not None and found.number == 2
    done = [blocks[0], context("acked by @dana")]
    await console.deliver(
        "chat.update", {"channel": "C0A", "ts": "shell.1", "text": "t", "blocks": done}
    )
    assert "── updated in #C0A ──\n*P0* breaker opened\n  acked by @dana" in out.getvalue()
    assert console.find_button("alert_ack") is None
    await console.deliver("chat.postMessage", {"channel": "U0DANA", "text": "you are paged"})
    assert "── DM @U0DANA ──\nyou are paged" in out.getvalue()
    content = base64.b64encode(b"# Digest\n3 alerts").decode()
    args = {"channel": "C0D", "filename": "d.md", "title": "Digest", "content_b64": content}
    await console.deliver("files.upload", args)
    assert "── file d.md (Digest) to #C0D ──\n# Digest\n3 alerts" in out.getvalue()


def test_budget_raise_view_starts_on_the_window_that_matters():
    def initial(view):
        block = next(b for b in view["blocks"] if b.get("block_id") == "window")
        return block["element"]["initial_option"]["value"]

    assert initial(budget_raise_view("acme/a/b/c", {"total": 2_000_000})) == "total"
    assert initial(budget_raise_view("acme/a/b", {"day": 1, "month": 9}, "month")) == "month"
    assert initial(budget_raise_view("acme/a/b", {"day": 1, "month": 9})) == "day"
    assert initial(budget_raise_view("acme/a/b", {}, "nonsense")) == "day"


# -- lists built within Slack's limits (fleet-sized answers) -----------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bot.blocks import MAX_TEXT, echo, fit_text, line_sections  # noqa: E402

_lines = st.lists(st.text(st.characters(blacklist_characters="\n"), max_size=400), max_size=80)
_items = st.lists(st.text("abc xyz", max_size=300), max_size=80)


@given(_items, st.integers(0, 30), st.integers(200, 3000))
def test_fit_text_keeps_whole_items_and_counts_the_rest(items, dropped, limit):
    total = len(items) + dropped
    text = fit_text(
        ["HEAD"],
        items,
        more=lambda n: f"… and {n} more items",
        total=total,
        tail=["TAIL"],
        limit=limit,
    )
    assert len(text) <= limit
    lines = text.split("\n")
    assert lines[0] == "HEAD" and lines[-1] == "TAIL"
    shown = lines[1:-1]
    hidden = 0
    if shown and shown[-1].startswith("… and "):
        hidden = int(shown.pop().split(" ")[2])
        assert hidden > 0
    assert shown == items[: len(shown)]  # whole items, in order
    assert hidden == total - len(shown)  # the note counts items


@given(_lines, st.integers(1, 20), st.none() | st.integers(1, 5))
def test_line_sections_never_cut_a_line_and_say_how_many_they_hold(lines, per, most):
    blocks, placed = line_sections(lines, per_section=per, max_sections=most)
    texts = [b["text"]["text"] for b in blocks]
    assert all(len(t) <= MAX_TEXT and len(t.split("\n")) <= per for t in texts)
    assert most is None or len(blocks) <= most
    assert "\n".join(texts) == "\n".join(lines[:placed])
    assert most is not None or placed == len(lines)


def test_a_fleet_list_fits_in_sections_of_fifteen_lines():
    lines = [
        f"🔴 `acme/u{i:03d}/translation-pipeline-worker` · 💔 heartbeat missed" for i in range(50)
    ]
    blocks, placed = line_sections(lines, max_sections=3)
    assert (len(blocks), placed) == (3, 45)
    assert fit_text(["3 jobs"], ["a", "b"], more=str) == "3 jobs\na\nb"
    assert echo("<!here> & `code`" + "x" * 50) == "&lt;!here&gt; &amp; 'code'" + "x" * 24 + "…"


def test_a_time_the_clocks_show_twice_carries_its_zone():
    """audit14 time L3: "until 02:50" on the night clocks go back named neither 02:50."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from bot.alerts.render_time import clock_time

    berlin = ZoneInfo("Europe/Berlin")
    first, second = (
        datetime(2026, 10, 25, 2, 50, tzinfo=berlin, fold=fold).timestamp() for fold in (0, 1)
    )
    assert (clock_time(first, berlin), clock_time(second, berlin)) == ("02:50 CEST", "02:50 CET")
    assert clock_time(first - 3600, berlin) == "01:50"  # shown once: no zone needed
    assert clock_time(second, berlin, now=second - 86400) == "Sun 25 Oct 02:50 CET"


def test_manifest_says_where_http_mode_puts_its_two_urls():
    """audit24 claims C6: the comment pointed at "the command's `url` below", which the
    manifest did not have. Its lines marked "HTTP mode", uncommented, give the two request
    URLs Slack's manifest schema has (features.slash_commands[].url and
    settings.interactivity.request_url), both at Nightshift's POST /slack/events."""
    from pathlib import Path

    import yaml

    text = (Path(__file__).parents[2] / "manifest.yml").read_text()
    marked = [line for line in text.splitlines() if line.rstrip().endswith("# HTTP mode")]
    assert len(marked) == 2
    http = "\n".join(
        line.replace("# ", "", 1) if line in marked else line for line in text.splitlines()
    ).replace("socket_mode_enabled: true", "socket_mode_enabled: false")
    manifest = yaml.safe_load(http)
    url = "https://<your host>/slack/events"
    (command,) = manifest["features"]["slash_commands"]
    assert command["url"] == url
    assert manifest["settings"]["interactivity"] == {"is_enabled": True, "request_url": url}
    socket = yaml.safe_load(text)  # as shipped (Socket Mode): no URL at all
    assert "url" not in socket["features"]["slash_commands"][0]
    assert "request_url" not in socket["settings"]["interactivity"]
    assert "HTTP mode" in text.split("_metadata:")[0]  # the header says how


def test_a_command_words_a_time_as_an_alert_does():
    """audit27 style M3: `/agent holds` said "Jan 07 09:00", an alert "Wed 07 Jan 09:00"."""
    from types import SimpleNamespace as N
    from zoneinfo import ZoneInfo

    from bot.alerts.render_time import clock_time
    from bot.commands_core import local_time

    now = 1_767_600_000.0  # Mon 05 Jan 2026 09:00 in Berlin
    ctx: Any = N(ns=N(policy=N(timezone="Europe/Berlin"), clock=N(now=lambda: now)))
    later = now + 2 * 86_400
    assert local_time(ctx, later) == clock_time(later, ZoneInfo("Europe/Berlin"), now=now)
    assert local_time(ctx, later) == "Wed 07 Jan 09:00"
    assert local_time(ctx, now + 200 * 86_400) == "Fri 24 Jul 2026 10:00"
    assert local_time(ctx, later + 7, seconds=True) == "Wed 07 Jan 09:00:07"
    assert (local_time(ctx), local_time(ctx, now + 7, seconds=True)) == ("09:00", "09:00:07")


def test_help_s_notification_text_names_a_command_more_without_the_plus_n_clause():
    """review27 R1 L3: the `+N` clause of alerts, breakers and status (9025bd1) went into
    the help's plain text too, the notification and what a client without blocks shows,
    which then named one command fewer before "… and N more commands (in the message)".
    The message keeps the clause; the plain text leaves it out and names more again."""
    load_commands()
    reply = help_reply()
    shown = "\n".join(str(b["text"]["text"]) for b in reply.blocks if b["type"] == "section")
    assert shown.count(MESSAGE_ONLY) == 3  # (the message: alerts, breakers, status)
    assert MESSAGE_ONLY not in reply.text and "`+N`" not in reply.text
    named = [line for line in reply.text.split("\n") if line.startswith("`/agent ")]
    [more] = re.findall(r"… and (\d+) more commands \(in the message\)$", reply.text)
    assert len(named) + int(more) == len(SUBCOMMANDS)
    [alerts] = [line for line in named if line.startswith("`/agent alerts ")]
    assert alerts.endswith("a scope or kind narrows: `alerts acme/alice`."), alerts
    lines = [line for line in shown.split("\n") if line.startswith("`/agent ")]
    with_clause = fit_text(["*Nightshift commands*"], lines, more=lambda n: f"… and {n} more")
    assert len(named) > with_clause.count("\n`/agent "), (len(named), with_clause)
