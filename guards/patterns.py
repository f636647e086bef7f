"""Regular expressions from the policy, refused when they can take exponential time.

A routing rule's ``pattern`` runs on the agent's task inside the writer's batch, which
every agent's reservation waits on. A repeat inside a repeat (``^(\\w+\\s?)*$``) can try
every way of splitting the text before it fails: 16 s for 28 characters, twice as long
for each one more. The check is the one static analysers of regexes make (the "star
height"): a part repeated a varying number of times may not itself contain such a part.
Possessive repeats and atomic groups never backtrack, so they are not looked into.

Example:
    >>> nested_repeat(r"^(\\w+\\s?)*$")
    True
    >>> nested_repeat(r"\\b(invoice|receipt)s?\\b")
    False
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

# the parser ``re`` itself uses, so the pattern is read as it will run (no public API
# exposes it; typeshed leaves it out)
_parser: Any = importlib.import_module("re._parser")
sre: Any = importlib.import_module("re._constants")

__all__ = ["nested_repeat"]


def nested_repeat(pattern: str) -> bool:
    """Whether ``pattern`` (one that compiles) repeats a part that itself repeats."""
    return _find(_parser.parse(pattern), nested=True)


def _varies(low: int, high: Any) -> bool:
    """A repeat matching a varying number of times, more than once (not ``?``, not ``{3}``)."""
    return bool(high != low and (high is sre.MAXREPEAT or high > 1))


def _parts(op: Any, av: Any) -> Iterable[Any]:
    """The sub-patterns of one parsed item that may backtrack."""
    if op is sre.SUBPATTERN:
        yield av[3]
    elif op is sre.BRANCH:
        yield from av[1]
    elif op in (sre.ASSERT, sre.ASSERT_NOT):
        yield av[1]
    elif op is sre.GROUPREF_EXISTS:
        yield from (part for part in av[1:] if part is not None)


def _find(items: Any, *, nested: bool) -> bool:
    """With ``nested``: a varying repeat holding another in ``items``; without: any at all."""
    for op, av in items:
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, body = av
            if _varies(low, high) and (not nested or _find(body, nested=False)):
                return True
            if _find(body, nested=nested):
                return True
        elif any(_find(part, nested=nested) for part in _parts(op, av)):
            return True
    return False
