-- A model's breaker key is its name in lower case (guards.breaker_kinds.model_key), as
-- reservations, routing and the kill switch name it. Keys written in another case by
-- earlier versions move to it, unless a lower-case row exists already (that one wins:
-- it is the one every lookup finds).
UPDATE OR IGNORE breakers SET key = lower(key) WHERE key LIKE 'model:%' AND key <> lower(key);
