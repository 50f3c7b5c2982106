-- The writer merges full-text index segments while it is idle (FTS5 'merge' steps). With
-- usermerge = 2 a step merges any two segments of one level, so an index keeps about one
-- segment per level (a binary counter of its flushes) instead of up to three, and a search
-- reads a few segments instead of about twenty at a million contacts.
INSERT INTO contacts_fts (contacts_fts, rank) VALUES ('usermerge', 2);
INSERT INTO kb_articles_fts (kb_articles_fts, rank) VALUES ('usermerge', 2);
