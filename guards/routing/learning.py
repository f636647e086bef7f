"""Learning from outcomes: an intent whose cheap calls keep failing is promoted a tier.

Each route decision is a row; when the call settles (the reservation carries the
``route_id``), :meth:`Learner.on_settle` records the outcome, and a validation
rejection of the agent's output marks its last successful call ``rejected``.
After a failed call, the intent's last ``promote.window_calls`` settled calls at its
lowest tier (small, or the tier it was promoted to) since its last promotion or
revert are counted; with at least ``min_calls`` of them and a failure rate of at
least ``rate``, the intent is promoted one tier in that namespace: recorded,
audited, and announced as :class:`~guards.events.RoutingPromoted` (a P2 alert).
An admin reverts it with :meth:`Learner.revert_promotion`; counting starts afresh.

Example (inside ``store.write``)::

    learner.on_settle(tx, route_id="rt_1a2b", outcome="failure", now=clock.now())
"""

from __future__ import annotations

from guards.config import RoutingPromote
from guards.errors import InvalidInput, NotFound
from guards.events import RoutingPromoted
from guards.prices import undated
from guards.routing import records
from guards.routing.records import FAILED, Promotion, RouteRow
from guards.routing.router import Floor
from guards.routing.tiers import TierName, rank, shift
from guards.scopes import Scope, ScopeError
from guards.store import Tx

__all__ = ["Learner"]

OUTCOMES = ("success", "failure", "timeout")
SYSTEM_ACTOR = "nightshift"


def _agent(scope: str) -> str:
    return Scope(scope).agent() or scope


class Learner:
    """Records outcomes of routed calls and promotes intents that fail too often."""

    def __init__(self, promote: RoutingPromote) -> None:
        self.promote = promote

    def floor(self, tx: Tx, *, namespace: str, intent: str) -> Floor | None:
        """The tier an intent was promoted to in a namespace, if it was."""
        active = records.active_promotion(tx, namespace=namespace, intent=intent)
        if active is None:
            return None
        why = (
            f"{active.failures} of the last {active.calls} {active.from_tier} calls"
            " failed or were rejected by validation"
        )
        return Floor(tier=active.to_tier, why=why)

    def on_settle(
        self,
        tx: Tx,
        *,
        route_id: str | None,
        outcome: str,
        now: float,
        scope: str | None = None,
        model: str | None = None,
    ) -> None:
        """Record how a routed call ended; the ledger calls this from its settle.

        A settle without a route, with an unknown route, from another agent than the one
        that asked for the route (when ``scope`` is given), or of a call made with
        another model than the one routed to (when ``model`` is given: its outcome says
        nothing of the route) changes nothing; neither does a second settle of the same
        route.
        """
        if route_id is None or outcome not in OUTCOMES:
            return
        row = records.find_decision(tx, route_id)
        if row is None or row.outcome is not None:
            return
        if scope is not None and _agent(scope) != _agent(row.scope):
            return
        if model is not None and undated(model) != undated(row.model):
            return
        records.set_outcome(tx, route_id=route_id, outcome=outcome, at=now)
        if outcome in FAILED:
            self._check(tx, row, now)

    def on_rejected(
        self, tx: Tx, *, scope: str, now: float, route_id: str | None = None
    ) -> str | None:
        """Count a validation rejection against the call that produced the output.

        That call is ``route_id`` when the agent sent it, else the agent's most recent
        successful routed call within ``promote.rejection_window_seconds``. Returns the
        route id marked ``rejected``, or None when there was none.
        """
        try:
            agent = _agent(Scope.parse(scope).path)
        except ScopeError as exc:
            raise InvalidInput("scope", f"scope: {exc}") from None
        row: RouteRow | None
        if route_id is not None:
            row = records.find_decision(tx, route_id)
            if row is None or row.outcome != "success" or _agent(row.scope) != agent:
                return None
        else:
            since = now - self.promote.rejection_window_seconds
            row = records.latest_success_under(tx, scope=agent, since=since)
            if row is None:
                return None
        records.mark_rejected(tx, route_id=row.id)
        self._check(tx, row, now)
        return row.id

    def _check(self, tx: Tx, row: RouteRow, now: float) -> None:
        """Promote the row's intent when its calls at its lowest tier fail too often."""
        cfg = self.promote
        if not cfg.enabled:
            return
        active = records.active_promotion(tx, namespace=row.namespace, intent=row.intent)
        lowest: TierName = active.to_tier if active is not None else "small"
        if row.tier != lowest or rank(lowest) >= rank(cfg.max_tier):
            return
        since = records.last_promotion_change(tx, namespace=row.namespace, intent=row.intent)
        outcomes = records.recent_outcomes(
            tx,
            namespace=row.namespace,
            intent=row.intent,
            tier=lowest,
            since=since,
            limit=cfg.window_calls,
        )
        failures = sum(1 for o in outcomes if o in FAILED)
        if len(outcomes) < cfg.min_calls or failures / len(outcomes) < cfg.rate:
            return
        promoted = shift(lowest, 1)
        records.insert_promotion(
            tx,
            namespace=row.namespace,
            intent=row.intent,
            from_tier=lowest,
            to_tier=promoted,
            failures=failures,
            calls=len(outcomes),
            at=now,
        )
        tx.audit(
            actor=SYSTEM_ACTOR,
            action="routing.promote",
            target=f"{row.namespace} {row.intent}",
            before=lowest,
            after=promoted,
            detail=(
                f"{failures} of the last {len(outcomes)} {lowest} calls"
                " failed or were rejected by validation"
            ),
        )
        tx.emit(
            RoutingPromoted(
                at=now,
                scope=row.namespace,
                intent=row.intent,
                from_tier=lowest,
                to_tier=promoted,
                failure_rate=round(failures / len(outcomes), 4),
            )
        )

    def revert_promotion(
        self, tx: Tx, *, intent: str, actor: str, namespace: str | None = None
    ) -> list[Promotion]:
        """Undo an intent's promotions (in one namespace, or everywhere); audited.

        Raises:
            NotFound: the intent has no active promotion there.
        """
        reverted = records.revert_promotions(
            tx, intent=intent, namespace=namespace, actor=actor, at=tx.clock.now()
        )
        if not reverted:
            where = f" in {namespace}" if namespace else ""
            raise NotFound(
                f"intent {intent!r} has no active promotion{where}; "
                "see the current ones with /agent routing"
            )
        by_namespace: dict[str, list[Promotion]] = {}
        for p in reverted:
            by_namespace.setdefault(p.namespace, []).append(p)
        for ns, promotions in by_namespace.items():
            tx.audit(
                actor=actor,
                action="routing.revert",
                target=f"{ns} {intent}",
                before=promotions[-1].to_tier,
                after=promotions[0].from_tier,
            )
        return reverted
