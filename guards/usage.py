"""Usage counters: spent and held money per scope and window.

On disk there is one row per scope and local day (``usage_daily``); a week, a month
and the ``total`` window are sums of days. The writer keeps each sum it has
needed in :class:`UsageCache` and moves it with every change, so the hot path reads
no usage rows; any rollback clears the cache and it reloads from the database.
The daily rows are written once per batch (:meth:`guards.store.Tx.add`); a sum
loaded in between adds what the batch has not written yet.

What a namespace spends on one model (``budgets.models``) is counted the same way, in
``model_usage_daily`` (one row per namespace, model and day): its sums are cells of the
same cache, keyed by :func:`model_key`, a path no scope can have.

Example:
    >>> from zoneinfo import ZoneInfo
    >>> periods_at(1_767_225_600.0, ZoneInfo("UTC"))
    ('2026-01-01', '2026-W01', '2026-01')
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from guards.config import WINDOWS
from guards.store import Tx

__all__ = [
    "UPSERT_DAY",
    "UPSERT_MODEL_DAY",
    "PeriodClock",
    "Usage",
    "UsageCache",
    "model_key",
    "period_keys",
    "periods_at",
]

UPSERT_DAY = (
    "INSERT INTO usage_daily (scope, day, spent_micros, held_micros) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (scope, day) DO UPDATE SET"
    " spent_micros = spent_micros + excluded.spent_micros,"
    " held_micros = held_micros + excluded.held_micros"
)

UPSERT_MODEL_DAY = (
    "INSERT INTO model_usage_daily (namespace, model, day, spent_micros, held_micros)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (namespace, model, day) DO UPDATE SET"
    " spent_micros = spent_micros + excluded.spent_micros,"
    " held_micros = held_micros + excluded.held_micros"
)
# What separates a namespace from a model in a model's cell: no scope holds it
_MODEL_CELL = "\x00model:"


def model_key(namespace: str, model: str) -> str:
    """The cache's path for what ``namespace`` spends on ``model`` (never a scope's path).

    >>> model_key("acme", "claude-opus-4-1")
    'acme\\x00model:claude-opus-4-1'
    """
    return f"{namespace}{_MODEL_CELL}{model}"


def periods_at(ts: float, tz: ZoneInfo) -> tuple[str, str, str]:
    """The (day, week, month) period keys of an instant in a time zone."""
    local = datetime.fromtimestamp(ts, tz=tz)
    iso = local.isocalendar()
    return (local.strftime("%Y-%m-%d"), f"{iso.year}-W{iso.week:02d}", local.strftime("%Y-%m"))


class PeriodClock:
    """``periods_at`` for one time zone, remembering the current local hour.

    Every reservation needs its periods; computing them costs a time-zone
    conversion and two ``strftime``. Time zones change offset only on whole or
    half hours, so the periods of any instant in the same UTC quarter-hour are the same.
    """

    QUANTUM = 900

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._slot = -1
        self._periods: tuple[str, str, str] = ("", "", "")

    def __call__(self, ts: float) -> tuple[str, str, str]:
        slot = int(ts // self.QUANTUM)
        if slot != self._slot:
            self._periods = periods_at(slot * self.QUANTUM, self.tz)
            self._slot = slot
        return self._periods


@functools.lru_cache(maxsize=256)
def period_keys(periods: tuple[str, str, str]) -> Mapping[str, str]:
    """Window name → period key, ``total`` included (one read-only mapping per periods)."""
    return MappingProxyType(dict(zip(WINDOWS, (*periods, "all"), strict=True)))


def _day_range(window: str, period: str) -> tuple[str, str] | None:
    """The first and last day (inclusive) of a period; None for ``total``."""
    if window == "day":
        return period, period
    if window == "week":
        year, week = period.split("-W")
        first = date.fromisocalendar(int(year), int(week), 1)
        last = date.fromisocalendar(int(year), int(week), 7)
        return first.isoformat(), last.isoformat()
    if window == "month":
        return f"{period}-01", f"{period}-31"
    return None


@dataclass(frozen=True, slots=True)
class Usage:
    """One level and window: what it may spend, has spent and holds now."""

    scope: str
    level: str
    window: str
    period: str
    limit_micros: int | None
    spent_micros: int
    held_micros: int

    @property
    def remaining_micros(self) -> int | None:
        if self.limit_micros is None:
            return None
        return max(0, self.limit_micros - self.spent_micros - self.held_micros)

    def as_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "limit_micros": self.limit_micros,
            "spent_micros": self.spent_micros,
            "held_micros": self.held_micros,
            "remaining_micros": self.remaining_micros,
        }


class UsageCache:
    """Window sums per (scope, window, period), owned by the store's writer."""

    MAX_CELLS = 200_000

    def __init__(self) -> None:
        self._cells: dict[tuple[str, str, str], list[int]] = {}

    def clear(self) -> None:
        self._cells.clear()

    def get(self, tx: Tx, scope: str, window: str, period: str) -> tuple[int, int]:
        """(spent, held) of one cell, loading it from the daily rows on first use."""
        key = (scope, window, period)
        cell = self._cells.get(key)
        if cell is None:
            if len(self._cells) >= self.MAX_CELLS:
                self._cells.clear()
            cell = self._cells[key] = self._load(tx, scope, window, period)
        return cell[0], cell[1]

    def _load(self, tx: Tx, scope: str, window: str, period: str) -> list[int]:
        days = _day_range(window, period)
        if _MODEL_CELL in scope:
            return self._load_model(tx, scope, days)
        if days is None:
            row = tx.one(
                "SELECT SUM(spent_micros), SUM(held_micros) FROM usage_daily WHERE scope = ?",
                (scope,),
            )
        else:
            row = tx.one(
                "SELECT SUM(spent_micros), SUM(held_micros) FROM usage_daily"
                " WHERE scope = ? AND day BETWEEN ? AND ?",
                (scope, *days),
            )
        cell = [row[0] or 0, row[1] or 0]
        for (row_scope, day), (spent, held) in tx.unwritten(UPSERT_DAY):
            if row_scope == scope and (days is None or days[0] <= day <= days[1]):
                cell[0] += spent
                cell[1] += held
        return cell

    def _load_model(self, tx: Tx, key: str, days: tuple[str, str] | None) -> list[int]:
        namespace, _, model = key.partition(_MODEL_CELL)
        first, last = days or ("", "\uffff")  # total: every day
        row = tx.one(
            "SELECT SUM(spent_micros), SUM(held_micros) FROM model_usage_daily"
            " WHERE namespace = ? AND model = ? AND day BETWEEN ? AND ?",
            (namespace, model, first, last),
        )
        cell = [row[0] or 0, row[1] or 0]
        for (row_ns, row_model, day), (spent, held) in tx.unwritten(UPSERT_MODEL_DAY):
            if row_ns == namespace and row_model == model and first <= day <= last:
                cell[0] += spent
                cell[1] += held
        return cell

    def move(
        self,
        tx: Tx,
        *,
        paths: Sequence[str],
        periods: tuple[str, str, str],
        spent: int,
        held: int,
        model: str | None = None,
    ) -> None:
        """Add a change of money to the daily rows of every path (and of what the
        namespace, ``paths[0]``, spends on ``model``, if named), and to the loaded sums."""
        keys = (*periods, "all")
        cells = self._cells
        for path in paths:
            tx.add(UPSERT_DAY, (path, periods[0]), (spent, held))
            for window, period in zip(WINDOWS, keys, strict=True):
                cell = cells.get((path, window, period))
                if cell is not None:
                    cell[0] += spent
                    cell[1] += held
        if model is None:
            return
        tx.add(UPSERT_MODEL_DAY, (paths[0], model, periods[0]), (spent, held))
        path = model_key(paths[0], model)
        for window, period in zip(WINDOWS, keys, strict=True):
            cell = cells.get((path, window, period))
            if cell is not None:
                cell[0] += spent
                cell[1] += held
