"""The model breakers a namespace's traffic met, for its digest.

A model's breaker (``model:<name>``) is every namespace's: it trips when the model fails
for several agents, whoever they belong to. A namespace's digest tells an *outage* of
it (from the breaker's move out of ``closed`` to its move back to ``closed``) when the
namespace's traffic met it:

- one of its calls named the model (a reservation's ``model``; a dated name counts as
  its model's, as the breaker stops it) from :data:`OUTAGE_LEAD_SECONDS` before the
  breaker opened until it closed: the window in which an agent's trip is part of the
  model's outage (README, *A provider's outage*), so the calls that tripped it and
  those made while it was open. Read by time, never through the namespace's whole
  history: the counters of each day (``model_usage_daily``, what its holds named;
  ``digest_model_daily``, what its settles named) first say on which days the
  namespace named the model at all, and only the window's reservations of those days
  (and one either side) are read, through their ids, which carry the time (review27
  R3 M1: the namespace's every reservation was read, 0.5-0.8 s per outage at
  300,000), the model tested in SQL, so the first call that names it ends the read
  (recheck27 Kc L1: every reservation of the fleet in the window was read, for a kill
  switch left on for weeks each day's digest read weeks); or
- the model's kill switch refused one of its calls (``model_breaker_refusals``: a
  refused call leaves no reservation; review27 R3 M2); or
- routing passed the model over for the namespace while it was open (a route whose
  reason says "<model> breaker open").

A namespace whose traffic never met the model does not hear of its outage.

Example:
    >>> t = [("model:m", "closed", "open", "10 failures", "failures", 100.0, "breaker"),
    ...      ("model:m", "open", "half_open", "trial", None, 1000.0, "breaker"),
    ...      ("model:m", "half_open", "open", "trial failed", "trial", 1010.0, "breaker"),
    ...      ("model:m", "open", "closed", "trial ok", None, 3000.0, "breaker")]
    >>> [(o.model, o.opened_at, o.closed_at, o.trips(0.0, 9e9)) for o in outages(t)]
    [('m', 100.0, 3000.0, 2)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from guards.breaker_kinds import MODEL_PREFIX, model_keys
from guards.breaker_records import AUTOMATIC, OUTAGE_LEAD_SECONDS
from guards.breaker_state import CLOSED, FORCED_OPEN, HALF_OPEN, OPEN
from guards.ledger_rows import first_reservation_id
from guards.prices import undated
from guards.routing.budget_room import breaker_block

__all__ = ["MODEL_SCOPES", "Outage", "Transition", "is_trip", "met_outages", "outages"]

# (scope, from_state, to_state, reason, trip, at, actor), as breaker_transitions holds it
Transition = tuple[str, str, str, str, str | None, float, str]
# the bounds of every model breaker's key: "model:" sorts before any name, "model;" after
MODEL_SCOPES = (MODEL_PREFIX, MODEL_PREFIX[:-1] + ";")
Rows = Callable[[str, str, Sequence[Any]], list[Any]]

# On which of these days did the namespace's holds name the model (its undated name, as
# they count it)? Its settles (a settle may name another model than its hold)?
_HELD = (
    "SELECT day FROM model_usage_daily WHERE namespace = ? AND model = ? AND day >= ? AND day <= ?"
)
_SETTLED = "SELECT day, model FROM digest_model_daily WHERE namespace = ? AND day >= ? AND day <= ?"
# Did one of the namespace's reservations of a span name the model: the span's ids,
# through the primary key (`+scope`: not the namespace's every reservation through its
# scope index), up to the first that does. A name names the model as model_keys says:
# the model's name, or it with one snapshot suffix (guards.prices.undated). Names are
# ASCII without GLOB's wildcards (is_model_name), and the suffix is tested apart.
_NAME = "lower(trim(model))"
_SUFFIX = f"substr({_NAME}, ?)"
_CALLED = (
    "SELECT 1 FROM reservations WHERE id >= ? AND id < ?"
    " AND +scope >= ? AND +scope < ? AND created_at >= ? AND created_at < ?"
    f" AND substr({_NAME}, 1, ?) = ? AND ({_SUFFIX} IN ('', '-latest')"
    f" OR {_SUFFIX} GLOB '-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]'"
    f" OR {_SUFFIX} GLOB '-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]') LIMIT 1"
)
# Did the model's kill switch refuse one of the namespace's calls during the outage? A
# forced-open spell (its `since`) lies within one outage.
_REFUSED = (
    "SELECT 1 FROM model_breaker_refusals WHERE key = ? AND since >= ? AND since <= ?"
    " AND agent >= ? AND agent < ? LIMIT 1"
)
_ROUTED_AROUND = (
    "SELECT 1 FROM routing_decisions WHERE namespace = ? AND at >= ? AND at < ?"
    " AND instr(lower(reason), ?) > 0 LIMIT 1"
)


def is_trip(before: str, after: str, actor: str) -> bool:
    """A breaker opened: it tripped or was forced open (out of ``closed``), or its trial
    failed (out of ``half_open``, by the breaker itself: the calls it let through). A
    person who keeps a breaker open or forces it open once it is out of ``closed``
    (waiting for a trial, open, or in a trial: "Keep open" stops a running trial) opens
    nothing: no trip. The digest and the demo's table count by this one rule.

    >>> is_trip("closed", "open", AUTOMATIC), is_trip("half_open", "open", AUTOMATIC)
    (True, True)
    >>> is_trip("half_open", "open", "U0DANA"), is_trip("half_open_pending", "open", "U0DANA")
    (False, False)
    """
    if before == CLOSED:
        return after in (OPEN, FORCED_OPEN)
    return before == HALF_OPEN and after == OPEN and actor == AUTOMATIC


@dataclass(frozen=True, slots=True)
class Outage:
    """One model breaker's time out of ``closed``, with its transitions."""

    key: str
    opened_at: float
    closed_at: float | None  # None: not closed by the end of what was read
    transitions: tuple[Transition, ...]

    @property
    def model(self) -> str:
        return self.key[len(MODEL_PREFIX) :]

    def trips(self, start: float, end: float) -> int:
        """How often it opened in ``[start, end)``."""
        return sum(1 for t in self.transitions if start <= t[5] < end and is_trip(t[1], t[2], t[6]))


