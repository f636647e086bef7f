-- /agent routing reports the calls that followed each route decision: the reservations
-- that name its route_id, with the model and the micros their settle charged. Only
-- routed reservations are indexed, so the hot path of unrouted ones pays nothing.
CREATE INDEX reservations_route ON reservations (route_id) WHERE route_id IS NOT NULL;
