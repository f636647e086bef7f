-- An alert (a post) or a page that joined a storm summary after it went out is shown by
-- the edit that joined it (bot.alerts.folding_join.join_sent): that edit's outbox id, so
-- that once the summary turns out deleted in Slack, the alerts no edit that went through
-- showed are told which they are and delivered on their own (bot.alerts.storm_alone).
-- NULL: it joined while the summary waited (its post carries it), or it is no summary's.
ALTER TABLE alerts ADD COLUMN folded_edit INTEGER;
ALTER TABLE escalations ADD COLUMN folded_edit INTEGER;
