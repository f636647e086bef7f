-- A P1 whose agent has an open P0 waits for it (bot/alerts/paging.py, _covered): that
-- look-up runs once a minute per waiting P1, so it reads only the open P0s, by scope.
CREATE INDEX alerts_open_p0 ON alerts (scope) WHERE resolved_at IS NULL AND tier = 'P0';
