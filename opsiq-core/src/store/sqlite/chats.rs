//! Visitor and chat queries. Transcripts are loaded with one query per list of sessions.

use rusqlite::{Row, params};

use super::Db;
use super::misc::{all, enum_col, exec, insert, one};
use crate::Result;
use crate::chats::{AuthorType, ChatMessage, ChatSession, ContactRef, Visitor};
use crate::store::{ChatReads, ChatWrites};
use crate::types::{Cursor, Id, Limit, Timestamp};

const VISITOR: &str =
    "SELECT id, public_id, site_id, contact_id, first_seen_at, last_seen_at FROM visitors";

fn visitor(r: &Row<'_>) -> rusqlite::Result<Visitor> {
    Ok(Visitor {
        row_id: r.get("id")?,
        id: r.get("public_id")?,
        site_id: r.get("site_id")?,
        contact_id: r.get("contact_id")?,
        first_seen_at: r.get("first_seen_at")?,
        last_seen_at: r.get("last_seen_at")?,
    })
}

const SESSION: &str = "SELECT s.id, s.site_id, s.status, s.started_at, s.closed_at, s.first_response_at, \
                       v.id AS v_id, v.public_id AS v_public_id, v.site_id AS v_site_id, v.contact_id AS v_contact_id, \
                       v.first_seen_at AS v_first_seen_at, v.last_seen_at AS v_last_seen_at, \
                       c.id AS c_id, c.name AS c_name, c.email AS c_email \
                       FROM chat_sessions s JOIN visitors v ON v.id = s.visitor_id \
                       LEFT JOIN contacts c ON c.id = s.contact_id";

fn session(r: &Row<'_>) -> rusqlite::Result<ChatSession> {
    let contact = match r.get::<_, Option<Id>>("c_id")? {
        Some(id) => Some(ContactRef {
            id,
            name: r.get("c_name")?,
            email: r.get("c_email")?,
        }),
        None => None,
    };
    Ok(ChatSession {
        id: r.get("id")?,
        site_id: r.get("site_id")?,
        status: enum_col(r, "status")?,
        visitor: Visitor {
            row_id: r.get("v_id")?,
            id: r.get("v_public_id")?,
            site_id: r.get("v_site_id")?,
            contact_id: r.get("v_contact_id")?,
            first_seen_at: r.get("v_first_seen_at")?,
            last_seen_at: r.get("v_last_seen_at")?,
        },
        contact,
        started_at: r.get("started_at")?,
        closed_at: r.get("closed_at")?,
        first_response_at: r.get("first_response_at")?,
        messages: Vec::new(),
    })
}

impl Db<'_, '_> {
    /// Fills in the transcripts of `sessions` with one query.
    fn with_messages(&self, mut sessions: Vec<ChatSession>) -> Result<Vec<ChatSession>> {
        if sessions.is_empty() {
            return Ok(sessions);
        }
        let ids: Vec<String> = sessions.iter().map(|s| s.id.0.to_string()).collect();
        let sql = format!(
            "SELECT id, session_id, author_type, author_name, body, created_at FROM chat_messages \
             WHERE session_id IN ({}) ORDER BY id",
            ids.join(",")
        );
        let messages = all(self, &sql, [], |r| {
            Ok((
                r.get::<_, Id>("session_id")?,
                ChatMessage {
                    id: r.get("id")?,
                    author_type: enum_col(r, "author_type")?,
                    author_name: r.get("author_name")?,
                    body: r.get("body")?,
                    created_at: r.get("created_at")?,
                },
            ))
        })?;
        for (session_id, message) in messages {
            if let Some(s) = sessions.iter_mut().find(|s| s.id == session_id) {
                s.messages.push(message);
            }
        }
        Ok(sessions)
    }
}

impl ChatReads for Db<'_, '_> {
    fn visitor_by_public_id(&self, public_id: &str) -> Result<Option<Visitor>> {
        one(
            self,
            &format!("{VISITOR} WHERE public_id = ?1"),
            [public_id],
            visitor,
        )
    }

