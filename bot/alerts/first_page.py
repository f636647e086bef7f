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
  and the thread mentions nobody; when that step is the same webhook (the chain's only
  step, in its next round), when it is tried again ("tried again at 03:35 (the chain's
  only step)": recheck28 Ka L3, it read "webhook pager is next").

Once a later step pages a person, the post mentions them (``alerts.oncall_user``).

Example:
    >>> page = WebhookPage("pager", state="failed", error="HTTP 404", next_user="U0DANA")
    >>> webhook_prefix(page)
    '⚠️ The page via webhook pager failed (HTTP 404); <@U0DANA> is next: '
    >>> webhook_prefix(WebhookPage("pager", state="failed", next_step="the channel"))
    '⚠️ The page via webhook pager failed; the channel is next: '
    >>> webhook_prefix(WebhookPage("pager", state="failed", again="at 03:35"))
    '⚠️ The page via webhook pager failed; tried again at 03:35: '
    >>> webhook_prefix(WebhookPage("pager", state="retrying", error="HTTP 503"))
    '📟 Paging via webhook pager… (retrying, last: HTTP 503) '
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bot.alerts.escalation import notify_target
from bot.alerts.model import Alert
from bot.alerts.render_time import clock_time
from bot.alerts.storm_members import storm_of
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
# (a person a later step paged comes after a page still under way, before "Paged via")
_SHOWN_FIRST: dict[PageState, int] = {"failed": 0, "retrying": 1, "sending": 2, "delivered": 4}
_PAGED_A_PERSON = 3


@dataclass(frozen=True, slots=True)
class WebhookPage:
    """The page a P0's chain sent to a webhook while no person is paged: the webhook's
    name, how it went, its last error, and (failed) what the chain notifies next: a person
    (``next_user``) or another step (``next_step``: "webhook backup", "the channel"). A
    storm summary's also says whom a later step paged (``paged_user``), where a P0's own
    post mentions them instead."""

    name: str
    state: PageState = "sending"
    error: str | None = None
    next_user: str | None = None
    next_step: str | None = None
    delivery: int | None = None  # its webhook_deliveries id (None: not written yet)
    storm: bool = False  # a storm's trigger carried it: the storm's note says a failure
    paged_user: str | None = None
    again: str | None = None  # (failed) the chain's next step is this webhook again: when


def webhook_prefix(page: WebhookPage) -> str:
    """What the post says before its title (see the module); a storm summary's, once a
    later step paged someone, says so: "⚠️ The page via webhook pager failed (HTTP 400);
    paged <@U01>: " (review27 R1 L2: it kept "<@U01> is next" after U01 was paged)."""
    name = slack_text(page.name, 64)
    error = slack_text(page.error, 80) if page.error else None
    paged = f"<@{page.paged_user}>" if page.paged_user else None
    if page.state == "delivered":
        return f"📟 Paged via webhook {name}{f' and {paged}' if paged else ''}: "
    if page.state == "failed":
        if paged:
            who = f"paged {paged}"
        elif page.next_user:
            who = f"<@{page.next_user}> is next"
        elif page.again:
            who = f"tried again {page.again}"
        else:
            who = f"{page.next_step} is next" if page.next_step else "nobody was reached"
        return f"⚠️ The page via webhook {name} failed{f' ({error})' if error else ''}; {who}: "
    retrying = f" (retrying, last: {error})" if page.state == "retrying" and error else ""
    return f"📟 Paging via webhook {name}…{retrying}{f'; paged {paged}:' if paged else ''} "


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


# An alert's webhook steps, its latest first, each with its own trigger (none: a storm's)
_WEBHOOK_STEPS = (
    "SELECT e.alert_id, e.notify, d.id, d.state, d.attempts, d.last_status, d.last_error,"
    " e.folded_into FROM escalations e LEFT JOIN webhook_deliveries d"
    "  ON d.escalation_id = e.id AND d.event = 'trigger'"
    " WHERE e.alert_id IN (SELECT value FROM json_each(?)) AND e.notify LIKE 'webhook:%'"
    " ORDER BY e.alert_id, e.id DESC, d.id DESC"
)
# Which of those alerts took a step of their chain at all
_TAKEN = (
    "SELECT DISTINCT alert_id FROM escalations WHERE alert_id IN (SELECT value FROM json_each(?))"
)


