"""Agent-controlled text shown in Slack and on the terminal: escaped, on one line, cut first.

audit11 security H1, L1, L2: a model named ``<!channel>-<http://evil.example|open-me>``,
a task id with a newline, an item's text cut in the middle of ``<…|…>``.
"""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.alerts.model import Alert
from bot.alerts.render import alert_line, alert_message, channel_nudge, storm_nudge
from bot.alerts.render_summary import heartbeat_detail, summary
from bot.blocks import echo
from bot.digest.render import render
from bot.escape import mask_secrets, one_line, plain_line, printable, slack_text, without_marks
from bot.shell import ShellConsole
from tests.fakes.alerts import new_alert
from tests.unit.test_digest import digest, raw

UTC = ZoneInfo("UTC")
EVIL_MODEL = "<!channel>-<http://evil.example|open-me>"
EVIL_ESCAPED = "&lt;!channel&gt;-&lt;http://evil.example|open-me&gt;"
ORDINARY = [
    "acme/alice/rss-bot",
    "acme/bob/ops_bot.v2",
    "model:claude-haiku-4-5",
    "claude-sonnet-4-5",
    "gpt-4o",
    "gpt-4o-2024-08-06",
    "fetch-feed-17",
    "forced open by U0ADMIN: looping on the same feed (see the runbook)",
]
# what Slack reads as markup: a mention, a special mention, a link
MARKUP = re.compile(r"<[@#!]|<https?:|<mailto:")


def alert(scope: str, kind: str = "breaker_opened_failures", **facts: Any) -> Alert:
    return new_alert(7, kind, scope, **facts)


# -- the helper ---------------------------------------------------------------------------


def test_ordinary_names_are_unchanged():
    for name in ORDINARY:
        assert slack_text(name) == name
        assert one_line(name) == name and printable(name) == name


def test_mentions_links_and_code_spans_are_escaped_as_slack_documents():
    assert slack_text(EVIL_MODEL) == EVIL_ESCAPED
    assert slack_text("<@U0ADMIN> & <!here> `x`") == "&lt;@U0ADMIN&gt; &amp; &lt;!here&gt; 'x'"
    assert slack_text("&lt;") == "&amp;lt;"  # shows as typed, not as "<"


def test_control_characters_never_start_a_line():
    text = "t1\nfake: 🟢 all clear\r\x1b]0;title\x07\u2028x\u202eevil\t."
    assert one_line(text) == "t1 fake: 🟢 all clear  ]0;title  x evil ."
    assert slack_text(text) == one_line(text)
    assert "\n" not in slack_text("a\n\n*P0* fake")


def test_the_cut_comes_before_the_escaping():
    # cut inside <…|…>: the half link is text, and no entity is cut in half
    assert slack_text("<http://evil.example|Click me>", 22) == "&lt;http://evil.example|C…"
    assert slack_text("a<b", 2) == "a&lt;…"
    assert slack_text("&&&&", 2) == "&amp;&amp;…"
    # the same cut as echo() (whose words a command quotes back)
    assert slack_text("<!here> `x`", 5) == echo("<!here> `x`", 5)


@given(st.text(), st.one_of(st.none(), st.integers(min_value=0, max_value=300)))
def test_nothing_an_agent_sends_is_markup_or_a_new_line(text: str, limit: int | None):
    out = slack_text(text, limit)
    assert "<" not in out and ">" not in out and "`" not in out
    assert re.sub(r"&(?:amp|lt|gt);", "", out).count("&") == 0  # only whole entities
    assert one_line(out) == out
    # and it reads back as the agent's text, cut
    back = out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    shown = one_line(text).replace("`", "'")
    if limit is not None and len(text) > limit:
        assert back == shown[:limit] + "…"
    else:
        assert back == shown


@given(st.text())
def test_printable_is_one_line_with_visible_escapes(text: str):
    out = printable(text)
    assert one_line(out) == out


