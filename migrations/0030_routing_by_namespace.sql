-- The digest's list of namespaces reads each namespace of routing_decisions and its first
-- route with one seek each here, not every route of a young namespace (review26 H1:
-- 3-5 s at 400,000 routes, on every digest tick and `/agent digest`).
CREATE INDEX routing_decisions_namespace_at ON routing_decisions (namespace, at);
