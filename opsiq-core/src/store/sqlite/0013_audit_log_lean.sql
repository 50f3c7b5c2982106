-- Every API request writes an audit row, and nothing on the request path reads one; each row
-- now costs one b-tree insert instead of three inserts and two lookups (together about 9,600 of
-- the 66,000 instructions of a point read; benches/RESULTS.md, thirteenth round):
--
-- * The two secondary indexes go: no query reads through them. A key's usage is read from
--   `usage_hourly` (0006), and the log is read newest first by its rowid, filtered by
--   workspace as it goes.
-- * The foreign keys go: checking them looked up the key and the workspace of every row. The
--   log records what happened, with the ids as they were; keys and workspaces are revoked or
--   kept, never deleted.
-- * The status must be an HTTP status: a row that is not one is refused, alone (the writer
--   retries the rest of its batch without it).
--
-- SQLite cannot drop a constraint in place, so the table is copied.
CREATE TABLE audit_log_lean (
    id            INTEGER PRIMARY KEY,
    request_id    TEXT NOT NULL,
    key_id        INTEGER,
    workspace_id  INTEGER,
    action        TEXT,
    outcome       TEXT NOT NULL,
    status        INTEGER NOT NULL CHECK (status BETWEEN 100 AND 599),
    latency_us    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
INSERT INTO audit_log_lean (id, request_id, key_id, workspace_id, action, outcome, status, latency_us, created_at)
SELECT id, request_id, key_id, workspace_id, action, outcome, status, latency_us, created_at FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_lean RENAME TO audit_log;
