-- A new ticket's row now comes with its `doc` (rendered by the store as it inserts, so the
-- writer does not build it in SQL and write the row twice). The insert trigger renders it only
-- for a row that comes without one, such as a row inserted by hand.
DROP TRIGGER tickets_doc_inserted;
CREATE TRIGGER tickets_doc_inserted AFTER INSERT ON tickets WHEN NEW.doc IS NULL BEGIN
    UPDATE tickets SET doc = (SELECT d.doc FROM ticket_doc d WHERE d.id = NEW.id) WHERE id = NEW.id;
END;
