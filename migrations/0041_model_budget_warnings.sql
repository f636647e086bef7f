-- Each warning mark (budgets.warn_at) of a namespace's budget for one model
-- (budgets.models) warns once per window and period, as a level's does
-- (0024_budget_warnings): the warnings given are kept, so that a mark found already passed
-- warns once too, and a restart neither warns again nor forgets one. Rows of periods long
-- over are pruned by the retention job (guards/budget_warnings.py prune_model_warnings,
-- run by bot/retention.py). The model is its counted name (undated, lower case), as in
-- model_usage_daily.
CREATE TABLE model_budget_warnings (
    namespace TEXT NOT NULL,
    model TEXT NOT NULL,
    window TEXT NOT NULL,
    period TEXT NOT NULL,
    fraction REAL NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (namespace, model, window, period, fraction)
) WITHOUT ROWID;
CREATE INDEX model_budget_warnings_at ON model_budget_warnings (at);
