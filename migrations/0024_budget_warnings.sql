-- Each warning mark (budgets.warn_at) of a scope's window warns once a period: the
-- warnings given are kept, so that a mark found already passed (a limit lowered, a
-- fraction added since) warns once too, and a restart does not warn again. Rows of
-- periods long over are pruned by the retention job (guards/budget_warnings.py).
CREATE TABLE budget_warnings (
    scope TEXT NOT NULL,
    window TEXT NOT NULL,
    period TEXT NOT NULL,
    fraction REAL NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (scope, window, period, fraction)
) WITHOUT ROWID;
CREATE INDEX budget_warnings_at ON budget_warnings (at);

-- The warnings already given, from the events that still record them.
INSERT OR IGNORE INTO budget_warnings (scope, window, period, fraction, at)
SELECT scope, json_extract(payload, '$.window'), json_extract(payload, '$.period'),
       json_extract(payload, '$.fraction'), at
FROM events
WHERE kind = 'budget_threshold' AND scope IS NOT NULL
  AND json_extract(payload, '$.window') IS NOT NULL
  AND COALESCE(json_extract(payload, '$.period'), '') != ''
  AND json_extract(payload, '$.fraction') IS NOT NULL;
