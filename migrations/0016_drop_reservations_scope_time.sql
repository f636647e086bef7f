-- Nothing reads reservations by (scope, created_at): a scope's reservations are found
-- through reservations_scope_key (scope, idempotency_key). One index fewer to update
-- on every reservation the hot path writes.
DROP INDEX IF EXISTS reservations_scope_time;
