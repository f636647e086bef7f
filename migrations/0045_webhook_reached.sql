-- reached: 1 once some try of the event may have got to its receiver (it was delivered,
-- or its request went out and no answer came: a timeout, a connection cut after it was
-- written). Only a trigger that may have reached the receiver may have opened an
-- incident there, so only such a trigger gets a resolve (bot.webhooks_rows). A try the
-- receiver answered with an error, one that never connected, and one not sent at all
-- (its secret_file unreadable, its webhook taken out at a reload) leave it 0.
ALTER TABLE webhook_deliveries ADD COLUMN reached INTEGER NOT NULL DEFAULT 0
    CHECK (reached IN (0, 1));
-- Rows written before: their earlier tries are not known; they keep the reading they
-- had (tried, not withdrawn unsent, not refused at their only try), so that no resolve
-- an incident may need is dropped.
UPDATE webhook_deliveries SET reached = 1
 WHERE attempts > 0
   AND COALESCE(last_error, '') != 'withdrawn unsent: the alert''s paging ended before the page got through'
   AND NOT (state = 'failed' AND attempts = 1 AND last_status IS NOT NULL);
