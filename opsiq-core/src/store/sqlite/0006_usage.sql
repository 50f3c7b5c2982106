-- Per-key usage, counted per hour, action, outcome and latency bucket, so that `meta.me`
-- reads a bounded number of rows however busy the key has been. Filled from now on: requests
-- before this migration are in audit_log only.
CREATE TABLE usage_hourly (
    key_id    INTEGER NOT NULL,
    hour      INTEGER NOT NULL,
    action    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    bucket    INTEGER NOT NULL,
    requests  INTEGER NOT NULL,
    PRIMARY KEY (key_id, hour, action, outcome, bucket)
) WITHOUT ROWID;

-- The newest tickets of one department, whatever their status.
CREATE INDEX tickets_department_recent ON tickets (workspace_id, department_id, id);
