"""Tiered alerts, grouping, silences, on-call rotations, escalation and heartbeats.

- :mod:`bot.alerts.engine`: events → alerts (tiers, grouping, silences, escalation);
- :mod:`bot.alerts.messages`, :mod:`bot.alerts.paging`, :mod:`bot.alerts.resolution`: the
  engine's alert messages, its escalation-chain runs, and what clears an alert;
- :mod:`bot.alerts.refused`: what the alerts do when Slack refuses a call for good;
- :mod:`bot.alerts.operations`: acknowledge, resolve, escalate now, silence, overrides;
- :mod:`bot.alerts.fleet`: the fleet at a glance (``/agent status``);
- :mod:`bot.alerts.render` (with ``render_storm``, ``render_summary``, ``render_time``):
  Block Kit messages and the feature's wording;
- :mod:`bot.alerts.escalation`, :mod:`bot.alerts.oncall`: chains and rotations (pure);
- :mod:`bot.alerts.shift_start`: the DM a person gets when their shift starts;
- :mod:`bot.alerts.heartbeats`: heartbeats, the watchdog, uptime;
- :mod:`bot.alerts.summary`: figures for the digest;
- :mod:`bot.alerts.component`: the process component (``ns.extras["alerts"]``).

The package imports none of them: importing one module (``bot.alerts.model`` from
:mod:`bot.webhooks_rows`, say) must not load the whole engine, which imports that module
back before it is defined (a circular import). Import what you need from its module.
"""
