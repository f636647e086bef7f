"""Who left the workspace: the on-call people looked up with Slack's ``users.info``.

Slack *accepts* a DM to a deactivated account (``ok: true``, and nobody reads it), so a
rotation whose person left the company would page a ghost all week, and nothing in
Nightshift would notice (audit20 slack H1). :class:`People` asks Slack about the users
the policy can page (every rotation's users, the ``user:`` steps of the chain, and the
people an ``/agent oncall override`` puts on call):

- at start (a SIGHUP reload is a restart, so then too), waiting for the answers at most
  :data:`START_WAIT` seconds before the rest of the start goes on;
- again when the chain resolves who is on call and an answer is older than
  ``ttl_seconds`` (an hour, on the injected clock). That lookup runs in the
  background: never on an agent's request, which uses what is known;
- for ``/agent oncall override @user``, before it is accepted.

A user whose ``user.deleted`` is true, or whom Slack does not know (``user_not_found``),
is *gone*: :func:`departed` names them to the rotations (:mod:`bot.alerts.oncall`),
which pass over them, and a WARNING says so once per user. Without the ``users:read``
scope Slack answers ``missing_scope``: one WARNING says to add it, and nobody is
skipped (as before the lookups). Any other failure keeps what was known and is tried
again a minute later: a lookup never stops a page.

In shell mode (no Slack) no :class:`People` runs, and :func:`departed` is empty.

Example:
    >>> # people = ns.extras["people"]
    >>> # await people.check("U0DANA")   # True: Dana's account is deactivated
    >>> # departed(policy.oncall)         # frozenset({'U0DANA'})
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from slack_sdk.errors import SlackApiError

from bot.slack.client import slack_error
from guards.clock import Clock
from guards.config import OnCall
from guards.errors import said

if TYPE_CHECKING:
    from bot.app import Nightshift

__all__ = ["LEFT", "START_WAIT", "TTL_SECONDS", "People", "departed"]

log = logging.getLogger(__name__)
TTL_SECONDS = 3600.0  # an answer is asked again after this long, when the chain needs it
RETRY_SECONDS = 60.0  # after a failed lookup (Slack out of reach, rate-limited)
START_WAIT = 2.0  # the start waits this long for the answers; the rest come in the background
LEFT = "left the workspace"
_GONE_ERRORS = frozenset({"user_not_found"})

# the People of each running process's policy, by the id of its `oncall` section (each
# People holds that section, so the id is not reused while it is registered)
_RUNNING: dict[int, People] = {}


class UsersInfo(Protocol):
    """What :class:`People` needs of slack_sdk's ``AsyncWebClient``."""

    async def users_info(self, *, user: str) -> Any: ...


def departed(oncall: OnCall, asking: Iterable[str] = ()) -> frozenset[str]:
    """The users known to have left the workspace, for the process running ``oncall``.

    ``asking``: the users the caller is resolving; those whose answer is older than the
    TTL are looked up again in the background (the answer counts from the next call).
    Empty when no :class:`People` runs for ``oncall`` (shell mode, unit tests).
    """
    people = _RUNNING.get(id(oncall))
    if people is None or people.oncall is not oncall:
        return frozenset()
    people.want(asking)
    return people.gone


