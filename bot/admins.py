"""Who may change things: the policy's ``admins`` and members of its ``admin_groups``.

User groups are resolved through Slack's ``usergroups.users.list`` and cached for
``ttl_seconds`` (on the injected clock). When Slack cannot be asked, the last known
members are used; with none known, the answer is no (fail closed).

Example:
    >>> # admins = Admins(policy=policy, client=web_client, clock=clock)
    >>> # await admins.is_admin("U012ABCDEF")
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from guards.clock import Clock
from guards.config import Policy

__all__ = ["Admins"]

log = logging.getLogger(__name__)
TTL_SECONDS = 300.0


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
        self.lookups = 0  # usergroups.users.list calls made (for tests and logs)

    async def is_admin(self, user_id: str) -> bool:
        if user_id in self.policy.admins:
            return True
        for group in self.policy.admin_groups:
            if user_id in await self.members(group):
                return True
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
        self.lookups += 1
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
            users = frozenset(str(u) for u in response.get("users") or [])
        except Exception as exc:
            log.warning(
                "could not resolve admin group %s (%s); using %d known", group, exc, len(stale)
            )
            return stale
        self._groups[group] = (users, self.clock.now())
        return users
