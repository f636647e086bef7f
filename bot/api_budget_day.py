"""``GET /v1/budgets/{scope}?day=yesterday`` (or ``?day=YYYY-MM-DD``): what the scope and
every level above it spent on a past local day of its namespace, and its children that
spent most that day (audit23 forensics: a past day's cost per agent was out of reach over
HTTP; ``/agent budget <scope> yesterday`` answers it in Slack).

The day is the namespace's (its ``timezone``, else the policy's), as the ledger counts it
(:mod:`bot.budget_days`). Limits are not kept per day, so a past day's answer names none:
each node is ``{scope, level, spent_micros, held_micros}``.

Example:
    >>> # GET /v1/budgets/acme/alice?day=2026-11-27
    >>> # {"scope": "acme/alice", "timezone": "UTC", "day": "2026-11-27", "levels": [...], ...}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from bot.api_body import only_query
from bot.budget_days import BadDay, DaySpend, first_day, parse_day, read_day
from guards.errors import InvalidInput
from guards.scopes import Scope
from guards.tokens import authenticate, authorize
from guards.tx import Tx

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["budget_of_day", "day_asked"]

MAX_DAY_CHARS = 40  # of a bad value quoted back


def _node(spend: DaySpend) -> dict[str, Any]:
    return {
        "scope": spend.scope,
        "level": spend.level,
        "spent_micros": spend.spent_micros,
        "held_micros": spend.held_micros,
    }


def day_asked(query: Mapping[str, str]) -> str | None:
    """The ``day`` query parameter as sent (None: today's tree is asked); InvalidInput
    naming any other parameter: ``?date=`` for ``?day=`` must not answer today's tree as
    if it were that day (recheck24)."""
    only_query(
        query,
        "day",
        takes="GET /v1/budgets/{scope} takes one query parameter, day (yesterday, today or"
        " YYYY-MM-DD)",
    )
    return query.get("day")


def parse_day_param(text: str, *, today: date, tz: str) -> date:
    """The ``day`` query parameter as a date, at most ``today``; InvalidInput otherwise."""
    try:
        return parse_day(text, today=today, scope="", tz=tz)
    except BadDay:
        raise InvalidInput(
            "day",
            f"day is `yesterday`, `today` or a date as YYYY-MM-DD, at most today"
            f" ({today.isoformat()} in {tz}), not {text[:MAX_DAY_CHARS]!r}",
        ) from None


async def budget_of_day(
    ns: Nightshift, scope: Scope, *, raw_token: str | None, day_text: str, path: str
) -> dict[str, Any]:
    """The answer to ``GET /v1/budgets/{scope}?day=...`` (the token checked first, as for
    today's tree: a 401/403 says nothing of the day)."""

    def check(tx: Tx) -> None:
        token = authenticate(tx, raw_token)
        authorize(tx, token, scope, path=path)

    await ns.store.write(check)
    tz = ns.ledger.timezone(scope.namespace)
    today = datetime.fromtimestamp(ns.clock.now(), tz).date()
    day = parse_day_param(day_text, today=today, tz=tz.key)
    spend, first = await ns.store.read(
        lambda tx: (read_day(tx, scope, day), first_day(tx, scope.namespace))
    )
    return {
        "scope": scope.path,
        "timezone": tz.key,
        "day": day.isoformat(),
        "today": day == today,  # true: the day is not over, its figures still move
        "first_day": first.isoformat() if first else None,
        "levels": [_node(level) for level in spend.levels],
        "children": [_node(child) for child in spend.children],
        "children_total": spend.children_total,
        "children_truncated": len(spend.children) < spend.children_total,
    }
