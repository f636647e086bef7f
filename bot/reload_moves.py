"""What a reload's edit of the policy moves for the people on call and the budgets: said in
the log at the SIGHUP (:func:`bot.reload.check_reload`), before the restart applies it.

Example:
    >>> from guards.config import Policy
    >>> day_moves(Policy(), Policy(), now=0.0), oncall_moves(Policy(), Policy(), now=0.0)
    ([], [])
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from guards.config import Policy

__all__ = ["day_moves", "oncall_moves"]


def day_moves(old: Policy, new: Policy, *, now: float) -> list[str]:
    """What a change of time zone does to the budget windows of the namespaces it moves:
    charges are booked in the day (week, month) of the zone they were made in, so a
    zone where it is already tomorrow starts the day afresh, and one where it is still
    yesterday adds today's charges to that day's."""
    named = {*old.budgets.scopes, *new.budgets.scopes}
    namespaces = sorted(p for p in named if "/" not in p)
    others = "every other namespace" if namespaces else "every namespace"
    lines = []
    for namespace, label in [*((n, n) for n in namespaces), ("", others)]:
        was = old.namespace_timezone(namespace) if namespace else old.timezone
        is_now = new.namespace_timezone(namespace) if namespace else new.timezone
        if was == is_now:
            continue
        before = datetime.fromtimestamp(now, ZoneInfo(was)).date()
        after = datetime.fromtimestamp(now, ZoneInfo(is_now)).date()
        what = (
            f"today is still {after}, and its budget day goes on"
            if before == after
            else f"the budget day is now {after} (it was {before}): charges stay in the day they"
            f" were booked in, so {after} starts from what is booked in it"
        )
        # the namespace's digest and jobs follow its zone too (audit23 forensics L10)
        lines.append(
            f"budgets, the digest and the jobs of {label} follow {is_now} now"
            f" (they followed {was}): {what}"
        )
    return lines


def oncall_moves(old: Policy, new: Policy, *, now: float) -> list[str]:
    """What an edit of the rotations changes about who is on call now: a shift is counted
    from ``start`` in the order of ``users``, so adding, removing or reordering a user
    can hand tonight's pages to someone else; and overrides made for a rotation that is
    gone (renamed) no longer apply."""
    from bot.alerts.oncall import rotation_named, shift_at

    moves = []
    old_tz, new_tz = ZoneInfo(old.timezone), ZoneInfo(new.timezone)
    for before in old.oncall.rotations:
        after = rotation_named(new.oncall, before.name)
        if after is None:
            moves.append(
                f"rotation {before.name} is gone from the policy: its `/agent oncall override`s,"
                " if any, no longer apply"
            )
            continue
        was, now_is = shift_at(before, old_tz, now).user, shift_at(after, new_tz, now)
        if was != now_is.user:
            left = int(now_is.ends_at - now)
            moves.append(
                f"rotation {after.name}: by its schedule, on call now is {now_is.user}, no"
                f" longer {was} (shifts are counted from `start` in the order of `users`, so"
                f" the edit moved them; an `/agent oncall override` still wins over both);"
                f" `/agent oncall override <@{was}> {max(left // 60, 1)}m {after.name}` keeps"
                f" {was} on call until the hand-off"
            )
    return moves
