"""Tiered alerts, grouping, silences, on-call rotations, escalation and heartbeats.

- :mod:`bot.alerts.engine`: events → alerts (tiers, grouping, silences, escalation);
- :mod:`bot.alerts.messages`, :mod:`bot.alerts.paging`: the engine's alert messages and
  its escalation-chain runs;
- :mod:`bot.alerts.operations`: acknowledge, resolve, escalate now, silence, overrides;
- :mod:`bot.alerts.fleet`: the fleet at a glance (``/agent status``);
- :mod:`bot.alerts.render`: Block Kit messages and the feature's wording;
- :mod:`bot.alerts.escalation`, :mod:`bot.alerts.oncall`: chains and rotations (pure);
- :mod:`bot.alerts.heartbeats`: heartbeats, the watchdog, uptime;
- :mod:`bot.alerts.summary`: figures for the digest;
- :mod:`bot.alerts.component`: the process component (``ns.extras["alerts"]``).
"""

from __future__ import annotations

from bot.alerts.component import AlertsComponent
from bot.alerts.summary import alert_summary, heartbeat_uptime

__all__ = ["AlertsComponent", "alert_summary", "heartbeat_uptime"]