def outages(transitions: Sequence[Transition]) -> list[Outage]:
    """The model breakers' outages in ``transitions`` (oldest first within a key)."""
    found: list[Outage] = []
    current: dict[str, list[Transition]] = {}
    for t in transitions:
        scope, before, after = t[0], t[1], t[2]
        if scope not in current:
            if before == CLOSED and after != CLOSED:
                current[scope] = [t]
            continue
        current[scope].append(t)
        if after == CLOSED:
            span = current.pop(scope)
            found.append(Outage(scope, span[0][5], t[5], tuple(span)))
    found.extend(Outage(k, span[0][5], None, tuple(span)) for k, span in current.items())
    return sorted(found, key=lambda o: (o.opened_at, o.key))


def met_outages(
    rows: Rows,
    transitions: Sequence[Transition],
    *,
    namespace: str,
    subtree: tuple[str, str],
    start: float,
    stop: float,
    tz: ZoneInfo,
) -> list[Outage]:
    """The outages in ``transitions`` that reach into ``[start, stop)`` and that the
    namespace's traffic met (see the module's docstring). ``rows(table, sql, params)``
    runs one query; ``subtree`` is the namespace's ``(lo, hi)`` scope bounds; ``tz``
    its time zone (its counters' days)."""
    met: list[Outage] = []
    for o in outages(transitions):
        until = o.closed_at if o.closed_at is not None else stop
        if o.opened_at >= stop or until < start:
            continue
        if rows("model_breaker_refusals", _REFUSED, (o.key, o.opened_at, until, *subtree)):
            met.append(o)
            continue
        span = (o.opened_at - OUTAGE_LEAD_SECONDS, until)
        if _called(rows, o, namespace=namespace, subtree=subtree, span=span, tz=tz):
            met.append(o)
            continue
        around = breaker_block(o.model).short.lower()  # the router's own words
        if rows("routing_decisions", _ROUTED_AROUND, (namespace, o.opened_at, until, around)):
            met.append(o)
    return met


def _called(
    rows: Rows,
    o: Outage,
    *,
    namespace: str,
    subtree: tuple[str, str],
    span: tuple[float, float],
    tz: ZoneInfo,
) -> bool:
    """Whether a reservation of the namespace made in ``span`` named the outage's model."""
    since, until = span
    # the local days of the span, and one either side (a day is the hold's, in the time
    # zone of when it was taken: a policy's zone may have changed since)
    first = (datetime.fromtimestamp(since, tz).date() - timedelta(days=1)).isoformat()
    last = (datetime.fromtimestamp(until, tz).date() + timedelta(days=1)).isoformat()
    days = {
        str(r[0])
        for r in rows("model_usage_daily", _HELD, (namespace, undated(o.model), first, last))
    }
    days.update(
        str(r[0])
        for r in rows("digest_model_daily", _SETTLED, (namespace, first, last))
        if r[1] and o.key in model_keys(str(r[1]))
    )
    name = o.model
    named = (len(name), name, *(len(name) + 1,) * 3)
    for lo, hi in _day_spans(days, tz, since=since, until=until):
        # a second either side of the ids' span: their time is in whole milliseconds
        ids = (first_reservation_id(lo - 1), first_reservation_id(hi + 1))
        if rows("reservations", _CALLED, (*ids, *subtree, lo, hi, *named)):
            return True
    return False  # none of its calls those days named the model


def _day_spans(
    days: set[str], tz: ZoneInfo, *, since: float, until: float
) -> list[tuple[float, float]]:
    """The parts of ``[since, until)`` within a day of one of ``days`` (a counter's day:
    the day before and after too), joined where they touch, oldest first."""
    spans: list[tuple[float, float]] = []
    for text in sorted(days):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            continue
        lo = datetime.combine(day - timedelta(days=1), datetime.min.time(), tz).timestamp()
        hi = datetime.combine(day + timedelta(days=2), datetime.min.time(), tz).timestamp()
        lo, hi = max(lo, since), min(hi, until)
        if lo >= hi:
            continue
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(hi, spans[-1][1]))
        else:
            spans.append((lo, hi))
    return spans
