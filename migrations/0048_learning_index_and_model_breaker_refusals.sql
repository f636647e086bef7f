-- 1. Routing's learning counts only the calls that were not degraded (a call the router
-- knew was capped or passed over says nothing of its tier): its index now holds only
-- those, so judging an intent never walks past degraded rows (review27 R3 M3: with the
-- newest 50,000 settles of an intent degraded, each judgement read all of them). A
-- route is inserted with no outcome, so the insert writes no entry either way; a
-- degraded call's settle now writes none. `outcome` and `degraded` (always 0 here) are
-- columns too, so the judgement reads the index alone (SQLite takes them from the index,
-- not from the WHERE), never a row of the table.
DROP INDEX IF EXISTS routing_decisions_learning;
CREATE INDEX routing_decisions_learning
    ON routing_decisions (namespace, intent, tier, settled_at, outcome, degraded)
    WHERE outcome IS NOT NULL AND degraded = 0;

-- 2. The calls a model's kill switch refused (a forced-open model:<name> breaker answers
-- 503), per breaker, spell and agent: such a call leaves no reservation, so without
-- this row the digest could not tell its namespace of the outage that refused it
-- (review27 R3 M2). `since` is when the breaker was forced open (its transition's
-- `at`), so a spell belongs to exactly one outage. Written only when a call is refused.
CREATE TABLE model_breaker_refusals (
    key    TEXT NOT NULL,
    since  REAL NOT NULL,
    agent  TEXT NOT NULL,
    calls  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key, since, agent)
) WITHOUT ROWID;
