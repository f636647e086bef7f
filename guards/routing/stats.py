"""The routing mix for the digest and ``/agent routing``: shares, blended price, saving.

The blended price of a model is one price per million tokens, mixing its input and
output prices at ``routing.blend_input_share`` (0.75: three input tokens per output
token, typical of agent calls). The mix's blended price weighs each call equally;
the saving compares it with sending every call to the large tier's model.

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
from guards.money import format_usd
from guards.prices import PriceTable
from guards.routing import records
from guards.routing.records import Promotion
from guards.routing.tiers import TIERS
from guards.store import Tx

__all__ = ["ModelMix", "RoutingStats", "blended_price", "routing_stats"]


def blended_price(prices: PriceTable, model: str, *, input_share: float) -> int | None:
    """Micro-dollars per million tokens of ``model`` at the given input share, or None."""
    return prices.blended(model, input_share=input_share)


@dataclass(frozen=True, slots=True)
class ModelMix:
    tier: str
    model: str
    calls: int
    share: float
    degraded: int
    failed: int
    micros_per_mtok: int | None


@dataclass(frozen=True, slots=True)
class RoutingStats:
    """The routing mix over ``[since, until)``, optionally under one scope."""

    since: float
    until: float
    scope: str | None
    calls: int
    models: list[ModelMix]
    tier_shares: dict[str, float]
    degraded: int
    blended_micros_per_mtok: int | None
    largest_model: str
    largest_micros_per_mtok: int | None
    promotions: list[Promotion] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)

    @property
    def saving(self) -> float | None:
        """The fraction saved against always using the large tier (0.8 = 80% cheaper)."""
        if not self.blended_micros_per_mtok or not self.largest_micros_per_mtok:
            return None
        return 1 - self.blended_micros_per_mtok / self.largest_micros_per_mtok

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["saving"] = self.saving
        return data

    def lines(self) -> list[str]:
        """Plain-text lines; the Slack and shell layers render them as they like."""
        where = f" under {self.scope}" if self.scope else ""
        if not self.calls:
            out = [f"routing{where}: no decisions in this period"]
        else:
            mix = " · ".join(f"{t} {self.tier_shares.get(t, 0.0):.0%}" for t in TIERS)
            out = [f"routing{where}: {self.calls:,} calls: {mix}"]
            if self.blended_micros_per_mtok is not None:
                line = f"blended {format_usd(self.blended_micros_per_mtok)} per million tokens"
                largest = self.largest_micros_per_mtok
                if largest is not None and self.saving is not None:
                    times = largest / self.blended_micros_per_mtok
                    line += (
                        f"; always {self.largest_model}: {format_usd(largest)} "
                        f"(saving {self.saving:.0%}, {times:.1f}x cheaper)"
                    )
                out.append(line)
            if self.degraded:
                out.append(f"degraded (budget pressure or open breakers): {self.degraded:,} calls")
            if self.unpriced:
                out.append(f"no price for {', '.join(self.unpriced)}: left out of the blend")
        if not self.promotions:
            out.append("promotions: none")
        for p in self.promotions:
            when = to_datetime(p.promoted_at).strftime("%Y-%m-%d %H:%M UTC")
            out.append(
                f"promoted: {p.intent} in {p.namespace} {p.from_tier} → {p.to_tier} since {when} "
                f"({p.failures} of {p.calls} calls failed or were rejected by validation); "
                f"revert: /agent routing revert {p.intent}"
            )
        return out


def routing_stats(
    tx: Tx,
    *,
    routing: Routing,
    prices: PriceTable,
    since: float,
    until: float,
    scope: str | None = None,
) -> RoutingStats:
    """The mix of decisions made in ``[since, until)`` (under ``scope`` when given)."""
    rows = records.tier_counts(tx, since=since, until=until, scope=scope)
    share = routing.blend_input_share
    total = sum(r[2] for r in rows)
    models = []
    tier_calls: dict[str, int] = {}
    priced_calls = weighted = 0
    unpriced = []
    for tier, model, calls, degraded, failed in sorted(
        rows, key=lambda r: (TIERS.index(r[0]), r[1])
    ):
        price = blended_price(prices, model, input_share=share)
        models.append(ModelMix(tier, model, calls, calls / total, degraded, failed, price))
        tier_calls[tier] = tier_calls.get(tier, 0) + calls
        if price is None:
            unpriced.append(model)
        else:
            priced_calls += calls
            weighted += calls * price
    largest = routing.tiers["large"].model
    namespace = scope.split("/", 1)[0] if scope else None
    return RoutingStats(
        since=since,
        until=until,
        scope=scope,
        calls=total,
        models=models,
        tier_shares={t: c / total for t, c in tier_calls.items()},
        degraded=sum(m.degraded for m in models),
        blended_micros_per_mtok=round(weighted / priced_calls) if priced_calls else None,
        largest_model=largest,
        largest_micros_per_mtok=blended_price(prices, largest, input_share=share),
        promotions=records.list_promotions(tx, namespace=namespace),
        unpriced=unpriced,
    )
