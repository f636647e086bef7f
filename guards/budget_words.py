"""The message of a 402 (:class:`guards.errors.BudgetExceeded`): what the call met, what
waiting does, and what to raise.

Waiting is offered only where it helps at every level in the way, the named one and each
of its ``also`` (review28 R5 M1): for running calls to settle when the call fits what
each has not spent, and until the windows reset when none of them is ``total`` and the
call fits each one's whole limit; the reset said is the latest of theirs (a day's and a
month's: the month's), with its local time and how long from now (audit28 C2 L1).
:func:`reset_wait` is that rule, and a 402's ``wait_until`` its instant.

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

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from guards.money import format_usd, usd_for
from guards.window_resets import reset_words

__all__ = ["refusal_message", "reset_wait"]

_PERIOD = {"day": "today", "week": "this week", "month": "this month"}
_RESETS = ("day", "week", "month")  # the windows that reset, shortest first
# A wait said without its instant (a 402 of an older server, read by the Python client)
_NEXT = {"day": "tomorrow", "week": "next week", "month": "next month"}


def _instant(resets_at: Any) -> datetime | None:
    """``resets_at`` as an instant (None: absent, or not ISO 8601 with an offset, as a
    proxy's or an older server's ``also`` entry may hold)."""
    if not isinstance(resets_at, str):
        return None
    try:
        when = datetime.fromisoformat(resets_at)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def reset_wait(
    *, window: str, resets_at: str | None, limit: int, asked: int, also: Sequence[Mapping[str, Any]]
) -> tuple[str | None, str] | None:
    """Whether waiting for the windows in the way to reset lets the call through, and
    until when: None when it does not (one of them is ``total``, or the call asks more
    than one's whole limit); else the latest ``resets_at`` among the named level's and its
    ``also`` entries' (None where one is not known) and that window.

    >>> month = {"window": "month", "limit_micros": 2, "resets_at": "2026-12-01T00:00:00-05:00"}
    >>> reset_wait(window="day", resets_at="2026-11-30T00:00:00-05:00", limit=2, asked=1,
    ...     also=[month])
    ('2026-12-01T00:00:00-05:00', 'month')
    >>> reset_wait(window="day", resets_at="2026-11-30T00:00:00-05:00", limit=2, asked=1,
    ...     also=[{"window": "total", "limit_micros": 9, "resets_at": None}])
    """
    levels = [(window, limit, resets_at)] + [
        (o.get("window"), o.get("limit_micros"), o.get("resets_at")) for o in also
    ]
    latest: tuple[datetime, int, str] | None = None
    known = True
    for each, most, when in levels:
        if each not in _RESETS or not isinstance(most, int) or asked > most:
            return None
        instant = _instant(when)
        if instant is None:
            known = False
            continue
        rank = (instant, _RESETS.index(each), str(when))
        latest = rank if latest is None or rank[:2] > latest[:2] else latest
    if latest is None or not known:  # an older server's: when is not known, only the kind
        return None, max((str(w) for w, _, _ in levels), key=_RESETS.index)
    return latest[2], _RESETS[latest[1]]


def _settling_helps(
    *, limit: int, spent: int, asked: int, also: Sequence[Mapping[str, Any]]
) -> bool:
    """Whether running calls settling could let the call through: it fits what each level
    in the way has not spent (each then holds money it could use)."""
    return all(
        isinstance(most, int) and isinstance(used, int) and asked <= most - used
        for most, used in [(limit, spent)]
        + [(o.get("limit_micros"), o.get("spent_micros")) for o in also]
    )


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
    # waiting for the resets helps only a call that fits every whole limit in the way,
    # none of them total; it helps from the latest of their resets (review28 R5 M1)
    wait = reset_wait(window=window, resets_at=resets_at, limit=limit, asked=asked, also=also)
    reset = None
    if wait is not None and wait[0] is not None:
        words = reset_words(wait[0], window=wait[1], zone=zone, now=now)
        reset = f"every limit in the way resets {words}" if also else f"it resets {words}"
    settle = held > 0 and _settling_helps(limit=limit, spent=spent, asked=asked, also=also)
    if model is not None:  # a namespace's budget for one model (budgets.models)
        later = None if wait is None else reset or _NEXT[wait[1]]
        return _model_message(scope, model, window, figures, (settle, later)) + others
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
    if settle:  # running calls hold money this call could use, at every level in the way
        waits.append("for running calls to settle")
    if reset is not None:
        waits.append(f"until {reset}")
    turn = f"wait {' or '.join(waits)}, or " if waits else ""
    period = _PERIOD.get(window, "in total")
    return (
        f"budget for {scope} ({level}) {period}: this call {why}; {turn}raise it with"
        f" /agent budget set {scope} <amount> {window}{others}"
    )


def _model_message(
    namespace: str,
    model: str,
    window: str,
    figures: tuple[int, int, int, int],
    waits_that_help: tuple[bool, str | None],
) -> str:
    """A 402 of a model's budget: what happened and what to do. ``waits_that_help``:
    whether running calls settling helps, and until when waiting for the resets does
    (None: it does not).

    >>> _model_message("acme", "claude-opus-4-1", "day", (50_000_000, 50_000_000, 0, 10),
    ...     (False, "tomorrow"))
    "acme's budget for claude-opus-4-1 is spent for today ($50.00 of $50.00): wait until\
 tomorrow, pick a smaller model, or raise budgets.models.claude-opus-4-1 in the policy and\
 reload it (SIGHUP)"
    """
    limit, spent, held, asked = figures
    settle, later = waits_that_help
    period = {"day": "for today", "week": "for this week", "month": "for this month"}.get(
        window, "in total"
    )
    left = max(0, limit - spent - held)
    usd = usd_for(spent, held, left, asked, limit)
    budget = f"{namespace}'s budget for {model}"
    waits = [f"until {later}"] if later else []
    if asked > limit:
        what = f"a call asks {usd(asked)}, more than {budget} {period} ({usd(limit)})"
    elif spent >= limit:
        what = f"{budget} is spent {period} ({usd(spent)} of {usd(limit)})"
    else:
        what = (
            f"{budget} {period} cannot take {usd(asked)} more ({usd(spent)} spent and"
            f" {usd(held)} held of {usd(limit)}, {usd(left)} left)"
        )
        if settle:  # running calls hold money it could use, at every level in the way
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
