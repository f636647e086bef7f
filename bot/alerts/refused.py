"""What the alerts do when Slack refuses one of their calls for good.

The outbox worker hands each call Slack refused to :func:`on_refused` (a refusal hook,
:data:`bot.outbox_delivery.RefusalHook`), in the transaction that fails the row:

- **a page refused** (a DM to a person: ``user_not_found``, ``user_disabled``,
  ``channel_not_found``...): the chain does not wait out the step for nobody. Its next
  step in the round is taken at once (a next round still waits its time), and the
  alert's thread says the page failed and why, so the person paged next knows (or that
  nobody could be paged, after the last step);
- **an alert's message deleted** (``chat.update`` answers ``message_not_found`` or
  ``cant_update_message``): the alert is posted again under the same outbox ref, so
  this edit and every later one goes to the new message; the edit is not "failed for
  good" (it is not lost: the new post shows the alert as it is now). Deleted again
  within the hour, it is not posted a third time (:class:`Memory`). A storm summary's is
  not posted again: its first refused edit fails (logged once), and from then on it
  takes no alert and no edit (:mod:`bot.alerts.storm_gone`); the alerts it was to carry
  that no edit of it that went through showed are posted or paged on their own
  (:mod:`bot.alerts.storm_alone`);
- **the alerts channel refuses posts** (``is_archived``, ``not_in_channel``,
  ``channel_not_found``): the person on call now (else the policy's admins) is told by
  DM, at most once an hour per channel. The DMs are outbox rows
  (``channel-refused:<channel>:...``): the hour holds across a restart.

Example:
    >>> # memory = Memory()
    >>> # worker.refusal_hooks.append(lambda tx, r: on_refused(engine, tx, r, memory))
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

from bot.alerts.messages import AlertMessages
from bot.alerts.model import Alert
from bot.alerts.paging import AlertPaging
from bot.alerts.render_time import clock_time
from bot.alerts.storm_alone import deliver_alone
from bot.alerts.storm_gone import GONE_MESSAGE, found_gone, summary_gone
from bot.escape import CHANNEL_ID, slack_text
from bot.logs import Throttle
from bot.outbox import ROUTINE, URGENT, enqueue, enqueue_thread_reply
from bot.outbox_delivery import Refused
from bot.outbox_rows import fail_row
from guards.store import Tx

__all__ = ["CHANNEL_REFUSALS", "GONE_MESSAGE", "REPORT_EVERY", "Memory", "on_refused"]

log = logging.getLogger(__name__)

#: chat.postMessage errors that mean a channel takes no posts from the bot
CHANNEL_REFUSALS = frozenset({"is_archived", "not_in_channel", "channel_not_found"})
#: seconds between two reports of one channel's refusals
REPORT_EVERY = 3600.0
#: seconds within which an alert's message, posted again, is not posted again
REPOST_EVERY = 3600.0

_DM_REF = re.compile(r"alert:([0-9]+):dm:([0-9]+)")
_POST_REF = re.compile(r"\$ref:(alert:[0-9]+:post)\.ts")
_FIXES = {
    "is_archived": "unarchive it or name another channel in the policy ({key})",
    "not_in_channel": "invite the bot there (/invite @nightshift) or name another channel"
    " in the policy ({key})",
    "channel_not_found": "name an existing channel's id in the policy ({key})",
}


class Memory:
    """What the process remembers between refusals (the alerts component holds one)."""

    def __init__(self) -> None:
        # channels whose refusals were logged with nobody to tell: once a minute
        self.told_nobody = Throttle()
        # when each alert's message was last posted again: at most once an hour each
        # (something that deletes every post of the bot must not get a post per update)
        self.posted_again: dict[int, float] = {}

    def may_post_again(
        self, alert_id: int, now: float, *, after_commit: list[Callable[[], None]] | None = None
    ) -> bool:
        """Whether the alert's message may be posted again now (and if so, noted: once
        ``after_commit`` runs, when given, so that a repost the database refused is not
        remembered as made: review26 L1)."""
        if now - self.posted_again.get(alert_id, float("-inf")) < REPOST_EVERY:
            return False

        def note() -> None:
            if len(self.posted_again) >= 10_000:  # forget the ones whose hour is over
                self.posted_again = {
                    k: at for k, at in self.posted_again.items() if now - at < REPOST_EVERY
                }
            self.posted_again[alert_id] = now

        if after_commit is None:
            note()
        else:
            after_commit.append(note)
        return True


def on_refused(engine: AlertPaging, tx: Tx, refused: Refused, memory: Memory) -> bool:
    """React to a call of the alerts that Slack refused; True when the row was put back."""
    ref = refused.ref or ""
    if refused.method == "chat.postMessage" and (dm := _DM_REF.fullmatch(ref)):
        page_refused(engine, tx, int(dm[1]), int(dm[2]), refused.error)
        return False
    if refused.method == "chat.update" and refused.error in GONE_MESSAGE:
        if summary_gone(tx, refused):  # (a storm summary's: edited no more)
            return True
        if (summary := found_gone(tx, refused)) is not None:  # what it never showed
            return not _delivered_alone(engine, tx, refused, summary)
        return message_gone(engine, tx, refused, memory)
    channel = str(refused.args.get("channel") or "")
    if (
        refused.method == "chat.postMessage"
        and refused.error in CHANNEL_REFUSALS
        and ref.startswith(("alert:", "fold:posts:"))
        and not _DM_REF.fullmatch(ref)
        and channel[:1] not in ("U", "W", "")
    ):
        channel_refused(engine, tx, channel, refused.error, memory)
    return False


def _delivered_alone(engine: AlertPaging, tx: Tx, refused: Refused, summary: str) -> bool:
    """Deliver what deleted storm summary ``summary`` never showed, and let its refused
    edit fail as the mark that it is gone: both or neither (review28 R7 L5). True when
    they went through; False when the delivery raised: it is undone, and the edit fails
    with words that do not mark the summary gone (one WARNING), so the next edit of it
    Slack refuses tries again (else its alerts were never delivered at all)."""
    tx.execute("SAVEPOINT storm_alone")
    try:
        deliver_alone(engine, tx, summary, now=tx.clock.now())
    except Exception as exc:
        tx.execute("ROLLBACK TO storm_alone")
        tx.execute("RELEASE storm_alone")
        why = f"{type(exc).__name__}: {exc}"[:200]
        error = (
            f"Slack error {refused.error} (its storm summary's unshown alerts were not"
            f" delivered on their own: {why}; the next refused edit tries again)"
        )
        fail_row(tx, {"id": refused.row_id}, now=tx.clock.now(), error=error, maybe_shown=False)
        log.warning(
            "outbox row %s (%s) failed: Slack error %s; alert storm summary %s is gone, but"
            " delivering the alerts it never showed on their own failed (%s): it stays"
            " open, and the next refused edit of it tries again",
            refused.row_id,
            refused.method,
            refused.error,
            summary,
            why,
        )
        return False
    tx.execute("RELEASE storm_alone")
    return True


# -- a page refused ------------------------------------------------------------------


def page_refused(engine: AlertPaging, tx: Tx, alert_id: int, esc_id: int, error: str) -> None:
    """The DM of escalation ``esc_id`` was refused: take the next step now, and say so."""
    row = tx.one(
        "SELECT step, target FROM escalations WHERE id = ? AND alert_id = ?", (esc_id, alert_id)
    )
    if row is None or not engine.chain.steps:
        return
    position, target = int(row[0]), str(row[1])
    alert = engine.get(tx, alert_id)
    if alert.resolved_at is not None:
        return
    now = tx.clock.now()
    why = f"Slack refused it ({slack_text(error, 100)})"
    log.warning("alert #%d: the page to %s was refused by Slack (%s)", alert_id, target, error)
    following = engine.chain.following(position, entry=engine.chain.entry(alert.tier) or 0)
    note = f"⚠️ The page to <@{target}> failed: {why}."
    if alert.state != "open":
        pass  # someone is on it (acknowledged or silenced): nothing to move on
    elif (
        following is not None
        and alert.esc_step == following[0]
        and engine.chain.same_round(position, following[0])
    ):  # (after a round's last step, the next round still waits: it is for someone to ack)
        tx.execute("UPDATE alerts SET esc_at = ? WHERE id = ?", (now, alert_id))
        engine.run_chains(tx, now, alert_id=alert_id)
        taken = tx.one(
            "SELECT notify, target FROM escalations WHERE alert_id = ? AND id > ?"
            " ORDER BY id LIMIT 1",
            (alert_id, esc_id),
        )
        if taken is not None:
            if taken[1] is not None:
                who = f"<@{taken[1]}> is paged"
            elif taken[0] == "channel":
                who = "the channel is told"
            else:  # its own thread note says why, and the chain goes on
                who = "it pages nobody"
            note += f" The next step is taken now: {who}."
    elif following is not None and alert.esc_step == following[0] and alert.esc_at is not None:
        again = clock_time(alert.esc_at, engine.tz, now=now)
        note += f" That was this round's last step; the chain starts again at {again}."
    elif following is None and alert.esc_step is None:
        note += " That was the chain's last step: nobody could be paged. Acknowledge it here."
        log.warning("alert #%d: its chain is used up and nobody could be paged", alert_id)
    _say(engine, tx, engine.get(tx, alert_id), note)


def _say(engine: AlertMessages, tx: Tx, alert: Alert, text: str) -> None:
    """Reply in the alert's thread, or post in its channel when it has no message there."""
    post = tx.one("SELECT state FROM outbox WHERE ref = ?", (alert.post_ref,))
    if alert.posted_at is not None and alert.channel and post is not None and post[0] != "failed":
        enqueue_thread_reply(tx, parent=alert.post_ref, text=text, channel=alert.channel)
        return
    channel = alert.channel or engine.channel_for(alert.scope)
    enqueue(tx, method="chat.postMessage", args={"channel": channel, "text": text})


