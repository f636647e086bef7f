"""References between outbox rows: ``$ref:<ref>.ts`` and ``$ref:<ref>.channel``.

A row may name itself with ``ref`` (``enqueue(..., ref="alert:42")``); later rows may
use ``$ref:<ref>.ts`` and ``$ref:<ref>.channel`` anywhere in their args (e.g. a
chat.update of an alert posted earlier). They are substituted at delivery: a row
waits (:class:`Blocked`) until every row it refers to is delivered, and fails
(:class:`~bot.outbox_delivery.DeliveryFailed`) if one of them failed or does not exist.

Example:
    >>> args = {"channel": "$ref:a.channel", "ts": "$ref:a.ts", "text": "ack"}
    >>> refs_in(args, set())
    {'a'}
    >>> substitute(args, {"a": ("C1", "1.5")})
    {'channel': 'C1', 'ts': '1.5', 'text': 'ack'}
"""

from __future__ import annotations

import re
from typing import Any

from bot.outbox_delivery import DeliveryFailed
from guards.store import Store

__all__ = ["Blocked", "refs_in", "resolve_refs", "substitute"]

_REF = re.compile(r"\$ref:(.+?)\.(ts|channel)(?![A-Za-z0-9_])")


class Blocked(Exception):
    """A referenced row is not delivered yet."""


def refs_in(value: Any, found: set[str]) -> set[str]:
    """Add the refs named anywhere in ``value`` (nested dicts and lists) to ``found``."""
    if isinstance(value, str):
        found.update(m.group(1) for m in _REF.finditer(value))
    elif isinstance(value, dict):
        for v in value.values():
            refs_in(v, found)
    elif isinstance(value, list):
        for v in value:
            refs_in(v, found)
    return found


def substitute(value: Any, resolved: dict[str, tuple[str, str]]) -> Any:
    """``value`` with every ``$ref:`` replaced from ``resolved`` (``{ref: (channel, ts)}``)."""
    if isinstance(value, str):
        return _REF.sub(lambda m: resolved[m.group(1)][0 if m.group(2) == "channel" else 1], value)
    if isinstance(value, dict):
        return {k: substitute(v, resolved) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, resolved) for v in value]
    return value


async def resolve_refs(store: Store, refs: set[str]) -> dict[str, tuple[str, str]]:
    """``{ref: (channel, ts)}``; raises Blocked (not yet sent) or DeliveryFailed."""
    resolved: dict[str, tuple[str, str]] = {}
    for name in sorted(refs):
        rows = await store.fetch(
            "SELECT state, result_channel, result_ts, last_error FROM outbox WHERE ref = ?",
            (name,),
        )
        if not rows:
            raise DeliveryFailed(f"refers to {name!r}, which is not in the outbox")
        state, channel, ts, error = rows[0]
        if state == "failed":
            raise DeliveryFailed(f"refers to {name!r}, which failed: {error}")
        if state == "pending":
            raise Blocked(name)
        resolved[name] = (channel or "", ts or "")
    return resolved
