"""bot.slack.limits.fit: any blocks in, blocks Slack accepts out, and nothing cut unsaid.

The oracle is the strict fake Slack's own validator (tests/fakes/block_kit.py), written
from Slack's documentation apart from the product's limits.
"""

from __future__ import annotations

import logging
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.blocks import actions, button, clip, context, header, section
from bot.commands import Reply
from bot.slack.limits import (
    BLOCKS_TEXT,
    MESSAGE_TEXT,
    clip_text,
    fit,
    fit_args,
    fit_view,
    text_chars,
)
from tests.fakes.block_kit import message_errors, view_errors

NOTES = ("not shown (too long)", "more lines", "(truncated)", "left out", "…")


def texts(value: Any) -> list[str]:
    """Every text object's text in blocks (button labels, fields, context elements...)."""
    if isinstance(value, list):
        return [t for v in value for t in texts(v)]
    if not isinstance(value, dict):
        return []
    own = [value["text"]] if value.get("type") in ("plain_text", "mrkdwn") else []
    return own + [t for v in value.values() if isinstance(v, (dict, list)) for t in texts(v)]


def accepted(blocks: list[dict[str, Any]], text: str) -> None:
    found = message_errors({"blocks": blocks, "text": text})
    assert found is None, found[1][:3] if found else None


# -- strategies: blocks of every kind we send, from tiny to far past each limit ------------

lengths = st.one_of(st.integers(1, 80), st.integers(70, 160), st.integers(1900, 4500))


small = st.integers(1, 70)


@st.composite
def long_text(draw: Any, sizes: st.SearchStrategy[int] = lengths) -> str:
    n = draw(sizes)
    width = draw(st.sampled_from([7, 60, 400, 5000]))  # many short lines, or one long one
    body = ("x" * (width - 1) + "\n") * (n // width + 1)
    return body[:n].rstrip("\n") or "x"


def text_object(
    draw: Any, *, plain: bool = False, sizes: st.SearchStrategy[int] = lengths
) -> dict[str, Any]:
    kind = "plain_text" if plain else draw(st.sampled_from(["mrkdwn", "plain_text"]))
    return {"type": kind, "text": draw(long_text(sizes))}


ids = st.one_of(st.sampled_from(["a", "b", "breaker:acme/alice/rss-bot"]), st.just("i" * 300))


@st.composite
def a_button(draw: Any, sizes: st.SearchStrategy[int] = lengths) -> dict[str, Any]:
    wide = sizes is lengths  # ids and values past their limits too
    out = {
        "type": "button",
        "text": text_object(draw, plain=True, sizes=sizes),
        "action_id": draw(st.sampled_from(["alert_ack", "x", *(["y" * 300] if wide else [])])),
        "value": draw(
            st.sampled_from(["1", "acme/alice/rss-bot", *(["v" * 2100] if wide else [])])
        ),
    }
    if draw(st.booleans()):
        out["style"] = "primary"
    return out


def action_id(element: dict[str, Any]) -> str:
    return str(element["action_id"])


@st.composite
def a_block(draw: Any, sizes: st.SearchStrategy[int] = lengths) -> dict[str, Any]:
    """A block of any kind we send; ``sizes`` draws its texts' lengths."""
    kind = draw(st.sampled_from(["section", "fields", "header", "context", "actions", "divider"]))
    n_of = st.integers(1, 13) if sizes is lengths else st.integers(1, 4)
    block: dict[str, Any]
    if kind == "section":
        block = {"type": "section", "text": text_object(draw, sizes=sizes)}
        if draw(st.booleans()):
            block["accessory"] = draw(a_button(sizes))
    elif kind == "fields":
        n = draw(n_of)
        block = {"type": "section", "fields": [text_object(draw, sizes=sizes) for _ in range(n)]}
    elif kind == "header":
        block = {"type": "header", "text": text_object(draw, plain=True, sizes=sizes)}
    elif kind == "context":
        n = draw(n_of)
        block = {"type": "context", "elements": [text_object(draw, sizes=sizes) for _ in range(n)]}
    elif kind == "actions":
        block = {
            "type": "actions",
            "elements": draw(
                st.lists(a_button(sizes), min_size=1, max_size=28)
                if sizes is lengths  # repeated action_ids too
                else st.lists(a_button(sizes), min_size=1, max_size=2, unique_by=action_id)
            ),
        }
    else:
        block = {"type": "divider"}
    if kind != "divider" and sizes is lengths and draw(st.booleans()):
        block["block_id"] = draw(ids)
    return block


blocks_in = st.lists(a_block(), max_size=60)
message_text = st.one_of(st.just(""), st.just("fallback"), st.just("t\n" * 21_000))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks=blocks_in, text=message_text)
def test_any_blocks_come_out_as_slack_accepts_them_and_nothing_is_cut_unsaid(blocks, text):
    out, out_text = fit(blocks, text)
    accepted(out, out_text)
    assert len(out_text) <= MESSAGE_TEXT and text_chars(out) <= BLOCKS_TEXT
    assert fit(out, out_text) == (out, out_text)  # fitting twice changes nothing more
    said = "\n".join(texts(out))
    missing = set(texts(blocks)) - set(texts(out))
    if missing or len(out_text) < len(text):
        assert any(note in said or note in out_text for note in NOTES), sorted(missing)[:1]
    if len(text) > MESSAGE_TEXT:
        assert out_text.endswith("more lines")


