-- Reads of tickets and contacts take the rendered `doc` (0011) and little else. SQLite finds a
-- column by walking the record's header up to it, and `doc`, added last, was the 18th column
-- of a ticket and the 15th of a contact; a page of 50 tickets walked 50 headers of 18. Both
-- tables are copied with `doc` second, after the id (a list page of 50 tickets: about 14,000
-- of its 283,000 instructions; benches/RESULTS.md, fourteenth round).
--
-- SQLite cannot move a column, so each table is rebuilt as its documentation says: a new
-- table, the rows copied, the old one dropped and the new one renamed, then its indexes and
-- triggers made again as they were. The migration runner turns foreign keys off around this
-- (dropping `contacts` would otherwise delete every note by cascade) and checks them all
-- before it commits. `legacy_alter_table` keeps the rename from checking the views and
-- triggers that name the other table while it is dropped; they name the tables, which keep
-- their names, so nothing else changes. Ids are kept, so the full-text index (keyed by the
-- contact's id, 0012) stays as it is.
PRAGMA legacy_alter_table = ON;

CREATE TABLE contacts_doc_first (
    id            INTEGER PRIMARY KEY,
    doc           TEXT,
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
    updated_at    INTEGER NOT NULL,
    lead_score    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO contacts_doc_first (id, doc, workspace_id, site_id, name, email, email_norm, phone,
    external_id, tags, attributes, created_at, updated_at, lead_score)
SELECT id, doc, workspace_id, site_id, name, email, email_norm, phone,
    external_id, tags, attributes, created_at, updated_at, lead_score FROM contacts;

CREATE TABLE tickets_doc_first (
    id             INTEGER PRIMARY KEY,
    doc            TEXT,
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
    updated_at     INTEGER NOT NULL,
    resolved_at    INTEGER,
    customer_email TEXT,
    customer_name  TEXT
);
INSERT INTO tickets_doc_first (id, doc, workspace_id, site_id, contact_id, subject, body, status,
    priority, department_id, assignee_id, tags, source, created_at, updated_at, resolved_at,
    customer_email, customer_name)
SELECT id, doc, workspace_id, site_id, contact_id, subject, body, status,
    priority, department_id, assignee_id, tags, source, created_at, updated_at, resolved_at,
    customer_email, customer_name FROM tickets;

DROP TABLE tickets;
DROP TABLE contacts;
ALTER TABLE contacts_doc_first RENAME TO contacts;
ALTER TABLE tickets_doc_first RENAME TO tickets;

-- The indexes and triggers, as 0001 to 0012 made them.
CREATE INDEX contacts_workspace ON contacts (workspace_id, id);
CREATE UNIQUE INDEX contacts_email ON contacts (workspace_id, email_norm) WHERE email_norm IS NOT NULL;
CREATE UNIQUE INDEX contacts_external_id ON contacts (workspace_id, external_id) WHERE external_id IS NOT NULL;

CREATE INDEX tickets_workspace ON tickets (workspace_id, id);
CREATE INDEX tickets_status ON tickets (workspace_id, status, id);
CREATE INDEX tickets_priority ON tickets (workspace_id, priority, id);
CREATE INDEX tickets_department ON tickets (workspace_id, department_id, status, id);
CREATE INDEX tickets_contact ON tickets (contact_id, id);
CREATE INDEX tickets_site_created ON tickets (site_id, created_at);
CREATE INDEX tickets_site_resolved ON tickets (site_id, resolved_at);
CREATE INDEX tickets_department_recent ON tickets (workspace_id, department_id, id);

CREATE TRIGGER tickets_customer_inserted AFTER INSERT ON tickets
WHEN NEW.customer_email IS NOT (SELECT email FROM contacts WHERE id = NEW.contact_id)
  OR NEW.customer_name IS NOT (SELECT name FROM contacts WHERE id = NEW.contact_id) BEGIN
    UPDATE tickets SET
        customer_email = (SELECT email FROM contacts WHERE id = NEW.contact_id),
        customer_name = (SELECT name FROM contacts WHERE id = NEW.contact_id)
    WHERE id = NEW.id;
END;
CREATE TRIGGER contacts_customer_changed AFTER UPDATE OF email, name ON contacts
WHEN OLD.email IS NOT NEW.email OR OLD.name IS NOT NEW.name BEGIN
    UPDATE tickets SET customer_email = NEW.email, customer_name = NEW.name
    WHERE contact_id = NEW.id;
END;
CREATE TRIGGER contacts_customer_inserted AFTER INSERT ON contacts BEGIN
    UPDATE tickets SET customer_email = NEW.email, customer_name = NEW.name
    WHERE contact_id = NEW.id
      AND (customer_email IS NOT NEW.email OR customer_name IS NOT NEW.name);
END;
CREATE TRIGGER tickets_customer_written AFTER UPDATE OF contact_id, customer_email, customer_name ON tickets
WHEN NEW.customer_email IS NOT (SELECT email FROM contacts WHERE id = NEW.contact_id)
  OR NEW.customer_name IS NOT (SELECT name FROM contacts WHERE id = NEW.contact_id) BEGIN
    UPDATE tickets SET
        customer_email = (SELECT email FROM contacts WHERE id = NEW.contact_id),
        customer_name = (SELECT name FROM contacts WHERE id = NEW.contact_id)
    WHERE id = NEW.id;
END;
CREATE TRIGGER tickets_doc_inserted AFTER INSERT ON tickets BEGIN
    UPDATE tickets SET doc = (SELECT d.doc FROM ticket_doc d WHERE d.id = NEW.id) WHERE id = NEW.id;
END;
CREATE TRIGGER tickets_doc_written AFTER UPDATE ON tickets WHEN NEW.doc IS OLD.doc BEGIN
    UPDATE tickets SET doc = (SELECT d.doc FROM ticket_doc d WHERE d.id = NEW.id) WHERE id = NEW.id;
END;
CREATE TRIGGER contacts_doc_inserted AFTER INSERT ON contacts BEGIN
    UPDATE contacts SET doc = (SELECT d.doc FROM contact_doc d WHERE d.id = NEW.id) WHERE id = NEW.id;
END;
CREATE TRIGGER contacts_doc_written AFTER UPDATE ON contacts WHEN NEW.doc IS OLD.doc BEGIN
    UPDATE contacts SET doc = (SELECT d.doc FROM contact_doc d WHERE d.id = NEW.id) WHERE id = NEW.id;
END;
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_fts (rowid, name, email, tags) VALUES (-new.id, new.name, new.email, new.tags);
END;
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, name, email, tags) VALUES ('delete', -old.id, old.name, old.email, old.tags);
END;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF name, email, tags ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, name, email, tags) VALUES ('delete', -old.id, old.name, old.email, old.tags);
    INSERT INTO contacts_fts (rowid, name, email, tags) VALUES (-new.id, new.name, new.email, new.tags);
END;

PRAGMA legacy_alter_table = OFF;
