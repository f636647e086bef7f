"""Regular expressions from the policy, refused when they can take exponential time.

A routing rule's ``pattern`` runs on the agent's task inside the writer's batch, which
every agent's reservation waits on, and Python's ``re`` cannot be interrupted. A part
repeated a varying number of times that can match the same text in more than one way
makes the engine try every way before it fails: ``^(\\w+\\s?)*$`` took 16 s for 28
characters, twice as long for each one more. Inside such a repeat the check refuses
(reading the pattern with ``re``'s own parser, after its own simplifications):

- a repeat whose next character could also be its own, with nothing in between that
  must be matched first (``(a+)+``, ``(\\w+\\s?)*``; but ``(\\w+\\.)*com`` is fine: a
  word ends at the dot);
- an alternation whose branches can start with the same character, or match nothing
  (``(.|\\s)*``, ``(a|ab)*``, ``(a|a?)*``);
- a repeated part that can match nothing at all (``(a?)*``).

Possessive repeats and atomic groups never backtrack, so they are not looked into. It
is a static check: it may refuse a pattern that would have been fast (say, alternations
that part only after their first character), never one of the forms above.

Example:
    >>> exponential(r"^(\\w+\\s?)*$")
    'a repeat inside a repeat can split the same text in more than one way'
    >>> exponential(r"^(\\w+\\.)*com$") is None
    True
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

__all__ = ["exponential"]

# the parser and compiler ``re`` itself uses, so the pattern is read as it will run (no
# public API exposes them; typeshed leaves them out)
_parser: Any = importlib.import_module("re._parser")
_compiler: Any = importlib.import_module("re._compiler")
sre: Any = importlib.import_module("re._constants")

# the characters sets are compared on: ASCII and a few of each kind beyond it
_ALPHABET = [chr(c) for c in range(128)] + list("éßЖ中\u00a0\u2028\u0301😀")
_ALL = frozenset(_ALPHABET)
_ONE_CHAR = {"LITERAL", "NOT_LITERAL", "IN", "ANY", "CATEGORY", "RANGE"}


def exponential(pattern: str) -> str | None:
    """Why ``pattern`` (one that compiles) can take exponential time, or None."""
    parsed = _parser.parse(pattern)
    return _Check(parsed.state).sequence(list(parsed), looped=False, follow=frozenset())


class _Check:
    def __init__(self, state: Any) -> None:
        self.state = state

    def chars(self, item: Any) -> frozenset[str]:
        """The characters one single-character item matches (of :data:`_ALPHABET`)."""
        matcher = _compiler.compile(_parser.SubPattern(self.state, [item]), self.state.flags)
        return frozenset(c for c in _ALPHABET if matcher.match(c))

    def first(self, items: Iterable[Any]) -> tuple[frozenset[str], bool]:
        """The characters a sequence can begin with, and whether it can match nothing."""
        found: frozenset[str] = frozenset()
        for op, av in items:
            chars, empty = self._first_of(op, av)
            found |= chars
            if not empty:
                return found, False
        return found, True

    def _first_of(self, op: Any, av: Any) -> tuple[frozenset[str], bool]:
        name = str(op)
        if name in _ONE_CHAR:
            return self.chars((op, av)), False
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            chars, empty = self.first(av[2])
            return chars, empty or av[0] == 0
        if op is sre.SUBPATTERN:
            return self.first(av[3])
        if op is sre.ATOMIC_GROUP:
            return self.first(av)
        if op is sre.BRANCH:
            firsts = [self.first(branch) for branch in av[1]]
            return frozenset().union(*(f for f, _ in firsts)), any(e for _, e in firsts)
        if op is sre.GROUPREF_EXISTS:
            yes, empty = self.first(av[1])
            no, no_empty = self.first(av[2]) if av[2] is not None else (frozenset(), True)
            return yes | no, empty or no_empty
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            return frozenset(), True
        return _ALL, True  # a back-reference: anything

    def every(self, items: Iterable[Any]) -> frozenset[str]:
        """Every character a sequence can match anywhere."""
        found: set[str] = set()
        for op, av in items:
            if str(op) in _ONE_CHAR:
                found |= self.chars((op, av))
            else:
                for part in _parts(op, av):
                    found |= self.every(part)
        return frozenset(found)

    def sequence(self, items: list[Any], *, looped: bool, follow: frozenset[str]) -> str | None:
        """Why a sequence is ambiguous in a way a loop around it multiplies; ``looped``:
        it is inside a varying repeat; ``follow``: what may come right after it."""
        for i, (op, av) in enumerate(items):
            after, empty = self.first(items[i + 1 :])
            nxt = after | follow if empty else after
            why = self.item(op, av, looped=looped, follow=nxt)
            if why:
                return why
        return None

    def item(self, op: Any, av: Any, *, looped: bool, follow: frozenset[str]) -> str | None:
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, body = av
            varies = high != low and (high is sre.MAXREPEAT or high > 1)
            if varies or (looped and high != low):
                if self.first(body)[1]:
                    return "a repeated part can match nothing"
                if looped and self.every(body) & follow:
                    return "a repeat inside a repeat can split the same text in more than one way"
            inner_follow = self.first(body)[0] | follow if varies else follow
            return self.sequence(list(body), looped=looped or varies, follow=inner_follow)
        if op is sre.BRANCH and looped:
            firsts = [self.first(branch) for branch in av[1]]
            if any(empty for _, empty in firsts):
                return "an alternation in a repeat has a branch that matches nothing"
            seen: frozenset[str] = frozenset()
            for chars, _ in firsts:
                if seen & chars:
                    return "two branches of an alternation in a repeat can start alike"
                seen |= chars
        if op in (sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP):
            return None  # never backtracks into
        for part in _parts(op, av):
            why = self.sequence(list(part), looped=looped, follow=follow)
            if why:
                return why
        return None


def _parts(op: Any, av: Any) -> Iterable[Any]:
    """The sub-sequences of one parsed item."""
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        yield av[2]
    elif op is sre.SUBPATTERN:
        yield av[3]
    elif op is sre.ATOMIC_GROUP:
        yield av
    elif op is sre.BRANCH:
        yield from av[1]
    elif op in (sre.ASSERT, sre.ASSERT_NOT):
        yield av[1]
    elif op is sre.GROUPREF_EXISTS:
        yield from (part for part in av[1:] if part is not None)
