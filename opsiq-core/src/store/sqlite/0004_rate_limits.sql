-- OpsIQ schema, version 4: a key's own rate limit (requests a minute; NULL for the install's
-- default).

ALTER TABLE api_keys ADD COLUMN rate_limit INTEGER;
