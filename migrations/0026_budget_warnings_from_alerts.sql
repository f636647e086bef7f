-- The warnings given before 0024 whose events were pruned (events are kept 30 days): a
-- total window's mark passed long ago would warn again at the first charge after the
-- upgrade. Each budget_threshold alert keeps the facts of its last warning.
INSERT OR IGNORE INTO budget_warnings (scope, window, period, fraction, at)
SELECT scope, json_extract(facts, '$.window'), json_extract(facts, '$.period'),
       json_extract(facts, '$.fraction'), last_at
FROM alerts
WHERE kind = 'budget_threshold' AND json_valid(facts)
  AND json_extract(facts, '$.window') IS NOT NULL
  AND COALESCE(json_extract(facts, '$.period'), '') != ''
  AND json_extract(facts, '$.fraction') IS NOT NULL;
