"""What a P0's channel post says first: the person its chain paged, or what it did instead.

A P0's post mentions the person its chain pages first
(:meth:`~bot.alerts.messages.AlertMessages.first_responder`), unless the chain's first
step that notifies anyone (steps passed over, off hours or left, are skipped as when
they fire) is not a person's:

- a ``channel`` step: the post mentions nobody; the step's own ``<!channel>`` reply in
  the thread is the channel's notice (:func:`~bot.alerts.render.channel_nudge`);
- a ``webhook:`` step: no person is paged, so nobody is mentioned and the post says how
  the page went (:class:`WebhookPage`): "📟 Paging via webhook pager…" while its trigger
  is sent or tried again, "📟 Paged via webhook pager:" once delivered, and, once it
  failed for good, "⚠️ The page via webhook pager failed (HTTP 404); <@U0DANA> is next:"
  with the person the chain pages next. That person is also mentioned once in the
  thread (:func:`tell_next`): a mention added to a message by an edit notifies nobody.
  When the chain's next step is not a person's, the post names that step instead
  ("webhook backup is next", "the channel is next"), as the post's "next:" line does,
  and the thread mentions nobody.

Once a later step pages a person, the post mentions them (``alerts.oncall_user``).

Example:
    >>> page = WebhookPage("pager", state="failed", error="HTTP 404", next_user="U0DANA")
    >>> webhook_prefix(page)
    '⚠️ The page via webhook pager failed (HTTP 404); <@U0DANA> is next: '
    >>> webhook_prefix(WebhookPage("pager", state="failed", next_step="the channel"))
    '⚠️ The page via webhook pager failed; the channel is next: '
    >>> webhook_prefix(WebhookPage("pager", state="retrying", error="HTTP 503"))
    '📟 Paging via webhook pager… (retrying, last: HTTP 503) '
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bot.alerts.escalation import notify_target
from bot.alerts.model import Alert
from bot.escape import slack_text
from bot.outbox import enqueue_thread_reply
from bot.webhooks_rows import ERROR_CHARS, STOPPED, WITHDRAWN
from guards.store import Tx
from guards.words import clip_chars

if TYPE_CHECKING:
    from bot.alerts.messages import AlertMessages

__all__ = [
    "WebhookPage",
    "first_step",
    "summary_page",
    "tell_next",
    "webhook_page",
    "webhook_prefix",
]

PageState = Literal["sending", "retrying", "delivered", "failed"]
# which page a storm summary shows when its alerts' pages differ: the first that applies
_SHOWN_FIRST: dict[PageState, int] = {"failed": 0, "retrying": 1, "sending": 2, "delivered": 3}


@dataclass(frozen=True, slots=True)
class WebhookPage:
    """The page a P0's chain sent to a webhook while no person is paged: the webhook's
    name, how it went, its last error, and (failed) what the chain notifies next: a person
    (``next_user``) or another step (``next_step``: "webhook backup", "the channel")."""

    name: str
    state: PageState = "sending"
    error: str | None = None
    next_user: str | None = None
    next_step: str | None = None
    delivery: int | None = None  # its webhook_deliveries id (None: not written yet)
    storm: bool = False  # a storm's trigger carried it: the storm's note says a failure


def webhook_prefix(page: WebhookPage) -> str:
    """What the post says before its title (see the module)."""
    name = slack_text(page.name, 64)
    error = slack_text(page.error, 80) if page.error else None
    if page.state == "delivered":
        return f"📟 Paged via webhook {name}: "
    if page.state == "failed":
        if page.next_user:
            who = f"<@{page.next_user}> is next"
        else:
            who = f"{page.next_step} is next" if page.next_step else "nobody was reached"
        return f"⚠️ The page via webhook {name} failed{f' ({error})' if error else ''}; {who}: "
    retrying = f" (retrying, last: {error})" if page.state == "retrying" and error else ""
    return f"📟 Paging via webhook {name}…{retrying} "


def first_step(engine: AlertMessages, tx: Tx, now: float) -> str | None:
    """The ``notify`` of the chain's first step that notifies anyone at ``now`` (a person
    step is passed over when it pages nobody, as when it fires); None: every step is."""
    overrides = engine.overrides(tx, now)
    oncall = engine.policy.oncall
    for step in engine.chain.steps:
        if not step.notify.startswith(("rotation:", "user:")):
            return step.notify  # the channel or a webhook
        if notify_target(step, oncall=oncall, tz=engine.tz, now=now, overrides=overrides):
            return step.notify
    return None


def webhook_page(engine: AlertMessages, tx: Tx, alert: Alert, now: float) -> WebhookPage | None:
    """The webhook page an open P0's post shows instead of a person (None: a person or
    nothing): the last webhook step it took (a channel step or one passed over after it
    leaves it standing), else, before any step, the first step's when it is a webhook's."""
    if alert.tier != "P0" or alert.oncall_user is not None or not engine.chain.steps:
        return None
    row = tx.one(
        "SELECT e.notify, d.id, d.state, d.attempts, d.last_status, d.last_error,"
        " e.folded_into FROM escalations e LEFT JOIN webhook_deliveries d"
        "  ON d.escalation_id = e.id AND d.event = 'trigger'"
        " WHERE e.alert_id = ? AND e.notify LIKE 'webhook:%' ORDER BY e.id DESC, d.id DESC",
        (alert.id,),
    )
    if row is None:
        taken = tx.one("SELECT 1 FROM escalations WHERE alert_id = ? LIMIT 1", (alert.id,))
        first = None if taken else first_step(engine, tx, now)
        return WebhookPage(first[8:]) if first and first.startswith("webhook:") else None
    storm = row[1] is None and str(row[6] or "").startswith("hook:")
    if storm:  # folded into a webhook storm: its page is how the storm's triggers went
        carried = _storm_trigger(tx, int(str(row[6])[5:]))
        row = (row[0], *carried) if carried is not None else row
    name, delivery, state = str(row[0])[8:], row[1], row[2]
    error = (
        f"HTTP {row[4]}"
        if row[4] is not None
        else clip_chars(str(row[5] or "no answer"), ERROR_CHARS)
    )
    if state == "delivered":
        return WebhookPage(name, state="delivered", delivery=delivery)
    if state == "failed" and row[5] in (WITHDRAWN, STOPPED):
        return None  # its paging ended (acknowledged, silenced) before it got through
    if state == "failed":
        user, step = _next_up(engine, tx, alert, now)
        return WebhookPage(
            name,
            state="failed",
            error=error,
            next_user=user,
            next_step=step,
            delivery=delivery,
            storm=storm,
        )
    if delivery is not None and int(row[3] or 0) > 0:
        return WebhookPage(name, state="retrying", error=error, delivery=delivery, storm=storm)
    return WebhookPage(name, delivery=delivery, storm=storm)  # (a storm's, not sent yet)


def summary_page(
    engine: AlertMessages, tx: Tx, alerts: list[Alert], now: float
) -> WebhookPage | None:
    """The webhook page a channel's storm summary shows before its text, as a P0's own
    post shows its own (:func:`webhook_page`, :func:`webhook_prefix`): of the pages of its
    open P0s, a failed one (with who is next), else one still sent or tried again, else,
    once every one got through, "Paged via". None: none of them pages a webhook instead
    of a person. Its alerts' pages are mostly one storm's trigger
    (:mod:`bot.webhook_storms`); recheck26 Kc M1: the summary kept "📟 Paging via
    webhook pager…" after that trigger failed for good, naming nobody next."""
    shown: WebhookPage | None = None
    for alert in alerts:
        if alert.state != "open":
            continue  # (its own post shows no page either: bot.alerts.render)
        page = webhook_page(engine, tx, alert, now)
        if page is None:
            continue
        if page.state == "failed":
            return page  # what someone must act on: nothing shows first
        if shown is None or _SHOWN_FIRST[page.state] < _SHOWN_FIRST[shown.state]:
            shown = page
    return shown


