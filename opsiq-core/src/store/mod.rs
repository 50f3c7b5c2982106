//! Storage traits: what the services need from a database, split by noun, with no database
//! type in them. The SQLite store implements them; a PostgreSQL store can implement them too
//! (nothing here assumes one process or one file).
//!
//! Reads run against a consistent view (`Reads`); writes run as closures inside one transaction
//! (`Writes`, which can also read), and a closure's changes are all kept or all dropped. A store
//! may commit several closures together (group commit) but never reports a write as done before
//! its commit.

pub mod sqlite;

use std::any::Any;

use crate::Result;
use crate::analytics::{NewKnowledgeQuery, NewOrder, NewPageView, SiteCounts};
use crate::audit::AuditEntry;
use crate::chats::{AuthorType, ChatSession, Visitor};
use crate::contacts::{Contact, ContactFields, ContactFilter};
use crate::events::Event;
use crate::idempotency::Claim;
use crate::kb::{Article, ArticleFields, ArticleFilter};
use crate::keys::{ApiKey, NewKey};
use crate::meta::UsageRow;
use crate::proactive::{
    NewProactiveEvent, NewWidgetMessage, ProactiveEvent, Rule, RuleFields, WidgetMessage,
};
use crate::tenancy::{Agent, Department, NewSite, Site, Workspace};
use crate::tickets::{NewTicket, Ticket, TicketFields, TicketFilter};
use crate::types::{Cursor, Doc, Email, Id, Limit, Timestamp};
use crate::webhooks::{
    Attempt, AttemptOutcome, Delivery, DeliveryFilter, DeliveryStatus, Endpoint, EndpointFields,
    Outgoing,
};

pub trait TenancyReads {
    fn workspaces(&self) -> Result<Vec<Workspace>>;
    fn workspace(&self, id: Id) -> Result<Option<Workspace>>;
    /// Sites of one workspace, or of all when `None`.
    fn sites(&self, workspace: Option<Id>) -> Result<Vec<Site>>;
    fn site(&self, id: Id) -> Result<Option<Site>>;
    fn site_by_key(&self, site_key: &str) -> Result<Option<Site>>;
    fn departments(&self, workspace: Id) -> Result<Vec<Department>>;
    fn department(&self, workspace: Id, id: Id) -> Result<Option<Department>>;
    fn agents(&self, workspace: Id) -> Result<Vec<Agent>>;
    fn agent(&self, workspace: Id, id: Id) -> Result<Option<Agent>>;
}

pub trait TenancyWrites {
    fn insert_workspace(&mut self, name: &str, now: Timestamp) -> Result<Id>;
    fn insert_site(&mut self, site: &NewSite, now: Timestamp) -> Result<Id>;
    fn insert_department(&mut self, workspace: Id, name: &str, now: Timestamp) -> Result<Id>;
    fn insert_agent(
        &mut self,
        workspace: Id,
        name: &str,
        email: &Email,
        now: Timestamp,
    ) -> Result<Id>;
}

pub trait KeyReads {
    fn key(&self, id: Id) -> Result<Option<ApiKey>>;
    /// The key whose secret hashes to `hash`, revoked or not.
    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>>;
    fn keys(&self, workspace: Option<Id>) -> Result<Vec<ApiKey>>;
    /// A number that moves whenever any key changes in a way that can change what it may do
    /// (anything but its last use), by whichever process: what verified keys kept in memory
    /// are checked against.
    fn key_generation(&self) -> Result<i64>;
}

pub trait KeyWrites {
    fn insert_key(&mut self, key: &NewKey, now: Timestamp) -> Result<Id>;
    /// Stores a key's name, site, scopes and permissions.
    fn update_key(&mut self, key: &ApiKey) -> Result<()>;
    /// Replaces the secret (rotation): the old one stops working at once.
    fn replace_key_secret(
        &mut self,
        id: Id,
        hash: &str,
        prefix: &str,
        now: Timestamp,
    ) -> Result<()>;
    fn revoke_key(&mut self, id: Id, now: Timestamp) -> Result<()>;
    /// Records use, at most once a minute per key so reads do not turn into writes.
    fn touch_key(&mut self, id: Id, now: Timestamp) -> Result<()>;
}

