-- A priority lane in the outbox: a P0 page (priority 0) overtakes the ordinary rows
-- (priority 1) queued for the same channel. Rows that refer to another row still wait
-- for it, so an update never goes out before its message.
ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 1;
CREATE INDEX outbox_pending_lane ON outbox (channel, priority, id) WHERE state = 'pending';
