-- The customer's e-mail and name, copied onto each of their tickets, so that reading a ticket
-- or a page of them does not look up every ticket's contact (a second random B-tree descent
-- per ticket). The contact stays the one source: the copy is taken when a ticket is created or
-- moved to another contact, and rewritten by trigger whenever the contact's e-mail or name
-- changes (or the contact row is replaced), in the same transaction. Whatever writes the
-- copy itself is corrected.
ALTER TABLE tickets ADD COLUMN customer_email TEXT;
ALTER TABLE tickets ADD COLUMN customer_name TEXT;

UPDATE tickets SET
    customer_email = (SELECT email FROM contacts WHERE contacts.id = tickets.contact_id),
    customer_name = (SELECT name FROM contacts WHERE contacts.id = tickets.contact_id);

-- The insert names them itself; this only corrects an insert that did not (or named others).
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

-- `REPLACE INTO contacts` deletes and inserts the row, which no UPDATE trigger sees.
CREATE TRIGGER contacts_customer_inserted AFTER INSERT ON contacts BEGIN
    UPDATE tickets SET customer_email = NEW.email, customer_name = NEW.name
    WHERE contact_id = NEW.id
      AND (customer_email IS NOT NEW.email OR customer_name IS NOT NEW.name);
END;

-- A ticket moved to another contact takes that contact's values, and a write to the copy
-- itself is put back to them.
CREATE TRIGGER tickets_customer_written AFTER UPDATE OF contact_id, customer_email, customer_name ON tickets
WHEN NEW.customer_email IS NOT (SELECT email FROM contacts WHERE id = NEW.contact_id)
  OR NEW.customer_name IS NOT (SELECT name FROM contacts WHERE id = NEW.contact_id) BEGIN
    UPDATE tickets SET
        customer_email = (SELECT email FROM contacts WHERE id = NEW.contact_id),
        customer_name = (SELECT name FROM contacts WHERE id = NEW.contact_id)
    WHERE id = NEW.id;
END;