pub trait ContactReads {
    /// One contact with its notes.
    fn contact(&self, workspace: Id, id: Id) -> Result<Option<Contact>>;
    /// The contact with this normalised e-mail, without notes.
    fn contact_by_email(&self, workspace: Id, email_normalized: &str) -> Result<Option<Contact>>;
    fn contact_id_by_external_id(&self, workspace: Id, external_id: &str) -> Result<Option<Id>>;
    /// Up to `limit + 1` contacts, newest first, without notes.
    fn contacts(&self, workspace: Id, filter: &ContactFilter) -> Result<Vec<Contact>>;
    /// [`ContactReads::contacts`] as each contact's JSON text. A store that keeps the
    /// rendering overrides this.
    fn contact_docs(&self, workspace: Id, filter: &ContactFilter) -> Result<Vec<Doc<Contact>>> {
        docs(self.contacts(workspace, filter)?, |c| c.id)
    }
}

pub trait ContactWrites {
    fn insert_contact(
        &mut self,
        workspace: Id,
        site: Option<Id>,
        fields: &ContactFields,
        now: Timestamp,
    ) -> Result<Id>;
    fn update_contact(
        &mut self,
        workspace: Id,
        id: Id,
        fields: &ContactFields,
        now: Timestamp,
    ) -> Result<()>;
    fn insert_note(&mut self, contact: Id, body: &str, author: &str, now: Timestamp) -> Result<Id>;
}

pub trait TicketReads {
    fn ticket(&self, workspace: Id, id: Id) -> Result<Option<Ticket>>;
    /// [`TicketReads::ticket`] as the ticket's JSON text. A store that keeps the rendering
    /// overrides this.
    fn ticket_doc(&self, workspace: Id, id: Id) -> Result<Option<Doc<Ticket>>> {
        self.ticket(workspace, id)?
            .map(|t| doc(t.id, &t))
            .transpose()
    }
    /// Up to `limit + 1` tickets, newest first.
    fn tickets(&self, workspace: Id, filter: &TicketFilter) -> Result<Vec<Ticket>>;
    /// [`TicketReads::tickets`] as each ticket's JSON text. A store that keeps the rendering
    /// overrides this.
    fn ticket_docs(&self, workspace: Id, filter: &TicketFilter) -> Result<Vec<Doc<Ticket>>> {
        docs(self.tickets(workspace, filter)?, |t| t.id)
    }
}

/// Renders a record as a [`Doc`].
pub fn doc<T: serde::Serialize>(id: Id, record: &T) -> Result<Doc<T>> {
    Doc::render(id, record)
        .map_err(|e| crate::Error::Internal(format!("cannot render record {id}: {e}")))
}

/// Renders records as [`Doc`]s.
pub fn docs<T: serde::Serialize>(records: Vec<T>, id: impl Fn(&T) -> Id) -> Result<Vec<Doc<T>>> {
    records.iter().map(|r| doc(id(r), r)).collect()
}

pub trait TicketWrites {
    /// Inserts a new ticket and answers it as stored (its id, status `open`, the contact's
    /// e-mail and name as its customer's).
    fn insert_ticket(&mut self, ticket: &NewTicket, now: Timestamp) -> Result<Ticket>;
    fn update_ticket(
        &mut self,
        workspace: Id,
        id: Id,
        fields: &TicketFields,
        now: Timestamp,
    ) -> Result<()>;
}

pub trait ChatReads {
    fn visitor_by_public_id(&self, public_id: &str) -> Result<Option<Visitor>>;
    /// One session with its transcript.
    fn chat_session(&self, workspace: Id, id: Id) -> Result<Option<ChatSession>>;
    /// Up to `limit + 1` sessions with their transcripts, newest first.
    fn chat_sessions(
        &self,
        workspace: Id,
        before: Option<Cursor>,
        limit: Limit,
    ) -> Result<Vec<ChatSession>>;
    /// Every session of a contact with its transcript, oldest first.
    fn chat_sessions_of_contact(&self, workspace: Id, contact: Id) -> Result<Vec<ChatSession>>;
    /// Up to `limit + 1` contacts with chats, as (contact, newest session), most recent first.
    fn chat_thread_heads(
        &self,
        workspace: Id,
        before: Option<Cursor>,
        limit: Limit,
    ) -> Result<Vec<(Id, Id)>>;
}

pub trait ChatWrites {
    fn insert_visitor(
        &mut self,
        workspace: Id,
        site: Id,
        public_id: &str,
        now: Timestamp,
    ) -> Result<Id>;
    fn touch_visitor(&mut self, visitor: Id, now: Timestamp) -> Result<()>;
    /// Links a visitor, and its sessions without a contact, to a contact.
    fn set_visitor_contact(&mut self, visitor: Id, contact: Id) -> Result<()>;
    fn insert_chat_session(
        &mut self,
        workspace: Id,
        site: Id,
        visitor: Id,
        contact: Option<Id>,
        now: Timestamp,
    ) -> Result<Id>;
    /// Appends a message; the first agent message sets the session's first response time.
    fn insert_chat_message(
        &mut self,
        session: Id,
        author_type: AuthorType,
        author_name: Option<&str>,
        body: &str,
        now: Timestamp,
    ) -> Result<Id>;
    fn close_chat_session(&mut self, session: Id, now: Timestamp) -> Result<()>;
}

