-- 0017 moved model breaker keys to lower case, but left a row in another case where a
-- lower-case row existed already. Nothing looks such a row up (every lookup uses the
-- lower-case key), yet `/agent breakers` and /v1/breakers listed it, open for good and
-- impossible to close. It goes; the lower-case row is the model's breaker.
DELETE FROM breakers
WHERE key LIKE 'model:%' AND key <> lower(key)
  AND lower(key) IN (SELECT key FROM breakers);
