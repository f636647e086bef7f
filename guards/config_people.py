"""The policy's sections for people and schedules: heartbeats, alert tiers, the digest,
scheduled jobs and Slack channels (on-call rotations and escalation: config_oncall)."""

from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator

from guards.config_hours import QuietHours
from guards.config_types import PositiveSeconds, Seconds, Section, Tier, TimeZone, refuse
from guards.scopes import Scope, ScopeError

__all__ = [
    "ALERT_KINDS",
    "DEFAULT_TIERS",
    "MEMBER_ID",
    "Alerts",
    "Channels",
    "Digest",
    "GroupId",
    "Heartbeats",
    "Job",
    "MemberId",
    "group_id",
    "member_id",
    "one_word",
    "unknown_kind",
]


class Heartbeats(Section):
    timeout_seconds: PositiveSeconds = 300
    misses_before_alert: int = Field(2, ge=1, le=1000)


DEFAULT_TIERS: dict[str, Tier] = {
    "breaker_opened_spend": "P0",
    "runaway": "P0",
    "heartbeat_missed": "P0",
    "breaker_opened_failures": "P1",
    "breaker_opened_manual": "P2",
    "budget_exhausted": "P1",
    "model_budget_exhausted": "P1",  # a namespace's budget for one model (budgets.models)
    "overrun": "P1",
    "duplicate_burst": "P1",
    "half_open_requested": "P1",
    "attempts_exhausted": "P2",
    "scope_violation": "P1",
    "job_run_cap": "P1",
    "budget_threshold": "P2",
    "model_budget_threshold": "P2",  # a namespace's budget for one model passed a warn_at mark
    "hold_expired": "P2",
    "hold_hanging": "P1",
    "routing_promoted": "P2",
}
# Every alert kind there is (bot/alerts/model.py maps guard events onto these names).
ALERT_KINDS: tuple[str, ...] = tuple(DEFAULT_TIERS)


def unknown_kind(kind: str) -> str:
    """What to say about an alert kind that does not exist (with the closest one)."""
    close = difflib.get_close_matches(kind, ALERT_KINDS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown alert kind {kind!r}{hint}; the kinds are {', '.join(sorted(ALERT_KINDS))}"


class Alerts(Section):
    """Tiers per alert kind, and the timers of grouping and escalation.

    ``repeat_escalation``: how many times the chain runs again after its last step
    (waiting ``repeat_escalation_after`` first) while nobody acknowledges.
    ``auto_resolve_after``: an alert with no clearing condition (overrun, runaway, ...)
    resolves after this long without a new firing, unless it is an unacknowledged P0.
    ``fold_after``: when this many alert messages already wait to go out in one lane (a
    person's DMs, an alerts channel), new pages and posts there join one summary message
    instead (an alert storm buzzes once); 0 never folds. ``fold_pages_after``: the same for
    pages to one person, sooner (six pages due in the same second buzz twice, not six
    times: the first, then one summary); 0 leaves pages to ``fold_after``.
    ``page_conversation_budgets``: whether a conversation refused by its own budget (the
    guard working: its agent carries on) is paged like its tier says; by default it is
    posted at its tier and pages nobody.
    ``inhibit_by_model``: an agent's failure-breaker alert (or trial request) whose failed
    calls were on a model whose breaker is open waits behind the model's alert.
    ``hanging_after``: a hold open this long without a settle or release raises
    ``hold_hanging`` (a call stalled on its stream keeps its ceiling from its siblings
    until its TTL ends); 0 turns it off. ``quiet_hours``: when a P1 pages nobody.
    """

    tiers: dict[str, Tier] = Field(default_factory=dict)
    p1_escalate_after: Seconds = 1800
    update_interval_seconds: Seconds = 30
    repeat_escalation: int = Field(1, ge=0, le=100)
    # at 0 the rounds would come at once: refused unless repeat_escalation is 0 (recheck26
    # Ka L1: a file that turned repeats off that way ran before audit26)
    repeat_escalation_after: Seconds = 900
    auto_resolve_after: PositiveSeconds = 3600  # 0 would resolve every alert at once
    fold_after: int = Field(10, ge=0, le=10_000)
    fold_pages_after: int = Field(1, ge=0, le=10_000)
    page_conversation_budgets: bool = False
    inhibit_by_model: bool = True
    hanging_after: Seconds = 300  # 0: off
    quiet_hours: QuietHours | None = None

    @field_validator("tiers")
    @classmethod
    def _known_kinds(cls, value: dict[str, Tier]) -> dict[str, Tier]:
        unknown = [k for k in value if k not in DEFAULT_TIERS]
        if unknown:
            refuse("Alerts", [((k,), unknown_kind(k)) for k in unknown])
        return value

    @model_validator(mode="after")
    def _rounds_wait(self) -> Alerts:
        if self.repeat_escalation and not self.repeat_escalation_after:
            refuse(
                "Alerts",
                [
                    (
                        ("repeat_escalation_after",),
                        f"0 is out of range while repeat_escalation is {self.repeat_escalation}:"
                        " must be at least 1s, or the repeated rounds would come at once"
                        " (write e.g. 15m); with repeat_escalation: 0 (no repeats) it may be 0",
                    )
                ],
            )
        return self

    @property
    def storm_nudge_every(self) -> int:
        """Seconds within which a storm's alerts reaching the same step nudge once: the
        rounds' spacing (its default when repeats are off and it was written 0)."""
        default: int = Alerts.model_fields["repeat_escalation_after"].default
        return self.repeat_escalation_after or default

    def tier_of(self, kind: str) -> Tier:
        return self.tiers.get(kind) or DEFAULT_TIERS.get(kind, "P1")


# A Slack member id (U012ABCDEF; W... in Enterprise Grid), nothing shorter or longer than
# Slack writes. A name or an @handle would page nobody (Slack answers user_not_found, taken
# for someone who left), and the policy's text goes into messages as written (audit26 text
# 2). The bot mentions and reads mentions with this pattern (bot.escape): each id shows as a name.
MEMBER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
# Slack markup a name must not carry: `<!channel>`, `<@U…>`, links, code, bold, strike.
_MARKUP = frozenset("<>&|`*~")


def member_id(value: str) -> str:
    """``value``, a Slack member id, or ValueError saying how to find one."""
    if not MEMBER_ID.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Slack member id: write one like U012ABCDEF (in Slack: the"
            " person's profile, ⋯, Copy member ID); a name or an @handle matches nobody"
        )
    return value


def one_word(value: str, what: str) -> str:
    """``value``, a name fit for messages and slash commands (a rotation's, a channel's),
    or ValueError: one word of at most 80 characters (a channel's ``#`` aside), with no
    Slack markup, no space, control, format or bidi character of any script (Unicode
    categories Z and C: audit26 text 1), and no ``_`` at either end (Slack would show
    the name in italics: review26 L5)."""
    word = value.removeprefix("#")
    if (
        not 0 < len(word) <= 80
        or word[0] == "_"
        or word[-1] == "_"
        or any(c in _MARKUP or unicodedata.category(c)[0] in "ZC" for c in word)
    ):
        raise ValueError(
            f"{value!r}: {what} is one word of at most 80 characters (letters, digits, - _ ."
            " and the like; no _ at either end), with no spaces, no Slack markup"
            " (< > & | ` * ~) and no control or invisible characters"
        )
    return value


MemberId = Annotated[str, AfterValidator(member_id)]
# A Slack user-group id (S0614TZR7): a name, an @handle or a blank would count as no one,
# and only the first command of someone not an admin would say so (audit26 A1 L4).
GROUP_ID = re.compile(r"S[A-Z0-9]{1,20}")


def group_id(value: str) -> str:
    """``value``, a Slack user-group id, or ValueError saying how to find one."""
    if not GROUP_ID.fullmatch(value):
        raise ValueError(
            f"{value[:80]!r} is not a Slack user-group id: write one like S0614TZR7 (in Slack:"
            " People, User groups, the group, ⋯, Copy group ID); a name or an @handle"
            " matches nobody"
        )
    return value


GroupId = Annotated[str, AfterValidator(group_id)]


class Digest(Section):
    time: str = "09:00"
    enabled: bool = True

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r}: write the digest time as HH:MM")
        return value


