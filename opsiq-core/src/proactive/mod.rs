//! Proactive events and rules: another system fires a named event about a contact or visitor
//! (`POST /api/v1/proactive/trigger`), OpsIQ stores it and runs the workspace's rules that
//! listen for that name.
//!
//! A rule holds conditions on the event's properties, a per-person cooldown and actions (queue
//! a widget message, open a ticket, add tags, change the lead score). The conditions are
//! evaluated by pure functions ([`Condition::matches`]); everything one trigger changes (the
//! event row, the firings, every action's rows and outbox events) is written in one
//! transaction, so a failure changes nothing.
//!
//! This module holds the stored rows, the rule services and the catalog's actions; `rules`
//! holds a rule as written and its validation, `conditions` the evaluator, and `trigger` what
//! one event does.

mod conditions;
mod rules;
mod trigger;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::catalog::{Action, Method};
use crate::service::{Call, Opsiq};
use crate::store::Writes;
use crate::types::{Cursor, Id, Limit, Page, Timestamp};
use crate::{Error, Result, Scope};
use rules::RuleChange;

pub use conditions::{conditions_hold, lookup};
pub use rules::{
    ActionKind, ActionSpec, Condition, CreateRule, Op, RuleAction, UpdateRule, parse_rule_json,
};
pub use trigger::{ActionStatus, ActionTaken, FiredRule, SkippedRule, TriggerEvent, TriggerResult};

/// The events the developer docs name as common. Event names are open-ended: any name is
/// accepted and stored, and rules may listen for any name; these are the ones integrations
/// are expected to send.
pub const COMMON_EVENTS: [&str; 6] = [
    "visitor.high_intent",
    "checkout.abandoned",
    "signup.started",
    "payment.failed",
    "ticket.created",
    "knowledge.missed_question",
];

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Rule {
    pub id: Id,
    pub workspace_id: Id,
    pub name: String,
    /// The event name the rule listens for.
    pub event: String,
    /// All must hold for the rule to fire; none means every event of that name.
    pub conditions: Vec<Condition>,
    pub actions: Vec<RuleAction>,
    /// How long after firing for a contact (or, without one, a visitor) the rule stays quiet
    /// for that person.
    pub cooldown_seconds: i64,
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The stored, editable fields of a rule, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFields {
    pub name: String,
    pub event: String,
    pub conditions: Vec<Condition>,
    pub actions: Vec<RuleAction>,
    pub cooldown_seconds: i64,
    pub enabled: bool,
}

impl From<&Rule> for RuleFields {
    fn from(r: &Rule) -> Self {
        RuleFields {
            name: r.name.clone(),
            event: r.event.clone(),
            conditions: r.conditions.clone(),
            actions: r.actions.clone(),
            cooldown_seconds: r.cooldown_seconds,
            enabled: r.enabled,
        }
    }
}

/// A stored proactive event.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ProactiveEvent {
    pub id: Id,
    pub workspace_id: Id,
    pub site_id: Id,
    pub name: String,
    pub contact_id: Option<Id>,
    /// The visitor's row id.
    pub visitor_id: Option<Id>,
    pub properties: Map<String, Value>,
    pub created_at: Timestamp,
}

/// A proactive event to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProactiveEvent {
    pub workspace_id: Id,
    pub site_id: Id,
    pub name: String,
    pub contact_id: Option<Id>,
    pub visitor_id: Option<Id>,
    pub properties: Map<String, Value>,
}

