"""Events become alerts: tiers, grouping, throttled updates, silences, escalation, resolution.

The engine consumes the ``events`` table durably: every row with ``dispatched_at IS
NULL``, in id order, is turned into alert rows and outbox rows and marked dispatched
in the same transaction, so an event is handled exactly once even across a crash.

- **Tier** (policy ``alerts.tiers``): P0 posts to the alerts channel mentioning the
  on-call person and runs the escalation chain from its first step (which DMs them);
  P1 posts and enters the chain at its second step after ``p1_escalate_after``; P2 is
  recorded only (``/agent alerts``, the digest). A conversation refused by its own
  budget is posted and paged to nobody (``alerts.page_conversation_budgets``); a P1 on
  an agent whose P0 is open waits for it (:meth:`AlertPaging._agent_p0`).
- **Grouping**: one open alert per fingerprint ``kind:scope``; a new firing bumps its
  count and updates the message in place at most once per ``update_interval_seconds``
  (the tick sends the trailing update). Overruns, expired and hanging holds group at
  their agent (the conversation is in the facts). In a storm, posts and pages that would
  queue behind ``alerts.fold_after`` others fold into one summary per channel or
  person (:mod:`bot.alerts.folding`).
- **Resolution** when the condition clears: a breaker alert on ``BreakerClosed``, a
  missed heartbeat on ``HeartbeatRestored``, a hanging hold when its agent has none
  left (:mod:`bot.alerts.hanging`), a budget alert when its limit is raised
  above the one that was hit or its window turns (a new day, week or month); kinds with
  no clearing condition after ``auto_resolve_after`` without a firing (an unacknowledged
  P0 stays until a human acts).
- **Silences** match a fingerprint, a scope subtree, or an alert kind (or family) on
  every scope or on a subtree, until they expire; a silenced alert is recorded and
  counted but neither posted nor escalated, across any number of resolve/re-fire
  cycles. When the silence ends and the alert still fires, it is
  posted (or updated) and escalated as if new.

:class:`AlertEngine` holds the events and the tick; it builds on
:class:`~bot.alerts.starts.AlertStarts` (an alert's start on its chain, and the silences
that hold it back), which builds on
:class:`~bot.alerts.resolution.AlertResolution` (resolving alerts), which builds on
:class:`~bot.alerts.paging.AlertPaging` (the escalation chain), which builds on
:class:`~bot.alerts.messages.AlertMessages` (reading alerts, posting and updating
their messages).

Every method taking ``tx`` runs inside ``store.write`` and takes ``now`` from the
store's clock.

Example:
    >>> # engine = AlertEngine(policy=policy, ledger=ledger)
    >>> # await store.write(engine.process_pending)
    >>> # await store.write(engine.tick)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from bot.alerts import heartbeats, quiet
from bot.alerts.approver import tell_approver
from bot.alerts.bursts import stream_counts
from bot.alerts.messages import DEFAULT_CHANNEL
from bot.alerts.model import (
    AFTER_CALLS,
    AFTER_MICROS,
    CLEARED_BY,
    MODEL_THRESHOLD_KIND,
    OPENED_FOR,
    OPENED_KINDS,
    OVERRUN_TOTAL,
    STREAM_COUNTS,
    STREAMS,
    alert_kind,
    fingerprint,
)
from bot.alerts.model_warnings import merged
from bot.alerts.quiet import QUIET_UNTIL
from bot.alerts.render import HELD_BY, OUTAGE_ALERT, OUTAGE_OF, WITH_IT, WITH_IT_COUNT, resolver
from bot.alerts.starts import AlertStarts
from bot.alerts.storm_batch import summaries_once
from bot.escape import operator_mentions, slack_text
from guards.events import NIGHTSHIFT
from guards.money import format_usd
from guards.store import Tx
from guards.words import plural

__all__ = ["DEFAULT_CHANNEL", "AlertEngine"]

log = logging.getLogger(__name__)
MAX_STREAMS = 10  # the most streams an output alert remembers (the first seen)
BATCH = 500
# An alert's facts of a model's outage, kept when it fires again (bot.alerts.render)
_OUTAGE_FACTS = (HELD_BY, OUTAGE_ALERT, OUTAGE_OF, WITH_IT, WITH_IT_COUNT)
# kept too: the end of the quiet hours a P1 was put off to (bot.alerts.quiet)
_KEPT_FACTS = (*_OUTAGE_FACTS, QUIET_UNTIL)
# Kinds grouped at the agent: a conversation's firing bumps its agent's alert.
_PER_AGENT = frozenset({"overrun", "hold_expired", "hold_hanging"})


class AlertEngine(AlertStarts):
    """Turns events into alerts and drives their timers; stateless beyond the policy."""

    # -- events -------------------------------------------------------------------------

    def process_pending(self, tx: Tx, limit: int = BATCH) -> int:
        """Handle undispatched events in id order; returns how many were taken. A storm's
        summaries are redrawn once, when they are all handled (:mod:`bot.alerts.storm_batch`)."""
        now = tx.clock.now()
        rows = tx.all(
            "SELECT id, at, kind, scope, payload FROM events WHERE dispatched_at IS NULL"
            " ORDER BY id LIMIT ?",
            (limit,),
        )
        with summaries_once(self, tx):
            self._handle_all(tx, rows, now)
        tx.executemany(
            "UPDATE events SET dispatched_at = ? WHERE id = ?", [(now, r[0]) for r in rows]
        )
        return len(rows)

    def _handle_all(self, tx: Tx, rows: list[Any], now: float) -> None:
        for event_id, at, kind, scope, payload in rows:
            tx.execute("SAVEPOINT alert_event")
            try:
                self.handle(
                    tx,
                    event_id=event_id,
                    kind=kind,
                    scope=scope,
                    at=at,
                    payload=json.loads(payload),
                    now=now,
                )
            except Exception:
                # one bad event must not block the queue: it is logged and skipped
                log.exception("event %s (%s) could not become an alert", event_id, kind)
                tx.execute("ROLLBACK TO alert_event")
            tx.execute("RELEASE alert_event")

    def handle(
        self,
        tx: Tx,
        *,
        event_id: int,
        kind: str,
        scope: str,
        at: float,
        payload: dict[str, Any],
        now: float,
    ) -> int | None:
        """One event: clear what it clears, then raise or bump its alert. Returns the alert id."""
        cleared = CLEARED_BY.get(kind)
        if cleared:
            reason = {
                "breaker_closed": "breaker closed",
                "heartbeat_restored": _heartbeat_back(payload),
                "breaker_opened": "breaker opened again",
                "trial_answered": _trial_answered(payload),
            }[kind]
            if kind == "breaker_closed" and payload.get("reason"):  # (the reason is mrkdwn)
                said = operator_mentions(slack_text(str(payload["reason"]), 300))
                reason = f"breaker closed: {said}"
            self.clear(tx, kinds=cleared, scope=scope, reason=reason, by=payload.get("actor"))
        if kind == "spent_while_open":
            return self._spent_while_open(tx, scope, payload, now)
        akind = alert_kind(kind, payload)
        if akind is None:
            return None
        if akind in _PER_AGENT and scope.count("/") > 2:
            agent = "/".join(scope.split("/")[:3])
            # one agent overrunning in 260 conversations is one problem, not 260 alerts
            # (unless a silence holds that conversation and not its agent: then it stays
            # its own, silenced)
            if (
                self.silence_for(tx, kind=akind, scope=scope, now=now) is None
                or self.silence_for(tx, kind=akind, scope=agent, now=now) is not None
            ):
                payload = {**payload, "conversation": scope}
                scope = agent
        if akind == "scope_violation" and payload.get("token_scope"):
            # A token probing 200 scopes is one problem, its own (revoke it), not 200
            # alerts: the alert is on the token's node, and says the scope it last tried
            # (or what it named: a reservation's scope is not the prober's to learn).
            if payload.get("tried"):  # the real scope stays in the event, not the alert
                payload = {k: v for k, v in payload.items() if k != "scope"}
            payload = {**payload, "tried": payload.get("tried") or scope}
            scope = str(payload["token_scope"])
        if kind == "breaker_opened" and payload.get("trip") == "trial":
            # a failed trial reopens the breaker for the reason it first opened
            row = tx.one(
                "SELECT kind FROM alerts WHERE resolved_at IS NULL AND scope = ?"
                " AND kind IN ('breaker_opened_spend', 'breaker_opened_failures')"
                " ORDER BY id DESC LIMIT 1",
                (scope,),
            )
            akind = row[0] if row else akind
        alert_id = self.fire(tx, kind=akind, scope=scope, at=at, facts=payload, event_id=event_id)
        if kind == "breaker_opened" and payload.get("trip") == "trial":
            tell_approver(self, tx, alert_id, scope, payload, at, event_id)
        return alert_id

    def _spent_while_open(
        self, tx: Tx, scope: str, payload: dict[str, Any], now: float
    ) -> int | None:
        """Add a charge that landed after the trip to the breaker's open alert: the page
        said what tripped it, the message then says what the trip did not stop."""
        marks = ", ".join("?" for _ in OPENED_KINDS)
        row = tx.one(
            "SELECT id, facts FROM alerts WHERE resolved_at IS NULL AND scope = ?"
            f" AND kind IN ({marks}) ORDER BY id DESC LIMIT 1",
            (scope, *OPENED_KINDS),
        )
        charged = payload.get("charged_micros")
        if row is None or not isinstance(charged, int) or charged <= 0:
            return None
        facts = json.loads(row[1])
        facts[AFTER_MICROS] = int(facts.get(AFTER_MICROS) or 0) + charged
        facts[AFTER_CALLS] = int(facts.get(AFTER_CALLS) or 0) + 1
        tx.execute(
            "UPDATE alerts SET facts = ? WHERE id = ?",
            (json.dumps(facts, separators=(",", ":")), row[0]),
        )
        self.touch(tx, self.get(tx, row[0]), now)
        return int(row[0])

    def fire(
        self,
        tx: Tx,
        *,
        kind: str,
        scope: str,
        at: float,
        facts: dict[str, Any],
        event_id: int | None = None,
    ) -> int:
        """Record one firing: bump the open group of its fingerprint, or open a new one."""
        now = tx.clock.now()
        fp = fingerprint(kind, scope)
        row = tx.one(
            "SELECT id, facts FROM alerts WHERE fingerprint = ? AND resolved_at IS NULL", (fp,)
        )
        before = json.loads(row[1]) if row is not None else {}
        if kind == "overrun":  # the latest overrun's facts, and the sum of all of them
            summed = int(before.get(OVERRUN_TOTAL) or before.get("overrun_micros") or 0)
            facts = {**facts, OVERRUN_TOTAL: summed + int(facts.get("overrun_micros") or 0)}
        if kind in ("runaway", "duplicate_burst") and before:  # every stream that fired
            seen = [*(before.get(STREAMS) or [before.get("stream")]), facts.get("stream")]
            facts = {**facts, STREAMS: [s for s in dict.fromkeys(seen) if s][:MAX_STREAMS]}
        if kind == "duplicate_burst":  # every stream's, counted anew (review26 R3 L1)
            counts = stream_counts(tx, agent=scope, before=before, facts=facts, at=at)
            facts = {**facts, STREAM_COUNTS: counts}
        if kind == MODEL_THRESHOLD_KIND:  # every model's warning it holds (recheck24 M1)
            facts = merged(before, facts)
        facts_json = json.dumps(facts, separators=(",", ":"))
        if row is not None:
            carried = {}
            if before.get(AFTER_MICROS):  # a breaker tripping again: keep what got through
                carried = {k: before[k] for k in (AFTER_MICROS, AFTER_CALLS) if k in before}
            if facts.get("trip") == "trial" and kind.startswith("breaker_opened"):
                first = before.get(OPENED_FOR) or (
                    before.get("reason") if before.get("trip") != "trial" else None
                )
                if first:  # a failed trial: the reason it opened for stays in the message
                    carried[OPENED_FOR] = first
            # a model's outage: the agents held behind it, or the outage an agent's is part of
            carried |= {k: before[k] for k in _KEPT_FACTS if k in before}
            if carried:
                facts_json = json.dumps({**facts, **carried}, separators=(",", ":"))
            tx.execute(
                "UPDATE alerts SET count = count + 1, last_at = MAX(last_at, ?), facts = ?,"
                " last_event_id = ? WHERE id = ?",
                (at, facts_json, event_id, row[0]),
            )
            self.touch(tx, self.get(tx, row[0]), now)
            return int(row[0])
        tier = self.policy.alerts.tier_of(kind)
        silence = self.silence_for(tx, kind=kind, scope=scope, now=now)
        cur = tx.execute(
            "INSERT INTO alerts (fingerprint, kind, scope, tier, first_event_id, last_event_id,"
            " first_at, last_at, facts, silence_id, was_silenced)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fp,
                kind,
                scope,
                tier,
                event_id,
                event_id,
                at,
                at,
                facts_json,
                silence[0] if silence else None,
                1 if silence else 0,
            ),
        )
        alert_id = int(cur.lastrowid or 0)
        if scope.startswith("model:"):  # agents' alerts held before it fired: it names them
            self.outage_roll(tx, scope)
        if silence is None:
            self._start(tx, self.get(tx, alert_id), now)
        return alert_id

    def _post_held(self, tx: Tx, now: float) -> int:
        """Post and page the agents' alerts a model's outage held back whose breaker is
        still open a minute after the model's closed (:meth:`AlertPaging.held_to_post`).
        One posted before the model's breaker opened is redrawn, and its chain goes on
        from the step it stood at (:meth:`run_chains`, next): not started over, which
        would page its first step twice (review30 H1)."""
        self.held_in_trial(tx, now)
        held = self.held_to_post(tx, now)
        for alert in held:
            if alert.posted_at is not None:
                self.touch(tx, alert, now)
            elif alert.silence_id is None:
                self._start(tx, alert, now)
        return len(held)

    # -- the tick -----------------------------------------------------------------------

    def tick(self, tx: Tx, *, refused: Sequence[tuple[float, float]] = ()) -> dict[str, int]:
        """Everything time-driven, from rows: watchdog, events, silences, resolution, chains.
        ``refused``: spans in which the database refused writes, agents' beats with them
        (see :func:`heartbeats.alive`). A storm's summaries are redrawn once, at its end."""
        with summaries_once(self, tx):
            return self._tick(tx, refused=refused)

    def _tick(self, tx: Tx, *, refused: Sequence[tuple[float, float]]) -> dict[str, int]:
        now = tx.clock.now()
        heartbeats.alive(tx, now=now, refused=refused)
        missed = heartbeats.watchdog(
            tx, self.policy.heartbeats, now=now, watching_since=self.watching_since
        )
        done = {"missed": missed}
        done["silenced"] = self.begin_silences(tx, now)
        done["events"] = self.process_pending(tx)
        done["unsilenced"] = self.end_silences(tx, now)
        done["resolved"] = self._resolve_cleared(tx, now)
        done["outage"] = self._post_held(tx, now)
        done["quiet"] = quiet.recheck(self, tx, now)
        done["escalated"] = self.run_chains(tx, now)
        done["updated"] = self._flush_updates(tx, now)
        return done


