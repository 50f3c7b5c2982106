//! Chats: visitors of a site, their chat sessions and transcripts, and "client chat threads"
//! (one thread per contact across all of its sessions).
//!
//! Sessions and messages are created by the widget runtime; the public API only reads them.
//! A visitor is anonymous until stitched to a contact; from then on its sessions belong to
//! that contact's thread.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::{Action, Method};
use crate::events::{ChatStarted, EventData};
use crate::service::{Call, Opsiq};
use crate::tenancy::Site;
use crate::types::{Cursor, Id, Limit, Page, Timestamp, random_base62, text, vocabulary};
use crate::{Error, Result, Scope};

vocabulary!(
    /// Who wrote a chat message.
    AuthorType { Visitor = "visitor", Agent = "agent", Bot = "bot", System = "system" }
);
vocabulary!(
    /// Whether a chat session is still going.
    ChatStatus { Open = "open", Closed = "closed" }
);
vocabulary!(
    /// How chats are listed: one item per session, or one thread per contact.
    ChatView { Sessions = "sessions", Threads = "threads" }
);

/// A browser seen by a site's widget.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Visitor {
    /// The public visitor id (`vis_...`) the widget keeps.
    pub id: String,
    pub site_id: Id,
    pub contact_id: Option<Id>,
    pub first_seen_at: Timestamp,
    pub last_seen_at: Timestamp,
    #[serde(skip)]
    pub row_id: Id,
}

/// The contact a chat belongs to, when known.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ContactRef {
    pub id: Id,
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ChatMessage {
    pub id: Id,
    pub author_type: AuthorType,
    pub author_name: Option<String>,
    pub body: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ChatSession {
    pub id: Id,
    pub site_id: Id,
    pub status: ChatStatus,
    pub visitor: Visitor,
    pub contact: Option<ContactRef>,
    pub started_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    /// When an agent first answered.
    pub first_response_at: Option<Timestamp>,
    /// The full transcript, oldest first.
    pub messages: Vec<ChatMessage>,
}

/// A session as listed inside a thread (its messages are in the thread's transcript).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ThreadSession {
    pub id: Id,
    pub site_id: Id,
    pub status: ChatStatus,
    pub visitor_id: String,
    pub started_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

/// A message of a thread, with the session it was written in.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ThreadMessage {
    pub session_id: Id,
    #[serde(flatten)]
    pub message: ChatMessage,
}

/// All chat sessions of one contact, as one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ChatThread {
    /// The thread's id is its contact's id.
    pub id: Id,
    pub contact: ContactRef,
    pub session_count: usize,
    pub last_activity_at: Timestamp,
    pub sessions: Vec<ThreadSession>,
    /// Every message of every session, oldest first.
    pub messages: Vec<ThreadMessage>,
}

impl ChatThread {
    /// Builds a thread from a contact's sessions (oldest first).
    pub fn from_sessions(contact: ContactRef, sessions: Vec<ChatSession>) -> Option<Self> {
        let last_activity_at = sessions
            .iter()
            .flat_map(|s| {
                s.messages
                    .iter()
                    .map(|m| m.created_at)
                    .chain([s.started_at])
            })
            .max()?;
        let mut messages: Vec<ThreadMessage> = sessions
            .iter()
            .flat_map(|s| {
                s.messages.iter().map(|m| ThreadMessage {
                    session_id: s.id,
                    message: m.clone(),
                })
            })
            .collect();
        messages.sort_by_key(|m| (m.message.created_at, m.message.id));
        Some(ChatThread {
            id: contact.id,
            contact,
            session_count: sessions.len(),
            last_activity_at,
            sessions: sessions
                .into_iter()
                .map(|s| ThreadSession {
                    id: s.id,
                    site_id: s.site_id,
                    status: s.status,
                    visitor_id: s.visitor.id,
                    started_at: s.started_at,
                    closed_at: s.closed_at,
                })
                .collect(),
            messages,
        })
    }
}

