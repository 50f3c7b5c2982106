-- Leasing reads each endpoint's next due deliveries and counts its leased ones through these,
-- so a lease costs the same with ten or a hundred thousand deliveries waiting.
CREATE INDEX webhook_deliveries_endpoint_due ON webhook_deliveries (endpoint_id, next_attempt_at, id)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX webhook_deliveries_endpoint_leased ON webhook_deliveries (endpoint_id, lease_until)
    WHERE status IN ('pending', 'retrying');
