"""Learning from outcomes: an intent whose cheap calls keep failing is promoted a tier.

Each route decision is a row; when the call settles (the reservation carries the
``route_id``), :meth:`Learner.on_settle` records the outcome. A validation batch
that names the ``route_id`` of the call that wrote it, and is rejected for a reason
that speaks of the model's output (:data:`MODEL_REASONS`), marks that call
``rejected`` (:meth:`Learner.on_rejected`); a batch naming no call teaches nothing.
After a failed or rejected call, the intent's last ``promote.window_calls`` settled
calls at its lowest tier (small, or the tier it was promoted to) since its last
promotion, revert or lapse are counted, leaving out degraded decisions (the router
knew the model's breaker was open, or the budget capped the tier: such a call's
failure says nothing of the tier); with at least ``min_calls`` of them and a failure
rate of at least ``rate``, the intent is promoted one tier in that namespace:
recorded, audited, and announced as :class:`~guards.events.RoutingPromoted` (a P2
alert). An admin reverts it with :meth:`Learner.revert_promotion`; left alone, it
lapses ``promote.review_after`` after it was made (audited as Nightshift's own
action). Either way the intent goes back to its own tier and counting starts afresh.

A success is judged too, but only when it can change the verdict: it never raises the
failure rate (a window not full yet grows by a success; a full one drops its oldest
call, a failure or a success), so only the success that brings the window to
``min_calls`` can reach the rate (3 failures in 9 calls, then a success: 3 of 10), and
the first settle of an intent since the process started (a reload restarts it, and may
have lowered ``rate`` or ``min_calls``). Any other success costs one statement
(:func:`~guards.routing.records.counted_calls`), or none when it cannot count (degraded,
promotion off, at ``max_tier``): the settle of a routed call is on the hot path.

Example (inside ``store.write``)::

    learner.on_settle(tx, route_id="rt_1a2b", outcome="failure", now=clock.now())
"""

from __future__ import annotations

from collections.abc import Iterable

from guards.clock import to_datetime
from guards.config import RoutingPromote
from guards.config_types import in_words
from guards.errors import NotFound
from guards.events import NIGHTSHIFT, RoutingPromoted
from guards.prices import undated
from guards.reservation import OUTCOMES
from guards.routing import records
from guards.routing.records import FAILED, Promotion, RouteRow
from guards.routing.router import Floor
from guards.routing.tiers import TierName, rank, shift
from guards.scopes import Scope
from guards.store import Tx

__all__ = ["MODEL_REASONS", "Learner"]

SYSTEM_ACTOR = NIGHTSHIFT

# The validation reasons that say the call's own output was unusable, so they count
# against the tier that wrote it:
# - ``empty``: nothing was left of the answer (a refusal, a cut-off reply, bare markup);
# - ``runaway``: far more items than the agent asked of this call: the model did not
#   keep to the instruction (a loop, a list that never ends);
# - ``too_large``: an item over ``validation.max_item_chars``: the model did not keep
#   to the length it was given.
# ``duplicate`` and ``near_duplicate`` do not count: they compare the output with what
# the agent published before, so they say the input came again (a feed re-sending a
# story) or the agent ran twice; a bigger model would have written the same thing.
MODEL_REASONS = frozenset({"empty", "runaway", "too_large"})


def _agent(scope: str) -> str:
    return Scope(scope).agent() or scope


