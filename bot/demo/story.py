"""The demo's world: its policy, its clock, and the narrator.

One simulated day at a small company, ``acme``, in Berlin: a handful of agents,
two people on call (Dana, then Sam), and the night the operators wrote about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TextIO
from zoneinfo import ZoneInfo

__all__ = ["DEMO_DAY", "DEMO_TZ", "Cast", "Narrator", "demo_policy", "refused_job"]

DEMO_TZ = ZoneInfo("Europe/Berlin")
DEMO_DAY = datetime(2026, 11, 25, tzinfo=DEMO_TZ)  # a Wednesday; Dana is on call this week

DANA = "U0DANA"
SAM = "U0SAM"
LEE = "U0LEE"  # Dana's partner in the primary rotation, on call next week


@dataclass(frozen=True, slots=True)
class Cast:
    """Who plays the story's people: Dana (on call), Sam (the secondary), Lee."""

    dana: str = DANA
    sam: str = SAM
    lee: str = LEE

    @classmethod
    def for_transport(cls, *, shell: bool, me: str | None) -> Cast:
        """The shell can show a DM to anyone, made up or not; a workspace can page only its
        members, so there ``me`` (NIGHTSHIFT_DEMO_USER) plays every person (audit25 L1: a
        made-up Sam was paged in a real workspace while the table said "2 pages").
        Without ``me`` a workspace gets the made-up cast: Slack refuses their DMs, and the
        table counts them apart (the demo says so as it starts)."""
        if shell or me is None:
            return cls(dana=me or DANA)
        return cls(dana=me, sam=me, lee=me)


def demo_policy(*, job_url: str, channel: str, cast: Cast | None = None) -> str:
    """The demo's policy file, every key as an operator would write it."""
    cast = cast or Cast()
    primary = ", ".join(dict.fromkeys((cast.dana, cast.lee)))  # one person: once
    return f"""
timezone: Europe/Berlin
admins: [{cast.dana}]
channels: {{alerts: {channel}, digest: {channel}}}
budgets:
  defaults:
    agent: {{day: 10.00}}
    conversation: {{total: 2.00}}
  scopes:
    acme: {{day: 60.00, month: 1500.00}}
    acme/alice/rss-bot: {{day: 5.00}}
reservations: {{ttl_seconds: 600}}
breakers:
  failures: {{consecutive: 5, rate: 0.5, window_calls: 20, min_calls: 10}}
  spend_rate: {{max: 2.00, per_seconds: 600}}
  max_attempts_per_task: 3
  cooldown_seconds: 900
  half_open: {{mode: approval, trial_calls: 3, trial_budget: 0.50}}
  model_failures: {{consecutive: 6, rate: 0.5, window_calls: 20, min_calls: 10}}
validation:
  window_days: 7
  runaway_factor: 1.5
  burst: {{count: 4, window_seconds: 3600}}
heartbeats: {{timeout_seconds: 300, misses_before_alert: 2}}
alerts:
  tiers: {{breaker_opened_spend: P0, heartbeat_missed: P1, duplicate_burst: P1}}
oncall:
  rotations:
    - {{name: primary, users: [{primary}], period: week, handoff: "mon 09:00",
       start: "2026-11-23"}}
    - {{name: secondary, users: [{cast.sam}], period: week, handoff: "mon 09:00"}}
  escalation:
    - {{notify: "rotation:primary", after: 0m}}
    - {{notify: "rotation:secondary", after: 5m}}
    - {{notify: "channel", after: 15m}}
digest: {{time: "09:00"}}
routing:
  tiers:
    small:  {{model: claude-haiku-4-5}}
    medium: {{model: claude-sonnet-4-5}}
    large:  {{model: claude-opus-4-1}}
  fallbacks: {{claude-haiku-4-5: [gpt-4.1-mini]}}
jobs:
  - {{name: report-daily, cron: "0 8 * * *", url: "{job_url}",
     scope: acme/alice/rss-bot, max_runs_per_hour: 1, timeout_seconds: 60}}
"""


def refused_job(job_url: str) -> str:
    """The job line as the operator first wrote it: every minute of the 8 o'clock hour."""
    return f"""
timezone: Europe/Berlin
jobs:
  - {{name: report-daily, cron: "* 8 * * *", url: "{job_url}",
     scope: acme/alice/rss-bot, max_runs_per_hour: 1, timeout_seconds: 60}}
"""


class Narrator:
    """Prints what happens in the simulated world, stamped with its local time."""

    def __init__(self, out: TextIO, tz: ZoneInfo = DEMO_TZ) -> None:
        self.out = out
        self.tz = tz
        self.now = 0.0

    def say(self, text: str) -> None:
        stamp = datetime.fromtimestamp(self.now, self.tz).strftime("%H:%M")
        self.out.write(f"\n▶ [{stamp}] {text}\n")
        self.out.flush()

    def title(self, text: str) -> None:
        self.out.write(f"\n{'═' * 78}\n  {text}\n{'═' * 78}\n")
        self.out.flush()