@dataclass(frozen=True, slots=True)
class _Went:
    """How a webhook page went, before who is next is worked out (for a failed one)."""

    name: str
    state: PageState
    error: str | None = None
    delivery: int | None = None
    storm: bool = False


class _Shared:
    """What the pages of many alerts share, read once: the chain's first step now, and
    how each webhook storm's triggers went (a storm of 480 alerts is one trigger's
    state, not 480 reads of it: review27 R1 M2)."""

    def __init__(self, engine: AlertMessages, tx: Tx, now: float) -> None:
        self.engine, self.tx, self.now = engine, tx, now
        self._first: tuple[str | None] | None = None
        self._storms: dict[int, tuple[Any, ...] | None] = {}

    def first(self) -> str | None:
        if self._first is None:
            self._first = (first_step(self.engine, self.tx, self.now),)
        return self._first[0]

    def storm(self, storm: int) -> tuple[Any, ...] | None:
        if storm not in self._storms:
            self._storms[storm] = _storm_trigger(self.tx, storm)
        return self._storms[storm]


def webhook_page(engine: AlertMessages, tx: Tx, alert: Alert, now: float) -> WebhookPage | None:
    """The webhook page an open P0's post shows instead of a person (None: a person or
    nothing): the last webhook step it took (a channel step or one passed over after it
    leaves it standing), else, before any step, the first step's when it is a webhook's."""
    if not _may_show(engine, alert):
        return None
    went = _pages_of(engine, tx, [alert], _Shared(engine, tx, now)).get(alert.id)
    return None if went is None else _page(engine, tx, alert, went, now)


def summary_page(
    engine: AlertMessages, tx: Tx, alerts: list[Alert], now: float
) -> WebhookPage | None:
    """The webhook page a channel's storm summary shows before its text, as a P0's own
    post shows its own (:func:`webhook_page`, :func:`webhook_prefix`): of the pages of its
    open P0s, a failed one (with who is next), else one still sent or tried again, else,
    once every one got through, "Paged via". None: none of them pages a webhook instead
    of a person. Its alerts' pages are mostly one storm's trigger
    (:mod:`bot.webhook_storms`); recheck26 Kc M1: the summary kept "📟 Paging via
    webhook pager…" after that trigger failed for good, naming nobody next.

    Once a later step paged a person for an alert whose chain pages a webhook first, its
    page says whom (``paged_user``: "…failed (HTTP 400); paged <@U01>:"), after a page
    still failed or under way of an alert nobody was paged for, before "Paged via".

    Read in two statements for all its alerts, and a storm's triggers once (review27 R1
    M2: a read per alert, each over its storm's triggers, on every rebuild)."""
    shared = _Shared(engine, tx, now)
    shown = [
        a
        for a in alerts
        if a.state == "open"  # (one not open shows no page: nor does its own post)
        and _may_show(engine, a, paged=str(shared.first() or "").startswith("webhook:"))
    ]
    went = _pages_of(engine, tx, shown, shared)
    best: tuple[int, Alert, _Went] | None = None
    for alert in shown:
        page = went.get(alert.id)
        if page is None:
            continue
        rank = _PAGED_A_PERSON if alert.oncall_user else _SHOWN_FIRST[page.state]
        if rank == 0:  # failed, nobody paged: what someone must act on shows first
            return _page(engine, tx, alert, page, now)
        if best is None or rank < best[0]:
            best = (rank, alert, page)
    return None if best is None else _page(engine, tx, best[1], best[2], now)


def _may_show(engine: AlertMessages, alert: Alert, *, paged: bool = False) -> bool:
    """Whether the alert's post may say how a webhook page went: a P0 that paged no
    person (``paged``: or one a later step paged, its chain's first step a webhook's), in
    a chain with steps."""
    person = alert.oncall_user is None or paged
    return alert.tier == "P0" and person and bool(engine.chain.steps)


