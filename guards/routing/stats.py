"""What routing did in a period, for ``/agent routing``: decisions, calls, money, promotions.

Two things are counted apart, because they differ:

- **Route decisions**: answers of ``POST /v1/route``. Many are never followed by a
  call (an agent asks and then does nothing, or calls without passing the
  ``route_id``), so they say what the router chose, not what was spent.
- **Calls**: the settled reservations that name a decision's ``route_id``. Their mix
  is by the model the settle charged (an agent may call another model than the one
  routed to), and their money is what the ledger charged.

The saving re-prices each call's charge at the large tier's blended price (one price
per million tokens, ``routing.blend_input_share`` of input, the rest output), as the
digest does: $1.00 charged on a model blended at $2/MTok would have cost about $15.00
on one blended at $30/MTok. Calls on a model without a price are left out of it.

Example (inside ``store.write``)::

    stats = routing_stats(tx, routing=policy.routing, prices=prices,
                          since=now - 86400, until=now)
    print("\\n".join(stats.lines()))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from guards.clock import to_datetime
from guards.config import Routing
from guards.money import usd_for
from guards.prices import PriceTable, undated
from guards.routing import records
from guards.routing.records import Promotion
from guards.routing.tiers import TIERS
from guards.store import Tx
from guards.words import plural

__all__ = ["OTHER", "UNNAMED", "RoutingStats", "blended_price", "routing_stats"]

OTHER = "other"  # a call charged to a model no tier names (a fallback, the agent's own)
UNNAMED = "unnamed"  # a call whose reservation and settle named no model


def blended_price(prices: PriceTable, model: str, *, input_share: float) -> int | None:
    """Micro-dollars per million tokens of ``model`` at the given input share, or None."""
    return prices.blended(model, input_share=input_share)


@dataclass(frozen=True, slots=True)
class RoutingStats:
    """Routing over ``[since, until)``, optionally under one scope.

    ``decisions`` are route decisions made in the period; ``calls`` the settled calls
    that followed them (by ``route_id``), ``call_shares`` by the tier of the model
    charged, ``charged_micros`` what the ledger charged for them.
    """

    since: float
    until: float
    scope: str | None
    decisions: int
    decision_shares: dict[str, float]
    degraded: int
    followed: int  # decisions followed by at least one settled call
    calls: int
    call_shares: dict[str, float]
    failed: int
    off_route: int  # calls charged to another model than the one routed to
    unnamed: int  # calls whose reservation and settle named no model (no tier, no price)
    charged_micros: int
    largest_model: str
    # the calls on priced models: what they were charged, and about what the large
    # tier's model would have charged for them (None when no call had a price)
    priced_charged_micros: int = 0
    would_cost_micros: int | None = None
    promotions: list[Promotion] = field(default_factory=list)
    review_after: int | None = None  # seconds after which a promotion lapses
    unpriced: list[str] = field(default_factory=list)

    @property
    def saving(self) -> float | None:
        """The fraction saved against the large tier's model for every call (0.8 = 80%)."""
        if not self.would_cost_micros:
            return None
        return 1 - self.priced_charged_micros / self.would_cost_micros

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["saving"] = self.saving
        return data

    def lines(self) -> list[str]:
        """Plain-text lines, short enough for a phone; Slack and the shell render them."""
        where = f" under {self.scope}" if self.scope else ""
        if not self.decisions:
            out = [f"routing{where}: no route decisions in this period"]
        else:
            followed = f"{self.followed:,}" if self.followed else "none"
            out = [
                f"routing{where}: {plural(self.decisions, 'route decision')}"
                f" ({_mix(self.decision_shares)}), {followed} followed by a call"
            ]
            out.extend(self._call_lines())
            if self.degraded:
                why = "budget pressure, model budgets or open breakers"
                out.append(f"{plural(self.degraded, 'decision')} degraded ({why})")
        out.extend(self._promotion_lines())
        return out

    def _call_lines(self) -> list[str]:
        if not self.calls:
            return []
        out = [f"{plural(self.calls, 'call')}, by model charged: {_mix(self.call_shares)}"]
        usd = usd_for(self.charged_micros, self.would_cost_micros or 0)  # cents unless tiny
        money = f"charged {usd(self.charged_micros)}"
        if self.would_cost_micros and self.saving is not None:
            money += f"; all on {self.largest_model}: about {usd(self.would_cost_micros)}"
            if self.saving >= 0:
                money += f" (saving {self.saving:.0%})"
            else:  # calls on a model dearer than the large tier's: no "saving -200%"
                dearer = self.priced_charged_micros / self.would_cost_micros
                money += f" (no saving: the calls cost {dearer:.1f}x that)"
        out.append(money)
        if self.off_route:
            out.append(f"{plural(self.off_route, 'call')} charged another model than routed to")
        if self.unnamed:
            out.append(f"{plural(self.unnamed, 'call')} named no model: left out of the saving")
        if self.failed:
            out.append(f"{plural(self.failed, 'call')} failed or timed out")
        if self.unpriced:
            out.append(f"no price for {', '.join(self.unpriced)}: left out of the saving")
        return out

    def _promotion_lines(self) -> list[str]:
        if not self.promotions:
            return ["promotions: none"]
        out = []
        for p in self.promotions:
            since = _when(p.promoted_at)
            lapses = (
                f"lapses {_when(p.promoted_at + self.review_after)}"
                if self.review_after is not None
                else "until reverted"
            )
            out.append(
                f"promoted: {p.intent} in {p.namespace} {p.from_tier} → {p.to_tier}"
                f" since {since}, {lapses} ({p.failures} of {p.calls} calls failed or were"
                f" rejected by validation); revert: /agent routing revert {p.intent}"
            )
        return out