def _storm_trigger(tx: Tx, storm: int) -> tuple[Any, ...] | None:
    """How storm ``storm``'s triggers went, as an alert's own trigger row reads (id, state,
    attempts, last_status, last_error): one delivered (every trigger of a storm is one
    incident: once one got there, the receiver has it open), else the latest that failed
    for good, else the latest tried, else its latest; None while none is written.

    Kb (recheck26) M1: its folded alerts said "Paging via webhook…" after the storm's
    trigger had failed for good. review27 R1 M1: a page joining while the trigger was out
    wrote one more, untried; when the first then failed, the latest (untried) one made
    the posts and the summary go back to "Paging via…", naming nobody next: a trigger not
    tried yet does not undo a known failure, nor a try's error, until one is delivered.
    (A trigger ended with its paging, withdrawn or not tried again, counts as untried.)"""
    row = tx.one(
        "SELECT id, state, attempts, last_status, last_error FROM webhook_deliveries"
        " WHERE storm_id = ? AND event = 'trigger' ORDER BY state = 'delivered' DESC,"
        " (state = 'failed' AND COALESCE(last_error, '') NOT IN (?, ?)) DESC,"
        " (state = 'pending' AND attempts > 0) DESC, id DESC LIMIT 1",
        (storm, WITHDRAWN, STOPPED),
    )
    return None if row is None else tuple(row)