def _trial_answered(payload: dict[str, Any]) -> str:
    """Why a trial request resolved: answered by a person, by the policy, or by the
    model whose breaker the agent's follows (``breakers.follow_model``). A trial approved
    with a size other than the policy's says it: ``trial of 1 call within $0.10 approved
    by <@U1>``."""
    actor = str(payload.get("actor"))
    if actor.startswith("model:"):
        return f"trial started by {actor}'s breaker"
    by = "" if actor == NIGHTSHIFT else f" by {resolver(actor)}"
    calls, budget = payload.get("trial_calls"), payload.get("trial_budget_micros")
    if isinstance(calls, int) and isinstance(budget, int):
        size = f" of {plural(calls, 'call')} within {format_usd(budget, exact=True)}"
        return f"trial{size} {payload.get('decision')}{by}"
    return f"trial {payload.get('decision')}{by}"


def _heartbeat_back(payload: dict[str, Any]) -> str:
    """Why a missed-heartbeat alert resolves: the agent beat again, or said it stopped
    (audit26 A3 L4: "heartbeat is back" for an agent that reported it stopped)."""
    status = payload.get("status")
    if isinstance(status, str) and heartbeats.is_stopped(status):
        word = "paused" if status.lower() == "paused" else "stopped"
        return f"the agent reported it {word} (status {slack_text(status, 64)})"
    return "heartbeat is back"