class Job(Section):
    """An agent's scheduled job: Nightshift POSTs ``{job, run_id, scheduled_for}`` to ``url``.

    ``timezone`` defaults to the job's namespace time zone (the policy's unless the
    namespace sets one). ``secret`` is sent as ``X-Nightshift-Job-Secret``; without
    it a secret is derived per database (``nightshift jobs preview --secrets``).
    ``misfire_grace_seconds``: after downtime, missed fires coalesce into one run if
    the latest is at most this old; older ones are recorded as missed.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    cron: str
    url: str
    scope: str
    timezone: TimeZone | None = None
    max_runs_per_hour: int = Field(60, ge=1, le=3600)
    timeout_seconds: PositiveSeconds = 300
    allow_frequent: bool = False
    secret: str | None = Field(None, min_length=16, max_length=256)
    misfire_grace_seconds: Seconds = 3600

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        try:
            Scope.parse(value, min_depth=3)
        except ScopeError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value.lower() == "all":  # `/agent pause all` means every job
            raise ValueError("'all' names every job in `pause all`: give this one another name")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            port_ok = parts.port is None or parts.port >= 0  # reading it checks 0-65535
        except ValueError:
            port_ok = False
        if not re.match(r"^https?://", value) or not port_ok or not parts.hostname:
            raise ValueError(
                f"{value[:200]!r}: a job url is http:// or https://, then a host and"
                " maybe a port up to 65535 (http://127.0.0.1:9000/run)"
            )
        if parts.username is not None or parts.password is not None:
            # it would be written to the log and to every run's record
            raise ValueError(
                "a job url carries no user or password: the job's `secret` is sent as the"
                " X-Nightshift-Job-Secret header instead"
            )
        if not value.isascii() or any(c.isspace() for c in value):
            raise ValueError(f"{value[:200]!r}: write the url percent-encoded (ASCII, no spaces)")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and not (value.isascii() and value.isprintable()):
            raise ValueError("a secret is printable ASCII: it is sent as an HTTP header")
        return value


class Channels(Section):
    """Slack channels; ``alerts_by_scope`` sends a subtree's alerts elsewhere (longest prefix)."""

    alerts: str | None = None
    digest: str | None = None
    alerts_by_scope: dict[str, str] = Field(default_factory=dict)

    @field_validator("alerts", "digest")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        return None if value is None else one_word(value, "a channel (its id, or #name)")

    @field_validator("alerts_by_scope")
    @classmethod
    def _scopes(cls, value: dict[str, str]) -> dict[str, str]:
        for prefix, channel in value.items():  # a typo would silently never match
            try:
                Scope.parse(prefix)
            except ScopeError as exc:
                raise ValueError(f"{prefix!r} is not a scope: {exc}") from None
            one_word(channel, f"the channel of {prefix} (its id, or #name)")
        return value

    def alerts_for(self, scope: str) -> str | None:
        """The channel for alerts about ``scope``: the longest matching prefix, else ``alerts``."""
        best: tuple[int, str] | None = None
        for prefix, channel in self.alerts_by_scope.items():
            if (scope == prefix or scope.startswith(prefix + "/")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), channel)
        return best[1] if best else self.alerts
