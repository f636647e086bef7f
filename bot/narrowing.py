"""Where a list cut short points: the scopes that hold what its "… and N more" left out.

``/agent breakers``, ``/agent status`` and ``/agent alerts`` list what one Slack reply
holds, then count the rest. Each takes a scope that narrows the list, and the count's
line names the scopes the rest is under (:func:`where`), with how many each holds:
``under `acme/dave` (11) and `acme/erin` (6): `/agent breakers <scope>` lists one``. It
names them one level below the list's own scope, or deeper while that level would show
the same list (a fleet of one namespace: its users, not the namespace again).

Example:
    >>> where(["acme/b/y", "acme/b/z", "acme/c/w"], among=["acme/a/x", "acme/b/y",
    ...     "acme/b/z", "acme/c/w"], within=None)
    '`acme/b` (2) and `acme/c` (1)'
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.blocks import echo
from bot.commands import UsageError
from bot.escape import slack_text
from guards.scopes import LEVELS, Scope, ScopeError
from guards.words import listed

__all__ = ["AGENT_DEPTH", "NAMED", "scope_to_narrow", "where"]

AGENT_DEPTH = 3  # namespace/user/agent: the deepest a list of agents or breakers narrows
NAMED = 5  # scopes a hint names; the others are counted
NAMED_CHARS = 400  # and the characters their names take at most (scopes run to 194)


def _segments(path: str) -> list[str] | None:
    """The segments of a scope path, or None for anything else (``model:<name>``)."""
    try:
        return Scope.parse(path).path.split("/")
    except ScopeError:
        return None


def _depth(hidden: Sequence[list[str]], among: Sequence[list[str]], start: int) -> int | None:
    """The shallowest depth below ``start`` at which the items ``among`` fall under more
    than one scope (narrowing to one of them shows less), within the hidden ones' depth."""
    deepest = max((len(s) for s in hidden), default=0)
    for depth in range(start + 1, deepest + 1):
        if len({"/".join(s[:depth]) for s in among if len(s) >= depth}) > 1:
            return depth
    return None


def where(hidden: Sequence[str], *, among: Sequence[str], within: str | None) -> str | None:
    """The scopes the ``hidden`` items are under, each with their count, in the order of
    the list: `` `acme/dave` (11), `acme/erin` (6) and 3 more users``; None when no scope
    would narrow the list (``among``: every item of it).

    Items that are no scope path (``model:<name>``), or not below ``within`` (a breaker
    above a narrowed list), are passed over: a narrowed list shows them too.
    """
    start = 0 if within is None else within.count("/") + 1

    def below(paths: Sequence[str]) -> list[list[str]]:
        inside = [p for p in paths if within is None or p.startswith(within + "/")]
        return [s for s in map(_segments, inside) if s is not None and len(s) > start]

    mine = below(hidden)
    depth = _depth(mine, below(among), start)
    if depth is None:
        return None
    counts: dict[str, int] = {}
    for segments in mine:
        if len(segments) >= depth:
            prefix = "/".join(segments[:depth])
            counts[prefix] = counts.get(prefix, 0) + 1
    names: list[str] = []
    room = NAMED_CHARS
    for prefix, n in counts.items():
        name = f"`{slack_text(prefix)}` ({n})"
        if names and (len(names) == NAMED or len(name) > room):
            break
        names.append(name)
        room -= len(name)
    if len(counts) > len(names):
        level = LEVELS[depth - 1]
        rest = len(counts) - len(names)
        names.append(f"{rest} more {level}{'s' if rest != 1 else ''}")
    return listed(names)


def scope_to_narrow(text: str, *, command: str) -> str:
    """The scope path ``/agent <command> <text>`` narrows to, or UsageError saying why not:
    not a scope (the parser's words, which never echo a token's secret), or a
    conversation (these lists are of agents and above: its agent is named instead)."""
    try:
        scope = Scope.parse(text)
    except ScopeError as exc:
        raise UsageError(
            f"{exc}: `{command}` narrows to a namespace, user or agent, as"
            f" `/agent {command} acme/alice`"
        ) from None
    if scope.depth > AGENT_DEPTH:
        agent = "/".join(scope.path.split("/")[:AGENT_DEPTH])
        raise UsageError(
            f"`{echo(scope.path, 300)}` is a conversation; `{command}` lists agents and"
            f" above: `/agent {command} {agent}`"
        )
    return scope.path
