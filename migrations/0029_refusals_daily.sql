-- Calls the guards refused before they started (a 402 budget, a 503 breaker, a 429
-- attempts refusal), per agent, local day (the namespace's time zone) and reason, with
-- the ceilings they asked for: what the digest says the guards kept from being spent.
CREATE TABLE refusals_daily (
    scope         TEXT NOT NULL,
    day           TEXT NOT NULL,
    reason        TEXT NOT NULL CHECK (reason IN ('budget', 'breaker', 'attempts')),
    calls         INTEGER NOT NULL DEFAULT 0,
    asked_micros  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, day, reason)
) WITHOUT ROWID;
