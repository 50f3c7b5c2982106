//! Tickets: support requests, linked to a contact, routed to a department and an agent.
//!
//! New tickets always start `open`, whatever status a source platform sends. Every creation and
//! change writes a `ticket.created` / `ticket.updated` outbox event in the same transaction.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::catalog::{Action, Method};
use crate::contacts::find_or_create_by_email;
use std::collections::BTreeMap;

use crate::events::{Change, EventData, TicketCreated, TicketUpdated};
use crate::service::{Call, Opsiq};
use crate::store::Writes;
use crate::types::{
    Cursor, Doc, Email, Id, Limit, Page, Tag, Text, Timestamp, clean_tags, patch, text, vocabulary,
};
use crate::{Error, Result, Scope};

vocabulary!(
    /// Where a ticket is in its life.
    TicketStatus { Open = "open", InProgress = "in_progress", Pending = "pending", Resolved = "resolved", Closed = "closed" }
);
vocabulary!(
    /// How urgent a ticket is.
    Priority { Low = "low", Normal = "normal", High = "high", Urgent = "urgent" }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ticket {
    pub id: Id,
    pub workspace_id: Id,
    pub site_id: Option<Id>,
    pub contact_id: Id,
    pub customer_email: Option<Email>,
    pub customer_name: Option<String>,
    pub subject: String,
    pub body: String,
    pub status: TicketStatus,
    pub priority: Priority,
    pub department_id: Option<Id>,
    /// The agent the ticket is assigned to.
    pub assignee_id: Option<Id>,
    pub tags: Vec<String>,
    /// Where the ticket came from: `api`, `chat`, `email`, `connector`, `proactive`.
    pub source: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A ticket to insert, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTicket {
    pub workspace_id: Id,
    pub site_id: Option<Id>,
    pub contact_id: Id,
    pub subject: String,
    pub body: String,
    pub priority: Priority,
    pub department_id: Option<Id>,
    pub assignee_id: Option<Id>,
    pub tags: Vec<String>,
    pub source: String,
}

/// The editable fields of a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketFields {
    pub subject: String,
    pub status: TicketStatus,
    pub priority: Priority,
    pub department_id: Option<Id>,
    pub assignee_id: Option<Id>,
    pub tags: Vec<String>,
}

impl From<&Ticket> for TicketFields {
    fn from(t: &Ticket) -> Self {
        TicketFields {
            subject: t.subject.clone(),
            status: t.status,
            priority: t.priority,
            department_id: t.department_id,
            assignee_id: t.assignee_id,
            tags: t.tags.clone(),
        }
    }
}

/// How to list tickets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    pub department_id: Option<Id>,
    /// The customer's e-mail, normalised.
    pub email: Option<String>,
    pub before: Option<Cursor>,
    pub limit: Limit,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTickets {
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    pub department_id: Option<Id>,
    /// The customer's e-mail address.
    pub email: Option<Email>,
    #[serde(default)]
    pub limit: Limit,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<Cursor>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicket {
    pub customer_email: Email,
    pub customer_name: Option<Text<200>>,
    pub subject: Text<500>,
    #[serde(default)]
    #[schemars(length(max = 100_000))]
    pub body: String,
    #[serde(default)]
    pub priority: Option<Priority>,
    pub department_id: Option<Id>,
    pub assignee_id: Option<Id>,
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub tags: Vec<Tag>,
    /// Accepted for compatibility with source platforms and ignored: new tickets are `open`.
    #[serde(default)]
    pub status: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketId {
    pub id: Id,
}

/// A partial update: absent fields stay as they are; `null` unassigns a department or agent.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    {"required": ["status"]}, {"required": ["priority"]}, {"required": ["department_id"]},
    {"required": ["assignee_id"]}, {"required": ["subject"]}, {"required": ["tags"]}
]))]
pub struct UpdateTicket {
    pub id: Id,
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    #[serde(default, deserialize_with = "patch")]
    pub department_id: Option<Option<Id>>,
    #[serde(default, deserialize_with = "patch")]
    pub assignee_id: Option<Option<Id>>,
    pub subject: Option<Text<500>>,
    /// Replaces the tag list.
    #[schemars(length(max = 100))]
    pub tags: Option<Vec<Tag>>,
}