    fn chat_session(&self, workspace: Id, id: Id) -> Result<Option<ChatSession>> {
        let found = one(
            self,
            &format!("{SESSION} WHERE s.workspace_id = ?1 AND s.id = ?2"),
            [workspace, id],
            session,
        )?;
        Ok(self.with_messages(found.into_iter().collect())?.pop())
    }

    fn chat_sessions(
        &self,
        workspace: Id,
        before: Option<Cursor>,
        limit: Limit,
    ) -> Result<Vec<ChatSession>> {
        let rows = all(
            self,
            &format!(
                "{SESSION} WHERE s.workspace_id = ?1 AND (?2 IS NULL OR s.id < ?2) ORDER BY s.id DESC LIMIT ?3"
            ),
            params![workspace, before.map(|c| c.0), limit.get() + 1],
            session,
        )?;
        self.with_messages(rows)
    }

    fn chat_sessions_of_contact(&self, workspace: Id, contact: Id) -> Result<Vec<ChatSession>> {
        let rows = all(
            self,
            &format!("{SESSION} WHERE s.workspace_id = ?1 AND s.contact_id = ?2 ORDER BY s.id"),
            [workspace, contact],
            session,
        )?;
        self.with_messages(rows)
    }

    fn chat_thread_heads(
        &self,
        workspace: Id,
        before: Option<Cursor>,
        limit: Limit,
    ) -> Result<Vec<(Id, Id)>> {
        all(
            self,
            "SELECT contact_id, MAX(id) AS last_session FROM chat_sessions \
             WHERE workspace_id = ?1 AND contact_id IS NOT NULL GROUP BY contact_id \
             HAVING ?2 IS NULL OR MAX(id) < ?2 ORDER BY last_session DESC LIMIT ?3",
            params![workspace, before.map(|c| c.0), limit.get() + 1],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }
}

impl ChatWrites for Db<'_, '_> {
    fn insert_visitor(
        &mut self,
        workspace: Id,
        site: Id,
        public_id: &str,
        now: Timestamp,
    ) -> Result<Id> {
        insert(
            self,
            "INSERT INTO visitors (workspace_id, site_id, public_id, first_seen_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            params![workspace, site, public_id, now],
        )
    }

    fn touch_visitor(&mut self, visitor: Id, now: Timestamp) -> Result<()> {
        exec(
            self,
            "UPDATE visitors SET last_seen_at = ?2 WHERE id = ?1",
            params![visitor, now],
        )?;
        Ok(())
    }

    fn set_visitor_contact(&mut self, visitor: Id, contact: Id) -> Result<()> {
        exec(
            self,
            "UPDATE visitors SET contact_id = ?2 WHERE id = ?1",
            params![visitor, contact],
        )?;
        exec(
            self,
            "UPDATE chat_sessions SET contact_id = ?2 WHERE visitor_id = ?1 AND contact_id IS NULL",
            params![visitor, contact],
        )?;
        Ok(())
    }

    fn insert_chat_session(
        &mut self,
        workspace: Id,
        site: Id,
        visitor: Id,
        contact: Option<Id>,
        now: Timestamp,
    ) -> Result<Id> {
        insert(
            self,
            "INSERT INTO chat_sessions (workspace_id, site_id, visitor_id, contact_id, status, started_at) \
             VALUES (?1, ?2, ?3, ?4, 'open', ?5)",
            params![workspace, site, visitor, contact, now],
        )
    }

    fn insert_chat_message(
        &mut self,
        session: Id,
        author_type: AuthorType,
        author_name: Option<&str>,
        body: &str,
        now: Timestamp,
    ) -> Result<Id> {
        let id = insert(
            self,
            "INSERT INTO chat_messages (session_id, author_type, author_name, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![session, author_type.as_str(), author_name, body, now],
        )?;
        if author_type == AuthorType::Agent {
            exec(
                self,
                "UPDATE chat_sessions SET first_response_at = ?2 WHERE id = ?1 AND first_response_at IS NULL",
                params![session, now],
            )?;
        }
        Ok(id)
    }

    fn close_chat_session(&mut self, session: Id, now: Timestamp) -> Result<()> {
        exec(
            self,
            "UPDATE chat_sessions SET status = 'closed', closed_at = ?2 WHERE id = ?1 AND status = 'open'",
            params![session, now],
        )?;
        Ok(())
    }
}
