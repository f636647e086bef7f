-- Folding in an alert storm: when messages already wait in a person's DM lane (pages) or
-- in an alerts channel (posts), a new page or post is not queued on its own: it joins one
-- summary message for that lane, named by its outbox ref (`fold:<lane>:<n>`).
ALTER TABLE escalations ADD COLUMN folded_into TEXT;
ALTER TABLE alerts ADD COLUMN folded_into TEXT;
CREATE INDEX escalations_folded ON escalations (folded_into) WHERE folded_into IS NOT NULL;
CREATE INDEX alerts_folded ON alerts (folded_into) WHERE folded_into IS NOT NULL;
-- A page still waiting in the outbox when its alert was acknowledged, silenced or
-- resolved is withdrawn (its outbox row deleted): when, on the escalation it belonged to.
ALTER TABLE escalations ADD COLUMN withdrawn_at REAL;
