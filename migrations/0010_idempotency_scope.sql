-- An idempotency key names one call of one scope, whichever token sends it (a token
-- rotated mid-retry, or a namespace and a user token sharing keys): the ledger looks
-- keys up by scope as well as by token. Not UNIQUE: older databases may hold the
-- same (scope, key) under two tokens.
CREATE INDEX reservations_scope_key ON reservations (scope, idempotency_key);