/// Checks that a department and an agent exist in the workspace (422 naming the field).
fn check_routing(
    w: &dyn Writes,
    workspace: Id,
    department: Option<Id>,
    assignee: Option<Id>,
) -> Result<()> {
    if let Some(d) = department
        && w.department(workspace, d)?.is_none()
    {
        return Err(Error::validation(
            "department_id",
            format!("no department with id {d} in this workspace"),
        ));
    }
    if let Some(a) = assignee
        && w.agent(workspace, a)?.is_none()
    {
        return Err(Error::validation(
            "assignee_id",
            format!("no agent with id {a} in this workspace"),
        ));
    }
    Ok(())
}

fn load(w: &dyn Writes, workspace: Id, id: Id) -> Result<Ticket> {
    w.ticket(workspace, id)?
        .ok_or_else(|| Error::not_found("ticket", id))
}

/// Inserts a ticket and records its `ticket.created` event: the one way a ticket is opened,
/// by `tickets.create` or by a proactive rule.
pub(crate) fn open_ticket(w: &mut dyn Writes, new: &NewTicket, now: Timestamp) -> Result<Ticket> {
    let ticket = w.insert_ticket(new, now)?;
    let created = TicketCreated {
        ticket_id: ticket.id,
        subject: ticket.subject.clone(),
        ticket: ticket.clone(),
    };
    created.emit(w, new.workspace_id)?;
    Ok(ticket)
}

impl Opsiq {
    /// A page of tickets, as the store keeps them rendered.
    pub fn list_tickets(&self, call: &Call, input: ListTickets) -> Result<Page<Doc<Ticket>>> {
        let filter = TicketFilter {
            status: input.status,
            priority: input.priority,
            department_id: input.department_id,
            email: input.email.map(|e| e.normalized()),
            before: input.cursor,
            limit: input.limit,
        };
        let workspace = call.principal.workspace_id;
        let rows = self.read(|r| r.ticket_docs(workspace, &filter))?;
        Ok(Page::from_rows(rows, filter.limit, |t| t.id().0))
    }

    pub fn create_ticket(&self, call: &Call, input: CreateTicket) -> Result<Ticket> {
        let (workspace, site) = (call.principal.workspace_id, call.principal.site_id);
        let customer_name = input.customer_name.map(Text::into_string);
        let subject = input.subject.into_string();
        let body = text("body", &input.body, 100_000, false)?;
        let tags = clean_tags("tags", &[], &input.tags)?;
        let (department_id, assignee_id) = (input.department_id, input.assignee_id);
        let priority = input.priority.unwrap_or(Priority::Normal);
        let email = input.customer_email;
        self.write_audited(call, move |w| {
            check_routing(w, workspace, department_id, assignee_id)?;
            let now = Timestamp::now();
            let contact = find_or_create_by_email(w, workspace, site, &email, customer_name, now)?;
            let new = NewTicket {
                workspace_id: workspace,
                site_id: Some(site),
                contact_id: contact.id,
                subject,
                body,
                priority,
                department_id,
                assignee_id,
                tags,
                source: "api".to_string(),
            };
            open_ticket(w, &new, now)
        })
    }

    /// One ticket, as the store keeps it rendered.
    pub fn get_ticket(&self, call: &Call, input: TicketId) -> Result<Doc<Ticket>> {
        let workspace = call.principal.workspace_id;
        self.read(|r| r.ticket_doc(workspace, input.id))?
            .ok_or_else(|| Error::not_found("ticket", input.id))
    }

