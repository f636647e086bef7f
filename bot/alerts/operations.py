"""What people do to alerts: acknowledge, resolve, escalate now, silence; on-call overrides.

Each function runs inside ``store.write`` on the engine's rows and audits who did it.

Example:
    >>> # alert, new = await store.write(lambda tx: ack(engine, tx, alert_id=42, actor="U1"))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.alerts.engine import AlertEngine
from bot.alerts.model import ALERT_COLUMNS, Alert, fingerprint
from bot.alerts.oncall import Override
from bot.alerts.render import duration
from guards.errors import Conflict, InvalidInput
from guards.scopes import Scope, ScopeError
from guards.store import Tx

__all__ = [
    "SilenceMade",
    "ack",
    "end_overrides",
    "escalate_now",
    "override",
    "resolve",
    "silence",
]

MODEL_PREFIX = "model:"
_OPEN = f"SELECT {ALERT_COLUMNS} FROM alerts WHERE resolved_at IS NULL"


@dataclass(frozen=True, slots=True)
class SilenceMade:
    """A new silence: what it matches, until when, and the open alerts it silenced."""

    id: int
    matches: str
    expires_at: float
    silenced: list[int]


def ack(engine: AlertEngine, tx: Tx, *, alert_id: int, actor: str) -> tuple[Alert, bool]:
    """Acknowledge: the chain stops and MTTA is recorded. Returns (alert, newly acked)."""
    now = tx.clock.now()
    alert = engine.get(tx, alert_id)
    if alert.resolved_at is not None:
        raise Conflict(f"alert #{alert_id} is already resolved", state="resolved")
    if alert.acked_at is not None:
        return alert, False
    tx.execute(
        "UPDATE alerts SET acked_at = ?, acked_by = ?, esc_at = NULL WHERE id = ?",
        (now, actor, alert_id),
    )
    tx.audit(actor=actor, action="alert.ack", target=f"#{alert_id} {alert.fingerprint}")
    alert = engine.get(tx, alert_id)
    engine.touch(tx, alert, now, urgent=True)
    engine.update_pages(tx, alert, now)
    return alert, True


def resolve(engine: AlertEngine, tx: Tx, *, alert_id: int, actor: str) -> Alert:
    """Resolve by hand (the Resolve button): the chain stops; a new firing opens a new alert."""
    now = tx.clock.now()
    alert = engine.get(tx, alert_id)
    if alert.resolved_at is not None:
        return alert
    tx.audit(actor=actor, action="alert.resolve", target=f"#{alert_id} {alert.fingerprint}")
    engine.resolve_alert(tx, alert, now, by=actor, reason=None)
    return engine.get(tx, alert_id)


def escalate_now(engine: AlertEngine, tx: Tx, *, alert_id: int, actor: str) -> str:
    """Take the next step of the chain at once; returns who was notified."""
    now = tx.clock.now()
    alert = engine.get(tx, alert_id)
    if alert.resolved_at is not None:
        raise Conflict(f"alert #{alert_id} is already resolved", state="resolved")
    if alert.silence_id is not None:
        raise Conflict(f"alert #{alert_id} is silenced; it does not page anyone")
    if not engine.chain.steps:
        raise Conflict("there is no escalation chain: add oncall.escalation to the policy")
    if alert.tier == "P2":
        raise Conflict(f"alert #{alert_id} is P2: it is collected for the digest, not paged")
    if alert.esc_step is None:
        raise Conflict(
            f"alert #{alert_id} has been through its whole escalation chain; "
            "everyone in it was notified"
        )
    tx.audit(actor=actor, action="alert.escalate", target=f"#{alert_id} {alert.fingerprint}")
    return engine.escalate(tx, alert, now, manual_by=actor)


def silence(engine: AlertEngine, tx: Tx, *, target: str, seconds: int, actor: str) -> SilenceMade:
    """Silence an alert's fingerprint (``42``, ``#42``, ``kind:scope``) or a scope subtree.

    Raises:
        InvalidInput: a target that is neither, or a duration that is not positive.
        NotFound: no alert with that id.
    """
    if seconds <= 0:
        raise InvalidInput("duration", "a silence lasts at least a second, e.g. 30m or 2h")
    now = tx.clock.now()
    fp: str | None = None
    scope: str | None = None
    alert_id: int | None = None
    text = target.strip()
    if text.lstrip("#").isdigit():
        alert = engine.get(tx, int(text.lstrip("#")))
        fp, alert_id = alert.fingerprint, alert.id
    elif text.startswith(MODEL_PREFIX):
        scope = text  # a model's breaker: model:<name>
    elif ":" in text:
        kind, _, path = text.partition(":")
        if not path.startswith(MODEL_PREFIX):
            _scope_or_raise(path)
        fp = fingerprint(kind, path)
    else:
        scope = _scope_or_raise(text)
    expires = now + seconds
    cur = tx.execute(
        "INSERT INTO silences (fingerprint, scope, alert_id, created_by, created_at,"
        " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        (fp, scope, alert_id, actor, now, expires),
    )
    silence_id = int(cur.lastrowid or 0)
    matches = fp or f"{scope} and below"
    tx.audit(
        actor=actor,
        action="alert.silence",
        target=matches,
        after=datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds"),
    )
    silenced = []
    for row in tx.all(_OPEN + " AND silence_id IS NULL"):
        alert = Alert.from_row(row)
        if engine.silence_for(tx, alert.fingerprint, alert.scope, now) is None:
            continue
        tx.execute(
            "UPDATE alerts SET silence_id = ?, was_silenced = 1, esc_at = NULL WHERE id = ?",
            (silence_id, alert.id),
        )
        engine.touch(tx, engine.get(tx, alert.id), now, urgent=True)
        silenced.append(alert.id)
    return SilenceMade(silence_id, matches, expires, silenced)


def override(
    engine: AlertEngine, tx: Tx, *, rotation: str, user: str, seconds: int, actor: str
) -> Override:
    """Put ``user`` on call for ``rotation`` from now for ``seconds``."""
    if seconds <= 0:
        raise InvalidInput("duration", "an override lasts at least a minute, e.g. 4h")
    now = tx.clock.now()
    tx.execute(
        "INSERT INTO oncall_overrides (rotation, user_id, starts_at, ends_at, created_by,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (rotation, user, now, now + seconds, actor, now),
    )
    tx.audit(
        actor=actor,
        action="oncall.override",
        target=rotation,
        after=f"{user} for {duration(seconds)}",
    )
    return Override(rotation, user, now, now + seconds, now)


def end_overrides(engine: AlertEngine, tx: Tx, *, rotation: str, actor: str) -> int:
    """End the active overrides of ``rotation`` now; returns how many."""
    now = tx.clock.now()
    cur = tx.execute(
        "UPDATE oncall_overrides SET ends_at = ? WHERE rotation = ? AND ends_at > ?",
        (now, rotation, now),
    )
    if cur.rowcount:
        tx.audit(actor=actor, action="oncall.override.end", target=rotation)
    return cur.rowcount


def _scope_or_raise(text: str) -> str:
    try:
        return Scope.parse(text).path
    except ScopeError as exc:
        raise InvalidInput(
            "target", f"silence an alert id (`42`) or a scope (`acme/alice`): {exc}"
        ) from None
