"""Where a list cut short points: the scopes that hold what its "… and N more" left out.

``/agent breakers``, ``/agent status`` and ``/agent alerts`` list what one Slack reply
holds, then count the rest. Each takes a scope that narrows the list, and the count's
line names the scopes the rest is under (:func:`where`), with how many each holds:
``under `acme/dave` (11) and `acme/erin` (6): `/agent breakers <scope>` lists one``. It
names them one level below the list's own scope, or deeper while that level would show
the same list (a fleet of one namespace: its users, not the namespace again).

Every scope is named that fits in the room the caller gives (what is left of Slack's
3,000 characters in the line's block and of the reply's own budget). When they do not
all fit, those that hold the most are named first, and the line ends with the same
command and a ``+N`` that passes over the N named (:func:`skip_of`): its hint names the
next ones, so following hints reaches every item however many scopes hold them
(review26 R2 M1: five were named, and the others only counted).

Example:
    >>> where(["acme/b/y", "acme/c/w", "acme/b/z"], among=["acme/a/x", "acme/b/y",
    ...     "acme/c/w", "acme/b/z"], within=None, again="/agent status")
    '`acme/b` (2) and `acme/c` (1)'
    >>> where(["acme/b/y", "acme/c/w", "acme/b/z"], among=["acme/a/x", "acme/b/y",
    ...     "acme/c/w", "acme/b/z"], within=None, again="/agent status", room=20)
    '`acme/b` (2) and 1 more user (`/agent status +1` names it)'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.blocks import echo
from bot.commands import UsageError
from bot.escape import slack_text
from guards.breaker_kinds import MODEL_PREFIX
from guards.scopes import LEVELS, Scope, ScopeError
from guards.words import listed

__all__ = [
    "AGENT_DEPTH",
    "HINT_CHARS",
    "names_scopes",
    "scope_to_narrow",
    "skip_of",
    "unused_skip",
    "where",
]

AGENT_DEPTH = 3  # namespace/user/agent: the deepest a list of agents or breakers narrows
HINT_CHARS = 2_700  # the names' room at most: a context text takes 3,000, the line's words
MAX_SKIP = 999_999  # `+N` passes over at most this many names (a fleet names far fewer)
_SKIP = re.compile(r"\+[0-9]{1,6}")


# A scope path's shape (guards.scopes: 1-4 segments of 1-64 of A-Z a-z 0-9 . _ -, never
# . or ..): the items a hint reads were scopes when stored, so their shape is all it asks
_SEG = r"(?!\.\.?(?:/|$))[A-Za-z0-9._-]{1,64}"
_PATH = re.compile(rf"{_SEG}(?:/{_SEG}){{0,3}}")


def _segments(path: str) -> tuple[str, ...] | None:
    """The segments of a scope path, or None for anything else (``model:<name>``).

    One regular expression, not ``Scope.parse`` (its checks for pasted tokens are for
    what a person types): a hint reads every item of its list, a few times a reply. A
    list of 10,000 agents parsed anew each time held the event loop (review28 R2 H1),
    and a cache of them missed every time past its size (R6 L3: 3.3 s at 80,000).

    >>> _segments("acme/a/bot"), _segments("model:gpt-4o"), _segments("acme/../x")
    (('acme', 'a', 'bot'), None, None)
    """
    return tuple(path.split("/")) if _PATH.fullmatch(path) else None


def _depth(
    hidden: Sequence[tuple[str, ...]], among: Sequence[tuple[str, ...]], start: int
) -> int | None:
    """The shallowest depth below ``start`` at which the items ``among`` fall under more
    than one scope (narrowing to one of them shows less), within the hidden ones' depth."""
    deepest = max((len(s) for s in hidden), default=0)
    for depth in range(start + 1, deepest + 1):
        if len({"/".join(s[:depth]) for s in among if len(s) >= depth}) > 1:
            return depth
    return None


def _counts(
    hidden: Sequence[str],
    among: Sequence[str],
    within: str | None,
    read: dict[str, tuple[str, ...] | None] | None = None,
) -> tuple[int, dict[str, int]] | None:
    """The depth the hint names at, and each scope there with its hidden items; ``read``:
    the segments of the paths read so far (filled here), kept by a caller asking again."""
    start = 0 if within is None else within.count("/") + 1
    inside = within + "/" if within is not None else ""
    known: dict[str, tuple[str, ...] | None] = {} if read is None else read

    def segments_of(path: str) -> tuple[str, ...] | None:
        if path not in known:
            known[path] = _segments(path)
        return known[path]

    def below(paths: Sequence[str]) -> list[tuple[str, ...]]:
        found = (segments_of(p) for p in paths if p.startswith(inside))
        return [s for s in found if s is not None and len(s) > start]

    mine = below(hidden)
    depth = _depth(mine, below(among), start)
    if depth is None:
        return None
    counts: dict[str, int] = {}
    for segments in mine:
        if len(segments) >= depth:
            prefix = "/".join(segments[:depth])
            counts[prefix] = counts.get(prefix, 0) + 1
    return depth, counts