def test_printable_shows_what_was_escaped():
    body = "oops\n2026-11-27 12:00:00,000 INFO  bot.app: all jobs healthy\x1b[2K"
    assert printable(body) == (
        "oops\\n2026-11-27 12:00:00,000 INFO  bot.app: all jobs healthy\\x1b[2K"
    )


# -- alerts -------------------------------------------------------------------------------


def test_a_model_breaker_named_by_an_agent_alerts_as_text():
    a = alert(f"model:{EVIL_MODEL}", reason="10 failures in a row (limit 10)")
    text, blocks = alert_message(a, tz=UTC, now=0.0)
    shown = text + json.dumps(blocks, ensure_ascii=False)
    assert not MARKUP.search(shown), shown
    assert f"model:{EVIL_ESCAPED}: 10 failures in a row (limit 10)" in text
    assert blocks[1]["text"]["text"].startswith(f"`model:{EVIL_ESCAPED}`\n")
    for line in (
        channel_nudge(a, tz=UTC, now=0.0),
        storm_nudge(a, tz=UTC, now=0.0),
        alert_line(a, now=0.0),
    ):
        assert EVIL_ESCAPED in line
        assert line.count("<!channel>") == line.startswith("<!channel>")  # only our own


def test_an_ordinary_alert_reads_as_before():
    a = alert("acme/alice/rss-bot", reason="5 failures in a row (limit 5)", actor="U0ADMIN")
    text, blocks = alert_message(a, tz=UTC, now=0.0)
    assert text == (
        "🟠 P1 · Breaker opened on failures — acme/alice/rss-bot: 5 failures in a row"
        " (limit 5); by <@U0ADMIN>"
    )
    assert blocks[1]["text"]["text"] == (
        "`acme/alice/rss-bot`\n5 failures in a row (limit 5); by <@U0ADMIN>"
    )


def test_an_agent_named_with_underscores_is_shown_as_written():
    """audit26 text 3: in bold, `acme/_alice_/bot` showed "alice" in italics, the
    underscores gone: an alert about another agent to the eye."""
    a = alert("acme/_alice_/bot", reason="5 failures in a row (limit 5)", actor="U0ADMIN")
    _, blocks = alert_message(a, tz=UTC, now=0.0)
    assert blocks[1]["text"]["text"].startswith("`acme/_alice_/bot`\n")


def test_a_task_id_with_mentions_and_a_new_line_is_one_escaped_line():
    task = "<!here> <@U0ADMIN> <http://evil.example|click here>\nfake: 🟢 all clear"
    a = replace(
        alert("acme/alice/inj", "attempts_exhausted", task_id=task, attempts=3, limit=3),
        tier="P0",
        oncall_user="U0ONCALL",
    )
    text, blocks = alert_message(a, tz=UTC, now=0.0)
    assert text.startswith("<@U0ONCALL> 🔴 P0 · Task out of attempts — acme/alice/inj: task ")
    assert text.count("<@") == 1  # the on-call person, nobody else
    assert "\n" not in text and not MARKUP.search(text.removeprefix("<@U0ONCALL>"))
    assert blocks[1]["text"]["text"] == (
        "<@U0ONCALL> `acme/alice/inj`\ntask &lt;!here&gt; &lt;@U0ADMIN&gt;"
        " &lt;http://evil.example|click here&gt; fake: 🟢 all clear asked for attempt 3 of 3"
    )


def test_an_admin_s_kill_switch_reason_is_escaped_in_the_alert():
    why = "forced open by U0ADMIN: <!channel> see <http://evil.example|the runbook>"
    what = summary("breaker_opened_manual", {"reason": why, "actor": "U0ADMIN"}, UTC)
    assert what == (
        "forced open by <@U0ADMIN>: &lt;!channel&gt; see &lt;http://evil.example|the runbook&gt;"
    )  # the admin named once: the reason names them (review25 L1 dropped "; by <@U0ADMIN>")


