"""The fleet at a glance (``/agent status``): agents, last heartbeat, breaker, spend today.

An agent is any agent-level scope the ledger has seen or that sent a heartbeat. Its
breaker state is its own breaker's, or an ancestor's (user, namespace) when that one
is not closed, since it refuses the agent's calls too.

Example:
    >>> # rows = await store.write(lambda tx: fleet(tx, ledger=ns.ledger, now=now))
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.alerts.heartbeats import is_stopped
from guards.config import Heartbeats
from guards.ledger import Ledger
from guards.scopes import Scope
from guards.store import Tx

__all__ = ["AgentStatus", "fleet"]

MAX_AGENTS = 500


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

    @property
    def healthy(self) -> bool:
        return not self.heartbeat_missed and self.breaker_state == "closed"

    def heartbeat_overdue(self, config: Heartbeats, now: float) -> bool:
        """Late by more than one timeout (not yet an alert, which waits for more misses)."""
        if self.last_seen is None or is_stopped(self.heartbeat_status):
            return False
        return now - self.last_seen > config.timeout_seconds


def _breakers(tx: Tx) -> dict[str, tuple[str, str]]:
    present = tx.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'breakers'")
    if present is None:
        return {}
    rows = tx.all("SELECT key, state, reason FROM breakers WHERE state != 'closed'")
    return {r[0]: (r[1], r[2]) for r in rows}


def fleet(tx: Tx, *, ledger: Ledger, now: float) -> list[AgentStatus]:
    """Every agent's status, the ones that need a look first, then by spend today."""
    agents = {
        r[0]
        for r in tx.all(
            "SELECT path FROM scopes WHERE depth = 3 UNION SELECT scope FROM heartbeats LIMIT ?",
            (MAX_AGENTS,),
        )
    }
    beats = {
        r[0]: (r[1], r[2], r[3], r[4] is not None)
        for r in tx.all("SELECT scope, last_seen, status, detail, missed_at FROM heartbeats")
    }
    alerts: dict[str, int] = {}
    for (alert_scope,) in tx.all("SELECT scope FROM alerts WHERE resolved_at IS NULL"):
        agent = "/".join(str(alert_scope).split("/")[:3])
        alerts[agent] = alerts.get(agent, 0) + 1
    breakers = _breakers(tx)
    out = []
    for path in agents:
        try:
            scope = Scope.parse(path)
        except ValueError:
            continue
        spent = next(
            (
                u.spent_micros
                for u in ledger.usage(tx, scope, now=now)
                if u.scope == path and u.window == "day"
            ),
            0,
        )
        state, reason, where = "closed", "", None
        for node in reversed(scope.ancestors()):
            if node in breakers:
                (state, reason), where = breakers[node], node
                break
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
                spent_today_micros=spent,
                open_alerts=alerts.get(path, 0),
            )
        )
    out.sort(key=lambda a: (a.healthy, -a.spent_today_micros, a.scope))
    return out