def _pages_of(
    engine: AlertMessages, tx: Tx, alerts: list[Alert], shared: _Shared
) -> dict[int, _Went]:
    """How the webhook page of each of ``alerts`` went (an alert with none is left out):
    its last webhook step's trigger, its storm's (:func:`_storm_trigger`), or before any
    step the chain's first when it is a webhook's (not sent yet)."""
    if not alerts:
        return {}
    ids = json.dumps([a.id for a in alerts])
    last: dict[int, tuple[Any, ...]] = {}
    for row in tx.all(_WEBHOOK_STEPS, (ids,)):
        last.setdefault(int(row[0]), tuple(row[1:]))  # (its latest step, latest trigger)
    untaken = [a.id for a in alerts if a.id not in last]
    taken = {int(r[0]) for r in tx.all(_TAKEN, (json.dumps(untaken),))} if untaken else set()
    out: dict[int, _Went] = {}
    for alert in alerts:
        row = last.get(alert.id)
        if row is None:
            first = None if alert.id in taken else shared.first()
            if first and first.startswith("webhook:"):
                out[alert.id] = _Went(first[8:], "sending")
            continue
        went = _went(row, shared)
        if went is not None:
            out[alert.id] = went
    return out


def _went(row: tuple[Any, ...], shared: _Shared) -> _Went | None:
    """How a webhook step's trigger went, from its row (notify, delivery id, state,
    attempts, last_status, last_error, folded_into); None: its paging ended (acknowledged,
    silenced) before it got through."""
    hook = storm_of(row[6]) if row[1] is None else None
    storm = hook is not None
    if hook is not None:  # folded into a webhook storm: its page is how its triggers went
        carried = shared.storm(hook)
        row = (row[0], *carried) if carried is not None else row
    name, delivery, state = str(row[0])[8:], row[1], row[2]
    error = (
        f"HTTP {row[4]}"
        if row[4] is not None
        else clip_chars(str(row[5] or "no answer"), ERROR_CHARS)
    )
    if state == "delivered":
        return _Went(name, "delivered", delivery=delivery)
    if state == "failed" and row[5] in (WITHDRAWN, STOPPED):
        return None
    if state == "failed":
        return _Went(name, "failed", error, delivery, storm)
    if delivery is not None and int(row[3] or 0) > 0:
        return _Went(name, "retrying", error, delivery, storm)
    return _Went(name, "sending", delivery=delivery, storm=storm)  # (a storm's, not sent yet)


def _page(engine: AlertMessages, tx: Tx, alert: Alert, went: _Went, now: float) -> WebhookPage:
    """The page as shown: a failed one names what the alert's chain notifies next, or
    whom a later step paged."""
    user = step = again = None
    if went.state == "failed" and alert.oncall_user is None:
        user, step, again = _next_up(engine, tx, alert, now, failed=went.name)
    error = went.error if went.state in ("failed", "retrying") else None
    return WebhookPage(
        went.name,
        state=went.state,
        error=error,
        next_user=user,
        next_step=step,
        delivery=went.delivery,
        storm=went.storm,
        paged_user=alert.oncall_user,
        again=again,
    )


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
    engine: AlertMessages, tx: Tx, alert: Alert, now: float, *, failed: str
) -> tuple[str | None, str | None, str | None]:
    """What the alert's chain notifies next, from its next step on: ``(user, None, None)``
    for the person it pages, ``(None, "webhook backup", None)`` or ``(None, "the
    channel", None)`` when a step that is not a person's comes first (the step the post's
    "next:" line names, a chain shortened at a reload included), ``(None, None, "at
    03:35 (the chain's only step)")`` when that step is webhook ``failed`` again (its
    next round), ``(None, None, None)`` when no step left notifies anyone. Person steps
    that page nobody (off hours, left) are passed over, as when they fire (at once within
    a round: bot.alerts.paging)."""
    chain, position, at = engine.chain, alert.esc_step, alert.esc_at
    entry = chain.entry(alert.tier) or 0
    overrides = engine.overrides(tx, now)
    for _ in range(len(chain.steps) + 1):
        if position is None:
            return None, None, None
        step = chain.step(position)
        if step.notify == "channel":
            return None, "the channel", None
        if step.notify == f"webhook:{failed}" and at is not None:  # the same page again
            only = " (the chain's only step)" if len(chain.steps) == 1 else ""
            return None, None, f"at {clock_time(at, engine.tz, now=now)}{only}"
        if step.notify.startswith("webhook:"):
            return None, f"webhook {slack_text(step.notify[8:], 64)}", None
        user = notify_target(
            step, oncall=engine.policy.oncall, tz=engine.tz, now=now, overrides=overrides
        )
        if user:
            return user, None, None
        following = chain.following(position, entry=entry)
        if (
            following is not None
            and at is not None
            and not chain.same_round(position, following[0])
        ):
            at += following[1]  # (a step paging nobody waits for no one within its round)
        position = following[0] if following else None
    return None, None, None


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