class People:
    """The answers of ``users.info`` for the people the policy can page; a component."""

    def __init__(
        self,
        *,
        oncall: OnCall,
        client: UsersInfo | None,
        clock: Clock,
        ttl_seconds: float = TTL_SECONDS,
    ) -> None:
        self.oncall = oncall
        self.client = client
        self.clock = clock
        self.ttl_seconds = ttl_seconds
        self.gone: frozenset[str] = frozenset()
        self.lookups = 0  # users.info calls made (for tests and logs)
        self.unavailable = False  # no users:read scope: nobody is looked up any more
        self._due: dict[str, float] = {}  # user → when to ask again
        self._warned: set[str] = set()
        self._failing = False
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the component ---------------------------------------------------------------

    @classmethod
    def component(cls) -> _PeopleComponent:
        return _PeopleComponent()

    def policy_users(self, overrides: Iterable[str] = ()) -> list[str]:
        """The users the policy can page, each once, in the policy's order."""
        users = [u for r in self.oncall.rotations for u in r.users]
        steps = self.oncall.escalation
        users += [s.notify[5:] for s in steps if s.notify.startswith("user:")]
        return list(dict.fromkeys([*users, *overrides]))

    async def start(self, users: Iterable[str]) -> None:
        """Register for :func:`departed` and look ``users`` up (waiting at most
        :data:`START_WAIT` seconds; the rest of the answers come in the background)."""
        self._loop = asyncio.get_running_loop()
        _RUNNING[id(self.oncall)] = self
        self._task = asyncio.create_task(self.refresh(users), name="nightshift-people")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), START_WAIT)

    async def stop(self) -> None:
        self._loop = None  # no lookup starts after this (a command during the drain)
        if _RUNNING.get(id(self.oncall)) is self:
            del _RUNNING[id(self.oncall)]
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    # -- asking Slack ------------------------------------------------------------------

    def _stale(self, user: str) -> bool:
        return self.clock.now() >= self._due.get(user, float("-inf"))

    def want(self, users: Iterable[str]) -> None:
        """Look ``users`` up again in the background when their answers are stale.

        Safe from any thread, and never waits: the caller goes on with what is known."""
        loop = self._loop  # read once: stop() may clear it meanwhile (another thread)
        if self.unavailable or loop is None:
            return
        stale = [u for u in dict.fromkeys(users) if self._stale(u)]
        if stale:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._kick, stale)

    def _kick(self, users: list[str]) -> None:
        if self._loop is None:  # stopped since it was asked
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.refresh(users), name="nightshift-people")

    async def refresh(self, users: Iterable[str]) -> None:
        """Ask Slack about each of ``users`` whose answer is stale, one after another."""
        async with self._lock:
            for user in dict.fromkeys(users):
                if self.unavailable:
                    return
                if self._stale(user):
                    await self._look_up(user)

    async def check(self, user: str) -> bool:
        """Whether ``user`` left the workspace, asking Slack now when the answer is stale
        (for a person's command, never an agent's request). Unknown: False."""
        await self.refresh([user])
        return user in self.gone

    async def _look_up(self, user: str) -> None:
        if self.client is None:
            return
        self.lookups += 1
        try:
            response = await self.client.users_info(user=user)
            gone = bool((response.get("user") or {}).get("deleted"))
        except Exception as exc:
            error = slack_error(exc)[1] if isinstance(exc, SlackApiError) else None
            if error == "missing_scope":
                self.unavailable = True
                log.warning(
                    "Slack refuses users.info (missing_scope): add the bot scope users:read"
                    " to the Slack app (manifest.yml) and reinstall it, so that on-call"
                    " users who left the workspace are skipped; until then they are paged"
                    " as before"
                )
                return
            if error not in _GONE_ERRORS:
                self._due[user] = self.clock.now() + RETRY_SECONDS
                (log.debug if self._failing else log.warning)(
                    "could not look up on-call user %s with Slack (%s); tried again in %ds",
                    user,
                    error or said(exc),  # (a timeout's own words are none: audit26 chaos L1)
                    RETRY_SECONDS,
                )
                self._failing = True
                return
            gone = True
        self._failing = False
        self._due[user] = self.clock.now() + self.ttl_seconds
        self._set(user, gone=gone)

    def _set(self, user: str, *, gone: bool) -> None:
        if not gone:
            self.gone = self.gone - {user}
            return
        self.gone = self.gone | {user}
        if user not in self._warned:
            self._warned.add(user)
            where = [r.name for r in self.oncall.rotations if user in r.users]
            log.warning(
                "on-call user %s %s (Slack: deactivated or unknown): skipped where they would"
                " be on call%s; remove them from the policy (oncall)",
                user,
                LEFT,
                f" (rotation {', '.join(where)})" if where else "",
            )


class _PeopleComponent:
    """Starts :class:`People` when the process talks to Slack (``ns.extras["people"]``)."""

    def __init__(self) -> None:
        self.people: People | None = None

    async def start(self, ns: Nightshift) -> None:
        surface = ns.extras.get("slack")  # set by the Slack transport; none in shell mode
        if surface is None:
            return
        self.people = People(oncall=ns.policy.oncall, client=surface.client, clock=ns.clock)
        ns.extras["people"] = self.people
        now = ns.clock.now()
        rows = await ns.store.read(
            lambda tx: tx.all(
                "SELECT DISTINCT user_id FROM oncall_overrides WHERE ends_at > ?", (now,)
            )
        )
        await self.people.start(self.people.policy_users(str(r[0]) for r in rows))

    async def stop(self, ns: Nightshift) -> None:
        if self.people is not None:
            ns.extras.pop("people", None)
            await self.people.stop()
            self.people = None