    pub fn update_ticket(&self, call: &Call, input: UpdateTicket) -> Result<Ticket> {
        let workspace = call.principal.workspace_id;
        let subject = input.subject.map(Text::into_string);
        let tags = input
            .tags
            .as_deref()
            .map(|t| clean_tags("tags", &[], t))
            .transpose()?;
        if input.status.is_none()
            && input.priority.is_none()
            && input.department_id.is_none()
            && input.assignee_id.is_none()
            && subject.is_none()
            && tags.is_none()
        {
            return Err(Error::validation(
                "params",
                "give at least one of status, priority, department_id, assignee_id, subject, tags",
            ));
        }
        self.write_audited(call, move |w| {
            let current = load(w, workspace, input.id)?;
            let mut fields = TicketFields::from(&current);
            fields.status = input.status.unwrap_or(fields.status);
            fields.priority = input.priority.unwrap_or(fields.priority);
            fields.department_id = input.department_id.unwrap_or(fields.department_id);
            fields.assignee_id = input.assignee_id.unwrap_or(fields.assignee_id);
            fields.subject = subject.unwrap_or(fields.subject);
            fields.tags = tags.unwrap_or(fields.tags);
            check_routing(
                w,
                workspace,
                input.department_id.flatten(),
                input.assignee_id.flatten(),
            )?;
            let changes = changes(&TicketFields::from(&current), &fields);
            if changes.is_empty() {
                return Ok(current);
            }
            w.update_ticket(workspace, current.id, &fields, Timestamp::now())?;
            let ticket = load(w, workspace, current.id)?;
            let updated = TicketUpdated {
                ticket_id: ticket.id,
                changes,
                ticket: ticket.clone(),
            };
            updated.emit(w, workspace)?;
            Ok(ticket)
        })
    }
}

/// The `ticket.created` payload: the spec's `ticket_id` and `subject`, then the whole ticket.
/// Which fields changed, with their old and new values.
fn changes(old: &TicketFields, new: &TicketFields) -> BTreeMap<String, Change> {
    let mut out = BTreeMap::new();
    let mut diff = |field: &str, a: Value, b: Value| {
        if a != b {
            out.insert(field.to_string(), Change { old: a, new: b });
        }
    };
    diff("status", json!(old.status), json!(new.status));
    diff("priority", json!(old.priority), json!(new.priority));
    diff(
        "department_id",
        json!(old.department_id),
        json!(new.department_id),
    );
    diff(
        "assignee_id",
        json!(old.assignee_id),
        json!(new.assignee_id),
    );
    diff("subject", json!(old.subject), json!(new.subject));
    diff("tags", json!(old.tags), json!(new.tags));
    out
}

/// The ticket actions of the catalog.
pub fn actions() -> Vec<Action> {
    use Scope::{TicketsRead, TicketsWrite};
    vec![
        Action::doc_list("tickets.list", TicketsRead, "ticket", "List tickets with filters.", |op, call, i| op.list_tickets(call, i))
            .route(Method::Get, "/tickets")
            .describe("Newest first, filtered by `status`, `priority`, `department_id` and the customer's `email`; pass `next_cursor` back as `cursor` for the next page."),
        Action::new("tickets.create", TicketsWrite, "ticket", "Create a ticket.", |op, call, i| op.create_ticket(call, i))
            .route(Method::Post, "/tickets")
            .mutating(true)
            .describe("New tickets always start as open even if a source platform sends a reply-like status. The contact is found by `customer_email`, or created.")
            .example(json!({
                "customer_email": "customer@example.com",
                "customer_name": "Example Customer",
                "subject": "Cannot activate account",
                "body": "Activation email never arrived.",
                "priority": "high",
                "department_id": 1
            })),
        Action::doc("tickets.get", TicketsRead, "ticket", "Fetch one ticket.", |op, call, i| op.get_ticket(call, i))
            .route(Method::Get, "/tickets/{id}"),
        Action::new("tickets.update", TicketsWrite, "ticket", "Update status, priority, department, assignment, or subject.", |op, call, i| {
            op.update_ticket(call, i)
        })
        .route(Method::Patch, "/tickets/{id}")
        .route(Method::Put, "/tickets/{id}")
        .mutating(false)
        .describe("Absent fields stay unchanged; `null` clears `department_id` or `assignee_id`. `tags` replaces the tag list.")
        .example(json!({"status": "in_progress", "priority": "high"})),
    ]
}