# -- an alert's message deleted ------------------------------------------------------


def message_gone(engine: AlertMessages, tx: Tx, refused: Refused, memory: Memory) -> bool:
    """The alert's channel message is gone: post it again under its ref; True when the
    refused edit was taken care of (dropped: the new post shows the alert as it is)."""
    alert_id = _alert_of_edit(tx, refused)
    if alert_id is None:
        return False
    alert = engine.get(tx, alert_id)
    drop = "DELETE FROM outbox WHERE id = ? AND state = 'pending' AND ref IS NULL"
    if alert.resolved_at is not None:  # nothing left to show: the edit is moot
        log.info(
            "alert #%d: its message is gone (%s); resolved, not posted again",
            alert_id,
            refused.error,
        )
        return tx.execute(drop, (refused.row_id,)).rowcount > 0
    post = tx.one("SELECT id, state, channel FROM outbox WHERE ref = ?", (alert.post_ref,))
    if post is None:
        return False
    now = tx.clock.now()
    if post[1] == "delivered" and not memory.may_post_again(
        alert_id, now, after_commit=tx.after_commit
    ):
        # gone again within the hour it was posted again (something deletes the bot's
        # posts): the edit fails as any other, rather than a post per update for ever
        log.warning(
            "alert #%d: its message in %s is gone again (Slack error %s) within an hour of"
            " its last post; not posted again before that hour is out",
            alert_id,
            post[2],
            refused.error,
        )
        return False
    if post[1] == "delivered":
        text, blocks = engine.render(tx, alert, now)
        args = {"channel": str(post[2]), "text": text, "blocks": blocks}
        tx.execute(  # first in its lane: the edits waiting there refer to it
            "UPDATE outbox SET args = ?, state = 'pending', attempts = 0, due_at = 0,"
            " first_try_at = NULL, finished_at = NULL, result_channel = NULL, result_ts = NULL,"
            " last_error = NULL, claimed_at = NULL, priority = ? WHERE id = ?",
            (json.dumps(args, separators=(",", ":")), URGENT, post[0]),
        )
        tx.execute("UPDATE alerts SET updated_at = ?, dirty = 0 WHERE id = ?", (now, alert_id))
        log.warning(
            "alert #%d: its message in %s is gone (Slack error %s); posted again",
            alert_id,
            post[2],
            refused.error,
        )
    if tx.execute(drop, (refused.row_id,)).rowcount > 0:
        return True
    # an edit others refer to by its own ref: it waits for the new post instead
    stored = {**refused.stored, "channel": f"$ref:{alert.post_ref}.channel"}
    stored["ts"] = f"$ref:{alert.post_ref}.ts"
    tx.execute(
        "UPDATE outbox SET args = ?, claimed_at = NULL, due_at = 0, priority = ? WHERE id = ?",
        (json.dumps(stored, separators=(",", ":")), ROUTINE, refused.row_id),
    )
    return True


