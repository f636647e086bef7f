"""The message of a 402 (:class:`guards.errors.BudgetExceeded`): what the call met, what
waiting does, and what to raise.

Waiting is offered only where it helps: for running calls to settle when they hold money
the call could use, and until the named window resets (day, week or month, never
``total``) when the call would fit its whole limit; the reset is said with its local time
and how long from now (audit28 C2 L1).

Example:
    >>> from zoneinfo import ZoneInfo
    >>> refusal_message(level="agent", scope="acme/u2/a1", window="day",
    ...     figures=(1_000_000, 245_768, 0, 999_000), also=[], books_full=False, model=None,
    ...     resets=("2026-11-30T00:00:00-05:00", ZoneInfo("America/New_York"),
    ...             1_796_006_880.0))  # 2026-11-29 21:48 EST
    'budget for acme/u2/a1 (agent) today: this call cannot take $0.999 more: $0.245768\
 spent and $0.00 held of $1.00, $0.754232 left; wait until it resets at 00:00\
 America/New_York (in 2h 12m), or raise it with /agent budget set acme/u2/a1 <amount> day'
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from guards.money import format_usd, usd_for
from guards.window_resets import reset_words

__all__ = ["refusal_message"]

_PERIOD = {"day": "today", "week": "this week", "month": "this month"}


def refusal_message(
    *,
    level: str,
    scope: str,
    window: str,
    figures: tuple[int, int, int, int],
    also: list[dict[str, Any]],
    books_full: bool,
    model: str | None,
    resets: tuple[str | None, ZoneInfo | None, float | None],
) -> str:
    """A 402's message. ``figures``: limit, spent, held and requested micros; ``resets``:
    the window's ``resets_at`` (None: it never resets, or unknown), its zone and now."""
    limit, spent, held, asked = figures
    others = "".join(f"; {_over(o, asked)}" for o in also)
    resets_at, zone, now = resets
    # waiting for the reset helps only a call that fits the whole limit
    reset = (
        reset_words(resets_at, window=window, zone=zone, now=now)
        if resets_at is not None and asked <= limit
        else None
    )
    if model is not None:  # a namespace's budget for one model (budgets.models)
        return _model_message(scope, model, window, figures, reset) + others
    usd = usd_for(spent, held, max(0, limit - spent - held), asked)
    if books_full:  # no limit anyone set: the most Nightshift counts
        return (
            f"{scope}'s books are full: {usd(spent)} spent and {usd(held)} held in all, near"
            f" the {usd(limit)} Nightshift counts; `/agent holds {scope}` shows who holds it"
            " (an admin ends holds with `/agent release`)"
        )
    remaining = max(0, limit - spent - held)
    if asked > limit:
        why = f"asks {usd(asked)}, more than its whole limit of {usd(limit)}"
    else:
        why = (
            f"cannot take {usd(asked)} more: {usd(spent)} spent and {usd(held)} held of"
            f" {usd(limit)}, {usd(remaining)} left"
        )
    waits = []
    if held > 0 and asked <= limit - spent:  # running calls hold money this call could use
        waits.append("for running calls to settle")
    if reset is not None:
        waits.append(f"until it resets {reset}")
    wait = f"wait {' or '.join(waits)}, or " if waits else ""
    period = _PERIOD.get(window, "in total")
    return (
        f"budget for {scope} ({level}) {period}: this call {why}; {wait}raise it with"
        f" /agent budget set {scope} <amount> {window}{others}"
    )


def _model_message(
    namespace: str, model: str, window: str, figures: tuple[int, int, int, int], reset: str | None
) -> str:
    """A 402 of a model's budget: what happened and what to do.

    >>> _model_message("acme", "claude-opus-4-1", "day", (50_000_000, 50_000_000, 0, 10), None)
    "acme's budget for claude-opus-4-1 is spent for today ($50.00 of $50.00): wait until\
 tomorrow, pick a smaller model, or raise budgets.models.claude-opus-4-1 in the policy and\
 reload it (SIGHUP)"
    """
    limit, spent, held, asked = figures
    period, later = {
        "day": ("for today", "until tomorrow"),
        "week": ("for this week", "until next week"),
        "month": ("for this month", "until next month"),
    }.get(window, ("in total", ""))
    if reset is not None:  # when exactly, where it is known
        later = f"until it resets {reset}"
    left = max(0, limit - spent - held)
    usd = usd_for(spent, held, left, asked, limit)
    budget = f"{namespace}'s budget for {model}"
    waits = [later] if later else []
    if asked > limit:
        what, waits = f"a call asks {usd(asked)}, more than {budget} {period} ({usd(limit)})", []
    elif spent >= limit:
        what = f"{budget} is spent {period} ({usd(spent)} of {usd(limit)})"
    else:
        what = (
            f"{budget} {period} cannot take {usd(asked)} more ({usd(spent)} spent and"
            f" {usd(held)} held of {usd(limit)}, {usd(left)} left)"
        )
        if held > 0 and asked <= limit - spent:  # running calls hold money it could use
            waits.insert(0, "for running calls to settle")
    turn = f"wait {' or '.join(waits)}, " if waits else ""
    return (
        f"{what}: {turn}pick a smaller model, or raise budgets.models.{model} in the policy"
        " and reload it (SIGHUP)"  # nobody sets a model's limit in Slack (review23 L5)
    )


def _over(level: dict[str, Any], requested: int) -> str:
    """Another level in the way, in a 402's message: ``also acme (namespace) today:
    $1.00 short``."""
    period = _PERIOD.get(str(level.get("window")), "in total")
    short = (
        int(level["spent_micros"])
        + int(level["held_micros"])
        + requested
        - int(level["limit_micros"])
    )
    if level.get("model"):  # a namespace's budget for one model
        return (
            f"also {level['scope']}'s budget for {level['model']} {period}:"
            f" {format_usd(short, exact=True)} short"
        )
    return (
        f"also {level['scope']} ({level['level']}) {period}: {format_usd(short, exact=True)} short"
    )
