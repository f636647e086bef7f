"""The ``/agent`` command and button seam: transport-neutral registries and replies.

Handlers parse their arguments, call the engine, and return a :class:`Reply`
(Block Kit blocks plus a plain-text rendering). Transports (Slack Socket Mode,
Slack HTTP, the shell) only translate: they build a :class:`Context`, call
:func:`dispatch` or :func:`dispatch_action`, and show the reply. Nothing here
knows which transport is in use.

A subcommand's docstring is its help text. Feature modules register theirs with
:func:`subcommand` / :func:`action` and are listed in ``COMMAND_MODULES``. The Block
Kit builders they use (:func:`~bot.blocks.section`, :func:`~bot.blocks.button`, ...)
live in :mod:`bot.blocks` and are re-exported here.

Example:
    >>> @subcommand("ping", usage="ping")
    ... async def ping(ctx: Context, args: list[str]) -> Reply:
    ...     '''Answers pong.'''
    ...     return Reply.text_only("pong")
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.admins import Admins
from bot.blocks import (
    MAX_TEXT,
    clip,
    echo,
    fit_text,
    line_sections,
    section,
)
from bot.chat_words import split_args
from bot.escape import mask_secrets, no_broadcast, slack_text
from bot.slack.limits import fit
from guards.errors import GuardError, StorageUnavailable

if TYPE_CHECKING:
    from bot.app import Nightshift
    from guards.config import Policy

__all__ = [
    "MESSAGE_ONLY",
    "ActionResult",
    "Context",
    "NotAdmin",
    "Reply",
    "UsageError",
    "action",
    "dispatch",
    "dispatch_action",
    "load_commands",
    "refusal_text",
    "subcommand",
]

# Modules that register subcommands and actions; each feature adds its own line.
COMMAND_MODULES: list[str] = [
    "bot.commands_budget",
    "bot.commands_routing",
    "bot.commands_breakers",
    "bot.commands_breakers_list",
    "bot.commands_dedup",
    "bot.commands_alerts",
    "bot.commands_silence",
    "bot.commands_oncall",
    "bot.commands_status",
    "bot.commands_alert_buttons",
    "bot.commands_alert_actions",
    "bot.commands_jobs",
    "bot.commands_audit",
    "bot.commands_holds",
    "bot.commands_alert_story",
    "bot.commands_credit",
]


@dataclass
class Reply:
    """What a command answers: Block Kit blocks and the same content as plain text."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    ephemeral: bool = True

    @classmethod
    def text_only(cls, text: str, *, ephemeral: bool = True) -> Reply:
        return cls(text=text, blocks=[section(text)], ephemeral=ephemeral)

    def limited(self) -> Reply:
        """The reply within Slack's limits (:func:`bot.slack.limits.fit`), text at 3,000.

        Handlers build lists within these limits themselves and say "… and N more
        <items>" in their own units; this cut is only a safety net, and its note counts
        what it drops: blocks.
        """
        blocks, text = fit(self.blocks, clip(self.text, MAX_TEXT))
        return Reply(text=text, blocks=blocks, ephemeral=self.ephemeral)