def _next_up(
    engine: AlertMessages, tx: Tx, alert: Alert, now: float
) -> tuple[str | None, str | None]:
    """What the alert's chain notifies next, from its next step on: ``(user, None)`` for
    the person it pages, ``(None, "webhook backup")`` or ``(None, "the channel")`` when a
    step that is not a person's comes first (the step the post's "next:" line names, a
    chain shortened at a reload included), ``(None, None)`` when no step left notifies
    anyone. Person steps that page nobody (off hours, left) are passed over, as when they
    fire."""
    chain, position = engine.chain, alert.esc_step
    entry = chain.entry(alert.tier) or 0
    overrides = engine.overrides(tx, now)
    for _ in range(len(chain.steps) + 1):
        if position is None:
            return None, None
        step = chain.step(position)
        if step.notify == "channel":
            return None, "the channel"
        if step.notify.startswith("webhook:"):
            return None, f"webhook {slack_text(step.notify[8:], 64)}"
        user = notify_target(
            step, oncall=engine.policy.oncall, tz=engine.tz, now=now, overrides=overrides
        )
        if user:
            return user, None
        following = chain.following(position, entry=entry)
        position = following[0] if following else None
    return None, None


def tell_next(engine: AlertMessages, tx: Tx, alert: Alert, now: float) -> bool:
    """Once the webhook page of an open, posted P0 failed, mention the person its chain
    pages next in its thread (once per delivery); True when it was said just now."""
    if alert.state != "open" or alert.channel is None or alert.posted_at is None:
        return False
    page = webhook_page(engine, tx, alert, now)
    if page is None or page.state != "failed" or not page.next_user or page.delivery is None:
        return False
    if page.storm:  # its failure said once per storm and thread (bot.webhooks_record)
        return False
    ref = f"alert:{alert.id}:webhook-failed:{page.delivery}"
    if tx.one("SELECT 1 FROM outbox WHERE ref = ?", (ref,)) is not None:
        return False
    text = (
        f"<@{page.next_user}> the page via webhook {slack_text(page.name, 64)} failed"
        f" ({slack_text(page.error or 'no answer', 80)}), so nobody is paged yet: you are next"
        f" in its chain. `/agent ack {alert.id}` takes it."
    )
    enqueue_thread_reply(tx, parent=alert.post_ref, text=text, channel=alert.channel, ref=ref)
    return True
