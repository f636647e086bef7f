-- A missed-heartbeat alert resolved by hand while its agent is still silent: the watchdog
-- watches that agent again from then (it alerts once more after another detection window
-- of silence) instead of never again until the agent beats. NULL: not re-armed.
ALTER TABLE heartbeats ADD COLUMN rearmed_at REAL;