class UsageError(Exception):
    """Wrong arguments: the reply is the subcommand's usage line."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "")
        self.detail = detail


class NotAdmin(Exception):
    """A mutating command or button from someone not allowed: ``who`` may (admins by default)."""

    def __init__(self, what: str, *, who: str = "admins") -> None:
        super().__init__(what)
        self.who = who


@dataclass
class Context:
    """Who asked, from where, and the process to act on."""

    ns: Nightshift
    user_id: str
    transport: str
    user_name: str | None = None
    channel_id: str | None = None
    is_admin: Callable[[], Awaitable[bool]] | None = None
    # What the user tried, for the audit row of a refusal: the command line, the button
    # clicked (set by dispatch and dispatch_action), or what a form asked.
    attempt: str | None = None

    @property
    def actor(self) -> str:
        return self.user_id

    async def require_admin(self, what: str, *, not_a: str = "not an admin") -> None:
        """Raise NotAdmin (after auditing the refusal, with the attempt) unless the user is
        an admin. ``not_a`` says in the audit row what the user is not (an admin, or on
        call, for the alert buttons)."""
        allowed = await self.is_admin() if self.is_admin else False
        if allowed:
            return
        # what was tried, as typed (cut; a credential pasted in it masked: the audit log is
        # kept for good and everyone reads it): `/agent audit` escapes it when it shows it
        tried = mask_secrets(self.attempt or "")
        tried = tried[:120] + ("…" if len(tried) > 120 else "")
        detail = not_a + (f": {tried}" if tried else "")
        await self.ns.store.write(
            lambda tx: tx.audit(actor=self.actor, action="refused", target=what, detail=detail)
        )
        raise NotAdmin(what)


CommandHandler = Callable[[Context, list[str]], Awaitable[Reply]]


@dataclass(frozen=True)
class Subcommand:
    name: str
    usage: str
    handler: CommandHandler

    @property
    def help(self) -> str:
        doc = (self.handler.__doc__ or "").strip()
        return " ".join(doc.split("\n\n")[0].split())


@dataclass
class ActionResult:
    """What a button click does.

    ``done`` is a line ("approved by <@U1> at 03:17") that replaces the buttons of the
    original message, keeping the rest of it; ``update`` replaces the whole message;
    ``ephemeral`` tells only the clicker; ``open_modal`` is a Block Kit view to open.
    """

    done: str | None = None
    update: Reply | None = None
    ephemeral: str | None = None
    open_modal: dict[str, Any] | None = None


ActionHandler = Callable[[Context, str], Awaitable[ActionResult]]

SUBCOMMANDS: dict[str, Subcommand] = {}
ACTIONS: dict[str, ActionHandler] = {}


def subcommand(name: str, *, usage: str) -> Callable[[CommandHandler], CommandHandler]:
    """Register ``/agent <name> ...``; the handler's docstring is its help text."""

    def register(fn: CommandHandler) -> CommandHandler:
        SUBCOMMANDS[name] = Subcommand(name, usage, fn)
        return fn

    return register


def action(action_id: str) -> Callable[[ActionHandler], ActionHandler]:
    """Register a button handler by its ``action_id``; it gets the button's ``value``."""

    def register(fn: ActionHandler) -> ActionHandler:
        ACTIONS[action_id] = fn
        return fn

    return register


def load_commands() -> None:
    """Import every module that registers subcommands and actions."""
    importlib.import_module("bot.commands_core")
    for name in COMMAND_MODULES:
        importlib.import_module(name)


#: what the help of the lists taking ``+N`` says in the message, not in its notification
#: text (review27 R1 L3: the clause cost the notification one more command it names)
MESSAGE_ONLY = "; a cut list's hint gives `+N` to name more scopes"


def help_reply(note: str | None = None) -> Reply:
    """Every command with its usage and what it does, in as many sections as they take
    (one section holds 3,000 characters: the list outgrew it); the notification text
    (without :data:`MESSAGE_ONLY`) counts the commands it leaves out."""
    lines = [
        f"`/agent {s.usage}` — {s.help}" for s in sorted(SUBCOMMANDS.values(), key=lambda s: s.name)
    ]
    head = f"{note}\n\n*Nightshift commands*" if note else "*Nightshift commands*"
    blocks, _ = line_sections([head, *lines], per_section=len(lines) + 1)
    plain = [line.replace(MESSAGE_ONLY, "") for line in lines]
    text = fit_text([head], plain, more=lambda n: f"… and {n} more commands (in the message)")
    return Reply(text=text, blocks=blocks)


def ask_admins(policy: Policy, unresolved: Mapping[str, str] | None = None) -> str:
    """Whom to ask, by name (the person refused is on a phone at 3 a.m.).

    ``unresolved``: the admin groups Slack answered for good that it cannot resolve
    (:attr:`bot.admins.Admins.unresolved`, group to error): they count as no one, so they
    are not named (audit24 claims C7); with nobody else to name, whoever runs Nightshift
    is, with what to fix.
    """
    unresolved = unresolved or {}
    groups = [g for g in policy.admin_groups if g not in unresolved]
    names = [f"<@{u}>" for u in policy.admins[:3]]
    names += [f"<!subteam^{g}>" for g in groups[:2]]
    if not names and unresolved:
        gone = ", ".join(f"{g}: {slack_text(unresolved[g], 40)}" for g in list(unresolved)[:3])
        return (
            "Ask whoever runs Nightshift: Slack cannot resolve the policy's `admin_groups`"
            f" ({gone})."
        )
    if not names:
        return "The policy names no admins: add member ids under `admins:` in the policy file."
    more = " (or another admin)" if len(policy.admins) > 3 or len(groups) > 2 else ""
    return f"Ask {', '.join(names[:-1]) + ' or ' if len(names) > 1 else ''}{names[-1]}{more}."


