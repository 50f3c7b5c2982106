-- A counter that every change to what an API key may do moves: its secret, scopes,
-- permissions, rate limit, workspace, site, name, rotation or revocation, and its deletion.
-- Only its last use (last_used_at) leaves it alone. A process that keeps verified keys in
-- memory reads it in the same transaction as the request's data, so a key revoked or changed
-- by any process (the CLI beside the server) stops working, or changes, at the next request.
CREATE TABLE key_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  INTEGER NOT NULL
);
INSERT INTO key_generation (id, generation) VALUES (1, 0);

CREATE TRIGGER api_keys_changed AFTER UPDATE OF
    id, workspace_id, site_id, name, prefix, secret_hash, scopes, created_at, rotated_at,
    revoked_at, permissions_mode, allow_actions, block_actions, rate_limit
ON api_keys BEGIN
    UPDATE key_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys BEGIN
    UPDATE key_generation SET generation = generation + 1 WHERE id = 1;
END;
