-- OpsIQ schema, version 1: tenancy, keys, contacts, tickets, the outbox and the audit log.
-- Times are unix milliseconds (UTC).

CREATE TABLE workspaces (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE sites (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    name          TEXT NOT NULL,
    domain        TEXT NOT NULL,
    site_key      TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    UNIQUE (workspace_id, domain)
);

CREATE TABLE departments (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    name          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE agents (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    name          TEXT NOT NULL,
    email         TEXT NOT NULL,
    email_norm    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (workspace_id, email_norm)
);

CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    site_id       INTEGER NOT NULL REFERENCES sites(id),
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    secret_hash   TEXT NOT NULL UNIQUE,
    scopes        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    rotated_at    INTEGER,
    revoked_at    INTEGER
);

CREATE TABLE contacts (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    site_id       INTEGER REFERENCES sites(id),
    name          TEXT,
    email         TEXT,
    email_norm    TEXT,
    phone         TEXT,
    external_id   TEXT,
    tags          TEXT NOT NULL DEFAULT '[]',
    attributes    TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX contacts_workspace ON contacts (workspace_id, id);
CREATE UNIQUE INDEX contacts_email ON contacts (workspace_id, email_norm) WHERE email_norm IS NOT NULL;
CREATE UNIQUE INDEX contacts_external_id ON contacts (workspace_id, external_id) WHERE external_id IS NOT NULL;

-- Full-text search over name, e-mail and tags, kept in step by triggers.
CREATE VIRTUAL TABLE contacts_fts USING fts5 (
    name, email, tags,
    content = 'contacts', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_fts (rowid, name, email, tags) VALUES (new.id, new.name, new.email, new.tags);
END;
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, name, email, tags) VALUES ('delete', old.id, old.name, old.email, old.tags);
END;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF name, email, tags ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, name, email, tags) VALUES ('delete', old.id, old.name, old.email, old.tags);
    INSERT INTO contacts_fts (rowid, name, email, tags) VALUES (new.id, new.name, new.email, new.tags);
END;

CREATE TABLE contact_notes (
    id          INTEGER PRIMARY KEY,
    contact_id  INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    body        TEXT NOT NULL,
    author      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX contact_notes_contact ON contact_notes (contact_id, id);

CREATE TABLE tickets (
    id             INTEGER PRIMARY KEY,
    workspace_id   INTEGER NOT NULL REFERENCES workspaces(id),
    site_id        INTEGER REFERENCES sites(id),
    contact_id     INTEGER NOT NULL REFERENCES contacts(id),
    subject        TEXT NOT NULL,
    body           TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'pending', 'resolved', 'closed')),
    priority       TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    department_id  INTEGER REFERENCES departments(id),
    assignee_id    INTEGER REFERENCES agents(id),
    tags           TEXT NOT NULL DEFAULT '[]',
    source         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX tickets_workspace ON tickets (workspace_id, id);
CREATE INDEX tickets_status ON tickets (workspace_id, status, id);
CREATE INDEX tickets_priority ON tickets (workspace_id, priority, id);
CREATE INDEX tickets_department ON tickets (workspace_id, department_id, status, id);
CREATE INDEX tickets_contact ON tickets (contact_id, id);

-- The outbox: one row per event, written with the change that caused it.
CREATE TABLE events (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    type          TEXT NOT NULL,
    data          TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX events_workspace ON events (workspace_id, seq);

-- One row per API request. Never the caller's IP address.
CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY,
    request_id    TEXT NOT NULL,
    key_id        INTEGER REFERENCES api_keys(id),
    workspace_id  INTEGER REFERENCES workspaces(id),
    action        TEXT,
    outcome       TEXT NOT NULL,
    status        INTEGER NOT NULL,
    latency_us    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX audit_log_workspace ON audit_log (workspace_id, created_at);
CREATE INDEX audit_log_key ON audit_log (key_id, created_at);