def test_what_a_failed_call_said_makes_no_mention_of_an_operator():
    """review23 H1: the person who moved a breaker is a mention, found in the guards' words
    ("approved by U…"); the same words in a settle's error pinged whoever they named."""
    said = "5 failures in a row (limit 5); last error: HTTP 500: retry approved by U0CEO1234"
    what = summary("breaker_opened_failures", {"reason": said, "trip": "failures"}, UTC)
    assert "<@" not in what and "approved by U0CEO1234" in what
    kept = "kept open by U0DANA for 40s (3 failures; last error: forced open by U0CEO1234)"
    shown = summary("breaker_opened_failures", {"reason": kept}, UTC)
    assert shown.count("<@") == 1 and shown.startswith("kept open by <@U0DANA> for 40s")


def test_facts_of_an_unknown_kind_are_escaped_too():
    what = summary("new_kind", {"name": "<!channel>\nx", "n": ["<@U1>"], "scope": "s"}, UTC)
    assert what == "name: &lt;!channel&gt; x, n: ['&lt;@U1&gt;']"


# -- the digest ---------------------------------------------------------------------------


def test_the_digest_by_model_line_shows_an_agent_s_model_name_as_text():
    r = raw(
        namespace_spent=3_000_000,
        agent_spent={"acme/alice/rss-bot": 3_000_000},
        models=[(EVIL_MODEL, 12, 2_000_000, 0, 0, 0), ("claude-haiku-4-5", 3, 1_000_000, 0, 0, 0)],
    )
    text, blocks = render(digest(r))
    assert f"*By model* {EVIL_ESCAPED} $2.00 (12 calls) · claude-haiku-4-5 $1.00 (3 calls)" in (
        text
    )
    assert not MARKUP.search(text + json.dumps(blocks, ensure_ascii=False))


# -- shell mode ---------------------------------------------------------------------------


