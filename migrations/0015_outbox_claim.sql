-- The outbox worker marks the row it is sending (claimed_at) and clears the mark when
-- the row is put back for a retry; writers change or withdraw only unclaimed rows
-- (a storm summary, a page of an alert just acknowledged). first_try_at stays the
-- first attempt's time, for the maximum age.
ALTER TABLE outbox ADD COLUMN claimed_at REAL;
