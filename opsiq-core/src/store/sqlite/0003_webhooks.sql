-- OpsIQ schema, version 3: webhook endpoints, deliveries (one per event and endpoint) and the
-- log of every attempt.

CREATE TABLE webhook_endpoints (
    id                     INTEGER PRIMARY KEY,
    workspace_id           INTEGER NOT NULL REFERENCES workspaces(id),
    url                    TEXT NOT NULL,
    -- A JSON array of event types, or NULL for every type.
    events                 TEXT,
    enabled                INTEGER NOT NULL,
    description            TEXT NOT NULL,
    secret                 TEXT NOT NULL,
    previous_secret        TEXT,
    previous_secret_until  INTEGER,
    secret_rotated_at      INTEGER,
    disabled_reason        TEXT,
    failing_since          INTEGER,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_workspace ON webhook_endpoints (workspace_id, id);

CREATE TABLE webhook_deliveries (
    id                INTEGER PRIMARY KEY,
    endpoint_id       INTEGER NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_seq         INTEGER NOT NULL REFERENCES events(seq),
    status            TEXT NOT NULL CHECK (status IN ('pending', 'retrying', 'delivered', 'failed')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER,
    -- While a worker holds the delivery, no other worker sends it.
    lease_until       INTEGER,
    last_status_code  INTEGER,
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'retrying');
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_seq);

CREATE TABLE webhook_attempts (
    id             INTEGER PRIMARY KEY,
    delivery_id    INTEGER NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempted_at   INTEGER NOT NULL,
    status_code    INTEGER,
    latency_ms     INTEGER NOT NULL,
    error          TEXT,
    response_body  TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
