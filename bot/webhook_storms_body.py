"""The JSON body of a webhook storm's events (:mod:`bot.webhook_storms`).

It has every key an alert's event has (:func:`bot.webhooks_rows.body_for`), so a bridge
that reads them goes on working, with ``dedup_key`` ``nightshift-storm-<id>`` (one
incident for the storm), ``alert_id`` ``null``, ``kind`` ``alert_storm``, ``tier`` the
highest of its alerts, ``scope`` the scope they share (``acme/team``; ``null`` when
none), ``step`` ``null``, and ``state`` ``open`` in a trigger, ``handled`` in the
resolve; then ``storm``: how many alerts it carries (``alerts``) and how many of them
still page (``open``), by kind and tier, the first :data:`SCOPES_SHOWN` scopes and
:data:`IDS_SHOWN` alert ids, ``update`` (0 for its first trigger, then 1, 2... for the
triggers saying what joined it), and in the resolve how its alerts were ``handled``.

Example:
    >>> shared_scope(["acme/team/bot-1", "acme/team/bot-2"])
    'acme/team'
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from bot.alerts.model import Alert
from bot.alerts.render import title
from bot.webhooks_rows import iso_utc
from guards.words import listed, plural

__all__ = [
    "IDS_SHOWN",
    "SCOPES_SHOWN",
    "shared_scope",
    "storm_body",
    "storm_dedup_key",
    "where",
]

SCOPES_SHOWN = 20
IDS_SHOWN = 50
KINDS_SAID = 4  # in the text, for a phone's screen
SCOPES_SAID = 3  # named one by one in the text; more are counted
TITLE_CHARS = 200
_HANDLED = {"acked": "acknowledged", "silenced": "silenced", "resolved": "resolved"}


def storm_dedup_key(storm: int) -> str:
    """The key a receiver groups a storm's events by (one incident)."""
    return f"nightshift-storm-{storm}"


def shared_scope(scopes: list[str]) -> str | None:
    """The longest path every scope is in (``acme/team``), None when they share none."""
    if not scopes:
        return None
    parts = [s.split("/") for s in scopes]
    common: list[str] = []
    for segments in zip(*parts, strict=False):
        if len(set(segments)) != 1:
            break
        common.append(segments[0])
    return "/".join(common) or None


def where(scopes: list[str]) -> str:
    """Where a storm's alerts are, for its text: each scope when few, else how many and
    the path they share.

    Example:
        >>> where(["acme/alice/bot1", "acme/bob/bot2"])
        'on acme/alice/bot1 and acme/bob/bot2'
        >>> where([f"acme/team/bot-{i}" for i in range(30)])
        'on 30 scopes under acme/team'
    """
    if not scopes:
        return "on no scope"
    if len(scopes) <= SCOPES_SAID:
        return f"on {listed(scopes)}"
    shared = shared_scope(scopes)
    return f"on {len(scopes)} scopes" + (f" under {shared}" if shared else "")


def _text(
    alerts: list[Alert], *, event: str, tier: str, still: int, scopes: list[str], since: float
) -> str:
    """What a phone shows: plain text, where, then the largest kinds first."""
    kinds = Counter(title(a) for a in alerts).most_common()
    said = ", ".join(f"{name} ×{n}" for name, n in kinds[:KINDS_SAID])
    if len(kinds) > KINDS_SAID:
        said += f" and {plural(len(kinds) - KINDS_SAID, 'other kind')}"
    head = f"{tier} alert storm {where(scopes)}: {plural(len(alerts), 'alert')}"
    if event == "trigger":
        text = f"{head} paged since {iso_utc(since)[11:16]} UTC, {still} unacknowledged: {said}"
        more = " (the next pages in this storm are added to this incident)"
        return text + more if len(alerts) == 1 else text
    handled = Counter(_HANDLED.get(a.state, a.state) for a in alerts).most_common()
    return f"{head} handled ({', '.join(f'{n} {how}' for how, n in handled)}): {said}"


def storm_body(
    alerts: list[Alert],
    *,
    storm: int,
    event: str,
    webhook: str,
    at: float,
    update: int,
    since: float,
) -> str:
    """The JSON body of one event of ``storm`` carrying ``alerts`` (compact, keys in a
    fixed order); ``since``: when the storm began."""
    tier = min((a.tier for a in alerts), default="P2")  # P0 < P1 < P2
    still = sum(1 for a in alerts if a.state == "open")
    scopes = sorted({a.scope for a in alerts})
    detail: dict[str, Any] = {
        "id": storm,
        "alerts": len(alerts),
        "open": still,
        "update": update,
        "kinds": dict(Counter(a.kind for a in alerts).most_common()),
        "tiers": dict(sorted(Counter(a.tier for a in alerts).items())),
        "scopes": scopes[:SCOPES_SHOWN],
        "alert_ids": [a.id for a in alerts][:IDS_SHOWN],
    }
    if event == "resolve":
        detail["handled"] = dict(Counter(_HANDLED.get(a.state, a.state) for a in alerts))
    payload: dict[str, Any] = {
        "event": event,
        "dedup_key": storm_dedup_key(storm),
        "alert_id": None,
        "kind": "alert_storm",
        "tier": tier,
        "scope": shared_scope(scopes),
        "title": f"Alert storm: {plural(len(alerts), 'alert')} {where(scopes)}"[:TITLE_CHARS],
        "text": _text(alerts, event=event, tier=tier, still=still, scopes=scopes, since=since),
        "at": iso_utc(at),
        "step": None,
        "webhook": webhook,
        "state": "open" if event == "trigger" else "handled",
        "by": None,
        "storm": detail,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
