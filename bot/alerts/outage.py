"""A model's outage (``alerts.inhibit_by_model``): an agent's failure alerts wait behind it.

When many agents fail on one provider, each agent's failure breaker trips, and so does
the model's. :class:`OutageHolds` keeps the agents' ``breaker_opened_failures`` and
``half_open_requested`` alerts back behind the model's alert (not posted, not paged),
names them on it, and lets them go only when it is right to: a minute after the model's
breaker closed if their own breaker still refuses, or once inhibition is off or their
breaker no longer names that model. Only a trip in the model's outage counts
(:func:`guards.breaker_records.part_of_outage`).

Example:
    >>> # model = engine.outage_model(tx, alert.kind, alert.scope)
    >>> # if model: engine.hold(tx, alert, model)
"""

from __future__ import annotations

import json
from typing import Any

from bot.alerts.messages import AlertMessages
from bot.alerts.model import OPENED_KINDS, Alert
from bot.alerts.render import (
    HELD_BY,
    MODEL_BACK,
    OUTAGE_ALERT,
    OUTAGE_OF,
    WITH_IT,
    WITH_IT_COUNT,
)
from guards.breaker_records import part_of_outage
from guards.store import Tx

__all__ = ["OUTAGE_GRACE", "OUTAGE_KINDS", "OutageHolds"]

#: an agent's alerts a model's outage holds back (alerts.inhibit_by_model)
OUTAGE_KINDS = ("breaker_opened_failures", "half_open_requested")
#: seconds after the model's breaker closed that a held alert whose breaker is still open
#: is posted: the agents that follow the model (breakers.follow_model) are in trial by then
OUTAGE_GRACE = 60.0
_WITH_IT_KEPT = 50  # the agents a model's alert keeps by name (it counts them all)


