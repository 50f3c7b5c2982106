//! Ticket queries. The customer's e-mail and name come from the linked contact.

use rusqlite::{Row, params};

use super::Db;
use super::misc::{all, enum_col, exec, json_col, json_text, one};
use crate::Result;
use crate::store::{TicketReads, TicketWrites};
use crate::tickets::{NewTicket, Ticket, TicketFields, TicketFilter};
use crate::types::{Id, Timestamp};

const TICKET: &str = "SELECT t.id, t.workspace_id, t.site_id, t.contact_id, c.email AS customer_email, \
                      c.name AS customer_name, t.subject, t.body, t.status, t.priority, t.department_id, t.assignee_id, \
                      t.tags, t.source, t.created_at, t.updated_at FROM tickets t JOIN contacts c ON c.id = t.contact_id";

fn ticket(r: &Row<'_>) -> rusqlite::Result<Ticket> {
    Ok(Ticket {
        id: r.get("id")?,
        workspace_id: r.get("workspace_id")?,
        site_id: r.get("site_id")?,
        contact_id: r.get("contact_id")?,
        customer_email: r.get("customer_email")?,
        customer_name: r.get("customer_name")?,
        subject: r.get("subject")?,
        body: r.get("body")?,
        status: enum_col(r, "status")?,
        priority: enum_col(r, "priority")?,
        department_id: r.get("department_id")?,
        assignee_id: r.get("assignee_id")?,
        tags: json_col(r, "tags")?,
        source: r.get("source")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

impl TicketReads for Db<'_> {
    fn ticket(&self, workspace: Id, id: Id) -> Result<Option<Ticket>> {
        one(
            self,
            &format!("{TICKET} WHERE t.workspace_id = ?1 AND t.id = ?2"),
            [workspace, id],
            ticket,
        )
    }

    fn tickets(&self, workspace: Id, f: &TicketFilter) -> Result<Vec<Ticket>> {
        all(
            self,
            &format!(
                "{TICKET} WHERE t.workspace_id = ?1 AND (?2 IS NULL OR t.id < ?2) AND (?3 IS NULL OR t.status = ?3) \
                 AND (?4 IS NULL OR t.priority = ?4) AND (?5 IS NULL OR t.department_id = ?5) \
                 AND (?6 IS NULL OR t.contact_id IN (SELECT id FROM contacts WHERE workspace_id = ?1 AND email_norm = ?6)) \
                 ORDER BY t.id DESC LIMIT ?7"
            ),
            params![
                workspace,
                f.before.map(|c| c.0),
                f.status.map(|s| s.as_str()),
                f.priority.map(|p| p.as_str()),
                f.department_id,
                f.email,
                f.limit.get() + 1
            ],
            ticket,
        )
    }
}

impl TicketWrites for Db<'_> {
    fn insert_ticket(&mut self, t: &NewTicket, now: Timestamp) -> Result<Id> {
        exec(
            self,
            "INSERT INTO tickets (workspace_id, site_id, contact_id, subject, body, status, priority, department_id, \
             assignee_id, tags, source, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
            params![
                t.workspace_id,
                t.site_id,
                t.contact_id,
                t.subject,
                t.body,
                t.priority.as_str(),
                t.department_id,
                t.assignee_id,
                json_text(&t.tags)?,
                t.source,
                now
            ],
        )?;
        Ok(Id(self.0.last_insert_rowid()))
    }

    fn update_ticket(
        &mut self,
        workspace: Id,
        id: Id,
        f: &TicketFields,
        now: Timestamp,
    ) -> Result<()> {
        exec(
            self,
            "UPDATE tickets SET subject = ?3, status = ?4, priority = ?5, department_id = ?6, assignee_id = ?7, tags = ?8, \
             updated_at = ?9, resolved_at = CASE WHEN ?4 IN ('resolved', 'closed') \
             THEN COALESCE(resolved_at, ?9) ELSE NULL END WHERE workspace_id = ?1 AND id = ?2",
            params![
                workspace,
                id,
                f.subject,
                f.status.as_str(),
                f.priority.as_str(),
                f.department_id,
                f.assignee_id,
                json_text(&f.tags)?,
                now
            ],
        )?;
        Ok(())
    }
}
