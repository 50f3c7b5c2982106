//! Contact queries, including full-text search through `contacts_fts`.

use rusqlite::types::Value;
use rusqlite::{Row, params, params_from_iter};

use super::Db;
use super::misc::{Cols, all, docs, exec, fts_query, insert, json_text, one};
use crate::Result;
use crate::contacts::{Contact, ContactFields, ContactFilter, Note};
use crate::store::{ContactReads, ContactWrites};
use crate::types::{Doc, Id, Timestamp};

/// A contact's columns, read through the alias `c`.
macro_rules! contact_columns {
    () => {
        "SELECT c.id, c.workspace_id, c.site_id, c.name, c.email, c.phone, c.external_id, c.tags, c.attributes, \
         c.created_at, c.updated_at"
    };
}

const CONTACT: &str = concat!(contact_columns!(), " FROM contacts c");

fn contact(r: &Row<'_>) -> rusqlite::Result<Contact> {
    let mut c = Cols::new(r);
    Ok(Contact {
        id: c.get("id")?,
        workspace_id: c.get("workspace_id")?,
        site_id: c.get("site_id")?,
        name: c.get("name")?,
        email: c.get("email")?,
        phone: c.get("phone")?,
        external_id: c.get("external_id")?,
        tags: c.json("tags")?,
        attributes: c.json("attributes")?,
        notes: None,
        created_at: c.get("created_at")?,
        updated_at: c.get("updated_at")?,
    })
}

impl ContactReads for Db<'_, '_> {
    fn contact(&self, workspace: Id, id: Id) -> Result<Option<Contact>> {
        let Some(mut c) = one(
            self,
            &format!("{CONTACT} WHERE workspace_id = ?1 AND id = ?2"),
            [workspace, id],
            contact,
        )?
        else {
            return Ok(None);
        };
        let notes = all(
            self,
            "SELECT id, body, author, created_at FROM contact_notes WHERE contact_id = ?1 ORDER BY id",
            [id],
            |r| {
                Ok(Note {
                    id: r.get("id")?,
                    body: r.get("body")?,
                    author: r.get("author")?,
                    created_at: r.get("created_at")?,
                })
            },
        )?;
        c.notes = Some(notes);
        Ok(Some(c))
    }

    fn contact_by_email(&self, workspace: Id, email_normalized: &str) -> Result<Option<Contact>> {
        one(
            self,
            &format!("{CONTACT} WHERE workspace_id = ?1 AND email_norm = ?2"),
            params![workspace, email_normalized],
            contact,
        )
    }

    fn contact_id_by_external_id(&self, workspace: Id, external_id: &str) -> Result<Option<Id>> {
        one(
            self,
            "SELECT id FROM contacts WHERE workspace_id = ?1 AND external_id = ?2",
            params![workspace, external_id],
            |r| r.get(0),
        )
    }

    fn contacts(&self, workspace: Id, f: &ContactFilter) -> Result<Vec<Contact>> {
        match page(contact_columns!(), workspace, f) {
            Some((sql, args)) => all(self, &sql, params_from_iter(args), contact),
            None => Ok(Vec::new()),
        }
    }

    fn contact_docs(&self, workspace: Id, f: &ContactFilter) -> Result<Vec<Doc<Contact>>> {
        // The page, and one more row that tells whether another page follows.
        let at_most = f.limit.get() as usize + 1;
        match page("SELECT c.id, c.doc", workspace, f) {
            Some((sql, args)) => docs(self, &sql, params_from_iter(args), at_most, |id| {
                // A page's contacts come without their notes.
                Ok(self
                    .contact(workspace, id)?
                    .map(|c| Contact { notes: None, ..c }))
            }),
            None => Ok(Vec::new()),
        }
    }
}

