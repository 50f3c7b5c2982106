-- 0015 keyed each contact in the full-text index by `-(id * 2^23 + workspace_id)` and made the
-- insert trigger refuse a contact whose id or workspace id falls outside that key's range. Its
-- update trigger missed two things, both fixed here:
--
-- * it did not repeat the range check, so a contact moved to a workspace id of 2^23 or more
--   would have taken a key that belongs to another contact;
-- * it did not fire when a contact's id changed, so the index kept the old key and a search
--   joined it to no contact, or to whichever contact later took that id.
--
-- No action changes either column; this keeps the index right for any write, as the other
-- triggers do. Nothing is rebuilt: no contact can have been given a wrong key through the API.
DROP TRIGGER contacts_fts_update;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF id, workspace_id, name, email, tags ON contacts BEGIN
    SELECT RAISE(ABORT, 'contact search key out of range: contact ids must stay below 2^40 and workspace ids below 2^23')
    WHERE new.id NOT BETWEEN 1 AND 1099511627775 OR new.workspace_id NOT BETWEEN 0 AND 8388607;
    INSERT INTO contacts_fts (contacts_fts, rowid, name, email, tags)
    VALUES ('delete', -(old.id * 8388608 + old.workspace_id), old.name, old.email, old.tags);
    INSERT INTO contacts_fts (rowid, name, email, tags)
    VALUES (-(new.id * 8388608 + new.workspace_id), new.name, new.email, new.tags);
END;
