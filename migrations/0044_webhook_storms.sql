-- Webhook pages in alert storms (bot.webhook_storms), and where each event goes.
-- webhook_storms: one incident at a webhook for the pages folded in an alert storm (its
-- dedup_key is nightshift-storm-<id>). The webhook steps it carries are the escalations
-- whose folded_into is 'hook:<id>'. last_page_at: when a page last joined it (it takes
-- more while pages keep coming); ended_at: when none of its alerts paged any more (its
-- resolve was written, or its trigger withdrawn unsent).
CREATE TABLE webhook_storms (
    id            INTEGER PRIMARY KEY,
    webhook       TEXT NOT NULL,
    started_at    REAL NOT NULL,
    last_page_at  REAL NOT NULL,
    ended_at      REAL
);
CREATE INDEX webhook_storms_open ON webhook_storms (webhook) WHERE ended_at IS NULL;
-- storm_id: an event of a storm (its trigger, a later trigger saying what joined it, its
-- resolve); alert_id is then the storm's first alert, escalation_id is NULL, and a
-- trigger's body is written at its first try (what the storm holds by then).
ALTER TABLE webhook_deliveries ADD COLUMN storm_id INTEGER;
-- target: the webhook as it was when the event was written ({"url", "secret_env",
-- "secret_file", "timeout"}: names, never a secret), so that the resolve of a trigger
-- sent to a webhook renamed or taken out at a reload still reaches that receiver.
ALTER TABLE webhook_deliveries ADD COLUMN target TEXT;
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (webhook, created_at);
CREATE INDEX webhook_deliveries_storm ON webhook_deliveries (storm_id) WHERE storm_id IS NOT NULL;