def _mix(shares: dict[str, float]) -> str:
    parts = [f"{t} {shares.get(t, 0.0):.0%}" for t in TIERS]
    parts.extend(f"{extra} {shares[extra]:.0%}" for extra in (OTHER, UNNAMED) if extra in shares)
    return " · ".join(parts)


def _when(at: float) -> str:
    return to_datetime(at).strftime("%Y-%m-%d %H:%M UTC")


def routing_stats(
    tx: Tx,
    *,
    routing: Routing,
    prices: PriceTable,
    since: float,
    until: float,
    scope: str | None = None,
    promotions: list[Promotion] | None = None,
) -> RoutingStats:
    """Decisions made in ``[since, until)`` (under ``scope`` when given) and their calls.

    ``promotions`` are the active ones to list (the caller lapses those due first);
    when left out they are read as they stand.
    """
    counts = records.tier_counts(tx, since=since, until=until, scope=scope)
    decisions = sum(c.decisions for c in counts)
    calls = records.call_counts(tx, since=since, until=until, scope=scope)
    n_calls = sum(c.calls for c in calls)
    tier_of = {undated(t.model): name for name, t in routing.tiers.items()}
    share = routing.blend_input_share
    largest = routing.tiers["large"].model
    large_price = blended_price(prices, largest, input_share=share)
    call_tiers: dict[str, int] = {}
    priced = would_cost = 0
    unpriced: set[str] = set()
    for c in calls:
        # the model charged, never the one routed to: an agent may call another
        tier = tier_of.get(undated(c.model), OTHER) if c.model else UNNAMED
        call_tiers[tier] = call_tiers.get(tier, 0) + c.calls
        if c.model is None:
            continue
        price = blended_price(prices, c.model, input_share=share)
        if not price or not large_price:  # unpriced, or free: nothing to compare
            if price is None:
                unpriced.add(c.model)
            continue
        priced += c.charged_micros
        would_cost += c.charged_micros * large_price // price
    if promotions is None:
        namespace = scope.split("/", 1)[0] if scope else None
        promotions = records.list_promotions(tx, namespace=namespace)
    return RoutingStats(
        since=since,
        until=until,
        scope=scope,
        decisions=decisions,
        decision_shares={c.tier: c.decisions / decisions for c in counts},
        degraded=sum(c.degraded for c in counts),
        followed=sum(c.followed for c in counts),
        calls=n_calls,
        call_shares={t: n / n_calls for t, n in call_tiers.items()},
        failed=sum(c.failed for c in calls),
        off_route=sum(c.calls for c in calls if _off_route(c)),
        unnamed=sum(c.calls for c in calls if c.model is None),
        charged_micros=sum(c.charged_micros for c in calls),
        largest_model=largest,
        priced_charged_micros=priced,
        would_cost_micros=would_cost if priced else None,
        promotions=promotions,
        review_after=routing.promote.review_after,
        unpriced=sorted(unpriced),
    )


def _off_route(c: records.CallCount) -> bool:
    return c.model is not None and undated(c.model) != undated(c.routed_model)