pub trait KbReads {
    fn article(&self, workspace: Id, id: Id) -> Result<Option<Article>>;
    fn article_id_by_slug(&self, workspace: Id, slug: &str) -> Result<Option<Id>>;
    /// Up to `limit + 1` articles, newest first.
    fn articles(&self, workspace: Id, filter: &ArticleFilter) -> Result<Vec<Article>>;
    /// Published articles matching every word of `query`, best match first.
    fn search_published(&self, workspace: Id, query: &str, limit: u32) -> Result<Vec<Article>>;
}

pub trait KbWrites {
    fn insert_article(
        &mut self,
        workspace: Id,
        fields: &ArticleFields,
        now: Timestamp,
    ) -> Result<Id>;
    fn update_article(
        &mut self,
        workspace: Id,
        id: Id,
        fields: &ArticleFields,
        now: Timestamp,
    ) -> Result<()>;
}

pub trait AnalyticsReads {
    /// The counts of one site over `[from, to)`, computed from the stored rows.
    fn site_counts(&self, site: Id, from: Timestamp, to: Timestamp) -> Result<SiteCounts>;
    /// First response times (milliseconds) of the site's chats started in `[from, to)`.
    fn first_response_times(&self, site: Id, from: Timestamp, to: Timestamp) -> Result<Vec<i64>>;
    /// The latest visit of a visitor, as (visit, last seen).
    fn latest_visit(&self, visitor: Id) -> Result<Option<(Id, Timestamp)>>;
    /// How many times a question (normalised) went unanswered on a site.
    fn missed_question_count(&self, site: Id, question: &str) -> Result<i64>;
}

pub trait AnalyticsWrites {
    fn insert_visit(&mut self, site: Id, visitor: Id, now: Timestamp) -> Result<Id>;
    fn touch_visit(&mut self, visit: Id, now: Timestamp) -> Result<()>;
    fn insert_page_view(&mut self, view: &NewPageView, now: Timestamp) -> Result<Id>;
    fn insert_order(&mut self, order: &NewOrder, now: Timestamp) -> Result<Id>;
    fn insert_knowledge_query(&mut self, query: &NewKnowledgeQuery, now: Timestamp) -> Result<Id>;
    /// Adds `delta` to a contact's lead score and records the change; returns the new score.
    fn change_lead_score(
        &mut self,
        site: Id,
        contact: Id,
        delta: i64,
        reason: &str,
        now: Timestamp,
    ) -> Result<i64>;
}

pub trait WebhookReads {
    fn endpoints(&self, workspace: Id) -> Result<Vec<Endpoint>>;
    fn endpoint(&self, workspace: Id, id: Id) -> Result<Option<Endpoint>>;
    /// Up to `limit + 1` deliveries, newest first.
    fn deliveries(&self, workspace: Id, filter: &DeliveryFilter) -> Result<Vec<Delivery>>;
    fn attempts(&self, delivery: Id) -> Result<Vec<Attempt>>;
    fn event_by_id(&self, workspace: Id, id: &str) -> Result<Option<Event>>;
    fn events_since(&self, workspace: Id, since: Timestamp) -> Result<Vec<Event>>;
    /// When the earliest unleased pending or retrying delivery is due.
    fn next_due_delivery(&self, now: Timestamp) -> Result<Option<Timestamp>>;
}

