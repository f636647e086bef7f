-- A limit set in Slack for a while (`budget set <scope> <amount> <window> for 2h`): from
-- `until` on, the policy file's limit applies again (NULL: until someone changes it).
ALTER TABLE budget_limits ADD COLUMN until REAL;
