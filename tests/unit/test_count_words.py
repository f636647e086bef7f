"""Counts agree with their nouns where a person reads them (session 24 wording sweep)."""

from __future__ import annotations

from bot.slack.limits import clip_text
from bot.storage_notice import accepted_text
from guards.store_watch import Outage
from guards.words import plural


def test_plural_adds_an_s_unless_one_and_takes_an_irregular_plural():
    assert [plural(n, "write") for n in (0, 1, 2, 1043)] == [
        "0 writes",
        "1 write",
        "2 writes",
        "1,043 writes",
    ]
    assert [plural(n, "try", many="tries") for n in (1, 3)] == ["1 try", "3 tries"]


def test_a_clipped_text_with_one_line_left_out_says_one_more_line():
    text = "\n".join(["x" * 99] * 3)
    assert clip_text(text, 250).split("\n")[-1] == "… and 1 more line"
    assert clip_text("\n".join(["x" * 99] * 5), 250).split("\n")[-1] == "… and 3 more lines"


def test_the_storage_notice_says_one_write_refused():
    one = Outage(since=0.0, cause="disk full", refused=1)
    assert accepted_text(one, ended=60.0).endswith("(1 write refused meanwhile).")
    many = Outage(since=0.0, cause="disk full", refused=1043)
    assert accepted_text(many, ended=60.0).endswith("(1,043 writes refused meanwhile).")
