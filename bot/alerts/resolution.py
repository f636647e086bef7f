"""Resolution: alerts resolved when their condition clears, by hand, or after a quiet spell.

:class:`AlertResolution` adds resolving to :class:`~bot.alerts.paging.AlertPaging`: a
budget alert when its limit is raised above the one that was hit or its window turns
(a new day, week or month), a model's budget alert (``budgets.models``) likewise when its
window turns, the policy file raises or drops that model's limit (a reload) or a credit
frees room in it (its warning: once every model warned of in it is back under its mark,
:mod:`bot.alerts.model_warnings`), the
kinds an event clears (:data:`bot.alerts.model.CLEARED_BY`), and kinds with no clearing
condition after ``auto_resolve_after`` without a firing (an unacknowledged P0 stays until
a human acts). :class:`~bot.alerts.starts.AlertStarts` builds on it.

Example:
    >>> # engine.clear(tx, kinds=("heartbeat_missed",), scope=s, reason="heartbeat is back")
    >>> # engine.budget_changed(tx, scope="acme/alice")
"""

from __future__ import annotations

import json
from typing import Any

from bot.alerts.budget_room import note_short, raised_reason, still_short
from bot.alerts.messages import BUDGET_KINDS, OPEN_ALERTS
from bot.alerts.model import CONDITION_KINDS, MODEL_BUDGET_KIND, MODEL_THRESHOLD_KIND, Alert
from bot.alerts.model_warnings import cleared_why, holding, warned_of
from bot.alerts.paging import AlertPaging
from bot.alerts.render_time import duration
from guards.budget_warnings import past_mark
from guards.ledger import periods_at
from guards.model_budgets import ModelUsage, has_room, model_standing
from guards.money import usd_for
from guards.scopes import Scope, ScopeError
from guards.store import Tx
from guards.usage import period_keys

__all__ = ["AlertResolution"]