def _alert_of_edit(tx: Tx, refused: Refused) -> int | None:
    """The alert whose channel message the refused edit was for (None: not an alert's)."""
    named = _POST_REF.fullmatch(str(refused.stored.get("ts") or ""))
    if named is None:  # an edit by the message's own ts (a button click's)
        row = tx.one(
            "SELECT ref FROM outbox WHERE result_channel = ? AND result_ts = ?"
            " AND method = 'chat.postMessage' AND ref GLOB 'alert:[0-9]*:post'",
            (str(refused.args.get("channel") or ""), str(refused.args.get("ts") or "")),
        )
        ref = None if row is None else str(row[0])
    else:
        ref = named[1]
    if ref is None:
        return None
    alert_id = int(ref.split(":")[1])
    return alert_id if tx.one("SELECT 1 FROM alerts WHERE id = ?", (alert_id,)) else None


# -- the alerts channel refuses posts ------------------------------------------------


def _keys_naming(engine: AlertMessages, channel: str) -> str:
    """The policy keys that send alerts to ``channel``: a team's own channel is changed
    under ``channels.alerts_by_scope``, not ``channels.alerts`` (audit23 tenants F2)."""
    channels = engine.policy.channels
    keys = [
        f"channels.alerts_by_scope.{p}" for p, c in channels.alerts_by_scope.items() if c == channel
    ]
    if channels.alerts == channel or not keys:
        keys.insert(0, "channels.alerts")
    return " and ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _shown(channel: str) -> str:
    """``<#C0123>`` for a channel id (Slack links it); a channel known only by name as
    ``#alerts``, unlinked: Slack shows ``<##alerts>`` as it is (audit24 claims C2)."""
    if CHANNEL_ID.fullmatch(channel):
        return f"<#{channel}>"
    return "#" + slack_text(channel.removeprefix("#"), 80)


