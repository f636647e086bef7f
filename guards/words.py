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

from collections.abc import Sequence

__all__ = ["clip_chars", "plural"]


def plural(count: int, word: str, *, many: str | None = None) -> str:
    """``count`` with ``word``, an ``s`` added unless it is one; thousands separated.

    ``many`` is the plural when adding an ``s`` does not make it ("try", "tries").

    Example:
        >>> plural(0, "call"), plural(3, "more button"), plural(2, "try", many="tries")
        ('0 calls', '3 more buttons', '2 tries')
    """
    if count == 1:
        return f"1 {word}"
    return f"{count:,} {many if many is not None else word + 's'}"


def clip_chars(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, ending in "…" when it was cut.

    Example:
        >>> clip_chars("short", 10), clip_chars("x" * 12, 10)
        ('short', 'xxxxxxxxx…')
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


def listed(items: Sequence[str]) -> str:
    """``items`` as a sentence lists them: ``a``, ``a and b``, ``a, b and c``.

    Example:
        >>> listed(["a"]), listed(["a", "b"]), listed(["a", "b", "c"])
        ('a', 'a and b', 'a, b and c')
    """
    return f"{', '.join(items[:-1])} and {items[-1]}" if len(items) > 1 else "".join(items)
