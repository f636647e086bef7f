"""What a breaker's reason quotes of a failed call: ``last error: <what it said>``.

The guards write a reason; after :data:`LAST_ERROR` comes what an agent's settle, or a
job's target, said: text nobody at Nightshift chose. Whatever reads a reason for
someone else cuts there: another tenant's token (:func:`without_last_error`), Slack
markup made from the guards' own words (``bot.escape.operator_mentions``).

Example:
    >>> without_last_error("cool-down over, trial started (5 failures; last error: 500 x)")
    'cool-down over, trial started (5 failures)'
"""

from __future__ import annotations

import functools

from guards.agent_text import plain_line
from guards.words import clip_chars

__all__ = [
    "LAST_ERROR",
    "LAST_ERROR_CHARS",
    "QUOTED_AHEAD",
    "last_error",
    "quoted_error",
    "without_last_error",
]

LAST_ERROR = "last error: "
LAST_ERROR_CHARS = 200  # of a failed call's error, in the reason of the breaker it trips


#: how many errors :func:`quoted_error` remembers: more than the failed settles a writer
#: has queued at once, each a text of at most 2,000 characters
QUOTED_AHEAD = 1024


@functools.lru_cache(maxsize=QUOTED_AHEAD)
def quoted_error(error: str) -> str:
    """A failed call's error (a settle's, a job run's) on one line, clipped: plain text
    (:func:`guards.agent_text.plain_line`), as every agent refused by the breaker reads
    it in its 503 (escape sequences, BEL, C1 controls and bidi overrides would reach
    the terminal that prints it: audit28 C1 M1), and credentials masked.

    Remembered: masking 2,000 characters takes about a millisecond and a half, which the
    breaker gate would spend inside the settle's write, on the single writer every
    reservation waits for (review28 R4 M3). So the API edge quotes a failed settle's
    error before its write is queued (:mod:`bot.api`), and the gate's call in the
    writer finds it made; a text not seen before (a job's) is made there as ever.

    Example:
        >>> quoted_error("500 \\x1b]0;PWNED\\x07\\x1b[31mRED\\x1b[0m\\u202eRTL \\x9b2J")
        '500 RED RTL 2J'
    """
    return clip_chars(plain_line(error), LAST_ERROR_CHARS)


def last_error(said: str) -> str:
    """The words a reason quotes a failed call with: ``last error: <said, clipped>``."""
    return LAST_ERROR + quoted_error(said)


def without_last_error(reason: str) -> str:
    """``reason`` without what a failed call said, its brackets closed (a wrapped reason,
    ``kept open by … (3 failures; last error: …)``, keeps its shape)."""
    head, sep, _ = reason.partition(LAST_ERROR)
    if not sep:
        return reason
    head = head.rstrip().removesuffix(";").removesuffix("(").rstrip()
    return head + ")" * max(0, head.count("(") - head.count(")"))