@settings(max_examples=80, deadline=None)
@given(blocks=st.lists(a_block(small), max_size=50))
def test_a_message_within_the_limits_comes_back_unchanged(blocks):
    if message_errors({"blocks": blocks}) is not None or text_chars(blocks) > BLOCKS_TEXT:
        return  # only messages Slack takes as they are (and within our text budget)
    assert fit(blocks, "hi") == (blocks, "hi")


def test_blocks_past_fifty_are_counted_in_a_last_context_block(caplog):
    caplog.set_level(logging.WARNING, logger="bot.slack.limits")
    blocks, _ = fit([section(f"agent {i}") for i in range(60)], "60 agents")
    assert len(blocks) == 50 and blocks[:49] == [section(f"agent {i}") for i in range(49)]
    assert blocks[-1] == context("… and 11 more blocks not shown (too long)")
    assert "11 of 60 blocks" in caplog.text  # and the cut is logged


def test_a_message_past_the_text_budget_keeps_whole_blocks_and_counts_the_rest():
    rows = [section(f"{i}: " + "y" * 2_800) for i in range(8)]  # 8 × 2,803 characters
    blocks, _ = fit(rows, "")
    assert blocks[:3] == rows[:3]
    assert blocks[-1] == context("… and 5 more blocks not shown (too long)")
    accepted(blocks, "")


def test_the_buttons_that_end_a_message_stay_when_blocks_before_them_are_cut():
    # a storm summary with kinds of alerts on long scopes, then its Acknowledge all
    kinds = [
        section(f"🔴 P0 · kind {i}\n" + " · ".join(["`#1` " + "s" * 250] * 6)) for i in range(8)
    ]
    take = actions(button("Acknowledge all", "storm_ack", "fold:posts:C1:4"), block_id="storm")
    blocks, _ = fit([header("Alert storm"), *kinds, take], "")
    assert blocks[-1] == take and blocks[0] == header("Alert storm")
    assert blocks[-2] == context(f"… and {11 - len(blocks)} more blocks not shown (too long)")
    accepted(blocks, "")
    many, _ = fit([*(section(str(i)) for i in range(60)), take], "")
    assert len(many) == 50 and many[-1] == take
    assert many[-2] == context("… and 12 more blocks not shown (too long)")


def test_texts_labels_and_values_past_their_limits():
    long_section = section("z" * 10)
    long_section["text"]["text"] = "\n".join(["a line of the list"] * 400)  # 7,599
    blocks, _ = fit(
        [
            {"type": "header", "text": {"type": "plain_text", "text": "H" * 200}},
            long_section,
            actions(
                button("Revert " + "i" * 64 + " (" + "n" * 64 + ")", "routing_revert", "x y"),
                button("Raise budget", "budget_raise", "s" * 2_500),
                block_id="alert:1",
            ),
        ],
        "",
    )
    title, body, buttons, note = blocks
    assert title["text"]["text"] == "H" * 149 + "…"
    assert len(body["text"]["text"]) <= 3000 and body["text"]["text"].endswith("more lines")
    (revert,) = buttons["elements"]  # the button whose value cannot be cut is left out...
    assert len(revert["text"]["text"]) == 75 and revert["value"] == "x y"
    assert note == context("… and 1 more button not shown (too long)")  # ...and said so
    accepted(blocks, "")


