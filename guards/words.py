"""Small plain-text helpers shared by the guards and the bot: a count with its noun, a cut.

They live in guards so that both sides can use them (the bot imports guards, never the
reverse). Slack's own limits and notes are :mod:`bot.slack.limits`.

Example:
    >>> plural(1, "run"), plural(1440, "run")
    ('1 run', '1,440 runs')
    >>> clip_chars("Approve the trial of acme/alice/rss-bot", 20)
    'Approve the trial o…'
"""

from __future__ import annotations

__all__ = ["clip_chars", "plural"]


def plural(count: int, word: str) -> str:
    """``count`` with ``word``, an ``s`` added unless it is one; thousands separated.

    Example:
        >>> plural(0, "call"), plural(3, "more button")
        ('0 calls', '3 more buttons')
    """
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def clip_chars(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, ending in "…" when it was cut.

    Example:
        >>> clip_chars("short", 10), clip_chars("x" * 12, 10)
        ('short', 'xxxxxxxxx…')
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"
