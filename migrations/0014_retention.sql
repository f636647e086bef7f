-- Retention in chunks (bot/retention.py): each prune deletes the oldest rows first, a
-- few thousand per write, so it needs to find them without reading the whole table.
-- breaker_attempts is keyed by (agent, task_id); its prune goes by last_at.
CREATE INDEX breaker_attempts_last_at ON breaker_attempts (last_at);