def where(
    hidden: Sequence[str],
    *,
    among: Sequence[str],
    within: str | None,
    again: str,
    skip: int = 0,
    room: int = HINT_CHARS,
    read: dict[str, tuple[str, ...] | None] | None = None,
) -> str | None:
    """The scopes the ``hidden`` items are under, each with their count, as many as
    ``room`` characters hold: all of them in the order of the list, or else those with
    the most first and a ``+N`` for the others: `` `acme/dave` (11), `acme/erin` (6) and
    3 more users (`/agent status +2` names them)``; None when no scope would narrow the
    list (``among``: every item of it).

    ``again`` is the command that gave the list; ``skip`` (its ``+N``) passes over the N
    scopes named before. At least one scope is named, so each ``+N`` leads further.
    Items that are no scope path (``model:<name>``), or not below ``within`` (a breaker
    above a narrowed list), are passed over: a narrowed list shows them too. ``read``: a
    dict kept by a caller that asks again over the same items, so each is read once.
    """
    found = _counts(hidden, among, within, read)
    if found is None:
        return None
    depth, counts = found
    level = LEVELS[depth - 1]
    everyone = [f"`{slack_text(prefix)}` ({n:,})" for prefix, n in counts.items()]
    if not skip and sum(len(name) + 2 for name in everyone) <= room:
        return listed(everyone)  # all of them, in the order of the list
    # a page of them: those that hold the most first, so fewer are left to a `+N`
    ranked = sorted(counts.items(), key=lambda item: -item[1])  # stable: list order next
    if skip >= len(ranked):
        return (
            f"{len(ranked)} {level}{'s' if len(ranked) != 1 else ''}, all named before"
            f" `+{skip}` (`{again}` names them from the first)"
        )
    page = [f"`{slack_text(prefix)}` ({n:,})" for prefix, n in ranked[skip:]]
    past = f"(past the first {skip} of {len(ranked)} {level}s) " if skip else ""
    if len(past) + sum(len(name) + 2 for name in page) <= room:
        return past + listed(page)

    def rest(named: int) -> str:
        left = len(page) - named
        them = "them" if left != 1 else "it"
        more = f"{left} more {level}{'s' if left != 1 else ''}"
        return f"{more} (`{again} +{skip + named}` names {them})"

    names: list[str] = []
    used = len(past) + len(rest(0)) + 2
    for name in page:
        if names and used + len(name) + 2 > room:
            break
        names.append(name)
        used += len(name) + 2
    return past + listed([*names, rest(len(names))])


def names_scopes(hidden: Sequence[str], *, among: Sequence[str], within: str | None) -> bool:
    """Whether :func:`where` names scopes for the ``hidden`` items (what a ``+N`` passes
    over); never when nothing is hidden: the list is empty or whole."""
    return _counts(hidden, among, within) is not None


def unused_skip(skip: int, *, again: str, example: str) -> UsageError:
    """The refusal of a ``+N`` where no hint names scopes to pass over, whether the list
    is empty, whole, or one scope holds what it leaves out (recheck26 Ka L4: the ``+N``
    was dropped without a word; Kc L1: an empty ``alerts`` list answered "No open
    alerts" instead, and ``breakers`` and ``status`` dropped it). ``again``: the command
    without it; ``example``: where a ``+N`` goes in that command."""
    return UsageError(
        f"`{again}` names no scopes to pass over (its list is empty or whole, or one scope"
        f" holds what it leaves out), so `+{skip}` means nothing here: send it without"
        f" `+{skip}`. A `+N` follows the scopes a list cut short names, as its hint gives it"
        f" (`{example}`)"
    )


def skip_of(words: list[str], *, command: str) -> tuple[list[str], int]:
    """The words of ``/agent <command> …`` without a last ``+N``, and N (0 without one):
    how many of the scopes its hint named before to pass over (see :func:`where`)."""
    if not words or not words[-1].startswith("+"):
        return words, 0
    if not _SKIP.fullmatch(words[-1]):
        raise UsageError(
            f"`{echo(words[-1])}`: a `+` is followed by how many of the scopes the hint"
            f" named to pass over (0 to {MAX_SKIP:,}), as `/agent {command} +40` (the"
            " hint of a list cut short gives it)"
        )
    return words[:-1], int(words[-1][1:])


def scope_to_narrow(text: str, *, command: str) -> str:
    """The scope path ``/agent <command> <text>`` narrows to, or UsageError saying why not:
    not a scope (the parser's words, which never echo a token's secret), a model (whose
    breaker every ``breakers`` list shows), or a conversation (these lists are of agents
    and above: its agent is named instead)."""
    if text[: len(MODEL_PREFIX)].lower() == MODEL_PREFIX:
        raise UsageError(
            f"`{echo(text, 80)}` is a model, not a scope: `{command}` narrows to a namespace,"
            " user or agent. A model's breaker is in every `/agent breakers` list, a closed"
            " one in `/agent breakers all`; `/agent alerts model:<name>` lists its alerts"
        )
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
