"""Scopes: paths ``namespace/user/agent[/conversation]`` of the budget hierarchy.

Example:
    >>> Scope.parse("acme/alice/rss-bot/c42").ancestors()
    ['acme', 'acme/alice', 'acme/alice/rss-bot', 'acme/alice/rss-bot/c42']
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from guards.agent_text import SLACK_TOKEN

__all__ = ["LEVELS", "Scope", "ScopeError", "ancestors_of", "subtree"]

LEVELS = ("namespace", "user", "agent", "conversation")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A Nightshift token pasted where a scope goes (``token create`` for ``token revoke``): its
# secret would be kept as a scope's name and shown to everyone (audit24 security M3). So
# would a Slack token in an agent's or a conversation's name: a scope is an identity, never
# masked (audit28 C1 M2). Only a token's whole shape (``xoxb-<digits>-`` and 20 more, as
# guards.agent_text masks it) is refused: ``svc-xapp-1`` or ``xoxb-2`` holds no secret, and
# an agent named so before must keep working (review28 R4 M2).
_TOKEN = re.compile(r"ns_tok_[0-9a-f]+_")


class ScopeError(ValueError):
    """A scope string that is not a valid path."""


@functools.lru_cache(maxsize=8192)
def _depth(text: str) -> int:
    """The number of segments of a valid path (remembered: agents send the same few)."""
    if _TOKEN.search(text):  # said without the text: the secret is in it
        raise ScopeError(
            "this is a Nightshift token, not a scope (a scope is namespace/user/agent);"
            " its secret is not kept (to revoke it: nightshift token revoke <its tok_ id>)"
        )
    if SLACK_TOKEN.search(text):
        raise ScopeError(
            "this looks like a Slack token (xoxb-, xoxp- or xapp- then digits, a dash and 20"
            " more characters), not a scope name (a scope is namespace/user/agent, each of"
            " A-Z a-z 0-9 . _ -); it is not kept: name the agent or conversation otherwise"
        )
    segments = text.split("/")
    if not 1 <= len(segments) <= len(LEVELS):
        raise ScopeError(
            f"{text[:80]!r} has {len(segments)} segments; a scope is "
            "namespace/user/agent[/conversation]"
        )
    for segment in segments:
        if segment in (".", ".."):
            raise ScopeError(f"{text[:80]!r}: the segments . and .. are reserved (path syntax)")
        if not _SEGMENT.fullmatch(segment):
            raise ScopeError(
                f"{text[:80]!r}: each segment is 1-64 of A-Z a-z 0-9 . _ - (bad: {segment[:80]!r})"
            )
    return len(segments)


def subtree(path: str) -> tuple[str, str]:
    """The half-open text range of every path below ``path``: ``acme/`` to ``acme0``
    (``"0"`` sorts right after ``"/"``), for ``path > ? AND path < ?`` on an index."""
    return path + "/", path + "0"


@functools.lru_cache(maxsize=8192)
def ancestors_of(path: str) -> tuple[str, ...]:
    """Every node from the namespace down to ``path``, inclusive."""
    parts = path.split("/")
    return tuple("/".join(parts[: i + 1]) for i in range(len(parts)))


@dataclass(frozen=True, slots=True)
class Scope:
    """A validated node of the hierarchy."""

    path: str

    @classmethod
    def parse(cls, text: object, *, min_depth: int = 1) -> Scope:
        if not isinstance(text, str):
            raise ScopeError("a scope is a string like acme/alice/rss-bot")
        depth = _depth(text)
        if depth < min_depth:
            raise ScopeError(
                f"{text!r} is a {LEVELS[depth - 1]}; this needs at least "
                f"{'/'.join(LEVELS[:min_depth])}"
            )
        return cls(text)

    @property
    def segments(self) -> list[str]:
        return self.path.split("/")

    @property
    def depth(self) -> int:
        return self.path.count("/") + 1

    @property
    def level(self) -> str:
        return LEVELS[self.depth - 1]

    @property
    def namespace(self) -> str:
        return self.segments[0]

    def ancestors(self) -> list[str]:
        """Every node from the namespace down to this one, inclusive."""
        return list(ancestors_of(self.path))

    def agent(self) -> str | None:
        """The agent scope this belongs to (itself for an agent), or None above agents."""
        parts = self.segments
        return "/".join(parts[:3]) if len(parts) >= 3 else None

    def within(self, node: str) -> bool:
        """True when this scope is ``node`` or below it."""
        return self.path == node or self.path.startswith(node + "/")

    def __str__(self) -> str:
        return self.path
