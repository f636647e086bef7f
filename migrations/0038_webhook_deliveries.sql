-- Webhook escalation steps (`notify: webhook:NAME`, policy `webhooks:`): each event for a
-- receiver is a row, written in the transaction that took the step (a trigger) or ended
-- the alert's paging (a resolve), and delivered by bot.webhooks after the commit.
-- body: the JSON sent, fixed when the row is written (every try sends the same bytes).
-- state: pending (next try at next_at), delivered, failed (given up: last_error says
-- why, told in the alert's thread). escalation_id: the step that paged (a trigger);
-- a resolve names the trigger it answers (resolves). No foreign key to alerts: the
-- retention of resolved alerts does not wait for these rows.
CREATE TABLE webhook_deliveries (
    id             INTEGER PRIMARY KEY,
    webhook        TEXT NOT NULL,
    alert_id       INTEGER NOT NULL,
    event          TEXT NOT NULL CHECK (event IN ('trigger', 'resolve')),
    escalation_id  INTEGER,
    resolves       INTEGER,
    body           TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'delivered', 'failed')),
    created_at     REAL NOT NULL,
    next_at        REAL NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_status    INTEGER,
    last_error     TEXT,
    done_at        REAL
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_alert ON webhook_deliveries (alert_id, webhook);
