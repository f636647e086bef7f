"""The "… and N more" hint's cost grows with the list, no faster (review28 R6 L3).

``bot.narrowing.where`` reads every item's scope; a reply asks it about three times. It
remembered the segments of 32,768 paths, and a scan over more than that missed every
time, parsing each anew: 3 calls over 40,000 agents took 1.1 s and over 80,000 3.3 s on
the event loop (16x the time for 4x the agents), reservations waiting meanwhile. The
real function on plain lists; the best of three runs each, so a busy machine slows the
two sizes alike rather than failing it.
"""

from __future__ import annotations

import time

from bot.narrowing import where


def _reply(agents: int) -> float:
    """The best time of three status replies' worth of hints over ``agents`` agents."""
    scopes = sorted(f"ns{i % 7}/user{i % 301}/agent-{i}" for i in range(agents))
    hidden = scopes[50:]
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        for _ in range(3):  # the blocks' line, the plain text's more(total) and more(hidden)
            said = where(hidden, among=scopes, within=None, again="/agent status", room=2_000)
            assert said is not None and said.startswith("`ns0` ("), said
        best = min(best, time.perf_counter() - began)
    return best


def test_the_hint_over_four_times_the_agents_takes_about_four_times_as_long() -> None:
    small, large = _reply(12_000), _reply(48_000)
    # linear is 4x (about 5 measured: the larger lists cost more to walk); before, the
    # cache missed every time past 32,768 paths: 20-50x
    assert large < 10 * small, (small, large)
