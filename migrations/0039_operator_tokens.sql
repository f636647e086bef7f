-- Operator tokens (`nightshift token create <scope> --operator`): they list, acknowledge
-- and silence the alerts of their scope's subtree over HTTP (GET /v1/alerts, POST
-- /v1/silences, ...), and reserve nothing. An agent's token (operator = 0, as every token
-- made before this migration) is refused there: a runaway agent must not silence the
-- alerts about itself.
ALTER TABLE tokens ADD COLUMN operator INTEGER NOT NULL DEFAULT 0 CHECK (operator IN (0, 1));