class OutageHolds(AlertMessages):
    """Hold an agent's alerts behind its model's outage, and let them go."""

    def outage_model(self, tx: Tx, kind: str, scope: str) -> str | None:
        """The model (``model:<name>``) whose open breaker holds back this agent's alert:
        its failure breaker tripped on that model's calls (the trip's ``model`` figure,
        kept while it stays open) in that model's outage (:func:`part_of_outage`), and the
        model's breaker is not closed now. None: the alert pages as its tier says."""
        if not self.policy.alerts.inhibit_by_model or kind not in OUTAGE_KINDS:
            return None
        if scope.startswith("model:") or scope.count("/") != 2:
            return None
        row = tx.one(
            "SELECT json_extract(a.figures, '$.model') FROM breakers a JOIN breakers m"
            " ON m.key = json_extract(a.figures, '$.model')"
            " WHERE a.key = ? AND a.state != 'closed' AND m.state != 'closed'"
            f" AND {part_of_outage('a', 'm')}",
            (scope,),
        )
        return None if row is None or not row[0] else str(row[0])

    def hold(self, tx: Tx, alert: Alert, model: str) -> None:
        """Keep an agent's alert back behind its model's (not posted, not paged), and
        name the agent on the model's alert."""
        facts = {**alert.facts, HELD_BY: model}
        self._set_facts(tx, alert.id, facts)
        self.outage_roll(tx, model)

    def outage_roll(self, tx: Tx, model: str) -> None:
        """Name the agents held back on the model's open alert (as it grows: the message
        is redrawn at the usual pace), and the model's alert on theirs. An agent's alert
        posted before the model's breaker tripped (the first agent's: the model's needs
        ``model_min_agents``) is held from here on: its pages wait, its message says so."""
        if not self.policy.alerts.inhibit_by_model:
            return
        marks = ", ".join("?" for _ in OPENED_KINDS)
        row = tx.one(
            f"SELECT id, facts FROM alerts WHERE resolved_at IS NULL AND scope = ?"
            f" AND kind IN ({marks}) ORDER BY id DESC LIMIT 1",
            (model, *OPENED_KINDS),
        )
        if row is None:
            return  # the model's alert comes later (its event is next): it rolls then
        model_id = int(row[0])
        kinds = ", ".join("?" for _ in OUTAGE_KINDS)
        held = tx.all(
            "SELECT a.id, a.scope, a.facts, a.posted_at IS NOT NULL FROM alerts a"
            " JOIN breakers b ON b.key = a.scope JOIN breakers m ON m.key = ?"
            f" WHERE a.resolved_at IS NULL AND a.kind IN ({kinds}) AND b.state != 'closed'"
            " AND json_extract(b.figures, '$.model') = m.key"
            f" AND {part_of_outage('b', 'm')} ORDER BY a.id",
            (model, *OUTAGE_KINDS),
        )
        for alert_id, _, facts_json, posted in held:
            facts = json.loads(facts_json)
            if facts.get(OUTAGE_ALERT) != model_id or facts.get(HELD_BY) != model:
                self._set_facts(tx, alert_id, {**facts, HELD_BY: model, OUTAGE_ALERT: model_id})
                if posted:
                    self.touch(tx, self.get(tx, alert_id), tx.clock.now())
        facts = json.loads(row[1])
        before = [str(a) for a in facts.get(WITH_IT) or []]
        agents = list(dict.fromkeys([*before, *(str(h[1]) for h in held)]))
        count = max(int(facts.get(WITH_IT_COUNT) or 0), len(agents))
        if agents[:_WITH_IT_KEPT] == before and count == facts.get(WITH_IT_COUNT):
            return
        self._set_facts(
            tx, model_id, {**facts, WITH_IT: agents[:_WITH_IT_KEPT], WITH_IT_COUNT: count}
        )
        self.touch(tx, self.get(tx, model_id), tx.clock.now())

    def held_to_post(self, tx: Tx, now: float) -> list[Alert]:
        """The held alerts to let go now (the only way a held alert is let go): their
        model's breaker closed :data:`OUTAGE_GRACE` ago or more and their own breaker
        still refuses (open, waiting for a person, forced open: each then says it was
        part of the outage); or inhibition was turned off, or their breaker no longer
        names that model (a trial that failed on another model: its own problem now,
        said as any other). One whose breaker is in trial waits on: the trial closes it
        (the alert resolves, nobody paged) or opens it again (let go then). The caller
        posts those not posted yet; one posted before the model's breaker opened goes
        on with its chain from the step it stood at."""
        rows = tx.all(
            "SELECT a.id, json_extract(b.figures, '$.model') IS m.key FROM alerts a"
            " LEFT JOIN breakers m ON m.key = json_extract(a.facts, '$.' || ?1)"
            " LEFT JOIN breakers b ON b.key = a.scope"
            " WHERE a.resolved_at IS NULL AND json_extract(a.facts, '$.' || ?1) IS NOT NULL"
            " AND (b.key IS NULL OR b.state != 'closed') AND (?2 OR m.key IS NULL"
            " OR b.key IS NULL OR json_extract(b.figures, '$.model') IS NOT m.key"
            " OR (m.state = 'closed' AND m.since <= ?3"
            " AND b.state IN ('open', 'half_open_pending', 'forced_open')))"
            " ORDER BY a.id LIMIT 500",
            (HELD_BY, not self.policy.alerts.inhibit_by_model, now - OUTAGE_GRACE),
        )
        let_go = []
        for alert_id, still_its in rows:
            alert = self.get(tx, int(alert_id))
            facts = {k: v for k, v in alert.facts.items() if k not in (HELD_BY, MODEL_BACK)}
            if still_its:
                facts[OUTAGE_OF] = alert.facts[HELD_BY]
            else:
                facts.pop(OUTAGE_ALERT, None)
            self._set_facts(tx, alert.id, facts)
            let_go.append(self.get(tx, alert.id))
        return let_go

    def held_in_trial(self, tx: Tx, now: float) -> int:
        """Redraw the posted held alerts whose model's breaker closed while their own
        breaker's trial runs (``MODEL_BACK``: "the model's breaker closed and this
        breaker's trial is running"), and back when the model's opens again. Returns how
        many changed."""
        rows = tx.all(
            "SELECT a.id, a.facts, m.state = 'closed' AND b.state = 'half_open' FROM alerts a"
            " JOIN breakers m ON m.key = json_extract(a.facts, '$.' || ?1)"
            " JOIN breakers b ON b.key = a.scope WHERE a.resolved_at IS NULL"
            " AND (m.state = 'closed' AND b.state = 'half_open')"
            " != (json_extract(a.facts, '$.' || ?2) IS NOT NULL) ORDER BY a.id LIMIT 500",
            (HELD_BY, MODEL_BACK),
        )
        for alert_id, facts_json, back in rows:
            facts = {k: v for k, v in json.loads(facts_json).items() if k != MODEL_BACK}
            self._set_facts(tx, int(alert_id), {**facts, MODEL_BACK: True} if back else facts)
            alert = self.get(tx, int(alert_id))
            if alert.posted_at is not None:
                self.touch(tx, alert, now)
        return len(rows)

    def _set_facts(self, tx: Tx, alert_id: int, facts: dict[str, Any]) -> None:
        tx.execute(
            "UPDATE alerts SET facts = ? WHERE id = ?",
            (json.dumps(facts, separators=(",", ":")), alert_id),
        )
