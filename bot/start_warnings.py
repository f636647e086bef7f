"""The warnings a start (and a reload's restart) logs about the policy it runs on: no
budget limits anything, limits set in Slack override the file's, routing tiers that look
like a typo, a budget for a model Nightshift does not know. Said once at start, in the
log a service manager keeps.

Example:
    >>> # await say_if_nothing_is_limited(ns)  # in Nightshift.start
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from guards.breaker_kinds import MODEL_PREFIX
from guards.config_types import format_seconds
from guards.model_budgets import unknown_models
from guards.money import format_usd
from guards.reservation import iso
from guards.routing.tiers import tier_problems
from guards.store import Tx
from guards.words import plural

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = [
    "say_if_model_budgets_name_unknown",
    "say_if_nothing_is_limited",
    "say_if_tiers_look_wrong",
    "say_what_slack_overrides",
]

log = logging.getLogger("bot.app")  # (said as the start says its other lines)


async def say_if_nothing_is_limited(ns: Nightshift) -> None:
    """A WARNING when no budget limits any scope (none in the policy, none set in Slack):
    then nothing refuses a call before it starts (audit13 incidents H1), or, with budgets
    per model only, nothing but a call naming one of those models (review23 L2)."""
    if await ns.store.read(ns.ledger.limits_anything):
        return
    rate = ns.policy.breakers.spend_rate if ns.policy.breakers.enabled else None
    after = (
        f"the spend-rate breaker ({format_usd(rate.max)} per"
        f" {format_seconds(rate.per_seconds)}) stops an agent only after its money is"
        " charged, and calls already granted still go through"
        if rate is not None
        else "no spend-rate breaker stops an agent either"
    )
    models = sorted(ns.policy.budgets.models)
    if models:
        log.warning(
            "no budgets for any level: only calls naming a model of budgets.models (%s) are"
            " refused before they start, and a call naming another model or none never is;"
            " %s. Set budgets.defaults in the policy (README: The policy file)"
            " or /agent budget set",
            ", ".join(models),
            after,
        )
        return
    log.warning(
        "no budgets: nothing refuses a call before it starts, at any level; %s."
        " Set budgets.defaults in the policy (README: The policy file)"
        " or /agent budget set",
        after,
    )


async def say_what_slack_overrides(ns: Nightshift) -> None:
    """A WARNING naming the limits set in Slack that differ from the policy file's:
    they win, restarts included, and an operator who edited the file should know
    (audit15 reload M2)."""
    rows = await ns.store.read(ns.ledger.run_time_overrides)
    if not rows:
        return
    listed = "; ".join(
        f"{r.scope} {r.window} {format_usd(r.limit_micros, exact=True)} (the file: "
        f"{format_usd(r.policy, exact=True) if r.policy is not None else 'no limit'};"
        f" set by {r.set_by}{f', until {iso(r.until)}' if r.until is not None else ''})"
        for r in rows[:5]
    )
    more = f"; and {len(rows) - 5} more" if len(rows) > 5 else ""
    log.warning(
        "%s set in Slack %s the policy file: %s%s."
        " `/agent budget set <scope> default <window>` goes back to the file's",
        plural(len(rows), "budget limit"),
        "overrides" if len(rows) == 1 else "override",
        listed,
        more,
    )


def say_if_tiers_look_wrong(ns: Nightshift) -> None:
    """A WARNING per routing tier or fallback that looks like a typo: a lower tier
    dearer than a higher one, two tiers on one model, a model its own fallback
    (audit18 routing 8). A reload (SIGHUP) starts again, so it says so then too."""
    routing = ns.policy.routing
    for problem in tier_problems(
        tiers={tier: spec.model for tier, spec in routing.tiers.items()},
        fallbacks=routing.fallbacks,
        prices=ns.prices,
        input_share=routing.blend_input_share,
    ):
        log.warning("routing: %s (the policy is used as written)", problem)


async def say_if_model_budgets_name_unknown(ns: Nightshift) -> None:
    """A WARNING per ``budgets.models`` key naming a model Nightshift does not know: none
    the price table (shipped and ``prices:``) or routing names, no model breaker, and no
    reservation counted so far (review23 M2: a typo, or ``anthropic/claude-opus-4-1``
    where agents send ``claude-opus-4-1``, caps nothing, and nothing said so). Not a
    refusal: a new model may not be priced yet."""
    limited = ns.policy.budgets.models
    routing = ns.policy.routing
    known = {*ns.prices.models(), *(spec.model for spec in routing.tiers.values())}
    for model, chain in routing.fallbacks.items():
        known |= {model, *chain}
    unknown = unknown_models(limited, known=known)
    if not unknown:
        return

    def seen(tx: Tx) -> set[str]:  # a model breaker, or a call counted for the model
        names = {
            str(row[0]).removeprefix(MODEL_PREFIX)
            for row in tx.all("SELECT key FROM breakers WHERE kind = 'model'")
        }
        for key, _ in unknown:  # (no index on model alone: asked only for these few)
            if tx.one("SELECT 1 FROM model_usage_daily WHERE model = ? LIMIT 1", (key,)):
                names.add(key)
        return names

    known |= await ns.store.read(seen)
    for key, close in unknown_models(limited, known=known):
        hint = f" (did you mean {close!r}?)" if close else ""
        log.warning(
            "budgets.models.%s names a model Nightshift does not know%s: no price, no"
            " routing tier, no model breaker and no call counted for it, so it caps only"
            " calls that name %s, counted undated and in lower case as the agents send it"
            " (a provider's prefix is part of the name). Check the spelling, or add the"
            " model under prices:",
            key,
            hint,
            key,
        )
