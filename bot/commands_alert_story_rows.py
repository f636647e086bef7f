"""What the database holds about one alert, as ``/agent alert <id>`` tells it
(:mod:`bot.commands_alert_story`): the alert, its escalation steps (and the pages Slack
refused, the webhook pages and how they went), its post, the silences that held it and
the audit rows that name it.

Example:
    >>> # rows = await store.read(lambda tx: read_story(tx, 12))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.alerts.model import ALERT_COLUMNS, Alert
from bot.alerts.storm_alone import Missed, missed
from bot.webhooks_rows import delivery_notes
from guards.errors import NotFound
from guards.store import Tx

__all__ = ["StoryRows", "read_story"]


@dataclass(frozen=True, slots=True)
class StoryRows:
    """What the database holds about one alert."""

    alert: Alert
    steps: list[Any]  # escalations: id, step, notify, target, at, manual_by, withdrawn, folded
    refused: dict[int, str]  # escalation id -> the error Slack refused its page with
    post: Any  # the outbox row of its channel message: state, result_channel, last_error
    silences: list[Any]
    audit: list[Any]  # at, actor, action, after, detail
    webhooks: dict[int, str]  # escalation id -> how its webhook page went (delivery_notes)
    missed: Missed  # what storm summaries deleted in Slack never showed of it


def read_story(tx: Tx, alert_id: int) -> StoryRows:
    """Raises NotFound when there is no such alert (never was, or deleted by retention)."""
    row = tx.one(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
    if row is None:
        raise NotFound(f"alert #{alert_id}")
    alert = Alert.from_row(row)
    steps = tx.all(
        "SELECT id, step, notify, target, at, manual_by, withdrawn_at, folded_into"
        " FROM escalations WHERE alert_id = ? ORDER BY id",
        (alert_id,),
    )
    refused = {
        int(r[0].rpartition(":")[2]): str(r[1] or "refused")
        for r in tx.all(
            "SELECT ref, last_error FROM outbox WHERE state = 'failed' AND ref IN"
            " (SELECT 'alert:' || alert_id || ':dm:' || id FROM escalations WHERE alert_id = ?)",
            (alert_id,),
        )
    }
    post = tx.one(
        "SELECT state, result_channel, last_error FROM outbox WHERE ref = ?", (alert.post_ref,)
    )
    # (one made the instant it was resolved came after: a click on the resolved message)
    end = alert.resolved_at if alert.resolved_at is not None else tx.clock.now() + 1
    # made on it; or on its fingerprint, its kind (or family) or a scope above it, and
    # active while it was open (as AlertEngine.silence_for matches one)
    # (one booked ahead from its start; one cancelled before its start never held it)
    silences = tx.all(
        "SELECT fingerprint, scope, kind, alert_id, created_by, created_at, expires_at,"
        " ended_at, ended_by, starts_at, reason FROM silences"
        " WHERE (ended_at IS NULL OR ended_at > COALESCE(starts_at, created_at))"
        " AND (alert_id = ? OR ((fingerprint = ?"
        " OR (fingerprint IS NULL"
        " AND (kind IS NULL OR kind = ? OR substr(?, 1, length(kind) + 1) = kind || '_')"
        " AND (scope IS NULL OR scope = ? OR substr(?, 1, length(scope) + 1) = scope || '/')))"
        " AND COALESCE(starts_at, created_at) < ? AND COALESCE(ended_at, expires_at) > ?))"
        # a token's silence never holds the alert about a token's misuse (silence_for)
        " AND NOT (? = 'scope_violation' AND created_by LIKE 'token:%')"
        " ORDER BY COALESCE(starts_at, created_at), id LIMIT 200",
        (
            alert_id,
            alert.fingerprint,
            alert.kind,
            alert.kind,
            alert.scope,
            alert.scope,
            end,
            alert.first_at,
            alert.kind,
        ),
    )
    # `alert.ack` and the like name it `#12 kind:scope`; a number given again to a newer
    # alert (a database restored from a backup) is told apart by its fingerprint and time
    audit = tx.all(
        "SELECT at, actor, action, after, detail FROM audit WHERE target = ? AND at >= ?"
        " ORDER BY id LIMIT 200",
        (f"#{alert_id} {alert.fingerprint}", alert.first_at - 1),
    )
    webhooks = delivery_notes(tx, alert_id)
    return StoryRows(alert, steps, refused, post, silences, audit, webhooks, missed(tx, alert_id))
