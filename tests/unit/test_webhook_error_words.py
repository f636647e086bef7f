"""A try's error as a post, a thread note or a story line shows it (recheck25c L1).

The reason of a page to a webhook taken out at a reload ("the webhook pager is no
longer in the policy (webhooks:): not tried again after 2 tries; the last got no answer
(…)") was cut at 80 characters with no "…": the post's top line ended "after 2 t)".
"""

from __future__ import annotations

from bot.webhooks_notes import NOT_SENT, taken_out
from bot.webhooks_rows import ERROR_CHARS, delivery_note
from guards.words import clip_chars

ERROR = "TimeoutError: the receiver at bridge.example took longer than 10s to answer; cut off here"
GONE_REASON = (
    "the webhook pager is no longer in the policy (webhooks:): not tried again after"
    " 2 tries; the receiver answered the last (HTTP 503)"
)


def test_a_reason_of_our_own_is_shown_whole() -> None:
    note = delivery_note("failed", 2, None, GONE_REASON)
    assert GONE_REASON in note, note
    assert len(GONE_REASON) <= ERROR_CHARS


def test_a_receivers_long_error_is_cut_with_an_ellipsis() -> None:
    long = "connection reset by peer; " * 20
    note = delivery_note("failed", 2, None, long)
    assert clip_chars(long, ERROR_CHARS) in note and "…" in note, note
    assert long[: ERROR_CHARS - 1] + "…" in note


def test_a_taken_out_page_that_got_no_answer_says_it_whole() -> None:
    assert len(ERROR) > 80
    row = {
        "webhook": "pager",
        "attempts": 2,
        "last_status": None,
        "last_error": ERROR,
        "reached": 1,  # its request went out (a timeout, say)
    }
    said = taken_out(row)
    assert said.endswith(f"({ERROR}): it may have got there"), said


def test_a_taken_out_page_held_back_by_its_secret_is_not_said_to_have_got_there() -> None:
    """recheck25c L2: a try held back here (its secret_file empty) was said to have "got
    no answer: it may have got there", though it was never sent."""
    row = {
        "webhook": "pager",
        "attempts": 1,
        "last_status": None,
        "last_error": f"{NOT_SENT}the secret_file /etc/nightshift/pager.secret is empty",
    }
    said = taken_out(row)
    assert said.endswith(
        "not tried again after 1 try; the last was not sent (the secret_file"
        " /etc/nightshift/pager.secret is empty)"
    ), said
    assert "may have got there" not in said
