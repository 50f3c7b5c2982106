-- OpsIQ schema, version 2: key permissions, visitors and their visits, chats, the knowledge
-- base, proactive events and rules, lead scores and attributed orders.

ALTER TABLE api_keys ADD COLUMN permissions_mode TEXT NOT NULL DEFAULT 'scopes';
ALTER TABLE api_keys ADD COLUMN allow_actions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE api_keys ADD COLUMN block_actions TEXT NOT NULL DEFAULT '[]';

-- When a ticket last entered `resolved` or `closed` (NULL while it is not).
ALTER TABLE tickets ADD COLUMN resolved_at INTEGER;
CREATE INDEX tickets_site_created ON tickets (site_id, created_at);
CREATE INDEX tickets_site_resolved ON tickets (site_id, resolved_at);

ALTER TABLE contacts ADD COLUMN lead_score INTEGER NOT NULL DEFAULT 0;

-- A browser seen by the widget of one site; stitched to a contact once identified.
CREATE TABLE visitors (
    id             INTEGER PRIMARY KEY,
    workspace_id   INTEGER NOT NULL REFERENCES workspaces(id),
    site_id        INTEGER NOT NULL REFERENCES sites(id),
    public_id      TEXT NOT NULL UNIQUE,
    contact_id     INTEGER REFERENCES contacts(id),
    first_seen_at  INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL
);
CREATE INDEX visitors_contact ON visitors (contact_id);

-- A browsing session of a visitor, and its page views.
CREATE TABLE visits (
    id            INTEGER PRIMARY KEY,
    site_id       INTEGER NOT NULL REFERENCES sites(id),
    visitor_id    INTEGER NOT NULL REFERENCES visitors(id),
    started_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL
);
CREATE INDEX visits_site_started ON visits (site_id, started_at);
CREATE INDEX visits_visitor ON visits (visitor_id, id);

CREATE TABLE page_views (
    id          INTEGER PRIMARY KEY,
    site_id     INTEGER NOT NULL REFERENCES sites(id),
    visitor_id  INTEGER NOT NULL REFERENCES visitors(id),
    visit_id    INTEGER NOT NULL REFERENCES visits(id),
    url         TEXT NOT NULL,
    title       TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX page_views_site_created ON page_views (site_id, created_at);

CREATE TABLE chat_sessions (
    id                 INTEGER PRIMARY KEY,
    workspace_id       INTEGER NOT NULL REFERENCES workspaces(id),
    site_id            INTEGER NOT NULL REFERENCES sites(id),
    visitor_id         INTEGER NOT NULL REFERENCES visitors(id),
    contact_id         INTEGER REFERENCES contacts(id),
    status             TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    started_at         INTEGER NOT NULL,
    closed_at          INTEGER,
    first_response_at  INTEGER
);
CREATE INDEX chat_sessions_workspace ON chat_sessions (workspace_id, id);
CREATE INDEX chat_sessions_site_started ON chat_sessions (site_id, started_at);
CREATE INDEX chat_sessions_contact ON chat_sessions (contact_id, id);
CREATE INDEX chat_sessions_visitor ON chat_sessions (visitor_id, id);

CREATE TABLE chat_messages (
    id           INTEGER PRIMARY KEY,
    session_id   INTEGER NOT NULL REFERENCES chat_sessions(id),
    author_type  TEXT NOT NULL CHECK (author_type IN ('visitor', 'agent', 'bot', 'system')),
    author_name  TEXT,
    body         TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX chat_messages_session ON chat_messages (session_id, id);

CREATE TABLE kb_articles (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    title         TEXT NOT NULL,
    slug          TEXT NOT NULL,
    body          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('draft', 'published', 'archived')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    published_at  INTEGER,
    UNIQUE (workspace_id, slug)
);
CREATE INDEX kb_articles_workspace ON kb_articles (workspace_id, status, id);

CREATE VIRTUAL TABLE kb_articles_fts USING fts5 (
    title, body,
    content = 'kb_articles', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER kb_articles_fts_insert AFTER INSERT ON kb_articles BEGIN
    INSERT INTO kb_articles_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
END;
CREATE TRIGGER kb_articles_fts_delete AFTER DELETE ON kb_articles BEGIN
    INSERT INTO kb_articles_fts (kb_articles_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
END;
CREATE TRIGGER kb_articles_fts_update AFTER UPDATE OF title, body ON kb_articles BEGIN
    INSERT INTO kb_articles_fts (kb_articles_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
    INSERT INTO kb_articles_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
END;

-- Questions the customer AI was asked on a site, answered from an article or missed.
CREATE TABLE knowledge_queries (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    site_id       INTEGER NOT NULL REFERENCES sites(id),
    question      TEXT NOT NULL,
    answered      INTEGER NOT NULL,
    article_id    INTEGER REFERENCES kb_articles(id),
    created_at    INTEGER NOT NULL
);
CREATE INDEX knowledge_queries_site_created ON knowledge_queries (site_id, created_at);

CREATE TABLE proactive_events (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    site_id       INTEGER NOT NULL REFERENCES sites(id),
    name          TEXT NOT NULL,
    contact_id    INTEGER REFERENCES contacts(id),
    visitor_id    INTEGER REFERENCES visitors(id),
    properties    TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX proactive_events_site_created ON proactive_events (site_id, created_at);

CREATE TABLE proactive_rules (
    id                INTEGER PRIMARY KEY,
    workspace_id      INTEGER NOT NULL REFERENCES workspaces(id),
    name              TEXT NOT NULL,
    event             TEXT NOT NULL,
    conditions        TEXT NOT NULL,
    actions           TEXT NOT NULL,
    cooldown_seconds  INTEGER NOT NULL,
    enabled           INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX proactive_rules_event ON proactive_rules (workspace_id, event);

-- Each time a rule fired, for whom: the cooldown is read from here.
CREATE TABLE rule_firings (
    id          INTEGER PRIMARY KEY,
    rule_id     INTEGER NOT NULL REFERENCES proactive_rules(id),
    event_id    INTEGER NOT NULL REFERENCES proactive_events(id),
    subject     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX rule_firings_rule_subject ON rule_firings (rule_id, subject, created_at);

-- Messages queued for a visitor's widget (delivered by the widget runtime).
CREATE TABLE widget_messages (
    id            INTEGER PRIMARY KEY,
    site_id       INTEGER NOT NULL REFERENCES sites(id),
    visitor_id    INTEGER REFERENCES visitors(id),
    contact_id    INTEGER REFERENCES contacts(id),
    rule_id       INTEGER REFERENCES proactive_rules(id),
    body          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    delivered_at  INTEGER
);
CREATE INDEX widget_messages_visitor ON widget_messages (visitor_id, delivered_at);
CREATE INDEX widget_messages_contact ON widget_messages (contact_id, delivered_at);

CREATE TABLE lead_score_changes (
    id          INTEGER PRIMARY KEY,
    site_id     INTEGER NOT NULL REFERENCES sites(id),
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    delta       INTEGER NOT NULL,
    score       INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX lead_score_changes_site_created ON lead_score_changes (site_id, created_at);

-- Purchases attributed to a visitor or contact of a site. Amounts in minor units.
CREATE TABLE orders (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    site_id       INTEGER NOT NULL REFERENCES sites(id),
    visitor_id    INTEGER REFERENCES visitors(id),
    contact_id    INTEGER REFERENCES contacts(id),
    external_id   TEXT,
    amount_minor  INTEGER NOT NULL,
    currency      TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX orders_site_created ON orders (site_id, created_at);
