-- in_flight_at: when the try of this event now in flight claimed its row, right before
-- its request went out (bot.webhooks_rows.claim); NULL once its answer is recorded.
-- A trigger whose alert's paging ends while a try of it is in flight is ended then
-- (withdrawn, or not tried again); its resolve waits while that try is in flight, so
-- that it never reaches the receiver before the trigger does. After a crash (kill -9)
-- a row still marked was cut short with its request perhaps out: it may have got there
-- (reached), and a trigger ended meanwhile gets its resolve (bot.webhooks_flight).
ALTER TABLE webhook_deliveries ADD COLUMN in_flight_at REAL;
CREATE INDEX webhook_deliveries_in_flight ON webhook_deliveries (id)
    WHERE in_flight_at IS NOT NULL;