def test_elements_past_their_counts_and_repeated_ids():
    many = actions(*(button(f"b{i}", f"act_{i}", str(i)) for i in range(30)), block_id="row")
    twice = actions(button("Ack", "alert_ack", "1"), button("Ack", "alert_ack", "2"))
    wide = {"type": "context", "elements": [{"type": "mrkdwn", "text": str(i)} for i in range(12)]}
    blocks, _ = fit([many, twice, wide, actions(button("Go", "go", "1"), block_id="row")], "")
    assert len(blocks[0]["elements"]) == 25
    assert blocks[1] == context("… and 5 more buttons not shown (too long)")
    assert len(blocks[2]["elements"]) == 1
    assert blocks[3] == context("… and 1 more button not shown (too long)")
    assert [e["text"] for e in blocks[4]["elements"]][-2:] == [
        "8",
        "… and 3 more not shown (too long)",
    ]
    assert "block_id" not in blocks[5]  # Slack refuses a block_id used twice in a message
    accepted(blocks, "")


def test_a_long_message_text_is_cut_with_a_note():
    _, text = fit([], "line\n" * 9_000)  # 45,000 characters
    assert len(text) <= MESSAGE_TEXT and text.endswith("more lines")
    assert clip_text("x" * 50_000, MESSAGE_TEXT).endswith(" … (truncated)")


def test_a_long_header_keeps_its_start_and_blocks_cut_as_clip_text_does():
    title = "Budget: acme/alice/" + "rss-bot-" * 30  # a 259-character scope name
    shown = header(title)["text"]["text"]
    assert shown == title[:149] + "…" == clip_text(title, 150)
    label = "Approve the trial of acme/alice/rss-bot"
    assert clip(label, 20) == "Approve the trial o…" == clip_text(label, 20)
    lines = "\n".join(["x" * 99] * 5)
    assert clip(lines, 250) == clip_text(lines, 250)


def test_views_keep_to_a_hundred_blocks_and_short_titles():
    view = {
        "type": "modal",
        "callback_id": "budget_raise_modal",
        "title": {"type": "plain_text", "text": "Raise the budget of acme/alice"},
        "blocks": [section(f"row {i}") for i in range(120)],
    }
    fitted = fit_view(view)
    assert view_errors(view) and not view_errors(fitted)
    assert fitted["title"]["text"] == "Raise the budget of acm…"
    assert len(fitted["blocks"]) == 100
    assert fitted["blocks"][-1] == context("… and 21 more blocks not shown (too long)")


def test_fit_args_fits_each_way_a_message_leaves():
    big = [section(f"row {i}") for i in range(55)]
    for method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
        args = fit_args(method, {"channel": "C1", "ts": "1.2", "text": "t", "blocks": big})
        assert len(args["blocks"]) == 50 and args["channel"] == "C1" and args["ts"] == "1.2"
    posted = fit_args("response_url", {"url": "https://x", "payload": {"blocks": big}})
    assert len(posted["payload"]["blocks"]) == 50 and "text" not in posted["payload"]
    text_only = {"channel": "U1", "text": "hello"}
    assert fit_args("chat.postMessage", text_only) == text_only  # no blocks added
    upload = {"channel": "C1", "content_b64": "eA=="}
    assert fit_args("files.upload", upload) is upload


def test_a_command_reply_is_fitted_and_its_text_kept_short():
    title = {"type": "header", "text": {"type": "mrkdwn", "text": "H" * 300}}
    reply = Reply(text="x" * 5000, blocks=[title, section("ok")]).limited()
    assert reply.blocks[0]["text"] == {"type": "plain_text", "text": "H" * 149 + "…"}
    assert reply.blocks[1:] == [section("ok")] and len(reply.text) <= 3000
    accepted(reply.blocks, reply.text)