/// A page of contacts: `select` (columns of `c`) with the filter, newest first; `None` when the
/// search words hold nothing to search for.
fn page(select: &str, workspace: Id, f: &ContactFilter) -> Option<(String, Vec<Value>)> {
    let before = f.before.map(|c| c.0);
    let limit = i64::from(f.limit.get()) + 1;
    let Some(q) = f.q.as_deref() else {
        return Some((
            format!(
                "{select} FROM contacts c WHERE workspace_id = ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
            ),
            vec![
                Value::Integer(workspace.0),
                before.map_or(Value::Null, Value::Integer),
                Value::Integer(limit),
            ],
        ));
    };
    let query = fts_query(q)?;
    // The full-text index keys each contact by its id and workspace, negated (`WORKSPACE_BITS`,
    // migration 0015): walking it forwards, as FTS5 does cheaply, is newest first, and a
    // contact of another workspace is passed over by its key, with no lookup. The walk stops
    // after `limit` contacts of the workspace: the cost follows the page, not how many match.
    // A later page starts past the cursor inside the index (the constraint goes to FTS5). A
    // workspace beyond the keys' range holds no contact the index could find.
    if !(0..1 << WORKSPACE_BITS).contains(&workspace.0) {
        return None;
    }
    // Contacts before the cursor have keys above the cursor's lowest (an id beyond the keys'
    // range leaves every contact before it).
    let past = before
        .filter(|id| *id <= MAX_CONTACT_ID)
        .map(|id| -(id.max(0) << WORKSPACE_BITS));
    let sql = format!(
        "{select} FROM contacts_fts f JOIN contacts c ON c.id = (-f.rowid) >> {WORKSPACE_BITS} \
         WHERE contacts_fts MATCH ?3 AND ((-f.rowid) & {}) = ?1 AND c.workspace_id = ?1 {} \
         ORDER BY f.rowid LIMIT ?2",
        (1 << WORKSPACE_BITS) - 1,
        if past.is_some() {
            "AND f.rowid > ?4"
        } else {
            ""
        }
    );
    let mut args = vec![
        Value::Integer(workspace.0),
        Value::Integer(limit),
        Value::Text(query),
    ];
    args.extend(past.map(Value::Integer));
    Some((sql, args))
}

/// A contact's key in the full-text index is `-(id · 2^WORKSPACE_BITS + workspace)`: contact
/// ids stay below 2^(63 − `WORKSPACE_BITS`) and workspace ids below 2^`WORKSPACE_BITS` for it
/// to fit in 63 bits (migration 0015, whose insert trigger refuses any other contact).
const WORKSPACE_BITS: u32 = 23;
const MAX_CONTACT_ID: i64 = (1 << (63 - WORKSPACE_BITS)) - 1;

impl ContactWrites for Db<'_, '_> {
    fn insert_contact(
        &mut self,
        workspace: Id,
        site: Option<Id>,
        c: &ContactFields,
        now: Timestamp,
    ) -> Result<Id> {
        insert(
            self,
            "INSERT INTO contacts (workspace_id, site_id, name, email, email_norm, phone, external_id, tags, attributes, \
             created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            params![
                workspace,
                site,
                c.name,
                c.email.as_ref().map(|e| e.as_str()),
                c.email.as_ref().map(|e| e.normalized()),
                c.phone,
                c.external_id,
                json_text(&c.tags)?,
                json_text(&c.attributes)?,
                now
            ],
        )
    }

    fn update_contact(
        &mut self,
        workspace: Id,
        id: Id,
        c: &ContactFields,
        now: Timestamp,
    ) -> Result<()> {
        exec(
            self,
            "UPDATE contacts SET name = ?3, email = ?4, email_norm = ?5, phone = ?6, external_id = ?7, tags = ?8, \
             attributes = ?9, updated_at = ?10 WHERE workspace_id = ?1 AND id = ?2",
            params![
                workspace,
                id,
                c.name,
                c.email.as_ref().map(|e| e.as_str()),
                c.email.as_ref().map(|e| e.normalized()),
                c.phone,
                c.external_id,
                json_text(&c.tags)?,
                json_text(&c.attributes)?,
                now
            ],
        )?;
        Ok(())
    }

    fn insert_note(&mut self, contact: Id, body: &str, author: &str, now: Timestamp) -> Result<Id> {
        let id = insert(
            self,
            "INSERT INTO contact_notes (contact_id, body, author, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![contact, body, author, now],
        )?;
        exec(
            self,
            "UPDATE contacts SET updated_at = ?2 WHERE id = ?1",
            params![contact, now],
        )?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::misc::fts_query;

    #[test]
    fn search_words_become_quoted_prefix_terms() {
        assert_eq!(fts_query("ada lov").as_deref(), Some("\"ada\"* \"lov\"*"));
        assert_eq!(
            fts_query("ada@example.com").as_deref(),
            Some("\"ada\"* \"example\"* \"com\"*")
        );
        assert_eq!(
            fts_query("\" OR NEAR(").as_deref(),
            Some("\"OR\"* \"NEAR\"*")
        );
        assert_eq!(fts_query("@@ --"), None);
    }
}