pub trait WebhookWrites {
    fn insert_endpoint(
        &mut self,
        workspace: Id,
        fields: &EndpointFields,
        secret: &str,
        now: Timestamp,
    ) -> Result<Id>;
    /// Stores an endpoint's fields; enabling it clears why it was disabled.
    fn update_endpoint(
        &mut self,
        workspace: Id,
        id: Id,
        fields: &EndpointFields,
        now: Timestamp,
    ) -> Result<()>;
    /// Makes `secret` current; the old one keeps signing until `previous_until`.
    fn rotate_endpoint_secret(
        &mut self,
        id: Id,
        secret: &str,
        previous_until: Timestamp,
        now: Timestamp,
    ) -> Result<()>;
    fn delete_endpoint(&mut self, id: Id) -> Result<()>;
    fn disable_endpoint(&mut self, id: Id, reason: &str, now: Timestamp) -> Result<()>;
    /// Queues a delivery of `event` to every enabled endpoint subscribed to it (or only to
    /// `endpoint`); returns how many.
    fn queue_deliveries(
        &mut self,
        event: &Event,
        endpoint: Option<Id>,
        now: Timestamp,
    ) -> Result<usize>;
    /// Leases due deliveries until `lease_until` (at most `per_endpoint` in flight per endpoint).
    fn lease_due_deliveries(
        &mut self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        per_endpoint: u32,
    ) -> Result<Vec<Outgoing>>;
    fn insert_attempt(
        &mut self,
        delivery: Id,
        outcome: &AttemptOutcome,
        now: Timestamp,
    ) -> Result<()>;
    fn set_delivery_state(
        &mut self,
        delivery: Id,
        status: DeliveryStatus,
        attempts: u32,
        next_attempt_at: Option<Timestamp>,
        outcome: &AttemptOutcome,
        now: Timestamp,
    ) -> Result<()>;
    /// Records whether an endpoint's last attempt succeeded; returns since when it has been
    /// failing (`None` after a success).
    fn mark_endpoint_result(
        &mut self,
        endpoint: Id,
        success: bool,
        now: Timestamp,
    ) -> Result<Option<Timestamp>>;
}

pub trait ProactiveReads {
    /// A rule of one workspace, or of any when `None`.
    fn rule(&self, workspace: Option<Id>, id: Id) -> Result<Option<Rule>>;
    /// Rules of one workspace (or of all), newest first: up to `limit + 1`, or all when `None`.
    fn rules(
        &self,
        workspace: Option<Id>,
        before: Option<Cursor>,
        limit: Option<Limit>,
    ) -> Result<Vec<Rule>>;
    /// The workspace's enabled rules listening for `event`, oldest first (the order they run in).
    fn rules_for_event(&self, workspace: Id, event: &str) -> Result<Vec<Rule>>;
    /// When a rule last fired for a subject (`contact:<id>` or `visitor:<id>`).
    fn last_firing(&self, rule: Id, subject: &str) -> Result<Option<Timestamp>>;
    /// The workspace's newest proactive events.
    fn proactive_events(&self, workspace: Id, limit: u32) -> Result<Vec<ProactiveEvent>>;
    /// Undelivered widget messages for a visitor or a contact, oldest first.
    fn queued_messages(
        &self,
        visitor: Option<Id>,
        contact: Option<Id>,
    ) -> Result<Vec<WidgetMessage>>;
}

pub trait ProactiveWrites {
    fn insert_rule(&mut self, workspace: Id, rule: &RuleFields, now: Timestamp) -> Result<Id>;
    fn update_rule(
        &mut self,
        workspace: Id,
        id: Id,
        rule: &RuleFields,
        now: Timestamp,
    ) -> Result<()>;
    fn insert_proactive_event(&mut self, event: &NewProactiveEvent, now: Timestamp) -> Result<Id>;
    fn insert_rule_firing(
        &mut self,
        rule: Id,
        event: Id,
        subject: &str,
        now: Timestamp,
    ) -> Result<Id>;
    fn insert_widget_message(&mut self, message: &NewWidgetMessage, now: Timestamp) -> Result<Id>;
}

pub trait IdempotencyWrites {
    /// Claims `idem_key` for a request, or returns what an earlier request with it left
    /// (forgetting records created before `expired_before`).
    fn claim_idempotency(
        &mut self,
        key: Id,
        idem_key: &str,
        action: &str,
        fingerprint: &str,
        now: Timestamp,
        expired_before: Timestamp,
    ) -> Result<Claim>;
    /// Marks the claim's change committed (in the change's own transaction).
    fn commit_idempotency(&mut self, key: Id, idem_key: &str) -> Result<()>;
    /// Stores the answer sent for the claim.
    fn answer_idempotency(
        &mut self,
        key: Id,
        idem_key: &str,
        status: u16,
        response: &str,
    ) -> Result<()>;
    /// Drops a claim whose request failed without changing anything.
    fn release_idempotency(&mut self, key: Id, idem_key: &str) -> Result<()>;
}

pub trait EventReads {
    /// The workspace's outbox events, oldest first.
    fn events(&self, workspace: Id, limit: u32) -> Result<Vec<Event>>;
}

pub trait EventWrites {
    fn insert_event(&mut self, event: &Event) -> Result<()>;
}

pub trait AuditReads {
    /// The newest audit rows, of one workspace or of all.
    fn audit_entries(&self, workspace: Option<Id>, limit: u32) -> Result<Vec<AuditEntry>>;
    /// A key's requests in each window (since each of `windows`, on the hour), by action and
    /// outcome, with latency percentiles: one list per window, in the same order.
    fn usage(&self, key: Id, windows: &[Timestamp]) -> Result<Vec<Vec<UsageRow>>>;
}

