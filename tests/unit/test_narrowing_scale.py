"""The "… and N more" hint reads each scope once a reply (review28 R6 L3).

``bot.narrowing.where`` reads every item's scope; a status reply asks it three times. It
remembered the segments of 32,768 paths, and a scan over more than that missed every
time, parsing each anew: 3 calls over 40,000 agents held the event loop 1.1 s and over
80,000 3.3 s, reservations waiting meanwhile. What is asserted is the cause, counted:
each scope is read once for the whole reply, past the old cache's size too (the time it
takes is measured, not asserted: bench/ and the commit's figures).
"""

from __future__ import annotations

from collections import Counter

import pytest

import bot.narrowing
from bot.narrowing import where


def test_a_reply_of_three_hints_over_40_000_agents_reads_each_scope_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: Counter[str] = Counter()
    real = bot.narrowing._segments

    def counted(path: str) -> tuple[str, ...] | None:
        reads[path] += 1
        return real(path)

    monkeypatch.setattr(bot.narrowing, "_segments", counted)
    scopes = sorted(f"ns{i % 7}/user{i % 301}/agent-{i}" for i in range(40_000))
    hidden = scopes[50:]
    read: dict[str, tuple[str, ...] | None] = {}  # what /agent status keeps for its reply
    for _ in range(3):  # the blocks' line, the plain text's more(total) and more(hidden)
        said = where(
            hidden, among=scopes, within=None, again="/agent status", room=2_000, read=read
        )
        assert said is not None and said.startswith("`ns0` ("), said
    assert len(reads) == len(scopes) and max(reads.values()) == 1
