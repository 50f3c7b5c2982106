-- Contact search asks for one workspace's contacts, newest first. The full-text index keyed
-- each contact by its id negated (0012), so a walk met the matches of every workspace and
-- looked up each one's row only to reject the other workspaces' (13 of the 39 rows a search
-- read in the load benchmark, which has two workspaces). Now the key holds the workspace too,
-- in its low bits:
--
--     rowid = -(id * 2^23 + workspace_id)
--
-- Ascending keys are still newest first, and a search tells a contact of another workspace by
-- its key alone, with no lookup. (Keeping the workspace in the high bits, so that a workspace
-- is one range of keys, was measured and is slower: FTS5 reaches the start of a range by
-- stepping through every match before it.) Contact ids stay below 2^40 and workspace ids below
-- 2^23 for the key to fit in 63 bits; the insert trigger refuses a contact outside them rather
-- than let two contacts share a key.
DROP TRIGGER contacts_fts_insert;
DROP TRIGGER contacts_fts_delete;
DROP TRIGGER contacts_fts_update;
DROP TABLE contacts_fts;
DROP VIEW contacts_fts_content;

CREATE VIEW contacts_fts_content (fts_rowid, name, email, tags) AS
SELECT -(id * 8388608 + workspace_id), name, email, tags FROM contacts;

CREATE VIRTUAL TABLE contacts_fts USING fts5 (
    name, email, tags,
    content = 'contacts_fts_content', content_rowid = 'fts_rowid',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
    SELECT RAISE(ABORT, 'contact search key out of range: contact ids must stay below 2^40 and workspace ids below 2^23')
    WHERE new.id NOT BETWEEN 1 AND 1099511627775 OR new.workspace_id NOT BETWEEN 0 AND 8388607;
    INSERT INTO contacts_fts (rowid, name, email, tags)
    VALUES (-(new.id * 8388608 + new.workspace_id), new.name, new.email, new.tags);
END;
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, name, email, tags)
    VALUES ('delete', -(old.id * 8388608 + old.workspace_id), old.name, old.email, old.tags);
END;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF workspace_id, name, email, tags ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, name, email, tags)
    VALUES ('delete', -(old.id * 8388608 + old.workspace_id), old.name, old.email, old.tags);
    INSERT INTO contacts_fts (rowid, name, email, tags)
    VALUES (-(new.id * 8388608 + new.workspace_id), new.name, new.email, new.tags);
END;

-- The existing contacts, indexed again, and the rebuild's segments merged into one at once
-- (left to the writer's idle merging of 0008, a busy server's first minutes would pay for it).
INSERT INTO contacts_fts (contacts_fts) VALUES ('rebuild');
INSERT INTO contacts_fts (contacts_fts) VALUES ('optimize');
INSERT INTO contacts_fts (contacts_fts, rank) VALUES ('usermerge', 2);