/// A chat as listed or fetched: a session, or a thread with `view=threads`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Chat {
    Session(ChatSession),
    Thread(ChatThread),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListChats {
    #[serde(default)]
    pub limit: Limit,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<Cursor>,
    /// `sessions` (default) or `threads`: one thread per contact across its sessions.
    pub view: Option<ChatView>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetChat {
    /// A session id, or with `view=threads` a contact id.
    pub id: Id,
    pub view: Option<ChatView>,
}

impl Opsiq {
    pub fn list_chats(&self, call: &Call, input: ListChats) -> Result<Page<Chat>> {
        let workspace = call.principal.workspace_id;
        let limit = input.limit;
        match input.view.unwrap_or(ChatView::Sessions) {
            ChatView::Sessions => {
                let rows = self.read(|r| r.chat_sessions(workspace, input.cursor, limit))?;
                let page = Page::from_rows(rows, limit, |s| s.id.0);
                Ok(Page {
                    items: page.items.into_iter().map(Chat::Session).collect(),
                    next_cursor: page.next_cursor,
                })
            }
            ChatView::Threads => {
                let heads = self.read(|r| r.chat_thread_heads(workspace, input.cursor, limit))?;
                let page = Page::from_rows(heads, limit, |(_, last_session)| last_session.0);
                let threads = self.read(|r| {
                    page.items
                        .iter()
                        .map(|(contact, _)| {
                            let sessions = r.chat_sessions_of_contact(workspace, *contact)?;
                            let contact = contact_ref(r, workspace, *contact)?;
                            Ok(ChatThread::from_sessions(contact, sessions).map(Chat::Thread))
                        })
                        .collect::<Result<Vec<_>>>()
                })?;
                Ok(Page {
                    items: threads.into_iter().flatten().collect(),
                    next_cursor: page.next_cursor,
                })
            }
        }
    }

    pub fn get_chat(&self, call: &Call, input: GetChat) -> Result<Chat> {
        let workspace = call.principal.workspace_id;
        match input.view.unwrap_or(ChatView::Sessions) {
            ChatView::Sessions => self
                .read(|r| r.chat_session(workspace, input.id))?
                .map(Chat::Session)
                .ok_or_else(|| Error::not_found("chat", input.id)),
            ChatView::Threads => self
                .read(|r| {
                    let Some(contact) = r.contact(workspace, input.id)? else {
                        return Ok(None);
                    };
                    let sessions = r.chat_sessions_of_contact(workspace, contact.id)?;
                    let contact = ContactRef {
                        id: contact.id,
                        name: contact.name,
                        email: contact.email.map(|e| e.as_str().to_string()),
                    };
                    Ok(ChatThread::from_sessions(contact, sessions))
                })?
                .map(Chat::Thread)
                .ok_or_else(|| Error::not_found("chat_thread", input.id)),
        }
    }

    /// Finds the visitor with this public id on `site`, or creates one (with a new id when
    /// none is given). Used by the widget runtime.
    pub fn visitor(&self, site: &Site, public_id: Option<&str>) -> Result<Visitor> {
        let site = site.clone();
        let public_id = match public_id {
            Some(id) => parse_visitor_id(id)?,
            None => format!("vis_{}", random_base62(24)),
        };
        self.write(move |w| {
            let now = Timestamp::now();
            match w.visitor_by_public_id(&public_id)? {
                Some(v) if v.site_id != site.id => Err(Error::validation(
                    "visitor_id",
                    "this visitor belongs to another site",
                )),
                Some(v) => {
                    w.touch_visitor(v.row_id, now)?;
                    Ok(Visitor {
                        last_seen_at: now,
                        ..v
                    })
                }
                None => {
                    w.insert_visitor(site.workspace_id, site.id, &public_id, now)?;
                    w.visitor_by_public_id(&public_id)?
                        .ok_or_else(|| Error::Internal("visitor vanished".into()))
                }
            }
        })
    }

    /// Stitches a visitor to a contact: the visitor's sessions join the contact's thread.
    pub fn identify_visitor(&self, visitor: &Visitor, contact: Id) -> Result<()> {
        let row = visitor.row_id;
        self.write(move |w| w.set_visitor_contact(row, contact))
    }

    /// Starts a chat session for a visitor and records `chat.started`.
    pub fn start_chat(&self, site: &Site, visitor: &Visitor) -> Result<ChatSession> {
        if visitor.site_id != site.id {
            return Err(Error::validation(
                "visitor_id",
                "this visitor belongs to another site",
            ));
        }
        let (workspace, site_id, visitor_row, contact) = (
            site.workspace_id,
            site.id,
            visitor.row_id,
            visitor.contact_id,
        );
        self.write(move |w| {
            let id =
                w.insert_chat_session(workspace, site_id, visitor_row, contact, Timestamp::now())?;
            let session = w
                .chat_session(workspace, id)?
                .ok_or_else(|| Error::Internal("chat vanished".into()))?;
            let started = ChatStarted {
                chat_id: session.id,
                site_id: session.site_id,
                visitor_id: session.visitor.id.clone(),
                contact: session.contact.clone(),
            };
            started.emit(w, workspace)?;
            Ok(session)
        })
    }

    /// Appends a message to an open session. The first agent message sets the session's
    /// first response time.
    pub fn add_chat_message(
        &self,
        workspace: Id,
        session: Id,
        author_type: AuthorType,
        author_name: Option<&str>,
        body: &str,
    ) -> Result<ChatMessage> {
        let body = text("body", body, 10_000, true)?;
        let author_name = author_name
            .map(|n| text("author_name", n, 200, false))
            .transpose()?;
        self.write(move |w| {
            let chat = w
                .chat_session(workspace, session)?
                .ok_or_else(|| Error::not_found("chat", session))?;
            if chat.status == ChatStatus::Closed {
                return Err(Error::validation(
                    "session",
                    format!("chat {session} is closed"),
                ));
            }
            let id = w.insert_chat_message(
                session,
                author_type,
                author_name.as_deref(),
                &body,
                Timestamp::now(),
            )?;
            let chat = w
                .chat_session(workspace, session)?
                .ok_or_else(|| Error::Internal("chat vanished".into()))?;
            chat.messages
                .into_iter()
                .find(|m| m.id == id)
                .ok_or_else(|| Error::Internal("message vanished".into()))
        })
    }

    pub fn close_chat(&self, workspace: Id, session: Id) -> Result<ChatSession> {
        self.write(move |w| {
            w.chat_session(workspace, session)?
                .ok_or_else(|| Error::not_found("chat", session))?;
            w.close_chat_session(session, Timestamp::now())?;
            w.chat_session(workspace, session)?
                .ok_or_else(|| Error::Internal("chat vanished".into()))
        })
    }
}

fn contact_ref(r: &dyn crate::store::Reads, workspace: Id, id: Id) -> Result<ContactRef> {
    let c = r
        .contact(workspace, id)?
        .ok_or_else(|| Error::not_found("contact", id))?;
    Ok(ContactRef {
        id: c.id,
        name: c.name,
        email: c.email.map(|e| e.as_str().to_string()),
    })
}

/// A public visitor id: `vis_` and 8 to 64 letters, digits, `-` or `_`.
pub fn parse_visitor_id(raw: &str) -> Result<String> {
    let ok = raw.strip_prefix("vis_").is_some_and(|rest| {
        (8..=64).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if ok {
        Ok(raw.to_string())
    } else {
        Err(Error::validation(
            "visitor_id",
            format!("`{raw}` is not a visitor id (vis_...)"),
        ))
    }
}

/// The chat actions of the catalog.
pub fn actions() -> Vec<Action> {
    vec![
        Action::list("chats.list", Scope::ChatsRead, "chat", "List chat sessions or client chat threads.", |op, call, i| {
            op.list_chats(call, i)
        })
        .route(Method::Get, "/chats")
        .describe(
            "Newest first, each session with its full transcript, visitor and contact. `view=threads` lists one \
             thread per contact across its sessions instead. Use chat reads for reporting, compliance export, or AI \
             review; live messages are sent through the widget runtime.",
        ),
        Action::new("chats.get", Scope::ChatsRead, "chat", "Fetch one chat session or thread.", |op, call, i| op.get_chat(call, i))
            .route(Method::Get, "/chats/{id}")
            .describe("A session by id, or with `view=threads` the thread of the contact with that id."),
    ]
}
