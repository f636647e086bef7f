-- Tokens that expire (`nightshift token create <scope> --expires-in 90d`): refused (401)
-- from that instant on. NULL: never, as every token made before this migration.
ALTER TABLE tokens ADD COLUMN expires_at REAL;
