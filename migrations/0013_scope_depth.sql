-- Listings by level (the namespaces of the digest and `/agent budget`, the agents of
-- `/agent status` and `/agent breakers all`) read only their level, however many
-- conversations came and went; the digest's breaker history reads only its day.
CREATE INDEX scopes_depth ON scopes (depth, path);
CREATE INDEX breaker_transitions_at ON breaker_transitions (at);
