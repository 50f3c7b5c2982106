-- OpsIQ schema, version 5: idempotency keys. A POST's key claims a row; the row is marked
-- committed in the same transaction as the request's change, and holds the response once sent.

CREATE TABLE idempotency_keys (
    key_id       INTEGER NOT NULL REFERENCES api_keys(id),
    idem_key     TEXT NOT NULL,
    action       TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    committed    INTEGER NOT NULL DEFAULT 0,
    status       INTEGER,
    response     TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (key_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