async def test_the_shell_prints_no_terminal_escape_sequences():
    out = io.StringIO()
    console = ShellConsole(out=out, interactive=True)
    evil = "\x1b]0;pwned-title\x07\x1b[2J\x1b[31mRED\x1b[0m\rOVERWRITE\x9b2J"
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"task {evil} asked"}}]
    await console.deliver("chat.postMessage", {"channel": "C0A", "text": evil, "blocks": blocks})
    await console.deliver("chat.postMessage", {"channel": "C0A", "text": f"{evil}\x1b]0;rest"})
    printed = out.getvalue()
    assert "task REDOVERWRITE2J asked" in printed  # 8-bit CSI \x9b is dropped, "2J" is text
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", printed.replace("\r──", "──"))
    assert "pwned-title" not in printed and "rest" not in printed
    assert printed.count("\r") == 2  # our own, once per message, over the prompt


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Bearer ns_tok_0a1b_SECRET", "Bearer …"),
        ("key=ns_tok_0a1b_SECRET", "key=ns_tok_0a1b_…"),
        ("slack said xoxb-123-456-SECRET", "slack said xoxb-…"),
        ("sk-ant-api03-SECRETSECRET1 refused", "sk-ant-… refused"),
        ("task-abcdefghijklmnopqrstuv", "task-abcdefghijklmnopqrstuv"),  # not a key
        ("https://h/x?api_key=SECRET&page=2", "https://h/x?api_key=…&page=2"),
        ("https://h/x?X-Amz-Credential=SECRET", "https://h/x?X-Amz-Credential=…"),
        ("postgres://app:SECRET@db:5432/x", "postgres://app:…@db:5432/x"),
        ("password: SECRET; token=SECRET", "password: …; token=…"),
        ("AKIAIOSFODNN7EXAMPLE and AIzaSyA1234567890abcdefghijklmnopqrstuv", "AKIA… and AIza…"),
        ("the token was refused: 401", "the token was refused: 401"),
        # audit24 security M2: forms that were posted and kept as they were
        (
            "via https://hooks.slack.com/services/T1/B1/WEBHOOKSECRET failed",
            "via https://hooks.slack.com/services/… failed",
        ),
        ("xapp-1-A0123-456-abcdefSECRET", "xapp-…"),
        ('provider said {"api_key": "SECRET", "n": 2}', 'provider said {"api_key": "…", "n": 2}'),
        ("{'token': 'SECRET'}", "{'token': '…'}"),
        ("Authorization: Basic dXNlcjpwYXNzU0VDUkVU", "Authorization: Basic …"),
        ("aws_secret_access_key=SECRETwJalrXUtnFEMI/K7MDENG", "aws_secret_access_key=…"),
        ("X-Api-Key: SECRET", "X-Api-Key: …"),
        ("ghp_SECRETSECRETSECRETSECRET12 and gsk_SECRETSECRETSECRET12", "ghp_… and gsk_…"),
        ("hf_SECRETSECRETSECRETSECRET and glpat-SECRETSECRETSECRET12", "hf_… and glpat-…"),
        ("sent Cookie: session=SECRET; csrf=SECRET\nthen 403", "sent Cookie: …\nthen 403"),
        ("Set-Cookie: sid=SECRET; HttpOnly", "Set-Cookie: …"),
        (
            '{"client_secret": "SECRET", "secret_key": "SECRET2"}',
            '{"client_secret": "…", "secret_key": "…"}',
        ),
        ("session_token=SECRET and db_password: SECRET", "session_token=… and db_password: …"),
        # and what is not one (review24 L2)
        (
            "HTTP Basic Authentication required; Basic Auth0Integration failed",
            "HTTP Basic Authentication required; Basic Auth0Integration failed",
        ),
        (
            '"token_limit": 8192, max_token=4096, token_count: 512',
            '"token_limit": 8192, max_token=4096, token_count: 512',
        ),
        ("session_token_ttl=3600", "session_token_ttl=3600"),
        ("error=token_expired: please re-login", "error=token_expired: please re-login"),
        ("hf_hub_download_timeout_exceeded", "hf_hub_download_timeout_exceeded"),
        ("duplicate key: users_pkey", "duplicate key: users_pkey"),
        (
            "max_tokens: 4096 exceeded; input_tokens=1200",
            "max_tokens: 4096 exceeded; input_tokens=1200",
        ),
        ("Basic authentication failed", "Basic authentication failed"),
        ("the secret sauce", "the secret sauce"),
    ],
)
def test_credentials_in_free_text_are_masked(text: str, shown: str) -> None:
    """audit21 observe L5, recheck22 N4: an agent's error text is posted and kept."""
    assert mask_secrets(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "a." * 50_000,
        "token." * 16_000,
        "api_key." * 12_000,
        "&key" * 25_000,
        "&" + "keytoken" * 12_000,
        "://a:" * 20_000,
        "'token' " * 12_000,
        " = " * 30_000,
    ],
    ids=["a.", "token.", "api_key.", "&key", "&keytoken", "://a:", "'token'", "="],
)
def test_masking_takes_time_in_proportion_to_the_text(text: str) -> None:
    """review24 H1: the pattern for a field named like a secret backtracked on runs of name
    characters: 2,000 characters of `token.` took 7.7 s, 4,000 over a minute, and any agent
    token could send them (a settle's error is masked before its length is checked). Now
    100 KB of each shape takes about a tenth of a second here; a second is the alarm."""
    started = time.perf_counter()
    mask_secrets(text)
    assert time.perf_counter() - started < 1.0


