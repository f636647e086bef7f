"""An alert as the engine stores it, for tests that render one without a database."""

from __future__ import annotations

from typing import Any

from bot.alerts.model import Alert


def new_alert(n: int, kind: str, scope: str, **facts: Any) -> Alert:
    """Alert #``n`` of ``kind`` on ``scope``: P1, open, posted nowhere yet."""
    return Alert(
        id=n,
        fingerprint=f"{kind}:{scope}",
        kind=kind,
        scope=scope,
        tier="P1",
        count=1,
        first_at=0.0,
        last_at=0.0,
        facts=facts,
        silence_id=None,
        was_silenced=False,
        channel=None,
        posted_at=None,
        updated_at=None,
        updates=0,
        dirty=False,
        oncall_user=None,
        esc_step=None,
        esc_at=None,
        acked_at=None,
        acked_by=None,
        resolved_at=None,
        resolved_by=None,
        resolve_reason=None,
    )
