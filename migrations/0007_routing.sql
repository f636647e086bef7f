-- Model routing: every decision (and, once its call settles, the outcome) and the
-- intents promoted one tier after their calls at their lowest tier failed too often.

CREATE TABLE routing_decisions (
    id           TEXT PRIMARY KEY,              -- the route_id returned to the agent
    at           REAL NOT NULL,
    scope        TEXT NOT NULL,
    namespace    TEXT NOT NULL,                 -- learning and promotions are per namespace
    intent       TEXT NOT NULL,
    tier         TEXT NOT NULL CHECK (tier IN ('small', 'medium', 'large')),
    wanted_tier  TEXT NOT NULL CHECK (wanted_tier IN ('small', 'medium', 'large')),
    model        TEXT NOT NULL,
    degraded     INTEGER NOT NULL CHECK (degraded IN (0, 1)),
    source       TEXT NOT NULL CHECK (source IN ('rule', 'request', 'classifier')),
    reason       TEXT NOT NULL,
    outcome      TEXT CHECK (outcome IN ('success', 'failure', 'timeout', 'rejected')),
    settled_at   REAL
) WITHOUT ROWID;
CREATE INDEX routing_decisions_time ON routing_decisions (at);
CREATE INDEX routing_decisions_learning
    ON routing_decisions (namespace, intent, tier, settled_at) WHERE outcome IS NOT NULL;
CREATE INDEX routing_decisions_scope_settled ON routing_decisions (scope, settled_at);

CREATE TABLE routing_promotions (
    id            INTEGER PRIMARY KEY,
    namespace     TEXT NOT NULL,
    intent        TEXT NOT NULL,
    from_tier     TEXT NOT NULL CHECK (from_tier IN ('small', 'medium', 'large')),
    to_tier       TEXT NOT NULL CHECK (to_tier IN ('small', 'medium', 'large')),
    failures      INTEGER NOT NULL,
    calls         INTEGER NOT NULL,
    promoted_at   REAL NOT NULL,
    reverted_at   REAL,
    reverted_by   TEXT
);
CREATE INDEX routing_promotions_intent ON routing_promotions (namespace, intent, id);