/// A message queued for a widget, delivered by the widget runtime.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct WidgetMessage {
    pub id: Id,
    pub site_id: Id,
    /// The visitor's row id.
    pub visitor_id: Option<Id>,
    pub contact_id: Option<Id>,
    pub rule_id: Option<Id>,
    pub body: String,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// A widget message to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWidgetMessage {
    pub site_id: Id,
    pub visitor_id: Option<Id>,
    pub contact_id: Option<Id>,
    pub rule_id: Option<Id>,
    pub body: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleId {
    pub id: Id,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRules {
    #[serde(default)]
    pub limit: Limit,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<Cursor>,
}

/// The proactive actions of the catalog.
pub fn actions() -> Vec<Action> {
    let trigger_description = format!(
        "Stores the event and runs the workspace's enabled rules listening for its name. Common events include {}; \
         any other name up to 100 characters is accepted and stored too. Give the `email` (the contact is found or \
         created) or the `visitor_id` (its contact is used) the event is about; every other field is kept as the \
         event's properties, which rule conditions test. The answer lists the rules that fired with what each action \
         did, and the rules skipped because of their cooldown. Everything happens in one transaction.",
        COMMON_EVENTS.join(", ")
    );
    vec![
        Action::new("proactive.trigger", Scope::ProactiveWrite, "event", "Fire a proactive event so OpsIQ rules can react.", |op, call, i| {
            op.trigger_event(call, i)
        })
        .route(Method::Post, "/proactive/trigger")
        .mutating(true)
        .describe(&trigger_description)
        .example(json!({"event": "checkout.abandoned", "email": "customer@example.com", "cart_total": 129.50, "currency": "USD"})),
        Action::list("rules.list", Scope::Admin, "rule", "List proactive rules.", |op, call, i| op.list_rules(call, i))
            .route(Method::Get, "/proactive/rules")
            .describe("Newest first; pass `next_cursor` back as `cursor` for the next page."),
        Action::new("rules.create", Scope::Admin, "rule", "Create a proactive rule.", |op, call, i| op.create_rule(call, i))
            .route(Method::Post, "/proactive/rules")
            .mutating(true)
            .describe(
                "A rule fires when an event of its name arrives and all its conditions hold. A condition tests one \
                 property (a dotted path reads nested objects) with `eq`, `ne`, `gt`, `gte`, `lt`, `lte`, `contains` or \
                 `exists`; numbers compare numerically, strings lexically, and a type mismatch does not match. Actions: \
                 `queue_message` (body), `create_ticket` (subject, body, priority), `add_tags` (tags), \
                 `change_lead_score` (delta). After firing for a contact (or a visitor without one) the rule stays quiet \
                 for that person for `cooldown_seconds`.",
            )
            .example(json!({
                "name": "Rescue big carts",
                "event": "checkout.abandoned",
                "conditions": [{"property": "cart_total", "op": "gt", "value": 100}],
                "actions": [
                    {"type": "create_ticket", "subject": "Abandoned cart", "priority": "high"},
                    {"type": "add_tags", "tags": ["cart-abandoner"]},
                    {"type": "change_lead_score", "delta": 10},
                    {"type": "queue_message", "body": "Need a hand finishing your order?"}
                ],
                "cooldown_seconds": 86400
            })),
        Action::new("rules.get", Scope::Admin, "rule", "Fetch one proactive rule.", |op, call, i| op.get_rule(call, i))
            .route(Method::Get, "/proactive/rules/{id}"),
        Action::new("rules.update", Scope::Admin, "rule", "Update a proactive rule.", |op, call, i| op.update_rule(call, i))
            .route(Method::Patch, "/proactive/rules/{id}")
            .route(Method::Put, "/proactive/rules/{id}")
            .mutating(false)
            .describe("Absent fields stay unchanged; `conditions` and `actions` replace the lists. `enabled: false` turns the rule off.")
            .example(json!({"enabled": false})),
    ]
}

impl Opsiq {
    pub fn list_rules(&self, call: &Call, input: ListRules) -> Result<Page<Rule>> {
        let workspace = call.principal.workspace_id;
        let rows = self.read(|r| r.rules(Some(workspace), input.cursor, Some(input.limit)))?;
        Ok(Page::from_rows(rows, input.limit, |r| r.id.0))
    }

    pub fn create_rule(&self, call: &Call, input: CreateRule) -> Result<Rule> {
        let fields = RuleFields::parse(input)?;
        let workspace = call.principal.workspace_id;
        self.write_audited(call, move |w| insert_rule(w, workspace, &fields))
    }

    pub fn get_rule(&self, call: &Call, input: RuleId) -> Result<Rule> {
        let workspace = call.principal.workspace_id;
        self.read(|r| r.rule(Some(workspace), input.id))?
            .ok_or_else(|| Error::not_found("rule", input.id))
    }

    pub fn update_rule(&self, call: &Call, input: UpdateRule) -> Result<Rule> {
        let (workspace, id) = (call.principal.workspace_id, input.id);
        let change = RuleChange::parse(input)?;
        self.write_audited(call, move |w| change_rule(w, Some(workspace), id, change))
    }

    /// Adds a rule to a workspace (the operator's `opsiq rules add`).
    pub fn add_rule(&self, workspace: Id, input: CreateRule) -> Result<Rule> {
        let fields = RuleFields::parse(input)?;
        self.write(move |w| {
            w.workspace(workspace)?
                .ok_or_else(|| Error::not_found("workspace", workspace))?;
            insert_rule(w, workspace, &fields)
        })
    }

    /// Every rule of one workspace, or of all, newest first.
    pub fn all_rules(&self, workspace: Option<Id>) -> Result<Vec<Rule>> {
        self.read(|r| r.rules(workspace, None, None))
    }

    /// Turns a rule (of any workspace) on or off.
    pub fn set_rule_enabled(&self, id: Id, enabled: bool) -> Result<Rule> {
        let change = RuleChange {
            enabled: Some(enabled),
            ..RuleChange::default()
        };
        self.write(move |w| change_rule(w, None, id, change))
    }
}

// ---------------------------------------------------------------------------------------------
// Writes shared by the API and the operator's commands.

fn insert_rule(w: &mut dyn Writes, workspace: Id, fields: &RuleFields) -> Result<Rule> {
    let id = w.insert_rule(workspace, fields, Timestamp::now())?;
    w.rule(Some(workspace), id)?
        .ok_or_else(|| Error::not_found("rule", id))
}

/// Applies a change to a rule of `workspace` (of any workspace when `None`).
fn change_rule(
    w: &mut dyn Writes,
    workspace: Option<Id>,
    id: Id,
    change: RuleChange,
) -> Result<Rule> {
    let current = w
        .rule(workspace, id)?
        .ok_or_else(|| Error::not_found("rule", id))?;
    let mut fields = RuleFields::from(&current);
    fields.name = change.name.unwrap_or(fields.name);
    fields.conditions = change.conditions.unwrap_or(fields.conditions);
    fields.actions = change.actions.unwrap_or(fields.actions);
    fields.cooldown_seconds = change.cooldown_seconds.unwrap_or(fields.cooldown_seconds);
    fields.enabled = change.enabled.unwrap_or(fields.enabled);
    if fields == RuleFields::from(&current) {
        return Ok(current);
    }
    w.update_rule(current.workspace_id, id, &fields, Timestamp::now())?;
    w.rule(workspace, id)?
        .ok_or_else(|| Error::not_found("rule", id))
}
