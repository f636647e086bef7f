"""The Slack surface and the transport choice (DESIGN.md, "Configuration").

Bot token + app token → Socket Mode; bot token + signing secret → HTTP mode at
``POST /slack/events``; no Slack variables → the shell. Each transport comes with
the one outbox worker that delivers through it. The shell reads commands from a
terminal, a pipe or a file on stdin; closed stdin (or ``/dev/null``) is not read.

Example:
    >>> # in Nightshift._build_components:
    >>> # return [*transport_components(self), ...]
"""

from __future__ import annotations

import os
import stat
import sys
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from bot.app import Component, Nightshift

__all__ = ["stdin_kind", "transport_components"]


def stdin_kind() -> Literal["tty", "stream", "closed"]:
    """What stdin is: a terminal, a stream of lines (a pipe, socket or file), or closed.

    ``/dev/null`` and other devices count as closed. So does a process started with
    fd 0 closed (``sys.stdin`` is None): the next file it opens may take fd 0.
    """
    try:
        if sys.stdin is None:
            return "closed"
        fd = sys.stdin.fileno()
        if os.isatty(fd):
            return "tty"
        mode = os.fstat(fd).st_mode
    except (ValueError, OSError, AttributeError):
        return "closed"
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISREG(mode):
        return "stream"
    return "closed"


def transport_components(ns: Nightshift) -> list[Component]:
    """The outbox worker and the transport ``ns.settings.transport`` names, in start order."""
    from bot.outbox import OutboxWorker

    mode = ns.settings.transport
    if mode == "shell":
        from bot.shell import ShellConsole

        kind = stdin_kind()
        pipe = kind == "stream" and ns.shell_reads_pipe
        console = ShellConsole(interactive=kind == "tty", read_input=kind == "tty" or pipe)
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
