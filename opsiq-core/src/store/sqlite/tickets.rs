//! Ticket queries. The customer's e-mail and name are the linked contact's, copied onto the
//! ticket (migration 0010 keeps the copy current by trigger), so no read joins contacts.

use rusqlite::types::Value;
use rusqlite::{Row, params, params_from_iter};

use super::Db;
use super::misc::{Cols, all, docs, exec, json_text, one};
use crate::Result;
use crate::store::{TicketReads, TicketWrites};
use crate::tickets::{NewTicket, Ticket, TicketFields, TicketFilter, TicketStatus};
use crate::types::{Doc, Id, Timestamp};

const TICKET: &str = "SELECT t.id, t.workspace_id, t.site_id, t.contact_id, t.customer_email, t.customer_name, \
                      t.subject, t.body, t.status, t.priority, t.department_id, t.assignee_id, t.tags, t.source, \
                      t.created_at, t.updated_at FROM tickets t";

fn ticket(r: &Row<'_>) -> rusqlite::Result<Ticket> {
    let mut c = Cols::new(r);
    Ok(Ticket {
        id: c.get("id")?,
        workspace_id: c.get("workspace_id")?,
        site_id: c.get("site_id")?,
        contact_id: c.get("contact_id")?,
        customer_email: c.get("customer_email")?,
        customer_name: c.get("customer_name")?,
        subject: c.get("subject")?,
        body: c.get("body")?,
        status: c.parse("status")?,
        priority: c.parse("priority")?,
        department_id: c.get("department_id")?,
        assignee_id: c.get("assignee_id")?,
        tags: c.json("tags")?,
        source: c.get("source")?,
        created_at: c.get("created_at")?,
        updated_at: c.get("updated_at")?,
    })
}

/// A page of tickets: `select` (ending `FROM tickets t`) with the filters given, newest first.
fn page(select: &str, workspace: Id, f: &TicketFilter) -> (String, Vec<Value>) {
    // Only the filters given go into the statement, so that SQLite can pick the index that
    // serves them in id order (tickets_department for department and status) and stop after
    // `limit` rows, however many tickets there are.
    let mut sql = format!("{select} WHERE t.workspace_id = ?1");
    let mut args: Vec<Value> = vec![Value::Integer(workspace.0)];
    // Each clause names its own value as `{}`.
    let mut and = |clause: &str, value: Value| {
        args.push(value);
        sql.push_str(" AND ");
        sql.push_str(&clause.replace("{}", &format!("?{}", args.len())));
    };
    if let Some(before) = f.before {
        and("t.id < {}", Value::Integer(before.0));
    }
    if let Some(status) = f.status {
        and("t.status = {}", Value::Text(status.as_str().into()));
    }
    if let Some(priority) = f.priority {
        and("t.priority = {}", Value::Text(priority.as_str().into()));
    }
    if let Some(department) = f.department_id {
        and("t.department_id = {}", Value::Integer(department.0));
    }
    if let Some(email) = &f.email {
        and(
            "t.contact_id IN (SELECT id FROM contacts WHERE workspace_id = ?1 AND email_norm = {})",
            Value::Text(email.clone()),
        );
    }
    args.push(Value::Integer(i64::from(f.limit.get()) + 1));
    sql.push_str(&format!(" ORDER BY t.id DESC LIMIT ?{}", args.len()));
    (sql, args)
}

impl TicketReads for Db<'_, '_> {
    fn ticket(&self, workspace: Id, id: Id) -> Result<Option<Ticket>> {
        one(
            self,
            &format!("{TICKET} WHERE t.workspace_id = ?1 AND t.id = ?2"),
            [workspace, id],
            ticket,
        )
    }

    fn ticket_doc(&self, workspace: Id, id: Id) -> Result<Option<Doc<Ticket>>> {
        let sql = "SELECT t.id, t.doc FROM tickets t WHERE t.workspace_id = ?1 AND t.id = ?2";
        Ok(docs(self, sql, [workspace, id], 1, |id| {
            self.ticket(workspace, id)
        })?
        .pop())
    }

    fn tickets(&self, workspace: Id, f: &TicketFilter) -> Result<Vec<Ticket>> {
        let (sql, args) = page(TICKET, workspace, f);
        all(self, &sql, params_from_iter(args), ticket)
    }

    fn ticket_docs(&self, workspace: Id, f: &TicketFilter) -> Result<Vec<Doc<Ticket>>> {
        let (sql, args) = page("SELECT t.id, t.doc FROM tickets t", workspace, f);
        // The page, and one more row that tells whether another page follows.
        let at_most = f.limit.get() as usize + 1;
        docs(self, &sql, params_from_iter(args), at_most, |id| {
            self.ticket(workspace, id)
        })
    }
}

impl TicketWrites for Db<'_, '_> {
    fn insert_ticket(&mut self, t: &NewTicket, now: Timestamp) -> Result<Ticket> {
        // The row goes in whole, with its `doc` rendered here. Left to the insert trigger, the
        // doc took SQL's `json_object` and `strftime` and a second write of the row, on the one
        // writer thread: 46,600 instructions a create (benches/RESULTS.md, fix 57). The id is
        // the one SQLite would give (`INTEGER PRIMARY KEY` without AUTOINCREMENT: one above the
        // largest), taken inside the writer's transaction; the customer is the contact's, as
        // the triggers of 0010 keep it.
        let (id, customer_email, customer_name) = one(
            self,
            "SELECT ifnull((SELECT max(id) FROM tickets), 0) + 1, c.email, c.name \
             FROM (SELECT 1) LEFT JOIN contacts c ON c.id = ?1",
            [t.contact_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?
        .ok_or_else(|| crate::Error::Internal("no next ticket id".into()))?;
        let ticket = Ticket {
            id,
            workspace_id: t.workspace_id,
            site_id: t.site_id,
            contact_id: t.contact_id,
            customer_email,
            customer_name,
            subject: t.subject.clone(),
            body: t.body.clone(),
            status: TicketStatus::Open,
            priority: t.priority,
            department_id: t.department_id,
            assignee_id: t.assignee_id,
            tags: t.tags.clone(),
            source: t.source.clone(),
            created_at: now,
            updated_at: now,
        };
        let doc = crate::store::doc(id, &ticket)?;
        exec(
            self,
            "INSERT INTO tickets (id, doc, workspace_id, site_id, contact_id, customer_email, customer_name, subject, \
             body, status, priority, department_id, assignee_id, tags, source, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16)",
            params![
                id,
                doc.json(),
                ticket.workspace_id,
                ticket.site_id,
                ticket.contact_id,
                ticket.customer_email.as_ref().map(|e| e.as_str()),
                ticket.customer_name,
                ticket.subject,
                ticket.body,
                ticket.status.as_str(),
                ticket.priority.as_str(),
                ticket.department_id,
                ticket.assignee_id,
                json_text(&ticket.tags)?,
                ticket.source,
                now
            ],
        )?;
        Ok(ticket)
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
