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
use crate::audit::AuditEntry;
use crate::contacts::{Contact, ContactFields, ContactFilter};
use crate::events::Event;
use crate::keys::{ApiKey, NewKey};
use crate::meta::UsageRow;
use crate::tenancy::{Agent, Department, NewSite, Site, Workspace};
use crate::tickets::{NewTicket, Ticket, TicketFields, TicketFilter};
use crate::types::{Email, Id, Timestamp};

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
    /// Up to `limit + 1` tickets, newest first.
    fn tickets(&self, workspace: Id, filter: &TicketFilter) -> Result<Vec<Ticket>>;
}

pub trait TicketWrites {
    fn insert_ticket(&mut self, ticket: &NewTicket, now: Timestamp) -> Result<Id>;
    fn update_ticket(
        &mut self,
        workspace: Id,
        id: Id,
        fields: &TicketFields,
        now: Timestamp,
    ) -> Result<()>;
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
    /// A key's requests since a time, by action and outcome, with latency percentiles.
    fn usage(&self, key: Id, since: Timestamp) -> Result<Vec<UsageRow>>;
}

pub trait AuditWrites {
    fn insert_audit(&mut self, entry: &AuditEntry) -> Result<()>;
}

/// Everything the services read.
pub trait Reads:
    TenancyReads + KeyReads + ContactReads + TicketReads + EventReads + AuditReads
{
}
impl<T: TenancyReads + KeyReads + ContactReads + TicketReads + EventReads + AuditReads + ?Sized>
    Reads for T
{
}

/// Everything the services write, inside one transaction.
pub trait Writes:
    Reads + TenancyWrites + KeyWrites + ContactWrites + TicketWrites + EventWrites + AuditWrites
{
}
impl<
    T: Reads
        + TenancyWrites
        + KeyWrites
        + ContactWrites
        + TicketWrites
        + EventWrites
        + AuditWrites
        + ?Sized,
> Writes for T
{
}

/// A write closure; its result travels back type-erased (see `Opsiq::write`).
pub type WriteFn = Box<dyn FnOnce(&mut dyn Writes) -> Result<Box<dyn Any + Send>> + Send>;

/// A write whose caller does not wait (audit rows of reads, key usage).
pub type DetachedFn = Box<dyn FnOnce(&mut dyn Writes) -> Result<()> + Send>;

/// A database behind the services. Object-safe so that only the binary names a backend.
pub trait Store: Send + Sync {
    /// Runs `f` against a consistent read view.
    fn read_with(&self, f: &mut dyn FnMut(&dyn Reads) -> Result<()>) -> Result<()>;
    /// Runs `f` in a transaction and returns after the commit.
    fn write_boxed(&self, f: WriteFn) -> Result<Box<dyn Any + Send>>;
    /// Queues `f` to run in a later transaction without waiting for it.
    fn write_detached(&self, f: DetachedFn);
    /// Blocks until every write queued so far is committed.
    fn flush(&self) -> Result<()>;
    /// A short name of the backend, for diagnostics.
    fn backend(&self) -> &'static str;
}
