"""The digest's figures: pure functions over the rows of :mod:`bot.digest.queries`.

Nothing here reads the database or the clock. Money stays in integer micros; shares
and uptimes are fractions for display only.

Savings against the largest tier re-price each model's charges at the large tier's
blended price (``routing.blend_input_share`` of input, the rest output): a charge of
$1.00 on a model blended at $2/MTok would have cost $7.50 on one blended at $15/MTok.
The blended price per million tokens is per token on the same footing: what the
priced calls were charged over the tokens their charges bought at each model's blended
price ($1.00 at $2/MTok and $3.00 at $6/MTok: $4.00 for 1 MTok, $4.00/MTok), so the
large tier's price over it is what always using it would have cost over what was spent.

Example:
    >>> blended_price(PriceTable(), "claude-haiku-4-5", input_share=0.75)
    2000000
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Any

from bot.digest.chart import MAX_SERIES
from bot.digest.model_outages import Outage, is_trip
from bot.digest.queries import RawDay
from guards.breaker_kinds import MODEL_PREFIX
from guards.breaker_state import FORCED_OPEN
from guards.budgets import SlackLimit
from guards.config import Policy
from guards.prices import PriceTable, undated

__all__ = [
    "AgentLine",
    "BreakerFigures",
    "Digest",
    "JobLine",
    "ModelLine",
    "ModelOutages",
    "blended_per_token",
    "blended_price",
    "breaker_figures",
    "compute",
]

TOP_AGENTS = 5
TIER_ORDER = ("small", "medium", "large", "other")


@dataclass(frozen=True, slots=True)
class AgentLine:
    scope: str
    spent_micros: int
    limit_micros: int | None  # the agent's day limit, when it has one


@dataclass(frozen=True, slots=True)
class ModelLine:
    model: str
    tier: str
    calls: int
    charged_micros: int
    failed: int
    micros_per_mtok: int | None


@dataclass(frozen=True, slots=True)
class BreakerFigures:
    trips: int
    longest_scope: str | None
    longest_seconds: float
    longest_still_open: bool
    open_now: list[str]
    # who forced the longest open breaker open during that span (a kill switch), if anyone
    longest_forced_by: str | None = None


@dataclass(frozen=True, slots=True)
class ModelOutages:
    """One model's breaker as the namespace's traffic met it: how often it opened that
    day, and each time it was out (``closed_at`` None: not closed by the day's end), with
    who forced it open in that time (a kill switch), if anyone."""

    model: str
    trips: int
    spans: list[tuple[float, float | None]]
    forced_by: list[str | None] = field(default_factory=list)  # one per span


def model_outages(outages: list[Outage], *, start: float, end: float) -> list[ModelOutages]:
    """The outages grouped by model, the model that opened most first."""
    by_model: dict[str, list[Outage]] = {}
    for o in outages:
        by_model.setdefault(o.model, []).append(o)
    lines = [
        ModelOutages(
            model,
            sum(o.trips(start, end) for o in spans),
            [(o.opened_at, o.closed_at) for o in spans],
            [_forced_by(o) for o in spans],
        )
        for model, spans in by_model.items()
    ]
    return sorted(lines, key=lambda m: (-m.trips, m.spans[0][0], m.model))


def _forced_by(outage: Outage) -> str | None:
    """The last person who forced the breaker open during the outage, if anyone."""
    who = [t[6] for t in outage.transitions if t[2] == FORCED_OPEN]
    return who[-1] if who else None


@dataclass(frozen=True, slots=True)
class JobLine:
    job: str
    runs: dict[str, int]  # state -> count (succeeded, failed, timeout, abandoned, running)
    skips: dict[str, int]  # reason -> count


@dataclass(frozen=True, slots=True)
class Refusals:
    """The calls the guards refused before they started, and the ceilings they asked."""

    asked_micros: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)  # budget, breaker, attempts
    top: list[tuple[str, int]] = field(default_factory=list)  # (agent, calls), most first

    @property
    def calls(self) -> int:
        return sum(self.by_reason.values())


def refusals(rows: list[tuple[str, str, int, int]]) -> Refusals:
    by_reason: Counter[str] = Counter()
    by_agent: Counter[str] = Counter()
    for agent, reason, calls, _ in rows:
        by_reason[reason] += calls
        by_agent[agent] += calls

    def most_first(counts: Counter[str]) -> list[tuple[str, int]]:
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    return Refusals(
        asked_micros=sum(r[3] for r in rows),
        by_reason=dict(most_first(by_reason)),
        top=most_first(by_agent)[:3],
    )


@dataclass
class Digest:
    """Everything one namespace's digest says about one day."""

    namespace: str
    day: date
    timezone: str
    partial: bool
    generated_at: float
    spent_micros: int
    limit_micros: int | None
    agents: list[AgentLine]
    agent_count: int
    models: list[ModelLine]
    calls: int
    failed_calls: int
    tier_shares: dict[str, float]  # by calls; a model's tier from policy.routing.tiers
    blended_micros_per_mtok: int | None  # per token (see the module's docstring)
    largest_model: str
    largest_micros_per_mtok: int | None
    would_cost_micros: int | None  # the charges re-priced at the largest tier
    overruns: int
    overrun_micros: int
    breakers: BreakerFigures  # the namespace's own breakers and the model outages it met
    rejections: dict[str, int]
    rejected_items: int
    top_streams: list[tuple[str, str, int]]
    alerts: dict[str, dict[str, Any]] | None
    uptime: dict[str, float]
    jobs: list[JobLine]
    chart_labels: list[str]
    chart_series: list[tuple[str, list[int]]]
    missing: list[str] = field(default_factory=list)
    # charges to earlier days after their digest: (agent, settles, micros), largest first
    late: list[tuple[str, int, int]] = field(default_factory=list)
    refused: Refusals = field(default_factory=Refusals)
    # limits set in Slack that differ from the file's and still count, most recent first
    slack_limits: list[SlackLimit] = field(default_factory=list)
    # the model breakers the namespace's traffic met (counted in ``breakers`` too)
    model_outages: list[ModelOutages] = field(default_factory=list)

    @property
    def saved_micros(self) -> int | None:
        if self.would_cost_micros is None:
            return None
        priced = sum(m.charged_micros for m in self.models if m.micros_per_mtok)
        return self.would_cost_micros - priced


def blended_price(prices: PriceTable, model: str, *, input_share: float) -> int | None:
    """Micros per million tokens of ``model`` at ``input_share`` input tokens, or None."""
    return prices.blended(model, input_share=input_share)


def blended_per_token(models: list[ModelLine]) -> int | None:
    """Micros per million tokens of the priced calls: their charges over the tokens
    those charges bought at each model's blended price (None: no priced charge).

    Example:
        >>> haiku = ModelLine("claude-haiku-4-5", "small", 9, 1_000_000, 0, 2_000_000)
        >>> opus = ModelLine("claude-opus-4-5", "large", 1, 3_000_000, 0, 10_000_000)
        >>> blended_per_token([haiku, opus])  # $4.00 for 0.5 + 0.3 MTok
        5000000
    """
    priced = [(m.charged_micros, m.micros_per_mtok) for m in models if m.micros_per_mtok]
    priced = [(c, p) for c, p in priced if c > 0]
    if not priced:
        return None
    mtok = sum(Fraction(c, p) for c, p in priced)
    return round(sum(c for c, _ in priced) / mtok)


def breaker_figures(
    transitions: list[tuple[str, str, str, str, str | None, float, str]],
    *,
    start: float,
    end: float,
    now: float,
) -> BreakerFigures:
    """Trips in ``[start, end)`` and the longest time a breaker stayed open that day.

    A trip is each time a breaker opened: a move out of ``closed``, or a trial that
    failed (:func:`~bot.digest.model_outages.is_trip`); a breaker is open from its move
    out of ``closed`` until it is ``closed`` again (still open: until
    ``min(end, now)``). When someone forced it open during that time, the last one to
    do so is ``longest_forced_by``. A model's breaker (``model:…``) counts in the trips
    only: its own line says how long it was out and whether it still is (review27 R3
    L2: the outage was said three times), so it is never the longest open nor in
    ``open_now``.
    """
    trips = 0
    opened: dict[str, float] = {}
    forced: dict[str, str] = {}
    spans: list[tuple[float, str, bool, str | None]] = []
    stop = min(end, now)
    for scope, before, after, _reason, _trip, at, actor in transitions:
        if is_trip(before, after, actor) and start <= at < end:
            trips += 1
        if scope.startswith(MODEL_PREFIX):
            continue
        if after == FORCED_OPEN:
            forced[scope] = actor
        if before == "closed" and after != "closed":
            opened.setdefault(scope, at)
        elif after == "closed" and scope in opened:
            since = opened.pop(scope)
            if at >= start:
                spans.append((at - since, scope, False, forced.get(scope)))
        if after == "closed":
            forced.pop(scope, None)
    for scope, since in opened.items():
        if stop > since:
            spans.append((stop - since, scope, True, forced.get(scope)))
    longest = max(spans, key=lambda s: (s[0], s[1], s[2]), default=None)
    return BreakerFigures(
        trips=trips,
        longest_scope=longest[1] if longest else None,
        longest_seconds=longest[0] if longest else 0.0,
        longest_still_open=longest[2] if longest else False,
        open_now=sorted(opened),
        longest_forced_by=longest[3] if longest else None,
    )


def _jobs(rows: list[tuple[str, str, str | None, int]]) -> list[JobLine]:
    runs: dict[str, dict[str, int]] = defaultdict(dict)
    skips: dict[str, dict[str, int]] = defaultdict(dict)
    for job, state, reason, count in rows:
        if state == "skipped":
            key = reason or "unknown"
            skips[job][key] = skips[job].get(key, 0) + count
        else:
            runs[job][state] = runs[job].get(state, 0) + count
    return [JobLine(j, runs.get(j, {}), skips.get(j, {})) for j in sorted(set(runs) | set(skips))]


def _chart(raw: RawDay) -> tuple[list[str], list[tuple[str, list[int]]]]:
    days = [d.isoformat() for d in raw.chart_days]
    totals = sorted(
        ((sum(per_day.values()), agent) for agent, per_day in raw.chart.items()),
        key=lambda t: (-t[0], t[1]),
    )
    named = [a for total, a in totals if total > 0][: MAX_SERIES - 1]
    rest = [a for total, a in totals if total > 0][MAX_SERIES - 1 :]
    series = [(a, [raw.chart[a].get(d, 0) for d in days]) for a in named]
    if rest:
        series.append(
            (f"{len(rest)} more", [sum(raw.chart[a].get(d, 0) for a in rest) for d in days])
        )
    return [d.strftime("%m-%d") for d in raw.chart_days], series


def compute(
    raw: RawDay,
    *,
    policy: Policy,
    prices: PriceTable,
    limits: dict[str, int | None],
    alerts: dict[str, Any] | None = None,
    uptime: dict[str, float] | None = None,
    partial: bool = False,
    slack_limits: list[SlackLimit] | None = None,
) -> Digest:
    """Turn one day's rows into the digest's figures.

    ``limits`` maps a scope to its day limit (the namespace and each agent);
    ``alerts`` is ``alert_summary(...)["tiers"]``; ``uptime`` maps agents to fractions;
    ``slack_limits`` are the namespace's limits set in Slack, in force when it is built.
    """
    share = policy.routing.blend_input_share
    # a snapshot's dated name is its model's tier, as routing counts it (recheck27 Kc L4)
    tier_of = {undated(t.model): name for name, t in policy.routing.tiers.items()}
    largest = policy.routing.tiers["large"].model
    large_price = blended_price(prices, largest, input_share=share)
    models: list[ModelLine] = []
    would_cost = 0
    priced_any = False
    overruns = overrun_micros = 0
    for model, calls, charged, failed, n_over, over_micros in raw.models:
        name = model or "(no model)"
        price = blended_price(prices, model, input_share=share) if model else None
        tier = tier_of.get(undated(model), "other") if model else "other"
        models.append(ModelLine(name, tier, calls, charged, failed, price))
        overruns += n_over
        overrun_micros += over_micros
        if price and large_price and charged > 0:  # $0 charged: nothing to compare (Kc L3)
            would_cost += charged * large_price // price
            priced_any = True
    models.sort(key=lambda m: (-m.charged_micros, m.model))
    calls = sum(m.calls for m in models)

    shares: dict[str, float] = {}
    if calls:
        for m in models:
            shares[m.tier] = shares.get(m.tier, 0.0) + m.calls / calls
    blended = blended_per_token(models)

    agents = sorted(raw.agent_spent.items(), key=lambda kv: (-kv[1], kv[0]))
    chart_labels, chart_series = _chart(raw)
    return Digest(
        namespace=raw.namespace,
        day=raw.day,
        timezone=raw.timezone,
        partial=partial,
        generated_at=raw.now,
        spent_micros=raw.namespace_spent,
        limit_micros=limits.get(raw.namespace),
        agents=[AgentLine(a, s, limits.get(a)) for a, s in agents[:TOP_AGENTS] if s > 0],
        agent_count=sum(1 for _, s in agents if s > 0),
        models=models,
        calls=calls,
        failed_calls=sum(m.failed for m in models),
        tier_shares={t: shares[t] for t in TIER_ORDER if t in shares},
        blended_micros_per_mtok=blended,
        largest_model=largest,
        largest_micros_per_mtok=large_price,
        would_cost_micros=would_cost if priced_any else None,
        overruns=overruns,
        overrun_micros=overrun_micros,
        breakers=breaker_figures(
            sorted(
                [*raw.transitions, *(t for o in raw.model_outages for t in o.transitions)],
                key=lambda t: t[5],
            ),
            start=raw.start,
            end=raw.end,
            now=raw.now,
        ),
        rejections=dict(sorted(raw.rejections.items(), key=lambda kv: -kv[1])),
        rejected_items=raw.rejected_items,
        top_streams=raw.streams,
        alerts=alerts,
        uptime=dict(sorted((uptime or {}).items(), key=lambda kv: (kv[1], kv[0]))),
        jobs=_jobs(raw.jobs),
        chart_labels=chart_labels,
        chart_series=chart_series,
        missing=sorted(set(raw.missing)),
        late=raw.late,
        refused=refusals(raw.refusals),
        slack_limits=list(slack_limits or []),
        model_outages=model_outages(raw.model_outages, start=raw.start, end=raw.end),
    )
