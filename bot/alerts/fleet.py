"""The fleet at a glance (``/agent status``): agents, last heartbeat, breaker, spend today.

An agent is any agent-level scope the ledger has seen or that sent a heartbeat. Its
breaker state is its own breaker's, or an ancestor's (user, namespace) when that one
is not closed, since it refuses the agent's calls too.

Every agent is counted and sorted (the ones that need a look first, then by spend
today) before the list is cut to ``limit``, so an unhealthy agent is never left out
while a healthy one is shown, and the counts are of the whole fleet.

It reads committed rows only, so it runs off the writer (:meth:`guards.store.Store.read`):
listing 10,000 agents took 174 ms, which on the writer held every reservation. It reads
the whole fleet in a constant number of queries, each over an index (the agents by
``scopes_depth``, their spend of the day by ``usage_daily``'s key, the calls refused
today by ``refusals_daily_day``), never two queries per agent (review28 R2 H1: 10,000
agents took 16-20 s, most of it the hint line, see :mod:`bot.commands_status`).

An agent known only by refused calls (no reservation, no heartbeat) is of the fleet
while it needs a look: while a call of it was refused in its namespace's day so far, or
while a model's kill switch that refused it in its spell stays forced open, or while its
namespace's or user's breaker stays open or waits for a trial, a call of it refused on
the day that breaker opened or after (review28 R6 L2). One refused once, months ago, is
not (``refusals_daily`` keeps every day, and a fleet of generated agent names would
pile up for good).

Example:
    >>> # view = await store.read(lambda tx: fleet(tx, ledger=ns.ledger, now=now, limit=45))
    >>> # view.total, view.need_a_look, view.agents[:3]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot.alerts.heartbeats import is_stopped
from guards.breaker_state import REFUSING
from guards.config import Heartbeats
from guards.ledger import Ledger
from guards.scopes import Scope, ancestors_of
from guards.store import Tx
from guards.usage import periods_at

__all__ = ["DISABLED_BREAKERS", "AgentStatus", "Fleet", "fleet"]

_AGENTS = "SELECT path FROM scopes WHERE depth = 3 UNION SELECT scope FROM heartbeats"
# every agent's spend of the days that are "today" in some namespace (a JSON list: one
# day, or two or three while zones are on different dates), one key seek per agent
_SPENT_TODAY = (
    "SELECT u.scope, u.day, u.spent_micros FROM scopes AS s JOIN usage_daily AS u"
    " ON u.scope = s.path AND u.day IN (SELECT value FROM json_each(?)) WHERE s.depth = 3"
)
# calls refused before they started (a 402, a 503, a 429) on those days: a refused call
# makes no scope row, so an agent whose every call met a kill switch is known by these
# alone (recheck27 Kd L1); the days' rows only, by refusals_daily_day (migration 0051)
_REFUSED_TODAY = (
    "SELECT scope, day, reason, calls FROM refusals_daily"
    " WHERE day IN (SELECT value FROM json_each(?)) AND calls > 0"
)
# the agents a model's kill switch refused in its spell now (migration 0048's rows)
_KILL_SWITCHED = "SELECT agent FROM model_breaker_refusals WHERE key = ? AND since = ?"
# each agent refused since the earliest spell of a namespace's or user's breaker that
# refuses every call below it, with its last such day (review28 R6 L2): one read of the
# days since by refusals_daily_day (never a scan of every day ever counted): 15 ms for
# 10,000 agents refused in a day, 160 ms for the same refused every day of a 30-day spell
_REFUSED_SINCE = (
    "SELECT scope, MAX(day) FROM refusals_daily INDEXED BY refusals_daily_day"
    " WHERE day >= ? GROUP BY scope"
)

# per scope: the open alerts, and those of them a person is waited for on (P0, P1 not
# acknowledged nor silenced: an agent with one needs a look, audit18 soak finding 2)
_OPEN_ALERTS = (
    "SELECT scope, COUNT(*), SUM(tier IN ('P0', 'P1') AND acked_at IS NULL"
    " AND silence_id IS NULL) FROM alerts WHERE resolved_at IS NULL GROUP BY scope"
)

# said above breaker states while breakers.enabled is false (audit17 policy M4)
DISABLED_BREAKERS = (
    "⚠️ Breakers are disabled (`breakers.enabled: false` in the policy): no breaker stops a"
    " call; the states shown are as they were left"
)


@dataclass(frozen=True, slots=True)
class AgentStatus:
    scope: str
    last_seen: float | None
    heartbeat_status: str | None
    heartbeat_detail: str | None
    heartbeat_missed: bool
    breaker_state: str
    breaker_reason: str
    breaker_scope: str | None
    spent_today_micros: int
    open_alerts: int
    unanswered: int = 0  # open P0 and P1 alerts nobody acknowledged or silenced
    refused_today: tuple[tuple[str, int], ...] = ()  # (reason, calls) of its day, by reason

    @property
    def healthy(self) -> bool:
        """No missed heartbeat, no breaker holding it, no page waiting for an answer, no
        call refused today (one refused by its budget alone had $0 spent, and sorted below
        the cut: review28 R2 L4)."""
        return (
            not self.heartbeat_missed
            and self.breaker_state == "closed"
            and not self.unanswered
            and not self.refused_today
        )

    def heartbeat_overdue(self, config: Heartbeats, now: float) -> bool:
        """Late by more than one timeout (not yet an alert, which waits for more misses)."""
        if self.last_seen is None or is_stopped(self.heartbeat_status):
            return False
        return now - self.last_seen > config.timeout_seconds


def _breakers(tx: Tx, ledger: Ledger) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """The breakers not closed, and the agents one refused in its spell now (agent -> the
    breaker's key): a model's kill switch (its rows of refused agents), or a namespace's
    or user's breaker that refuses every call below it (an agent under it refused on the
    day its spell began, in its namespace's zone, or after)."""
    present = tx.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'breakers'")
    if present is None:
        return {}, {}
    rows = tx.all(
        "SELECT key, state, reason, since, opened_at FROM breakers WHERE state != 'closed'"
    )
    switched: dict[str, str] = {}
    above: dict[str, str] = {}  # a namespace's or user's refusing breaker -> its spell's day
    for key, state, _, since, opened_at in rows:
        if state == "forced_open" and str(key).startswith("model:"):
            for (agent,) in tx.all(_KILL_SWITCHED, (key, since)):
                switched.setdefault(str(agent), str(key))
        elif state in REFUSING and ":" not in key and key.count("/") < 2:
            zone = ledger.timezone(key.split("/", 1)[0])
            above[key] = periods_at(opened_at if opened_at is not None else since, zone)[0]
    if above:
        for scope, day in tx.all(_REFUSED_SINCE, (min(above.values()),)):
            path = str(scope)
            for node in ancestors_of(path)[:2]:
                if node in above and day >= above[node]:
                    switched.setdefault(path, node)
                    break
    return {r[0]: (r[1], r[2]) for r in rows}, switched


@dataclass(frozen=True, slots=True)
class Fleet:
    """The fleet's counts (of the agents ``within`` a scope, when given) and its first
    ``limit`` agents, the unhealthy ones first.

    ``scopes``: every agent counted, in the same order (what a cut list left out);
    ``fleet_total``: every agent of the fleet, whatever ``within`` (the scope counted).
    """

    total: int
    need_a_look: int
    agents: list[AgentStatus]
    scopes: list[str] = field(default_factory=list)
    fleet_total: int = 0
    within: str | None = None


def fleet(tx: Tx, *, ledger: Ledger, now: float, limit: int, within: str | None = None) -> Fleet:
    """Every agent counted and sorted; the first ``limit`` of them in full.

    The whole fleet is read (no LIMIT in SQL): the order needs every agent's health and
    spend, and the counts are of every agent, not of the rows shown. ``within``: only the
    agents at or below that scope are counted and listed.
    """
    beats = {
        r[0]: (r[1], r[2], r[3], r[4] is not None)
        for r in tx.all("SELECT scope, last_seen, status, detail, missed_at FROM heartbeats")
    }
    alerts: dict[str, list[int]] = {}  # agent -> [open, unanswered]
    for alert_scope, n, unanswered in tx.all(_OPEN_ALERTS):
        agent = "/".join(str(alert_scope).split("/")[:3])
        counts = alerts.setdefault(agent, [0, 0])
        counts[0] += int(n)
        counts[1] += int(unanswered)
    breakers, switched = _breakers(tx, ledger)
    today = _Today(ledger, now)
    days = json.dumps(today.days())
    spent = {(str(r[0]), str(r[1])): int(r[2]) for r in tx.all(_SPENT_TODAY, (days,))}
    refused: dict[str, list[tuple[str, int]]] = {}  # agent -> its (reason, calls) of its day
    for scope, day, reason, calls in tx.all(_REFUSED_TODAY, (days,)):
        if day == today.of(str(scope)):
            refused.setdefault(str(scope), []).append((str(reason), int(calls)))
    out = []
    every = _agent_paths(tx, ledger, [*breakers, *alerts, *refused, *switched])
    for path in every:
        if within is not None and path != within and not path.startswith(within + "/"):
            continue
        try:
            scope = Scope.parse(path)
        except ValueError:
            scope = None  # not a scope (never written by the API): counted, shown as is
        state, reason, where = "closed", "", None
        for node in reversed(scope.ancestors() if scope else [path]):
            if node in breakers:
                (state, reason), where = breakers[node], node
                break
        else:  # a model's kill switch refused its calls: it holds the agent too
            if path in switched:
                where = switched[path]
                state, reason = breakers[where]
        seen, status, detail, missed = beats.get(path, (None, None, None, False))
        out.append(
            AgentStatus(
                scope=path,
                last_seen=seen,
                heartbeat_status=status,
                heartbeat_detail=detail,
                heartbeat_missed=missed,
                breaker_state=state,
                breaker_reason=reason,
                breaker_scope=where if where != path else None,
                spent_today_micros=spent.get((path, today.of(path)), 0) if scope else 0,
                open_alerts=alerts.get(path, [0, 0])[0],
                unanswered=alerts.get(path, [0, 0])[1],
                refused_today=tuple(sorted(refused.get(path, ()), key=lambda r: -r[1])),
            )
        )
    out.sort(key=lambda a: (a.healthy, -a.spent_today_micros, a.scope))
    need_a_look = sum(1 for a in out if not a.healthy)
    return Fleet(
        total=len(out),
        need_a_look=need_a_look,
        agents=out[:limit],
        scopes=[a.scope for a in out],
        fleet_total=len(every),
        within=within,
    )


class _Today:
    """The day so far of each namespace (its own time zone's date, or the policy's)."""

    def __init__(self, ledger: Ledger, now: float) -> None:
        self._ledger = ledger
        self._now = now
        self._day: dict[str, str] = {}

    def days(self) -> list[str]:
        """Every date that is "today" in some namespace: the policy's zone's and those of
        the namespaces on a zone of their own (one, or two or three near midnight)."""
        policy = self._ledger.policy
        zones = {policy.timezone, *(b.timezone for b in policy.budgets.scopes.values())}
        return sorted({periods_at(self._now, ZoneInfo(z))[0] for z in zones if z})

    def of(self, path: str) -> str:
        """The day so far of the namespace of ``path``."""
        namespace = path.split("/", 1)[0]
        day = self._day.get(namespace)
        if day is None:
            zone = self._ledger.timezone(namespace)
            day = self._day[namespace] = periods_at(self._now, zone)[0]
        return day


def _agent_paths(tx: Tx, ledger: Ledger, named: list[str]) -> list[str]:
    """Every agent: those that reserved or beat, and those known otherwise (an agent that
    only runs jobs never reserves, yet its breaker may hold it, audit18 fleet finding 1):
    a job's, and the agent of a breaker, an open alert or a call refused today in ``named``."""
    paths = {str(r[0]) for r in tx.all(_AGENTS)}
    for name in [*(job.scope for job in ledger.policy.jobs), *named]:
        try:
            scope = Scope.parse(name)
        except ValueError:
            continue  # a model's breaker or alert (`model:gpt-5`), not an agent's
        agent = scope.agent()
        if agent is not None:
            paths.add(agent)
    return sorted(paths)
