-- Budgets per model (`budgets.models` in the policy): what each namespace spends on one
-- model, per local day, whether or not a limit exists for it (a limit added later sees
-- the day's spend; `ledger verify` recomputes these rows from the journal).
--
-- A reservation's model is counted under its undated, lower-case name (guards.prices
-- undated: claude-opus-4-1-20250805 counts as claude-opus-4-1), kept in
-- `reservations.counted_model` as the hold was taken: a settle whose usage names another
-- model rewrites `model` (for the books and the breakers) but not what the hold counted.
ALTER TABLE reservations ADD COLUMN counted_model TEXT;

CREATE TABLE model_usage_daily (
    namespace     TEXT NOT NULL,
    model         TEXT NOT NULL,
    day           TEXT NOT NULL,
    spent_micros  INTEGER NOT NULL DEFAULT 0,
    held_micros   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, model, day)
) WITHOUT ROWID;

-- The reservations made before: their model as it stands now (a settle may have named
-- another; the hold's is not kept elsewhere), undated as guards.prices.undated does it:
-- lower case, without a snapshot's date (-20250805, -2024-08-06) or -latest.
UPDATE reservations SET counted_model = (
    SELECT CASE
        WHEN m GLOB '*?-latest' THEN substr(m, 1, length(m) - 7)
        WHEN m GLOB '*?-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]' THEN substr(m, 1, length(m) - 9)
        WHEN m GLOB '*?-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'
            THEN substr(m, 1, length(m) - 11)
        ELSE m
    END
    FROM (SELECT lower(trim(reservations.model)) AS m)
) WHERE model IS NOT NULL AND trim(model) != '';

-- Their money so far, from the journal, less what credits took back (on the day of the
-- hold, as guards.verify counts it).
INSERT INTO model_usage_daily (namespace, model, day, spent_micros, held_micros)
SELECT namespace, model, day, SUM(spent), SUM(held) FROM (
    SELECT substr(r.scope, 1, instr(r.scope || '/', '/') - 1) AS namespace,
        r.counted_model AS model, r.period_day AS day, j.spent_delta AS spent,
        j.held_delta AS held
    FROM journal AS j JOIN reservations AS r ON r.id = j.reservation_id
    WHERE r.counted_model IS NOT NULL
    UNION ALL
    SELECT substr(r.scope, 1, instr(r.scope || '/', '/') - 1), r.counted_model, r.period_day,
        -c.amount_micros, 0
    FROM credits AS c JOIN reservations AS r ON r.id = c.reservation_id
    WHERE r.counted_model IS NOT NULL
) GROUP BY namespace, model, day;