pub trait AuditWrites {
    /// Stores audit rows and counts them in their keys' hourly usage.
    fn insert_audits(&mut self, entries: &[&AuditEntry]) -> Result<()>;
    fn insert_audit(&mut self, entry: &AuditEntry) -> Result<()> {
        self.insert_audits(&[entry])
    }
}

/// Everything the services read.
pub trait Reads:
    TenancyReads
    + KeyReads
    + ContactReads
    + TicketReads
    + ChatReads
    + KbReads
    + AnalyticsReads
    + ProactiveReads
    + WebhookReads
    + EventReads
    + AuditReads
{
}
impl<T> Reads for T where
    T: TenancyReads
        + KeyReads
        + ContactReads
        + TicketReads
        + ChatReads
        + KbReads
        + AnalyticsReads
        + ProactiveReads
        + WebhookReads
        + EventReads
        + AuditReads
        + ?Sized
{
}

/// Everything the services write, inside one transaction.
pub trait Writes:
    Reads
    + TenancyWrites
    + KeyWrites
    + ContactWrites
    + TicketWrites
    + ChatWrites
    + KbWrites
    + AnalyticsWrites
    + ProactiveWrites
    + WebhookWrites
    + IdempotencyWrites
    + EventWrites
    + AuditWrites
{
}
impl<T> Writes for T where
    T: Reads
        + TenancyWrites
        + KeyWrites
        + ContactWrites
        + TicketWrites
        + ChatWrites
        + KbWrites
        + AnalyticsWrites
        + ProactiveWrites
        + WebhookWrites
        + IdempotencyWrites
        + EventWrites
        + AuditWrites
        + ?Sized
{
}

/// A write closure; its result travels back type-erased (see `Opsiq::write`).
pub type WriteFn = Box<dyn FnOnce(&mut dyn Writes) -> Result<Box<dyn Any + Send>> + Send>;

/// What an answered request leaves to be written, without its caller waiting: its audit row
/// (unless its own write carried it) and its key's last use, when that is due to be noted.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    pub audit: Option<AuditEntry>,
    pub touch: Option<(Id, Timestamp)>,
}

/// Writes usage records together: every audit row in one go (so each usage counter is updated
/// once however many of the records it counts) and each key's last use once, at its latest.
pub fn write_usage(w: &mut dyn Writes, records: &[UsageRecord]) -> Result<()> {
    let audits: Vec<&AuditEntry> = records.iter().filter_map(|r| r.audit.as_ref()).collect();
    if !audits.is_empty() {
        w.insert_audits(&audits)?;
    }
    let mut touches = std::collections::BTreeMap::new();
    for (key, at) in records.iter().filter_map(|r| r.touch) {
        let latest = touches.entry(key).or_insert(at);
        *latest = (*latest).max(at);
    }
    for (key, at) in touches {
        w.touch_key(key, at)?;
    }
    Ok(())
}

/// What a store reports about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct StoreHealth {
    pub backend: String,
    /// The schema version of the database, and the one this build expects.
    pub schema_version: i64,
    pub expected_schema_version: i64,
    /// The journal mode (SQLite), when the backend has one.
    pub journal_mode: Option<String>,
    /// The result of a full integrity check, when one was asked for (`ok` when sound).
    pub integrity: Option<String>,
}

/// A database behind the services. Object-safe so that only the binary names a backend.
pub trait Store: Send + Sync {
    /// Checks that the database answers reads and commits writes, and reports its state;
    /// `thorough` adds a full integrity check (slow on a large database).
    fn health(&self, thorough: bool) -> Result<StoreHealth>;
    /// Runs `f` against a consistent read view.
    fn read_with(&self, f: &mut dyn FnMut(&dyn Reads) -> Result<()>) -> Result<()>;
    /// Runs `f`, a request that only reads, with the reads it makes on this thread sharing one
    /// view (one transaction, opened at the first read) instead of one each; a write on this
    /// thread ends the shared view, so what follows it sees the write. By default every read
    /// has its own view.
    fn with_one_view(&self, f: &mut dyn FnMut()) {
        f()
    }
    /// Runs `f` in a transaction and returns after the commit.
    fn write_boxed(&self, f: WriteFn) -> Result<Box<dyn Any + Send>>;
    /// Queues a request's usage record to be written in a later transaction, without waiting
    /// for it; [`Store::flush`] waits for it.
    fn record(&self, record: UsageRecord);
    /// Blocks until every write queued so far is committed.
    fn flush(&self) -> Result<()>;
    /// A short name of the backend, for diagnostics.
    fn backend(&self) -> &'static str;
}
