"""Spend-rate observation: the money an agent or a namespace spent in a sliding window.

A settled charge goes into the window of its agent and of its namespace (when the
policy sets ``breakers.spend_rate`` / ``breakers.namespace_spend_rate`` for it: the top
level's, or its longest ``breakers.scopes`` prefix's), and the breaker trips when the
window reaches the limit (:meth:`guards.breaker.Breaker.on_spend`).

The windows are kept in memory on the writer thread. On first use, and again after a
rollback (:meth:`SpendRates.forget`), they are rebuilt from the recent settled
reservations; charges at or before a breaker's ``spend_reset_at`` (its last close)
do not count, and a close empties the window (:meth:`SpendRates.clear`).

Example:
    >>> # spend = SpendRates(BreakerLimits(policy))
    >>> # spend.observe(tx, records, res, governing(res.scope), now)
"""

from __future__ import annotations

from guards.breaker import SpendWindow
from guards.breaker_kinds import BreakerLimits, governing
from guards.breaker_records import BreakerRecords
from guards.breaker_windows import drop_idle
from guards.ledger import Reservation
from guards.store import Tx

__all__ = ["SpendRates"]

MAX_WINDOWS = 50_000  # windows kept before those with nothing left in them are dropped


class SpendRates:
    """The spend-rate windows of agents and namespaces, one per breaker key."""

    def __init__(self, limits: BreakerLimits) -> None:
        self._limits = limits  # each agent's and namespace's spend rate (None: no limit)
        self._spend: dict[str, SpendWindow] | None = None
        self._drop_at = MAX_WINDOWS

    def forget(self) -> None:
        """Drop the windows; they are rebuilt from settled reservations on next use."""
        self._spend = None

    def clock_stepped_back(self, seconds: float) -> None:
        """Move the charges in memory back with the wall clock (see SpendWindow.shift_back)."""
        for window in (self._spend or {}).values():
            window.shift_back(seconds)

    def clear(self, key: str) -> None:
        """The breaker ``key`` closed: its window starts over."""
        if self._spend is not None and key in self._spend:
            self._spend[key].clear()

    def observe(
        self,
        tx: Tx,
        records: BreakerRecords,
        res: Reservation,
        keys: tuple[tuple[str, str], ...],
        now: float,
    ) -> None:
        """Count a settled charge in the agent's and the namespace's window; maybe trip."""
        windows: dict[str, SpendWindow] | None = None
        for key, kind in (keys[2], keys[0]):
            rate = self._limits.config(key, kind)
            if rate.spend_max_micros is None:
                continue
            if windows is None:
                windows = self._spend_windows(tx, now, exclude=res.id)
            b = records.entries.get(key) or records.entry(tx, key, kind)
            if b.spend_reset_at is not None and now <= b.spend_reset_at:
                continue
            window = windows.get(key)
            if window is None:
                if len(windows) >= self._drop_at:  # agents that stopped spending go
                    self._drop_at = drop_idle(windows, lambda w: w.total_at(now) == 0, MAX_WINDOWS)
                window = windows[key] = SpendWindow(rate.spend_per_seconds)
            window.add(now, res.charged_micros)
            t = b.on_spend(now, window.total_at(now))
            if t is not None:
                records.apply(tx, b, kind, (t,), now)

    def _spend_windows(self, tx: Tx, now: float, *, exclude: str) -> dict[str, SpendWindow]:
        """The in-memory windows, rebuilt from recent settled reservations on first use."""
        if self._spend is not None:
            return self._spend
        horizon = now - (self._limits.longest_spend_window() or 0)
        resets = dict(
            tx.all("SELECT key, spend_reset_at FROM breakers WHERE spend_reset_at > ?", (horizon,))
        )
        windows: dict[str, SpendWindow] = {}
        # not charges "after now": the wall clock stepped back since they were made, and
        # they would count for the step as well (a false trip); their real age is unknown
        for scope, at, micros in tx.all(
            "SELECT scope, finished_at, charged_micros FROM reservations"
            " WHERE state = 'settled' AND finished_at > ? AND finished_at <= ?"
            " AND charged_micros > 0 AND id != ? ORDER BY finished_at",
            (horizon, now, exclude),
        ):
            keys = governing(scope)
            for key, kind in (keys[2], keys[0]):
                rate = self._limits.config(key, kind)
                if rate.spend_max_micros is None:
                    continue
                per = rate.spend_per_seconds
                if at <= now - per or at <= resets.get(key, float("-inf")):
                    continue
                window = windows.get(key)
                if window is None:
                    window = windows[key] = SpendWindow(per)
                window.add(at, micros)
        self._spend = windows
        return windows
