-- Each ticket and contact also keeps its API rendering: `doc`, the JSON text that serialising
-- the record gives (`Ticket`, and `Contact` without notes), byte for byte. A page of a list is
-- then one stored column per row, written into the answer as it is, instead of every column
-- decoded, typed and escaped again on every read.
--
-- SQLite renders it, by trigger, in the same transaction as any write to the row, whatever
-- writes it (our writer, the contact triggers of 0010, another process): the views below hold
-- the one definition. `doc` is NULL where SQLite cannot render the record as we do (a
-- timestamp outside the years 0 to 9999, or stored JSON that is not valid); readers then render
-- that row from its columns.
ALTER TABLE tickets ADD COLUMN doc TEXT;
ALTER TABLE contacts ADD COLUMN doc TEXT;

CREATE VIEW ticket_doc (id, doc) AS
SELECT id,
    CASE WHEN created_at BETWEEN -62167219200000 AND 253402300799999
          AND updated_at BETWEEN -62167219200000 AND 253402300799999
          AND json_valid(tags) THEN
        json_object(
            'id', id,
            'workspace_id', workspace_id,
            'site_id', site_id,
            'contact_id', contact_id,
            'customer_email', customer_email,
            'customer_name', customer_name,
            'subject', subject,
            'body', body,
            'status', status,
            'priority', priority,
            'department_id', department_id,
            'assignee_id', assignee_id,
            'tags', json(tags),
            'source', source,
            'created_at', strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch'),
            'updated_at', strftime('%Y-%m-%dT%H:%M:%fZ', updated_at / 1000.0, 'unixepoch'))
    END
FROM tickets;

CREATE VIEW contact_doc (id, doc) AS
SELECT id,
    CASE WHEN created_at BETWEEN -62167219200000 AND 253402300799999
          AND updated_at BETWEEN -62167219200000 AND 253402300799999
          AND json_valid(tags) AND json_valid(attributes) THEN
        json_object(
            'id', id,
            'workspace_id', workspace_id,
            'site_id', site_id,
            'name', name,
            'email', email,
            'phone', phone,
            'external_id', external_id,
            'tags', json(tags),
            'attributes', json(attributes),
            'created_at', strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch'),
            'updated_at', strftime('%Y-%m-%dT%H:%M:%fZ', updated_at / 1000.0, 'unixepoch'))
    END
FROM contacts;

UPDATE tickets SET doc = (SELECT d.doc FROM ticket_doc d WHERE d.id = tickets.id);
UPDATE contacts SET doc = (SELECT d.doc FROM contact_doc d WHERE d.id = contacts.id);

-- An update that did not write `doc` itself leaves it stale: render it again. (The triggers'
-- own writes of `doc` do not fire them again: SQLite runs no trigger recursively by default.)
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