def channel_refused(engine: AlertMessages, tx: Tx, channel: str, error: str, memory: Memory) -> int:
    """DM the person on call now (else the admins) that ``channel`` refuses the alerts,
    unless they were told in the last hour; returns how many DMs were queued."""
    now = tx.clock.now()
    prefix = f"channel-refused:{channel}:"
    told = tx.one(
        "SELECT 1 FROM outbox WHERE substr(ref, 1, ?) = ? AND created_at > ? LIMIT 1",
        (len(prefix), prefix, now - REPORT_EVERY),
    )
    if told is not None:
        return 0
    oncall = engine.first_responder(tx, now)
    people = [oncall] if oncall else list(engine.policy.admins)
    code = slack_text(error, 100)
    key = _keys_naming(engine, channel)
    fix = _FIXES.get(error, "name another channel in the policy ({key})").format(key=key)
    text = (
        f"⚠️ Alerts to {_shown(channel)} are refused by Slack ({code}): {fix}, then reload"
        " Nightshift (SIGHUP). Until then the alerts are not shown there; they are posted"
        " again at the next start. (Said at most once an hour.)"
    )
    if not people:  # no row to mark the hour: the WARNING alone, once a minute
        more = memory.told_nobody.let_through(channel, now)
        if more is not None:
            log.warning(
                "alerts to %s are refused by Slack (%s); nobody is on call and the policy"
                " names no admins, so nobody is told in Slack%s",
                channel,
                error,
                more,
            )
        return 0
    log.warning("alerts to %s are refused by Slack (%s); telling %s", channel, error, people)
    for person in people:
        enqueue(
            tx,
            method="chat.postMessage",
            args={"channel": person, "text": text},
            channel=person,
            ref=f"{prefix}{person}:{now}",
            urgent=True,
        )
    return len(people)
