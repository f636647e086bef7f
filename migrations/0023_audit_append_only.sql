-- The audit log is append-only, as the journal and the breaker transitions are: who did
-- what cannot be rewritten or removed afterwards (retention never touches it).
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- The policy each start ran on, a digest per top-level key: a start on a changed file
-- is audited (`policy.load`, naming the keys that changed), so a limit or an admin that
-- changed in the file shows in `/agent audit` beside the changes made in Slack.
CREATE TABLE policy_loads (
    id      INTEGER PRIMARY KEY,
    at      REAL NOT NULL,
    path    TEXT NOT NULL,
    digests TEXT NOT NULL  -- JSON: {top-level key: sha256 of its value, 12 hex}
);
