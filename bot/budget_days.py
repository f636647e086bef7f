"""A past day's spend under a scope: ``/agent budget <scope> yesterday`` or ``<YYYY-MM-DD>``.

The day is a local day of the scope's namespace (its ``timezone``, else the policy's), as
the ledger counts it: ``usage_daily`` holds spent and held money per scope and local day,
at every level of the tree, and is never pruned, so every day from the namespace's first
is there. Limits are not kept per day (only the ones in force now are), so a past day is
drawn without any. The parsing here raises :class:`BadDay` with the one line to answer;
the reading runs on a read connection of its own (:meth:`guards.store.Store.read`).

Example:
    >>> from datetime import date
    >>> parse_day("yesterday", today=date(2026, 11, 28), scope="acme", tz="UTC")
    datetime.date(2026, 11, 27)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from guards.scopes import LEVELS, Scope
from guards.store import Tx

__all__ = [
    "MAX_CHILDREN",
    "BadDay",
    "DaySpend",
    "SpendOfDay",
    "day_label",
    "first_day",
    "looks_like_day",
    "namespaces",
    "parse_day",
    "read_day",
    "spent_days_around",
]

MAX_CHILDREN = 200  # children read for one day (those that spent most), as usage_tree lists
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

_DAY_ROW = "SELECT spent_micros, held_micros FROM usage_daily WHERE scope = ? AND day = ?"
# The direct children that spent (or still hold) on the day, most first, and how many did.
# As in guards.budgets, ``depth`` and the path range walk the scopes_depth index.
_CHILDREN_OF_DAY = (
    "SELECT s.path, u.spent_micros, u.held_micros, COUNT(*) OVER () FROM scopes AS s"
    " JOIN usage_daily AS u ON u.scope = s.path AND u.day = ?"
    " WHERE s.depth = ? AND s.path > ? AND s.path < ? AND s.parent = ?"
    " AND u.spent_micros + u.held_micros > 0"
    " ORDER BY u.spent_micros DESC, u.held_micros DESC, s.path LIMIT ?"
)
_FIRST_DAY = "SELECT MIN(day) FROM usage_daily WHERE scope = ?"
_LAST_BEFORE = (
    "SELECT MAX(day) FROM usage_daily WHERE scope = ? AND day < ?"
    " AND spent_micros + held_micros > 0"
)
_FIRST_AFTER = (
    "SELECT MIN(day) FROM usage_daily WHERE scope = ? AND day > ?"
    " AND spent_micros + held_micros > 0"
)


class BadDay(Exception):
    """A day that cannot be shown; ``str()`` is the one line to answer."""


@dataclass(frozen=True, slots=True)
class DaySpend:
    """What one scope spent on the day, and what it still holds from it."""

    scope: str
    spent_micros: int
    held_micros: int

    @property
    def level(self) -> str:
        return LEVELS[self.scope.count("/")]

    @property
    def used(self) -> bool:
        return self.spent_micros + self.held_micros > 0


@dataclass(frozen=True, slots=True)
class SpendOfDay:
    """The namespace down to the scope, and the scope's children that spent, most first."""

    scope: str
    day: date
    levels: list[DaySpend]
    children: list[DaySpend]
    children_total: int


def day_label(day: date, tz: str) -> str:
    """``Fri 2026-11-27 (Europe/Berlin)``."""
    return f"{day:%a %Y-%m-%d} ({tz})"


def looks_like_day(text: str) -> bool:
    """Whether ``text`` is meant as a day (``yesterday``, ``today``, ``2026-11-27``)."""
    return text.lower() in ("yesterday", "today") or _DATE.fullmatch(text) is not None


def parse_day(text: str, *, today: date, scope: str, tz: str) -> date:
    """The day ``text`` names, at most ``today`` (the namespace's); :class:`BadDay` if none.

    ``yesterday``, ``today`` or a date as YYYY-MM-DD, nothing else (not ``20261127`` nor
    ``2026-W48-5``, which Python would read too).
    """
    word = text.lower()
    if word in ("yesterday", "today"):
        return today - timedelta(days=1 if word == "yesterday" else 0)
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        example = today - timedelta(days=1)
        raise BadDay(
            f"`{text[:40]}` is not a day: write `yesterday` or a date as YYYY-MM-DD,"
            f" e.g. `/agent budget {scope} {example.isoformat()}`."
        ) from None
    if day > today:
        raise BadDay(
            f"{day.isoformat()} is in the future: today is {today:%a %Y-%m-%d} in {tz}"
            f" (`/agent budget {scope}` shows it)."
        )
    return day


def first_day(tx: Tx, namespace: str) -> date | None:
    """The first day the ledger counted anything under ``namespace`` (None: never)."""
    row = tx.one(_FIRST_DAY, (namespace,))
    return date.fromisoformat(row[0]) if row and row[0] else None


def spent_days_around(tx: Tx, scope: str, day: date) -> tuple[date | None, date | None]:
    """The last day before ``day`` and the first after it on which ``scope`` spent or held."""
    out: list[date | None] = []
    for sql in (_LAST_BEFORE, _FIRST_AFTER):
        row = tx.one(sql, (scope, day.isoformat()))
        out.append(date.fromisoformat(row[0]) if row and row[0] else None)
    return out[0], out[1]


def _day_spend(tx: Tx, path: str, day: str) -> DaySpend:
    row = tx.one(_DAY_ROW, (path, day))
    return DaySpend(path, int(row[0]), int(row[1])) if row else DaySpend(path, 0, 0)


def read_day(tx: Tx, scope: Scope, day: date) -> SpendOfDay:
    """Every level from the namespace down to ``scope`` on ``day``, and the (at most
    :data:`MAX_CHILDREN`) direct children that spent most that day."""
    key = day.isoformat()
    levels = [_day_spend(tx, path, key) for path in scope.ancestors()]
    rows = tx.all(
        _CHILDREN_OF_DAY,
        (key, scope.depth + 1, scope.path + "/", scope.path + "0", scope.path, MAX_CHILDREN),
    )
    children = [DaySpend(r[0], int(r[1]), int(r[2])) for r in rows]
    total = int(rows[0][3]) if rows else 0
    return SpendOfDay(scope.path, day, levels, children, total)


def namespaces(tx: Tx, *, limit: int = 10) -> tuple[list[str], int]:
    """The first ``limit`` namespaces by name, and how many there are."""
    rows = tx.all(
        "SELECT path, COUNT(*) OVER () FROM scopes WHERE depth = 1 ORDER BY path LIMIT ?",
        (limit,),
    )
    return [r[0] for r in rows], int(rows[0][1]) if rows else 0