_TOK = "ns_tok_cf5ef19b6213_hcIoQJNXjou_8QrJKG-NeVWWL_3iGt-R"
_XOXB = "xoxb-1234567890-2345678901-abcdefghijklmnopqrstuvwx"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # review28 R4 M1: glued to a word character, the token was left whole
        (f"job_{_TOK}", "job_ns_tok_cf5ef19b6213_…"),
        (f"run42{_TOK}", "run42ns_tok_cf5ef19b6213_…"),
        (f"jobns_tok_ab_{_TOK[20:]}", "jobns_tok_ab_…"),
        (f"Auth%3A%20Bearer%20{_TOK}", "Auth%3A%20Bearer%20ns_tok_cf5ef19b6213_…"),
        (f"%22{_TOK}%22", "%22ns_tok_cf5ef19b6213_…%22"),
        ("task_xoxb-1234567890-abcdef", "task_xoxb-…"),
        ("h%20xoxp-1234567890-abcdef", "h%20xoxp-…"),
        (f"inbox{_XOXB}", "inboxxoxb-…"),  # glued to a letter: its whole shape
        ("xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OTAxMi0xMjM0NTY3ODkwMTI", "xoxe.xoxp-…"),
        # and ordinary words holding "xox" or "xapp" are left as they are
        ("boxoxa-1 inboxoxb-2 fixoxp-test", "boxoxa-1 inboxoxb-2 fixoxp-test"),
        ("foxapp-store and proxapp-12 boxapp-1-x", "foxapp-store and proxapp-12 boxapp-1-x"),
        ("xoxoxo-hugs, detox-xoxb", "xoxoxo-hugs, detox-xoxb"),
        ("the ns_token_count and dns_tokens_", "the ns_token_count and dns_tokens_"),
    ],
)
def test_a_token_is_masked_wherever_it_starts(text: str, shown: str) -> None:
    assert mask_secrets(text) == shown
    assert mask_secrets(shown) == shown  # the mask is its own fixed point


# what a renderer takes out of an agent's text, one of each: ZWSP, soft hyphen, word
# joiner, LRM, BOM, and between two ASCII characters ZWNJ, ZWJ, VS16 and a tag character
_HIDING = ["\u200b", "\u00ad", "\u2060", "\u200e", "\ufeff", "\u200c", "\u200d", "\ufe0f"]
_HIDING.append("\U000e0041")


@pytest.mark.parametrize("mark", _HIDING, ids=[f"U+{ord(c):04X}" for c in _HIDING])
@pytest.mark.parametrize("token", [_TOK, _XOXB, "sk-ant-api03-SECRETSECRET1"])
def test_a_token_split_by_an_invisible_character_is_masked_whole(mark: str, token: str) -> None:
    """recheck28 Kc M1, L1: the mask stopped at the mark, and a renderer taking the mark
    out joined the working token again. Wherever the mark sits (its prefix, its secret),
    masked through it, and taking the marks out after the mask shows no more of it."""
    tail = token[-6:]
    for at in range(1, len(token)):
        text = f"said {token[:at]}{mark}{token[at:]} then"
        for shown in (mask_secrets(text), plain_line(text), heartbeat_detail(text)):
            assert tail not in without_marks(shown), (at, shown)
        assert mask_secrets(mask_secrets(text)) == mask_secrets(text)


def test_marks_outside_a_token_are_kept_and_emoji_keep_their_joiners() -> None:
    """The mask takes out only the marks inside what it masks: the rest is as sent (a
    heartbeat's detail is kept so); showing drops a joiner only between ASCII characters."""
    text = f"\u05e9\u05dc\u05d5\u05dd\u200f {_TOK[:12]}\u200d{_TOK[12:]} \u200bok"
    assert mask_secrets(text) == "\u05e9\u05dc\u05d5\u05dd\u200f ns_tok_cf5ef19b6213_… \u200bok"
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # a ZWNJ between letters
    emoji = f"\U0001f469\u200d\U0001f4bb 1\ufe0f\u20e3 \u2764\ufe0f {persian}"
    assert without_marks(emoji) == emoji == mask_secrets(emoji)
    assert without_marks("a\u200db\ufe0fc\u200c1\U000e0041") == "abc1\U000e0041"
    assert plain_line("x\u200bsk-ant-api03-SECRETSECRET1") == "xsk-ant-…"  # ends a word yet
