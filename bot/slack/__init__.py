"""The Slack surface and the transport choice (DESIGN.md, "Configuration").

Bot token + app token → Socket Mode; bot token + signing secret → HTTP mode at
``POST /slack/events``; no Slack variables → the shell. Each transport comes with
the one outbox worker that delivers through it.

Example:
    >>> # in Nightshift._build_components:
    >>> # return [*transport_components(self), ...]
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import Component, Nightshift

__all__ = ["stdin_is_tty", "transport_components"]


def stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError, AttributeError):
        return False


def transport_components(ns: Nightshift) -> list[Component]:
    """The outbox worker and the transport ``ns.settings.transport`` names, in start order."""
    from bot.outbox import OutboxWorker

    mode = ns.settings.transport
    if mode == "shell":
        from bot.shell import ShellConsole

        console = ShellConsole(interactive=stdin_is_tty())
        return [OutboxWorker(console, pace_seconds=0.0), console]

    from bot.slack.client import web_client
    from bot.slack.deliver import SlackDeliverer
    from bot.slack.surface import SlackSurface

    client = web_client(ns.settings)
    worker = OutboxWorker(SlackDeliverer(client))
    if mode == "http":
        from bot.slack.http import HttpTransport

        surface = SlackSurface(ns, client)  # the transport verifies each request first
        secret = ns.settings.slack_signing_secret or ""
        return [worker, HttpTransport(surface, signing_secret=secret)]

    from bot.slack.socket_mode import SocketModeTransport

    surface = SlackSurface(ns, client)
    return [worker, SocketModeTransport(surface, app_token=ns.settings.slack_app_token or "")]