class Learner:
    """Records outcomes of routed calls and promotes intents that fail too often."""

    def __init__(self, promote: RoutingPromote) -> None:
        self.promote = promote
        # the intents (namespace, intent) whose calls at their lowest tier this process
        # has judged (kept once the judgement commits): from then on a success is judged
        # only when it brings the window to min_calls (see the module's docstring)
        self._judged: set[tuple[str, str]] = set()

    def floor(self, tx: Tx, *, namespace: str, intent: str) -> Floor | None:
        """The tier an intent was promoted to in a namespace, if it was (and it has not
        lapsed)."""
        active = self._active(tx, namespace=namespace, intent=intent)
        if active is None:
            return None
        why = (
            f"{active.failures} of the last {active.calls} {active.from_tier} calls"
            " failed or were rejected by validation"
        )
        return Floor(tier=active.to_tier, why=why)

    def lapses_at(self, promotion: Promotion) -> float | None:
        """When an active promotion lapses (``promote.review_after``), or None: never."""
        review = self.promote.review_after
        return None if review is None else promotion.promoted_at + review

    def promotions(self, tx: Tx, *, namespace: str | None = None) -> list[Promotion]:
        """The active promotions (in one namespace, or everywhere), lapsing the ones due."""
        self._lapse_due(tx)
        return records.list_promotions(tx, namespace=namespace)

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
        if outcome in FAILED or self._success_may_promote(tx, row):
            self._check(tx, row, now)

    def on_rejected(
        self,
        tx: Tx,
        *,
        route_id: str,
        within: str,
        reasons: Iterable[str],
        now: float,
        scope: str | None = None,
    ) -> str | None:
        """Count a rejected validation batch against the routed call that wrote it.

        Args:
            route_id: the call the batch names (a batch naming none teaches nothing:
                the agent's other calls did not write it).
            within: the node of the token that sent the batch; a decision outside its
                subtree is not its to judge.
            reasons: the batch's rejection reasons; only :data:`MODEL_REASONS` count.
            now: the time of the batch.
            scope: the batch's scope: its agent must be the one that asked for the route
                (as a settle's must), or another agent's output would judge the call.

        The call must have settled ``success`` within
        ``promote.rejection_window_seconds`` (a failed one counts already). Returns the
        route id marked ``rejected``, or None when nothing was counted.
        """
        if not MODEL_REASONS.intersection(reasons):
            return None
        row = records.find_decision(tx, route_id)
        if row is None or row.outcome != "success" or not Scope(row.scope).within(within):
            return None
        if scope is not None and _agent(scope) != _agent(row.scope):
            return None
        settled = row.settled_at if row.settled_at is not None else now
        if now - settled > self.promote.rejection_window_seconds:
            return None
        records.mark_rejected(tx, route_id=row.id)
        self._check(tx, row, now)
        return row.id

    def _success_may_promote(self, tx: Tx, row: RouteRow) -> bool:
        """Whether the success just recorded for ``row`` can promote its intent: only the
        one that brings the window to ``min_calls``, or the intent's first judgement in
        this process (see the module's docstring). One statement at most."""
        cfg = self.promote
        if not cfg.enabled or row.degraded or rank(row.tier) >= rank(cfg.max_tier):
            return False
        if (row.namespace, row.intent) not in self._judged:
            return True
        counted = records.counted_calls(
            tx,
            namespace=row.namespace,
            intent=row.intent,
            tier=row.tier,
            limit=cfg.min_calls + 1,
        )
        return counted == cfg.min_calls

    def _check(self, tx: Tx, row: RouteRow, now: float) -> None:
        """Promote the row's intent when its calls at its lowest tier fail too often."""
        cfg = self.promote
        if not cfg.enabled or row.degraded:  # a degraded call is no evidence (see above)
            return
        active = self._active(tx, namespace=row.namespace, intent=row.intent)
        lowest: TierName = active.to_tier if active is not None else "small"
        if row.tier != lowest:
            return
        judged = (row.namespace, row.intent)
        tx.after_commit.append(lambda: self._judged.add(judged))
        if rank(lowest) >= rank(cfg.max_tier):
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
            NotFound: the intent has no active promotion there (a lapsed one is not).
        """
        self._lapse_due(tx)
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

    def _active(self, tx: Tx, *, namespace: str, intent: str) -> Promotion | None:
        """The intent's active promotion, after lapsing it if its review is due."""
        active = records.active_promotion(tx, namespace=namespace, intent=intent)
        if active is None:
            return None
        due = self.lapses_at(active)
        if due is None or due > tx.clock.now():
            return active
        self._lapse(tx, active, at=due)
        return None

    def _lapse_due(self, tx: Tx) -> None:
        """Lapse every promotion whose review is due (the latest of each intent decides)."""
        if self.promote.review_after is None:
            return
        latest: dict[tuple[str, str], Promotion] = {}
        for p in records.list_promotions(tx):  # oldest first: the last one wins
            latest[(p.namespace, p.intent)] = p
        now = tx.clock.now()
        for p in latest.values():
            due = self.lapses_at(p)
            if due is not None and due <= now:
                self._lapse(tx, p, at=due)

    def _lapse(self, tx: Tx, latest: Promotion, *, at: float) -> None:
        """End an intent's promotions (a climb lapses whole): audited, learning restarts."""
        lapsed = records.lapse_promotions(
            tx, namespace=latest.namespace, intent=latest.intent, at=at
        )
        if not lapsed:
            return
        back_to = lapsed[0].from_tier
        since = to_datetime(latest.promoted_at).strftime("%Y-%m-%d %H:%M UTC")
        review = in_words(self.promote.review_after or 0)
        tx.audit(
            actor=SYSTEM_ACTOR,
            action="routing.lapse",
            target=f"{latest.namespace} {latest.intent}",
            before=latest.to_tier,
            after=back_to,
            detail=(
                f"promoted {since}; lapsed after {review} (routing.promote.review_after):"
                f" back to {back_to}, learning again"
            ),
        )