def _unresolved(ctx: Context) -> Mapping[str, str]:
    """The admin groups Slack cannot resolve, as the Slack transport last found them."""
    admins = getattr(ctx.ns.extras.get("slack"), "admins", None)
    return admins.unresolved if isinstance(admins, Admins) else {}


def _aliased(args: list[str]) -> list[str]:
    """A command typed as people say it: ``acknowledge 4`` is ``ack 4`` (the button's
    word), ``unacknowledge 4`` is ``unack 4``, ``unsilence 4`` is ``silence 4 off``,
    ``on call`` is ``oncall``."""
    if not args:
        return args
    name = args[0].lower()
    if name in ("acknowledge", "acknowledged"):
        return ["ack", *args[1:]]
    if name in ("unacknowledge", "unacknowledged"):
        return ["unack", *args[1:]]
    if name == "unsilence":
        return ["silence", *args[1:], "off"]
    if name not in SUBCOMMANDS and len(args) > 1 and name + args[1].lower() in SUBCOMMANDS:
        return [name + args[1].lower(), *args[2:]]
    return args


async def dispatch(ctx: Context, text: str) -> Reply:
    """Run one ``/agent`` command line and return its reply (never raises)."""
    args = _aliased(split_args(text.strip()))
    if not args:
        return help_reply()
    name = args[0].lower()
    sub = SUBCOMMANDS.get(name)
    if sub is None:  # one line, not the whole help: it is read on a phone
        close = difflib.get_close_matches(name, SUBCOMMANDS, n=1, cutoff=0.6)
        guess = f" Did you mean `{close[0]}`?" if close else ""
        return Reply.text_only(
            f"I don't know `{echo(args[0])}`.{guess} `/agent help` lists the commands."
        )
    ctx.attempt = " ".join([name, *args[1:]])
    try:
        return (await sub.handler(ctx, args[1:])).limited()
    except UsageError as exc:  # a refusal may quote what was typed: <!channel> is shown
        detail = f"{no_broadcast(exc.detail)}\n" if exc.detail else ""
        return Reply.text_only(f"{detail}usage: `/agent {sub.usage}`")
    except (NotAdmin, GuardError) as exc:
        return Reply.text_only(refusal_text(ctx, exc))


async def dispatch_action(ctx: Context, action_id: str, value: str) -> ActionResult:
    """Run one button click (never raises)."""
    handler = ACTIONS.get(action_id)
    if handler is None:
        return ActionResult(
            ephemeral=f"This button ({echo(action_id)}) is not known to this Nightshift."
        )
    ctx.attempt = f"button {action_id} {value}"
    try:
        return await handler(ctx, value)
    except (NotAdmin, GuardError) as exc:
        return ActionResult(ephemeral=refusal_text(ctx, exc))


def refusal_text(ctx: Context, exc: NotAdmin | GuardError) -> str:
    """The words a person reads for a refused command, button or form, in every transport.

    ``NotAdmin`` names whom to ask (:func:`ask_admins`); a database that refuses writes
    says so in words for a person, not the agents' "send it again in a few seconds"
    (:func:`_refused`); any other refusal is the error's own message.
    """
    if isinstance(exc, NotAdmin):
        return f"Only {exc.who} can {exc}. {ask_admins(ctx.ns.policy, _unresolved(ctx))}"
    if isinstance(exc, StorageUnavailable):  # a person reads it, not an agent (audit26b L1)
        return _refused(ctx, exc)
    return no_broadcast(exc.message)


def _refused(ctx: Context, exc: StorageUnavailable) -> str:
    """The database refused the write: why, with what to do when it is known (the store's
    outage says it: a full disk, a lock), else SQLite's reason alone."""
    # (imported here: the notice imports the alerts, whose rendering imports this module)
    from bot.storage_notice import command_refused_text

    outage = ctx.ns.store.outage()
    return command_refused_text(outage.cause if outage is not None else exc.cause)
