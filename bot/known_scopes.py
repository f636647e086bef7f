"""Which scopes Nightshift knows, and the known scope an operator probably meant.

A scope is *seen* when an agent reserved (a call granted or refused), sent a heartbeat
or had output validated under it, or an open alert is about it; it is *known* when it
is seen or the policy names it (a budget or a job). Commands that act on a scope nothing
uses warn or refuse (a typo at 3 a.m. must not pass for the real thing), and
:func:`close_scope` finds what was probably meant: the same path in another case, the
agent's full path for its last segment, or a near spelling.

Example:
    >>> # await store.read(lambda tx: close_scope(tx, "rss-bot"))
    >>> # 'acme/alice/rss-bot'
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from guards.config import Policy
from guards.scopes import ancestors_of
from guards.store import Tx
from guards.tx import distinct_seeks

__all__ = [
    "CANDIDATES",
    "close_scope",
    "did_you_mean",
    "known_scope",
    "meant",
    "seen_scope",
    "unseen",
    "unseen_breaker",
]

MAX_CANDIDATES = 200_000  # scopes read for a suggestion (it runs on a read connection)
# A conversation (depth 4) in another case, or one whose path ends in what was typed: the
# first by path (SQLite's LIKE ignores ASCII case; `_` is escaped, a scope may hold it).
_CONVERSATION_IN_CASE = (
    "SELECT path FROM scopes WHERE depth = 4 AND lower(path) = ? AND path != ? LIMIT 1"
)
_CONVERSATION_ENDING = (
    "SELECT path FROM scopes WHERE depth = 4 AND path LIKE ? ESCAPE '\\' AND path != ?"
    " ORDER BY path LIMIT 1"
)
_REFUSED = "SELECT 1 FROM refusals_daily WHERE scope = ? OR scope GLOB ? LIMIT 1"
# The scopes a suggestion is looked for among (close_scope). refusals_daily has a row per
# agent, day and reason and is never pruned: its agents are read one primary-key seek
# each (the next scope after the last one), not by a scan of every row (review27 R2 M1:
# 1M rows took 0.5 s). Bound: the most scopes read, the alerts' kind left out, the most.
CANDIDATES = (
    distinct_seeks("refused", "refusals_daily", "scope", limit=True)
    + " SELECT path FROM scopes WHERE depth <= 3 UNION SELECT scope FROM heartbeats"
    " UNION SELECT agent FROM validation_streams"
    " UNION SELECT scope FROM refused WHERE scope IS NOT NULL"
    " UNION SELECT scope FROM alerts WHERE resolved_at IS NULL AND kind != ? LIMIT ?"
)
NEAR = 0.8  # how alike a near spelling must be (difflib's ratio)
# A kill switch's own alert is about the scope it was pulled on, typo or not: it makes
# nothing seen (review25 M2: a typo's kill switch made the typo "seen", then suggested)
_NOT_SEEN_BY = "breaker_opened_manual"


def unseen(path: str) -> str:
    """What to say about a scope no agent has used: it may be a typo."""
    return f"No agent has reserved or sent a heartbeat under `{path}` yet (a typo?)"


def unseen_breaker(path: str, close: str | None) -> str:
    """What to say when a kill switch names a scope no agent has used, in Slack and in
    ``POST /v1/breakers/{scope}/open``'s ``warning``; ``close``: the scope probably meant
    (:func:`meant`, looked for before the kill switch is on)."""
    stops = "this breaker stops only agents under exactly that scope."
    return f"{unseen(path)}: {stops}{did_you_mean(close)}"


def seen_scope(tx: Tx, path: str) -> bool:
    """Whether Nightshift has seen ``path`` or anything below it.

    Seen: a scope of the hierarchy (a reservation), a call refused before it started (a
    402 makes no scope row; ``refusals_daily`` counts it already, so the reserve path
    writes nothing more for it: audit24 L5), a heartbeat, a validated stream, or an open
    alert. A conversation is seen too when its agent's calls were refused: a refusal is
    counted per agent, so the conversation it was for is not kept, and a conversation of
    an agent seen only through refusals would otherwise always look like a typo (h3).
    A kill switch's alert is no sign of use: it is there because someone named the scope.
    """
    # scope characters are never GLOB wildcards; a model's name may hold some: exact only
    below = path if path.startswith("model:") else path + "/*"
    refused = path
    if not path.startswith("model:") and path.count("/") == 3:  # a conversation: its agent
        refused = path.rsplit("/", 1)[0]
    if tx.one(_REFUSED, (refused, below)) is not None:
        return True
    return any(
        tx.one(sql, (path, below)) is not None
        for sql in (
            "SELECT 1 FROM scopes WHERE path = ? OR path GLOB ? LIMIT 1",
            "SELECT 1 FROM heartbeats WHERE scope = ? OR scope GLOB ? LIMIT 1",
            "SELECT 1 FROM validation_streams WHERE agent = ? OR agent GLOB ? LIMIT 1",
            "SELECT 1 FROM alerts WHERE resolved_at IS NULL AND (scope = ? OR scope GLOB ?)"
            f" AND kind != '{_NOT_SEEN_BY}' LIMIT 1",  # (a constant of ours, not input)
        )
    )


def known_scope(policy: Policy, tx: Tx, path: str) -> bool:
    """Seen (:func:`seen_scope`), or named by the policy: a budget or a job at or below it."""
    if any(p == path or p.startswith(path + "/") for p in named_scopes(policy)):
        return True
    return seen_scope(tx, path)


def named_scopes(policy: Policy) -> list[str]:
    """The scopes the policy names: a budget's, a job's."""
    return [*policy.budgets.scopes, *(job.scope for job in policy.jobs)]


def close_scope(tx: Tx, text: str, *, named: Iterable[str] = ()) -> str | None:
    """The seen scope (or one of ``named``, the policy's) ``text`` most probably meant, or
    None.

    Seen as :func:`seen_scope` sees it: the hierarchy's scopes, heartbeats, validated
    streams, refused calls' agents and open alerts. In this order: the same path in
    another case (``Acme/alice`` → ``acme/alice``); a path that ends in ``text``
    (``rss-bot`` → ``acme/alice/rss-bot``, the shallowest first); a near spelling at the
    same depth (``acme/alice/rss_bot``); for one word, a near spelling of a last segment.
    Conversations are ids, not words: only the first two rules look at them.

    Example:
        >>> # close_scope(tx, "Acme/alice")
        >>> # 'acme/alice'
    """
    text = text.strip().rstrip("/")
    if not text or text.startswith("model:"):
        return None
    # Namespaces, users and agents (and what beats, validates, was refused or is alerted
    # on): a few hundred, read into Python. Conversations, a year of them, are looked at
    # in SQL only (audit25 year F2: reading 200,000 scopes took seconds of the event
    # loop's time). An agent whose calls were all refused is seen (seen_scope) and is the
    # one a budget alert sends an operator to type, so it is suggested too (audit27 B2 L4).
    rows = tx.all(CANDIDATES, (MAX_CANDIDATES, _NOT_SEEN_BY, MAX_CANDIDATES))
    seen = {p for p in (*(str(r[0]) for r in rows), *named) if not p.startswith("model:")}
    nodes = {node for path in seen for node in ancestors_of(path)}  # a user above its agents
    nodes.discard(text)  # what was typed is no suggestion (seen by an alert, never spent)
    paths = sorted(nodes, key=lambda p: (p.count("/"), p))
    low = text.lower()
    for path in paths:
        if path.lower() == low:
            return path
    if text.count("/") == 3 and (row := tx.one(_CONVERSATION_IN_CASE, (low, text))):
        return str(row[0])
    for path in paths:  # the shallowest first: the agent before a conversation of that name
        if path.lower().endswith("/" + low):
            return path
    ending = "%/" + low.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    if row := tx.one(_CONVERSATION_ENDING, (ending, text)):
        return str(row[0])
    depth = text.count("/")
    peers: dict[str, str] = {}
    for path in paths:
        if path.count("/") == depth:
            peers.setdefault(path.lower(), path)
    near = difflib.get_close_matches(low, list(peers), n=1, cutoff=NEAR)
    if near:
        return peers[near[0]]
    if depth == 0:
        names: dict[str, str] = {}
        for path in paths:
            names.setdefault(path.rsplit("/", 1)[-1].lower(), path)
        near = difflib.get_close_matches(low, list(names), n=1, cutoff=NEAR)
        if near:
            return names[near[0]]
    return None


def meant(policy: Policy, tx: Tx, text: str) -> str | None:
    """:func:`close_scope` among the seen scopes and the policy's: a new agent that only
    has a budget in the file so far is suggested too (audit24 claims C3)."""
    return close_scope(tx, text, named=named_scopes(policy))


def did_you_mean(close: str | None, *, prefix: str = "") -> str:
    """`` Did you mean `acme/alice/rss-bot`?`` (with ``prefix``, e.g. a kind), or nothing."""
    return f" Did you mean `{prefix}{close}`?" if close else ""
