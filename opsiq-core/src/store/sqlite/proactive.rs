//! Proactive queries: rules, stored events, rule firings (the cooldowns) and queued widget
//! messages. Rule conditions and actions, and event properties, are JSON text columns.

use rusqlite::{Row, params};

use super::Db;
use super::misc::{all, exec, insert, json_col, json_text, one};
use crate::Result;
use crate::proactive::{
    NewProactiveEvent, NewWidgetMessage, ProactiveEvent, Rule, RuleFields, WidgetMessage,
};
use crate::store::{ProactiveReads, ProactiveWrites};
use crate::types::{Cursor, Id, Limit, Timestamp};

const RULE: &str = "SELECT id, workspace_id, name, event, conditions, actions, cooldown_seconds, enabled, \
                    created_at, updated_at FROM proactive_rules";

fn rule(r: &Row<'_>) -> rusqlite::Result<Rule> {
    Ok(Rule {
        id: r.get("id")?,
        workspace_id: r.get("workspace_id")?,
        name: r.get("name")?,
        event: r.get("event")?,
        conditions: json_col(r, "conditions")?,
        actions: json_col(r, "actions")?,
        cooldown_seconds: r.get("cooldown_seconds")?,
        enabled: r.get("enabled")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

impl ProactiveReads for Db<'_, '_> {
    fn rule(&self, workspace: Option<Id>, id: Id) -> Result<Option<Rule>> {
        one(
            self,
            &format!("{RULE} WHERE (?1 IS NULL OR workspace_id = ?1) AND id = ?2"),
            params![workspace, id],
            rule,
        )
    }

    fn rules(
        &self,
        workspace: Option<Id>,
        before: Option<Cursor>,
        limit: Option<Limit>,
    ) -> Result<Vec<Rule>> {
        // A negative LIMIT is no limit in SQLite.
        let limit = limit.map_or(-1, |l| i64::from(l.get()) + 1);
        all(
            self,
            &format!(
                "{RULE} WHERE (?1 IS NULL OR workspace_id = ?1) AND (?2 IS NULL OR id < ?2) \
                 ORDER BY id DESC LIMIT ?3"
            ),
            params![workspace, before.map(|c| c.0), limit],
            rule,
        )
    }

    fn rules_for_event(&self, workspace: Id, event: &str) -> Result<Vec<Rule>> {
        all(
            self,
            &format!("{RULE} WHERE workspace_id = ?1 AND event = ?2 AND enabled = 1 ORDER BY id"),
            params![workspace, event],
            rule,
        )
    }

    fn last_firing(&self, rule: Id, subject: &str) -> Result<Option<Timestamp>> {
        Ok(one(
            self,
            "SELECT MAX(created_at) FROM rule_firings WHERE rule_id = ?1 AND subject = ?2",
            params![rule, subject],
            |r| r.get::<_, Option<Timestamp>>(0),
        )?
        .flatten())
    }

    fn proactive_events(&self, workspace: Id, limit: u32) -> Result<Vec<ProactiveEvent>> {
        all(
            self,
            "SELECT id, workspace_id, site_id, name, contact_id, visitor_id, properties, created_at \
             FROM proactive_events WHERE workspace_id = ?1 ORDER BY id DESC LIMIT ?2",
            params![workspace, limit],
            |r| {
                Ok(ProactiveEvent {
                    id: r.get("id")?,
                    workspace_id: r.get("workspace_id")?,
                    site_id: r.get("site_id")?,
                    name: r.get("name")?,
                    contact_id: r.get("contact_id")?,
                    visitor_id: r.get("visitor_id")?,
                    properties: json_col(r, "properties")?,
                    created_at: r.get("created_at")?,
                })
            },
        )
    }

    fn queued_messages(
        &self,
        visitor: Option<Id>,
        contact: Option<Id>,
    ) -> Result<Vec<WidgetMessage>> {
        all(
            self,
            "SELECT id, site_id, visitor_id, contact_id, rule_id, body, created_at, delivered_at \
             FROM widget_messages WHERE delivered_at IS NULL AND (visitor_id = ?1 OR contact_id = ?2) \
             ORDER BY id",
            params![visitor, contact],
            |r| {
                Ok(WidgetMessage {
                    id: r.get("id")?,
                    site_id: r.get("site_id")?,
                    visitor_id: r.get("visitor_id")?,
                    contact_id: r.get("contact_id")?,
                    rule_id: r.get("rule_id")?,
                    body: r.get("body")?,
                    created_at: r.get("created_at")?,
                    delivered_at: r.get("delivered_at")?,
                })
            },
        )
    }
}

impl ProactiveWrites for Db<'_, '_> {
    fn insert_rule(&mut self, workspace: Id, f: &RuleFields, now: Timestamp) -> Result<Id> {
        insert(
            self,
            "INSERT INTO proactive_rules (workspace_id, name, event, conditions, actions, cooldown_seconds, enabled, \
             created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            params![
                workspace,
                f.name,
                f.event,
                json_text(&f.conditions)?,
                json_text(&f.actions)?,
                f.cooldown_seconds,
                f.enabled,
                now
            ],
        )
    }

    fn update_rule(&mut self, workspace: Id, id: Id, f: &RuleFields, now: Timestamp) -> Result<()> {
        exec(
            self,
            "UPDATE proactive_rules SET name = ?3, event = ?4, conditions = ?5, actions = ?6, cooldown_seconds = ?7, \
             enabled = ?8, updated_at = ?9 WHERE workspace_id = ?1 AND id = ?2",
            params![
                workspace,
                id,
                f.name,
                f.event,
                json_text(&f.conditions)?,
                json_text(&f.actions)?,
                f.cooldown_seconds,
                f.enabled,
                now
            ],
        )?;
        Ok(())
    }

    fn insert_proactive_event(&mut self, e: &NewProactiveEvent, now: Timestamp) -> Result<Id> {
        insert(
            self,
            "INSERT INTO proactive_events (workspace_id, site_id, name, contact_id, visitor_id, properties, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                e.workspace_id,
                e.site_id,
                e.name,
                e.contact_id,
                e.visitor_id,
                json_text(&e.properties)?,
                now
            ],
        )
    }

    fn insert_rule_firing(
        &mut self,
        rule: Id,
        event: Id,
        subject: &str,
        now: Timestamp,
    ) -> Result<Id> {
        insert(
            self,
            "INSERT INTO rule_firings (rule_id, event_id, subject, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![rule, event, subject, now],
        )
    }

    fn insert_widget_message(&mut self, m: &NewWidgetMessage, now: Timestamp) -> Result<Id> {
        insert(
            self,
            "INSERT INTO widget_messages (site_id, visitor_id, contact_id, rule_id, body, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                m.site_id,
                m.visitor_id,
                m.contact_id,
                m.rule_id,
                m.body,
                now
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::Opsiq;
    use crate::keys::Principal;
    use crate::scope::Scope;
    use crate::store::sqlite::{SqliteConfig, SqliteStore};
    use crate::types::Id;

    /// A trigger whose last action fails leaves no trace: no event row, no firing, no
    /// contact, ticket, tag, score or outbox event.
    #[test]
    fn a_failing_action_rolls_the_whole_trigger_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path, SqliteConfig::default()).unwrap();
        let opsiq = Opsiq::new(std::sync::Arc::new(store));
        opsiq.bootstrap().unwrap();
        let key = opsiq.create_key(Id(1), None, "t", &Scope::ALL).unwrap();
        let principal = Principal::from_key(&key.key);
        let rule = json!({
            "name": "r", "event": "checkout.abandoned",
            "actions": [
                {"type": "create_ticket", "subject": "s"},
                {"type": "add_tags", "tags": ["vip"]},
                {"type": "change_lead_score", "delta": 60},
                {"type": "queue_message", "body": "hi"}
            ]
        });
        opsiq.execute(&principal, "rules.create", rule).unwrap();
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER no_messages BEFORE INSERT ON widget_messages \
                 BEGIN SELECT RAISE(ABORT, 'no room for messages'); END;",
            )
            .unwrap();

        let body = json!({"event": "checkout.abandoned", "email": "c@example.com"});
        let error = opsiq
            .execute(&principal, "proactive.trigger", body)
            .unwrap_err();
        assert_eq!(error.status(), 500, "{error}");

        let conn = rusqlite::Connection::open(&path).unwrap();
        for table in [
            "proactive_events",
            "rule_firings",
            "contacts",
            "tickets",
            "lead_score_changes",
            "widget_messages",
            "events",
        ] {
            let n: i64 = conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 0, "{table} was left with rows");
        }
    }
}
