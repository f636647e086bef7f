"""Who may change things: the policy's ``admins`` and members of its ``admin_groups``.

User groups are resolved through Slack's ``usergroups.users.list`` and cached for
``ttl_seconds`` (on the injected clock). When Slack cannot be asked, the last known
members are used; with none known, nobody gets in through that group (fail closed), and
someone it would have let in is told that Slack could not be asked
(:class:`AdminsUnknown`), not that they are no admin. A rate-limited lookup waits out
Slack's ``Retry-After`` before asking again.

Example:
    >>> # admins = Admins(policy=policy, client=web_client, clock=clock)
    >>> # await admins.is_admin("U012ABCDEF")
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.slack.client import retry_after, slack_error
from guards.clock import Clock
from guards.config import Policy
from guards.errors import GuardError

__all__ = ["Admins", "AdminsUnknown"]

log = logging.getLogger(__name__)
TTL_SECONDS = 300.0


class AdminsUnknown(GuardError):
    """The user is not a listed admin, and a group that may hold them could not be read."""

    status = 503
    code = "admins_unknown"

    def __init__(self, groups: list[str], why: str, wait: float) -> None:
        names = ", ".join(f"<!subteam^{g}>" for g in groups)
        later = f"try again in {max(1, round(wait))} s" if wait > 0 else "try again shortly"
        super().__init__(
            f"I could not check with Slack whether you are in {names} ({why}), so I did"
            f" nothing; {later}."
        )


class Admins:
    """Answers "is this Slack user an admin?" from the policy and cached user groups."""

    def __init__(
        self,
        *,
        policy: Policy,
        client: Any | None,
        clock: Clock,
        ttl_seconds: float = TTL_SECONDS,
    ) -> None:
        self.policy = policy
        self.client = client  # an AsyncWebClient, or None (no groups can be resolved)
        self.clock = clock
        self.ttl_seconds = ttl_seconds
        self._groups: dict[str, tuple[frozenset[str], float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # per group whose last lookup failed for a while (rate limited, Slack down): why,
        # and until when not to ask again
        self._failed: dict[str, tuple[str, float]] = {}
        self.lookups = 0  # usergroups.users.list calls made (for tests and logs)
        # groups whose last lookup Slack answered with an error that asking again will not
        # change (``no_such_subteam``, ``missing_scope``), with it: they count as no one,
        # so a refusal does not send anyone to them
        self.unresolved: dict[str, str] = {}

    async def is_admin(self, user_id: str) -> bool:
        """Whether the user may change things.

        Raises:
            AdminsUnknown: not a listed admin nor in a group read, and a group never read
                could not be (nothing was done; they are told to try again).
        """
        if user_id in self.policy.admins:
            return True
        unread: list[str] = []
        for group in self.policy.admin_groups:
            if user_id in await self.members(group):
                return True
            if group not in self._groups and group in self._failed:
                unread.append(group)
        if unread:
            why, until = self._failed[unread[0]]
            raise AdminsUnknown(unread, why, until - self.clock.now())
        return False

    async def members(self, group: str) -> frozenset[str]:
        """The user ids of a user group, from the cache while it is fresh."""
        cached = self._groups.get(group)
        if cached is not None and self.clock.now() - cached[1] < self.ttl_seconds:
            return cached[0]
        lock = self._locks.setdefault(group, asyncio.Lock())
        async with lock:
            cached = self._groups.get(group)
            if cached is not None and self.clock.now() - cached[1] < self.ttl_seconds:
                return cached[0]
            return await self._fetch(group, stale=cached[0] if cached else frozenset())

    async def _fetch(self, group: str, *, stale: frozenset[str]) -> frozenset[str]:
        if self.client is None:
            return stale
        failed = self._failed.get(group)
        if failed is not None and self.clock.now() < failed[1]:
            return stale  # Slack asked us to wait (Retry-After)
        self.lookups += 1
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
            users = frozenset(str(u) for u in response.get("users") or [])
        except Exception as exc:
            why, wait = _why(exc)
            if why is not None:  # a passing failure: its members are not known yet
                self._failed[group] = (why, self.clock.now() + wait)
            else:  # an answer: the group is no one (an earlier passing failure is over)
                self._failed.pop(group, None)
                self.unresolved[group] = _code(exc)
            log.warning(
                "could not resolve admin group %s (%s); using %d known", group, exc, len(stale)
            )
            return stale
        self._failed.pop(group, None)
        self.unresolved.pop(group, None)
        self._groups[group] = (users, self.clock.now())
        return users


def _why(exc: Exception) -> tuple[str | None, float]:
    """Why a lookup failed for a while, and how long Slack asked us to wait (0: ask again);
    None for an answer that will not change by asking again (``no_such_subteam``,
    ``missing_scope``: the policy's or the app's to fix, said in the log): the group's
    members then count as none."""
    if not isinstance(exc, SlackApiError):
        return f"{type(exc).__name__}: {exc}"[:200], 0.0  # no answer: the network, a timeout
    status, _ = slack_error(exc)
    if status == 429:
        wait = retry_after(getattr(exc.response, "headers", None))
        return "Slack is rate limiting us", min(max(30.0 if wait is None else wait, 1.0), 600.0)
    if status >= 500:
        return f"Slack answered {status}", 0.0
    return None, 0.0


def _code(exc: Exception) -> str:
    """Slack's error code for a lookup refused for good (``no_such_subteam``)."""
    if not isinstance(exc, SlackApiError):
        return type(exc).__name__
    status, error = slack_error(exc)
    return error or f"HTTP {status}"