class AlertResolution(AlertPaging):
    """Resolves alerts and settles budget alerts; stateless beyond the policy."""

    def clear(
        self, tx: Tx, *, kinds: tuple[str, ...], scope: str, reason: str, by: str | None = None
    ) -> int:
        """Resolve the open alerts of ``kinds`` at ``scope``; returns how many."""
        marks = ", ".join("?" for _ in kinds)
        rows = tx.all(f"{OPEN_ALERTS} AND scope = ? AND kind IN ({marks})", (scope, *kinds))
        now = tx.clock.now()
        for row in rows:
            self.resolve_alert(tx, Alert.from_row(row), now, by=by, reason=reason)
        return len(rows)

    def budget_changed(self, tx: Tx, *, scope: str) -> list[Alert]:
        """A limit of ``scope`` was set (``budget set``, Raise budget): settle its alerts now.

        Each open budget alert of ``scope`` resolves at once if the change cleared it (as
        the tick would), else its messages are redrawn at once: they keep their buttons
        and show the change (:meth:`AlertMessages.budget_set`). Returns those alerts as
        they are now (none: nothing to show it on).
        """
        now = tx.clock.now()
        marks = ", ".join("?" for _ in BUDGET_KINDS)
        rows = tx.all(f"{OPEN_ALERTS} AND scope = ? AND kind IN ({marks})", (scope, *BUDGET_KINDS))
        for row in rows:
            alert = Alert.from_row(row)
            cleared = self._budget_cleared(tx, alert, now, set_now=True)
            if cleared:
                reason, by = cleared
                self.resolve_alert(tx, alert, now, by=by, reason=reason)
            else:
                self.update_pages(tx, alert, now)
                self.touch(tx, alert, now, urgent=True)
        return [self.get(tx, int(row[0])) for row in rows]

    def charge_taken_back(
        self, tx: Tx, *, scope: str, by: str, what: str, model: str | None = None
    ) -> list[Alert]:
        """A charge of ``scope`` was taken back (``/agent credit``): each open budget alert
        of ``scope`` or a level above it whose window has room again resolves now (else
        it is redrawn), as a raised limit resolves it (review29 M1: on-call was paged all
        night for a budget the credit had freed). So does the namespace's budget alert for
        ``model``, the model the charge's hold counted (None: none), when the credit gave
        that model's window room (review23 model budgets M1). ``what`` says what was taken
        back."""
        now = tx.clock.now()
        node = Scope.parse(scope)
        paths = node.ancestors()
        marks = ", ".join("?" for _ in BUDGET_KINDS)
        rows = tx.all(
            f"{OPEN_ALERTS} AND scope IN ({', '.join('?' for _ in paths)}) AND kind IN ({marks})",
            (*paths, *BUDGET_KINDS),
        )
        alerts = [Alert.from_row(row) for row in rows]
        if model is not None:  # one per namespace: the model of its latest refusal, or
            # any model its warnings hold
            rows = tx.all(
                f"{OPEN_ALERTS} AND scope = ? AND kind IN (?, ?)",
                (paths[0], MODEL_BUDGET_KIND, MODEL_THRESHOLD_KIND),
            )
            alerts += [a for a in map(Alert.from_row, rows) if _about(a, model)]
        if not alerts or self.ledger is None:
            return []
        usage = [u for u in self.ledger.usage(tx, node, now=now) if u.limit_micros is not None]
        room = {(u.scope, u.window): (u.remaining_micros or 0) > 0 for u in usage}
        limits = {(u.scope, u.window): u.limit_micros for u in usage}
        for alert in alerts:
            window = str(alert.facts.get("window"))
            if alert.kind == MODEL_THRESHOLD_KIND:
                # as a raised limit: only once every warning it holds is back under its
                # mark (review24 L3, recheck24 M1)
                self._settle_warnings(tx, alert, now, by=by, said=f"{what}: ", urgent=True)
                continue
            if alert.kind == MODEL_BUDGET_KIND:
                # every window the model's budget limits, not only the one named (review
                # h1: a credit freeing the month left the day spent, and resolved it)
                freed = self._model_has_room(tx, alert.scope, str(model))
                reason = f"{what}: the budget for {model} has room"
            else:
                freed = room.get((alert.scope, window), False)
                limit = limits.get((alert.scope, window))
                if freed and limit is not None:  # a warning: back under its mark too
                    freed = not self._past_mark(tx, alert, Scope.parse(alert.scope), limit, now)
                reason = f"{what}: the budget has room"
                if freed:
                    self._rearm_level(tx, alert, limit, now)
            if freed:
                self.resolve_alert(tx, alert, now, by=by, reason=reason)
            else:
                self.update_pages(tx, alert, now)
                self.touch(tx, alert, now, urgent=True)
        return [self.get(tx, alert.id) for alert in alerts]

    def _model_has_room(self, tx: Tx, namespace: str, model: str) -> bool:
        """Whether the namespace's budget for ``model`` can take another call now: money
        left in every window the policy limits it in (no ledger: it cannot say, False)."""
        if self.ledger is None:
            return False
        return has_room(model_standing(tx, self.ledger, namespace=namespace, model=model))

    def _settle_warnings(
        self, tx: Tx, alert: Alert, now: float, *, by: str | None, said: str, urgent: bool
    ) -> bool:
        """Resolve a model's warning alert (``model_budget_threshold``) once none of the
        warnings it holds does any more (the reason: ``said``, then why each cleared);
        while some do, drop the others from it and redraw it. No ledger to ask: it holds.
        Returns whether it resolved."""
        entries = warned_of(alert.facts)
        if self.ledger is None or not entries:
            return False
        held: list[dict[str, Any]] = []
        why: list[str] = []
        standing: dict[str, list[ModelUsage]] = {}
        for entry in entries:
            model = str(entry.get("model"))
            if model not in standing:
                standing[model] = model_standing(
                    tx, self.ledger, namespace=alert.scope, model=model
                )
            reason = cleared_why(entry, standing[model])
            if reason is None:
                held.append(entry)
            else:
                why.append(reason)
                self._rearm_model(tx, alert.scope, entry, standing[model])
        if not held:
            said += "; ".join(dict.fromkeys(why))  # each cause once: "a new day began"
            self.resolve_alert(tx, alert, now, by=by, reason=said)
            return True
        if why:
            tx.execute(
                "UPDATE alerts SET facts = ? WHERE id = ?",
                (json.dumps(holding(held), separators=(",", ":")), alert.id),
            )
        if why or urgent:
            alert = self.get(tx, alert.id)
            if urgent:
                self.update_pages(tx, alert, now)
            self.touch(tx, alert, now, urgent=urgent)
        return False

    def _rearm_model(
        self, tx: Tx, namespace: str, entry: dict[str, Any], standing: list[ModelUsage]
    ) -> None:
        """A model's warning ``entry`` cleared: the marks its window is back under (all of
        them when the policy no longer limits it) warn again when passed again this period
        (a turned window's period is a new one already)."""
        assert self.ledger is not None
        model, window = str(entry.get("model")), str(entry.get("window"))
        usage = next((u for u in standing if u.window == window), None)
        period = str(entry.get("period"))
        if usage is not None and usage.period != period:
            return
        key = (namespace, model, window, period)
        spent, limit = (usage.spent_micros, usage.limit_micros) if usage else (0, None)
        self.ledger.warnings.model_back_under(tx, key, spent=spent, limit=limit)

    def _rearm_level(self, tx: Tx, alert: Alert, limit: int | None, now: float) -> None:
        """A level's warning (``budget_threshold``) resolves with its window back under
        its mark at ``limit`` (None: removed): the marks it is under warn again."""
        if alert.kind != "budget_threshold" or self.ledger is None:
            return
        scope = Scope.parse(alert.scope)
        window = str(alert.facts.get("window"))
        period = period_keys(self.ledger.periods(scope.namespace, now))[window]
        spent, _ = self.ledger.counters.get(tx, scope.path, window, period)
        self.ledger.warnings.back_under(tx, (scope.path, window, period), spent=spent, limit=limit)

    def _resolve_cleared(self, tx: Tx, now: float) -> int:
        resolved = 0
        marks = ", ".join("?" for _ in BUDGET_KINDS)
        for row in tx.all(
            f"{OPEN_ALERTS} AND kind IN ({marks}, ?, ?)",
            (*BUDGET_KINDS, MODEL_BUDGET_KIND, MODEL_THRESHOLD_KIND),
        ):
            alert = Alert.from_row(row)
            if alert.kind == MODEL_THRESHOLD_KIND:
                settled = self._settle_warnings(tx, alert, now, by=None, said="", urgent=False)
                resolved += settled
                continue
            if alert.kind == MODEL_BUDGET_KIND:
                cleared = self._model_budget_cleared(tx, alert, now)
            else:
                cleared = self._budget_cleared(tx, alert, now)
            if cleared:
                reason, by = cleared
                self.resolve_alert(tx, alert, now, by=by, reason=reason)
                resolved += 1
        quiet = self.policy.alerts.auto_resolve_after
        kinds = sorted(CONDITION_KINDS)
        marks = ", ".join("?" for _ in kinds)
        rows = tx.all(
            f"{OPEN_ALERTS} AND kind NOT IN ({marks}) AND last_at <= ? LIMIT 500",
            (*kinds, now - quiet),
        )
        for row in rows:
            alert = Alert.from_row(row)
            if alert.tier == "P0" and alert.state == "open":
                continue  # an unacknowledged P0 waits for a human
            self.resolve_alert(
                tx, alert, now, by=None, reason=f"no new firing for {duration(quiet)}"
            )
            resolved += 1
        return resolved

    def _window_turned(self, alert: Alert, namespace: str, window: str, now: float) -> bool:
        """Whether a budget alert's window (day, week, month) has turned since it fired,
        in the namespace's time zone."""
        if window == "total":
            return False
        tz = self.ledger.timezone(namespace) if self.ledger else self.tz
        index = ("day", "week", "month").index(window)
        return periods_at(alert.last_at, tz)[index] != periods_at(now, tz)[index]

    def _model_budget_cleared(
        self, tx: Tx, alert: Alert, now: float
    ) -> tuple[str, str | None] | None:
        """Why a model's refusal alert (``model_budget_exhausted``) no longer holds (None:
        it still holds). It needs room in every window the model's budget limits. Then: a
        window turned (the longest one that did is named: a refusal named ``day`` that the
        month kept open clears when the month turns), or the policy (reloaded) raised the
        limit of a window that refused the call (the one named, or another of the model's
        in ``also``), or dropped it. Money freed by releases does not clear it, as for a
        level. Nobody sets a model's limit in Slack: the file is who cleared it. (A
        warning's: :meth:`_settle_warnings`.)"""
        window, model = alert.facts.get("window"), str(alert.facts.get("model"))
        hit = _model_limits_hit(alert.facts, model)
        if window not in ("day", "week", "month", "total") or window not in hit:
            return None
        if self.ledger is not None and not self._model_has_room(tx, alert.scope, model):
            return None
        limits_now = self.policy.budgets.models.get(model, {})
        # a refusal clears with room, whichever window's turn gave it (review24 L4)
        windows = {*hit, *limits_now}
        for turned in ("month", "week", "day"):
            if turned in windows and self._window_turned(alert, alert.scope, turned, now):
                return f"a new {turned} began", None
        for hit_window, limit_then in hit.items():
            limit_now = limits_now.get(hit_window)
            if limit_now is None:
                return f"the policy no longer limits {model} per {hit_window}", None
            if limit_now > limit_then:
                usd = usd_for(limit_now, limit_then)
                raised = f"the {hit_window} budget for {model} to {usd(limit_now)}"
                return f"the policy raised {raised}", None
        return None

    def _budget_cleared(
        self, tx: Tx, alert: Alert, now: float, *, set_now: bool = False
    ) -> tuple[str, str | None] | None:
        """Why a budget alert no longer holds, and who cleared it (None: it still holds).

        It clears when the window it was about has turned (a new day, week or month in
        the namespace's time zone) or when that window's limit was raised above the
        limit that was hit. Money freed by releases does not clear it: the limit is
        still what it was, and the next refusal would re-fire it; but a raise short of
        the refused call when it was set (``set_now``: noted) clears once releases make
        room, saying so (:mod:`bot.alerts.budget_room`).
        """
        window = alert.facts.get("window")
        limit_then = alert.facts.get("limit_micros")
        if window not in ("day", "week", "month", "total") or not isinstance(limit_then, int):
            return None
        try:
            scope = Scope.parse(alert.scope)
        except ScopeError:
            return None
        if self._window_turned(alert, scope.namespace, window, now):
            return f"a new {window} began", None
        if self.ledger is None:
            return None
        limit_now = self.ledger.limits(tx, scope.path).get(window)
        if limit_now is not None and self._past_mark(tx, alert, scope, limit_now, now):
            return None  # a warning raised too little: still past its mark (as models')
        if limit_now is not None and still_short(
            tx, self.ledger, alert=alert, scope=scope, limit=limit_now, now=now
        ):  # raised, yet not enough for the call it refused (recheck27 Kd)
            if set_now and limit_now > limit_then:
                note_short(tx, alert, limit=limit_now)
            return None
        if limit_now is None or limit_now > limit_then:
            self._rearm_level(tx, alert, limit_now, now)
            row = tx.one(  # who set it at run time (None: the policy file changed)
                "SELECT set_by FROM budget_limits WHERE scope = ? AND window = ?",
                (scope.path, window),
            )
            by = row[0] if row is not None else None
            if limit_now is None:
                return f"the {window} limit was removed", by
            return raised_reason(alert.facts, window, limit_now, limit_then), by
        return None

    def _past_mark(self, tx: Tx, alert: Alert, scope: Scope, limit: int, now: float) -> bool:
        """Whether a level's warning (``budget_threshold``) still holds under ``limit``:
        what its window spent this period is still at or past its fraction of it (False
        for any other alert). A raise or a credit that leaves it past the mark clears
        nothing: the mark was given this period and would not warn again."""
        fraction = alert.facts.get("fraction")
        if alert.kind != "budget_threshold" or not isinstance(fraction, int | float):
            return False
        assert self.ledger is not None
        window = str(alert.facts.get("window"))
        period = period_keys(self.ledger.periods(scope.namespace, now))[window]
        spent, _ = self.ledger.counters.get(tx, scope.path, window, period)
        return limit > 0 and past_mark(spent=spent, limit=limit, fraction=fraction)

    def resolve_alert(
        self, tx: Tx, alert: Alert, now: float, *, by: str | None, reason: str | None
    ) -> None:
        tx.execute(
            "UPDATE alerts SET resolved_at = ?, resolved_by = ?, resolve_reason = ?,"
            " esc_at = NULL WHERE id = ?",
            (now, by, reason, alert.id),
        )
        alert = self.get(tx, alert.id)
        self.update_pages(tx, alert, now)  # first: pages still waiting are withdrawn
        self.touch(tx, alert, now, urgent=True)


def _model_limits_hit(facts: dict[str, object], model: str) -> dict[str, int]:
    """The windows of ``model``'s budget that refused the alert's latest call, with the
    limit each had: the one named, and the model's others listed in ``also``."""
    hit: dict[str, int] = {}
    window, limit = facts.get("window"), facts.get("limit_micros")
    if isinstance(window, str) and isinstance(limit, int):
        hit[window] = limit
    also = facts.get("also")
    for other in also if isinstance(also, list) else ():
        if not isinstance(other, dict) or other.get("level") != "model":
            continue
        if other.get("model") != model:
            continue
        w, lim = other.get("window"), other.get("limit_micros")
        if isinstance(w, str) and isinstance(lim, int):
            hit.setdefault(w, lim)
    return hit


def _about(alert: Alert, model: str) -> bool:
    """Whether a model's budget alert is about ``model``: its latest refusal's, or any
    warning it holds."""
    if alert.kind == MODEL_THRESHOLD_KIND:
        return any(entry.get("model") == model for entry in warned_of(alert.facts))
    return alert.facts.get("model") == model
