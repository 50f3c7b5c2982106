//! Proactive events and rules: another system fires a named event about a contact or visitor
//! (`POST /api/v1/proactive/trigger`), OpsIQ stores it and runs the workspace's rules that
//! listen for that name.
//!
//! A rule holds conditions on the event's properties, a per-person cooldown and actions (queue
//! a widget message, open a ticket, add tags, change the lead score). The conditions are
//! evaluated by pure functions ([`Condition::matches`]); everything one trigger changes (the
//! event row, the firings, every action's rows and outbox events) is written in one
//! transaction, so a failure changes nothing.

use std::cmp::Ordering;

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::catalog::{Action, Method};
use crate::chats::{ContactRef, Visitor, parse_visitor_id};
use crate::contacts::{Contact, append_tags, find_or_create_by_email};
use crate::service::{Call, Opsiq};
use crate::store::Writes;
use crate::tickets::{NewTicket, Priority, open_ticket};
use crate::types::{Cursor, Email, Id, Limit, Page, Timestamp, clean_tags, text, vocabulary};
use crate::{Error, Result, Scope};

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

/// The longest cooldown a rule may have: one year.
const MAX_COOLDOWN_SECONDS: i64 = 366 * 24 * 60 * 60;
const MAX_CONDITIONS: usize = 20;
const MAX_ACTIONS: usize = 10;
const MAX_SCORE_DELTA: i64 = 10_000;

vocabulary!(
    /// How a condition compares an event property with its value.
    Op { Eq = "eq", Ne = "ne", Gt = "gt", Gte = "gte", Lt = "lt", Lte = "lte", Contains = "contains", Exists = "exists" }
);
vocabulary!(
    /// What a rule's action does.
    ActionKind { QueueMessage = "queue_message", CreateTicket = "create_ticket", AddTags = "add_tags", ChangeLeadScore = "change_lead_score" }
);
vocabulary!(
    /// Whether an action of a fired rule ran, or could not apply to this event.
    ActionStatus { Done = "done", Skipped = "skipped" }
);

/// A test on one property of an event, e.g. `{"property":"cart_total","op":"gt","value":100}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = condition_schema)]
pub struct Condition {
    /// The property's name; a dotted path (`cart.total`) reads into nested objects.
    #[schemars(length(min = 1, max = 200), pattern(r"^[^.]+(\.[^.]+)*$"))]
    pub property: String,
    pub op: Op,
    /// What the property is compared with; `exists` takes none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// A rule's action, as stored and returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleAction {
    /// Queues a message for the visitor's widget (or the contact's, once identified).
    QueueMessage {
        #[schemars(length(min = 1, max = 10_000), pattern(r"\S"))]
        body: String,
    },
    /// Opens a ticket for the contact, exactly as `tickets.create` does (the contact needs an
    /// e-mail address).
    CreateTicket {
        #[schemars(length(min = 1, max = 500), pattern(r"\S"))]
        subject: String,
        #[serde(default)]
        #[schemars(length(max = 100_000))]
        body: String,
        #[serde(default = "normal")]
        priority: Priority,
    },
    /// Appends tags to the contact, as `contacts.tags.add` does.
    AddTags {
        #[schemars(
            length(min = 1, max = 100),
            inner(length(min = 1, max = 64), pattern(r"\S"))
        )]
        tags: Vec<String>,
    },
    /// Adds `delta` (negative to subtract) to the contact's lead score.
    ChangeLeadScore {
        #[schemars(range(min = -MAX_SCORE_DELTA, max = MAX_SCORE_DELTA), extend("not" = {"const": 0}))]
        delta: i64,
    },
}

fn normal() -> Priority {
    Priority::Normal
}

impl RuleAction {
    pub fn kind(&self) -> ActionKind {
        match self {
            RuleAction::QueueMessage { .. } => ActionKind::QueueMessage,
            RuleAction::CreateTicket { .. } => ActionKind::CreateTicket,
            RuleAction::AddTags { .. } => ActionKind::AddTags,
            RuleAction::ChangeLeadScore { .. } => ActionKind::ChangeLeadScore,
        }
    }
}

/// A rule's action as written: `type` and that type's fields. Decoded flat so that every
/// error names its field (`actions[0].body`); [`ActionSpec::parse`] makes it a [`RuleAction`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    #[serde(rename = "type")]
    pub kind: ActionKind,
    #[serde(default, deserialize_with = "present")]
    pub body: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub priority: Option<Priority>,
    #[serde(default, deserialize_with = "present")]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present_whole")]
    pub delta: Option<i64>,
}

/// An optional field that, when given, must not be `null` (as the published schema says).
fn present<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A whole number as JSON Schema counts one: `5` or `5.0`, never `5.5` or `"5"`.
fn whole_number<E: serde::de::Error>(n: serde_json::Number) -> std::result::Result<i64, E> {
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= i64::MIN as f64 && *f < i64::MAX as f64)
                .map(|f| f as i64)
        })
        .ok_or_else(|| E::custom(format!("expected a whole number, got {n}")))
}

fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    whole_number(serde_json::Number::deserialize(d)?)
}

/// An optional whole number that, when given, must not be `null`.
fn present_whole<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<i64>, D::Error> {
    whole(d).map(Some)
}

/// An optional whole number; `null` is the same as absent.
fn optional_whole<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<i64>, D::Error> {
    Option::<serde_json::Number>::deserialize(d)?
        .map(whole_number)
        .transpose()
}

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

/// A proactive event as sent: its name, who it is about, and any other fields as its
/// properties. Unknown fields are the point here, so they are kept rather than refused.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(transform = trigger_schema)]
pub struct TriggerEvent {
    /// The event's name, e.g. `checkout.abandoned`; any name up to 100 characters.
    #[schemars(length(min = 1, max = 100), pattern(r"\S"))]
    pub event: String,
    /// The contact the event is about, found or created by e-mail.
    pub email: Option<Email>,
    /// A widget visitor (`vis_...`); its contact is used when it has one.
    #[schemars(pattern(r"^vis_[A-Za-z0-9_-]{8,64}$"))]
    pub visitor_id: Option<String>,
    /// Every other field: the event's properties, which rule conditions test.
    #[serde(flatten)]
    pub properties: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRule {
    #[schemars(length(min = 1, max = 200), pattern(r"\S"))]
    pub name: String,
    /// The event name to listen for (any name; see the trigger's common events).
    #[schemars(length(min = 1, max = 100), pattern(r"\S"))]
    pub event: String,
    #[serde(default)]
    #[schemars(length(max = MAX_CONDITIONS))]
    pub conditions: Vec<Condition>,
    #[schemars(with = "Vec<RuleAction>", length(min = 1, max = MAX_ACTIONS))]
    pub actions: Vec<ActionSpec>,
    /// Seconds the rule stays quiet for a person after firing for them (default 0).
    #[serde(default, deserialize_with = "whole")]
    #[schemars(range(min = 0, max = MAX_COOLDOWN_SECONDS))]
    pub cooldown_seconds: i64,
    /// Default true.
    pub enabled: Option<bool>,
}

/// A partial update: absent fields stay as they are; `conditions` and `actions` replace the
/// lists.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = update_rule_schema)]
pub struct UpdateRule {
    pub id: Id,
    #[schemars(length(min = 1, max = 200), pattern(r"\S"))]
    pub name: Option<String>,
    #[schemars(length(max = MAX_CONDITIONS))]
    pub conditions: Option<Vec<Condition>>,
    #[schemars(with = "Option<Vec<RuleAction>>", length(min = 1, max = MAX_ACTIONS))]
    pub actions: Option<Vec<ActionSpec>>,
    #[serde(default, deserialize_with = "optional_whole")]
    #[schemars(range(min = 0, max = MAX_COOLDOWN_SECONDS))]
    pub cooldown_seconds: Option<i64>,
    pub enabled: Option<bool>,
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

/// What a trigger did.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TriggerResult {
    /// The stored event's id.
    pub event_id: Id,
    pub event: String,
    /// The contact the event was resolved to, if any.
    pub contact: Option<ContactRef>,
    /// The visitor (`vis_...`), if one was given.
    pub visitor_id: Option<String>,
    pub properties: Map<String, Value>,
    /// The rules that fired, in the order they ran, with what their actions did.
    pub matched: Vec<FiredRule>,
    /// Rules whose conditions held but that are cooling down for this person.
    pub skipped: Vec<SkippedRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct FiredRule {
    pub rule_id: Id,
    pub name: String,
    pub actions: Vec<ActionTaken>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SkippedRule {
    pub rule_id: Id,
    pub name: String,
    /// Why it did not fire: `cooldown`.
    pub reason: String,
    /// When the rule may fire again for this person.
    pub cooldown_until: Timestamp,
}

/// What one action of a fired rule did.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ActionTaken {
    #[serde(rename = "type")]
    pub kind: ActionKind,
    pub status: ActionStatus,
    /// Why a skipped action could not apply (e.g. no contact with an e-mail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `create_ticket`: the new ticket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<Id>,
    /// `queue_message`: the queued message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Id>,
    /// `add_tags`: the contact's tags afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// `change_lead_score`: the contact's new score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_score: Option<i64>,
}

impl ActionTaken {
    fn done(kind: ActionKind) -> Self {
        ActionTaken {
            kind,
            status: ActionStatus::Done,
            reason: None,
            ticket_id: None,
            message_id: None,
            tags: None,
            lead_score: None,
        }
    }

    fn skipped(kind: ActionKind, reason: impl Into<String>) -> Self {
        ActionTaken {
            status: ActionStatus::Skipped,
            reason: Some(reason.into()),
            ..ActionTaken::done(kind)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rule evaluation: pure functions over JSON values.

impl Condition {
    /// Whether the condition holds for an event's properties. A missing property matches only
    /// nothing (not even `ne`), and neither does a type mismatch: numbers compare numerically,
    /// strings lexically, `contains` looks into strings and arrays.
    pub fn matches(&self, properties: &Map<String, Value>) -> bool {
        let Some(actual) = lookup(properties, &self.property) else {
            return false;
        };
        let expected = self.value.as_ref().unwrap_or(&Value::Null);
        match self.op {
            Op::Exists => !actual.is_null(),
            Op::Eq => equal(actual, expected) == Some(true),
            Op::Ne => equal(actual, expected) == Some(false),
            Op::Gt => order(actual, expected) == Some(Ordering::Greater),
            Op::Gte => order(actual, expected).is_some_and(Ordering::is_ge),
            Op::Lt => order(actual, expected) == Some(Ordering::Less),
            Op::Lte => order(actual, expected).is_some_and(Ordering::is_le),
            Op::Contains => match (actual, expected) {
                (Value::String(s), Value::String(part)) => s.contains(part.as_str()),
                (Value::Array(items), wanted) => {
                    items.iter().any(|item| equal(item, wanted) == Some(true))
                }
                _ => false,
            },
        }
    }
}

/// Whether every condition holds (a rule without conditions matches every event).
pub fn conditions_hold(conditions: &[Condition], properties: &Map<String, Value>) -> bool {
    conditions.iter().all(|c| c.matches(properties))
}

/// Reads a property by dotted path: `cart.total` is `{"cart":{"total":..}}`, and a numeric
/// segment indexes an array (`items.0.sku`).
pub fn lookup<'a>(properties: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut segments = path.split('.');
    let mut current = properties.get(segments.next()?)?;
    for segment in segments {
        current = match current {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Equality of two values of the same JSON type (numbers numerically); `None` when the types
/// differ.
fn equal(a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => order(a, b).map(Ordering::is_eq),
        (Value::String(x), Value::String(y)) => Some(x == y),
        (Value::Bool(x), Value::Bool(y)) => Some(x == y),
        (Value::Null, Value::Null) => Some(true),
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => Some(a == b),
        _ => None,
    }
}

/// The order of two numbers or two strings; `None` for anything else.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Validation of rule texts.

/// A text field of at most `max` characters as sent (so the published `maxLength` holds),
/// returned trimmed; a required one must not be blank.
fn bounded_text(field: &str, raw: &str, max: usize, required: bool) -> Result<String> {
    if raw.chars().count() > max {
        return Err(Error::validation(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    text(field, raw, max, required)
}

/// An event name: 1 to 100 characters, not blank, trimmed.
fn event_name(field: &str, raw: &str) -> Result<String> {
    bounded_text(field, raw, 100, true)
}

/// The published schema of a condition: `exists` takes no value (or `null`), every other op a
/// non-null one, and the ordering ops a number or a string.
fn condition_schema(schema: &mut Schema) {
    schema.insert(
        "allOf".into(),
        json!([
            {
                "if": {"properties": {"op": {"const": "exists"}}},
                "then": {"properties": {"value": {"type": "null"}}},
                "else": {"required": ["value"], "properties": {"value": {"not": {"type": "null"}}}}
            },
            {
                "if": {"properties": {"op": {"enum": ["gt", "gte", "lt", "lte"]}}},
                "then": {"properties": {"value": {"type": ["number", "string"]}}}
            }
        ]),
    );
}

/// Requires, in the published schema, at least one of `fields` with a non-null value.
fn one_of_present(schema: &mut Schema, fields: &[&str]) {
    let alternatives: Vec<Value> = fields
        .iter()
        .map(|f| json!({"required": [f], "properties": {*f: {"not": {"type": "null"}}}}))
        .collect();
    schema.insert("anyOf".into(), Value::Array(alternatives));
}

fn trigger_schema(schema: &mut Schema) {
    one_of_present(schema, &["email", "visitor_id"]);
}

fn update_rule_schema(schema: &mut Schema) {
    one_of_present(
        schema,
        &[
            "name",
            "conditions",
            "actions",
            "cooldown_seconds",
            "enabled",
        ],
    );
}

impl Condition {
    fn parse(self, at: &str) -> Result<Condition> {
        let field = |name: &str| format!("{at}.{name}");
        if self.property.chars().count() > 200 {
            return Err(Error::validation(
                field("property"),
                "must be at most 200 characters",
            ));
        }
        if self.property.split('.').any(str::is_empty) {
            return Err(Error::validation(
                field("property"),
                "a dotted path must not have empty segments",
            ));
        }
        match (self.op, &self.value) {
            (Op::Exists, Some(_)) => {
                Err(Error::validation(field("value"), "`exists` takes no value"))
            }
            (Op::Exists, None) => Ok(self),
            (op, None) => Err(Error::validation(
                field("value"),
                format!("`{op}` needs a value"),
            )),
            (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Some(v)) if !(v.is_number() || v.is_string()) => {
                Err(Error::validation(
                    field("value"),
                    format!("`{}` compares numbers or strings", self.op),
                ))
            }
            _ => Ok(self),
        }
    }
}

impl ActionSpec {
    fn parse(self, at: &str) -> Result<RuleAction> {
        let field = |name: &str| format!("{at}.{name}");
        let given = [
            ("body", self.body.is_some()),
            ("subject", self.subject.is_some()),
            ("priority", self.priority.is_some()),
            ("tags", self.tags.is_some()),
            ("delta", self.delta.is_some()),
        ];
        let allowed: &[&str] = match self.kind {
            ActionKind::QueueMessage => &["body"],
            ActionKind::CreateTicket => &["subject", "body", "priority"],
            ActionKind::AddTags => &["tags"],
            ActionKind::ChangeLeadScore => &["delta"],
        };
        if let Some((name, _)) = given.iter().find(|(n, set)| *set && !allowed.contains(n)) {
            return Err(Error::validation(
                field(name),
                format!("a `{}` action has no `{name}`", self.kind),
            ));
        }
        let required = |name: &str| {
            Error::validation(
                field(name),
                format!("a `{}` action needs `{name}`", self.kind),
            )
        };
        Ok(match self.kind {
            ActionKind::QueueMessage => RuleAction::QueueMessage {
                body: bounded_text(
                    &field("body"),
                    &self.body.ok_or_else(|| required("body"))?,
                    10_000,
                    true,
                )?,
            },
            ActionKind::CreateTicket => RuleAction::CreateTicket {
                subject: bounded_text(
                    &field("subject"),
                    &self.subject.ok_or_else(|| required("subject"))?,
                    500,
                    true,
                )?,
                body: bounded_text(
                    &field("body"),
                    self.body.as_deref().unwrap_or(""),
                    100_000,
                    false,
                )?,
                priority: self.priority.unwrap_or(Priority::Normal),
            },
            ActionKind::AddTags => {
                let tags = self.tags.ok_or_else(|| required("tags"))?;
                if tags.is_empty() || tags.len() > 100 {
                    return Err(Error::validation(field("tags"), "give 1 to 100 tags"));
                }
                RuleAction::AddTags {
                    tags: clean_tags(&field("tags"), &[], &tags)?,
                }
            }
            ActionKind::ChangeLeadScore => {
                let delta = self.delta.ok_or_else(|| required("delta"))?;
                if delta == 0 || delta.abs() > MAX_SCORE_DELTA {
                    return Err(Error::validation(
                        field("delta"),
                        format!(
                            "must be a non-zero whole number between -{MAX_SCORE_DELTA} and {MAX_SCORE_DELTA}"
                        ),
                    ));
                }
                RuleAction::ChangeLeadScore { delta }
            }
        })
    }
}

fn parse_conditions(conditions: Vec<Condition>) -> Result<Vec<Condition>> {
    if conditions.len() > MAX_CONDITIONS {
        return Err(Error::validation(
            "conditions",
            format!("a rule has at most {MAX_CONDITIONS} conditions"),
        ));
    }
    conditions
        .into_iter()
        .enumerate()
        .map(|(i, c)| c.parse(&format!("conditions[{i}]")))
        .collect()
}

fn parse_actions(actions: Vec<ActionSpec>) -> Result<Vec<RuleAction>> {
    if actions.is_empty() || actions.len() > MAX_ACTIONS {
        return Err(Error::validation(
            "actions",
            format!("a rule has 1 to {MAX_ACTIONS} actions"),
        ));
    }
    actions
        .into_iter()
        .enumerate()
        .map(|(i, a)| a.parse(&format!("actions[{i}]")))
        .collect()
}

fn parse_cooldown(seconds: i64) -> Result<i64> {
    if (0..=MAX_COOLDOWN_SECONDS).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(Error::validation(
            "cooldown_seconds",
            format!("must be between 0 and {MAX_COOLDOWN_SECONDS} (one year)"),
        ))
    }
}

impl RuleFields {
    fn parse(input: CreateRule) -> Result<Self> {
        Ok(RuleFields {
            name: bounded_text("name", &input.name, 200, true)?,
            event: event_name("event", &input.event)?,
            conditions: parse_conditions(input.conditions)?,
            actions: parse_actions(input.actions)?,
            cooldown_seconds: parse_cooldown(input.cooldown_seconds)?,
            enabled: input.enabled.unwrap_or(true),
        })
    }
}

/// A validated change to a rule.
#[derive(Debug, Clone, Default)]
struct RuleChange {
    name: Option<String>,
    conditions: Option<Vec<Condition>>,
    actions: Option<Vec<RuleAction>>,
    cooldown_seconds: Option<i64>,
    enabled: Option<bool>,
}

impl RuleChange {
    fn parse(input: UpdateRule) -> Result<Self> {
        let change = RuleChange {
            name: input
                .name
                .map(|n| bounded_text("name", &n, 200, true))
                .transpose()?,
            conditions: input.conditions.map(parse_conditions).transpose()?,
            actions: input.actions.map(parse_actions).transpose()?,
            cooldown_seconds: input.cooldown_seconds.map(parse_cooldown).transpose()?,
            enabled: input.enabled,
        };
        if change.name.is_none()
            && change.conditions.is_none()
            && change.actions.is_none()
            && change.cooldown_seconds.is_none()
            && change.enabled.is_none()
        {
            return Err(Error::validation(
                "params",
                "give at least one of name, conditions, actions, cooldown_seconds, enabled",
            ));
        }
        Ok(change)
    }
}

/// Parses a rule written as JSON (the CLI's rule files), naming the failing field like the API.
pub fn parse_rule_json(json: &str) -> Result<CreateRule> {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => crate::catalog::decode(map),
        Ok(_) => Err(Error::validation("rule", "a rule is a JSON object")),
        Err(e) => Err(Error::InvalidJson(e.to_string())),
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

/// Who an event is about, and where its effects land.
struct Target {
    workspace: Id,
    /// The key's active site: the event, ticket and lead score are stamped to it.
    site: Id,
    contact: Option<Contact>,
    visitor: Option<Visitor>,
}

impl Target {
    /// The cooldown key: per contact, or per visitor when there is no contact.
    fn subject(&self) -> String {
        match (&self.contact, &self.visitor) {
            (Some(c), _) => format!("contact:{}", c.id),
            (None, Some(v)) => format!("visitor:{}", v.row_id),
            (None, None) => "anonymous".to_string(),
        }
    }
}

/// The visitor with this public id, if it belongs to the workspace (422 naming `visitor_id`
/// otherwise).
fn workspace_visitor(w: &dyn Writes, workspace: Id, public_id: &str) -> Result<Visitor> {
    let unknown = || {
        Error::validation(
            "visitor_id",
            format!("no visitor `{public_id}` in this workspace"),
        )
    };
    let visitor = w.visitor_by_public_id(public_id)?.ok_or_else(unknown)?;
    match w.site(visitor.site_id)? {
        Some(site) if site.workspace_id == workspace => Ok(visitor),
        _ => Err(unknown()),
    }
}

/// Runs one action of a fired rule for the target.
fn run_action(
    w: &mut dyn Writes,
    target: &Target,
    rule: &Rule,
    action: &RuleAction,
) -> Result<ActionTaken> {
    let kind = action.kind();
    let now = Timestamp::now();
    let contact = target.contact.as_ref();
    let no_contact = || ActionTaken::skipped(kind, "the event has no contact");
    Ok(match action {
        RuleAction::QueueMessage { body } => {
            let message = NewWidgetMessage {
                site_id: target.visitor.as_ref().map_or(target.site, |v| v.site_id),
                visitor_id: target.visitor.as_ref().map(|v| v.row_id),
                contact_id: contact.map(|c| c.id),
                rule_id: Some(rule.id),
                body: body.clone(),
            };
            ActionTaken {
                message_id: Some(w.insert_widget_message(&message, now)?),
                ..ActionTaken::done(kind)
            }
        }
        RuleAction::CreateTicket {
            subject,
            body,
            priority,
        } => match contact {
            Some(c) if c.email.is_some() => {
                let new = NewTicket {
                    workspace_id: target.workspace,
                    site_id: Some(target.site),
                    contact_id: c.id,
                    subject: subject.clone(),
                    body: body.clone(),
                    priority: *priority,
                    department_id: None,
                    assignee_id: None,
                    tags: Vec::new(),
                    source: "proactive".to_string(),
                };
                ActionTaken {
                    ticket_id: Some(open_ticket(w, &new, now)?.id),
                    ..ActionTaken::done(kind)
                }
            }
            _ => ActionTaken::skipped(kind, "the event has no contact with an e-mail address"),
        },
        RuleAction::AddTags { tags } => match contact {
            Some(c) => match append_tags(w, target.workspace, c.id, tags) {
                Ok(contact) => ActionTaken {
                    tags: Some(contact.tags),
                    ..ActionTaken::done(kind)
                },
                // Nothing was written (e.g. the contact already holds 100 tags): the rule's
                // other actions still run.
                Err(Error::Validation { reason, .. }) => ActionTaken::skipped(kind, reason),
                Err(e) => return Err(e),
            },
            None => no_contact(),
        },
        RuleAction::ChangeLeadScore { delta } => match contact {
            Some(c) => {
                let reason = format!("rule {} ({})", rule.id, rule.name);
                let score = crate::analytics::change_lead_score(
                    w,
                    target.workspace,
                    target.site,
                    c.id,
                    *delta,
                    &reason,
                )?;
                ActionTaken {
                    lead_score: Some(score),
                    ..ActionTaken::done(kind)
                }
            }
            None => no_contact(),
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Services.

impl Opsiq {
    /// Stores an event and runs the rules listening for it, all in one transaction.
    pub fn trigger_event(&self, call: &Call, input: TriggerEvent) -> Result<TriggerResult> {
        let name = event_name("event", &input.event)?;
        let visitor_id = input
            .visitor_id
            .as_deref()
            .map(parse_visitor_id)
            .transpose()?;
        if input.email.is_none() && visitor_id.is_none() {
            return Err(Error::validation(
                "email",
                "give the `email` or the `visitor_id` the event is about",
            ));
        }
        let (workspace, site) = (call.principal.workspace_id, call.principal.site_id);
        let (email, properties) = (input.email, input.properties);
        self.write_audited(call, move |w| {
            let now = Timestamp::now();
            let visitor = visitor_id
                .map(|id| workspace_visitor(w, workspace, &id))
                .transpose()?;
            let contact = match (&email, visitor.as_ref().and_then(|v| v.contact_id)) {
                (Some(email), _) => Some(find_or_create_by_email(
                    w, workspace, site, email, None, now,
                )?),
                (None, Some(id)) => w.contact(workspace, id)?,
                (None, None) => None,
            };
            let target = Target {
                workspace,
                site,
                contact,
                visitor,
            };
            let event_id = w.insert_proactive_event(
                &NewProactiveEvent {
                    workspace_id: workspace,
                    site_id: site,
                    name: name.clone(),
                    contact_id: target.contact.as_ref().map(|c| c.id),
                    visitor_id: target.visitor.as_ref().map(|v| v.row_id),
                    properties: properties.clone(),
                },
                now,
            )?;
            let subject = target.subject();
            let (mut matched, mut skipped) = (Vec::new(), Vec::new());
            for rule in w.rules_for_event(workspace, &name)? {
                if !conditions_hold(&rule.conditions, &properties) {
                    continue;
                }
                if let Some(last) = w.last_firing(rule.id, &subject)? {
                    let until = Timestamp(last.millis() + rule.cooldown_seconds * 1000);
                    if until > now {
                        skipped.push(SkippedRule {
                            rule_id: rule.id,
                            name: rule.name.clone(),
                            reason: "cooldown".to_string(),
                            cooldown_until: until,
                        });
                        continue;
                    }
                }
                w.insert_rule_firing(rule.id, event_id, &subject, now)?;
                let actions = rule
                    .actions
                    .iter()
                    .map(|action| run_action(w, &target, &rule, action))
                    .collect::<Result<Vec<_>>>()?;
                matched.push(FiredRule {
                    rule_id: rule.id,
                    name: rule.name.clone(),
                    actions,
                });
            }
            Ok(TriggerResult {
                event_id,
                event: name,
                contact: target.contact.map(|c| ContactRef {
                    id: c.id,
                    name: c.name,
                    email: c.email.map(|e| e.as_str().to_string()),
                }),
                visitor_id: target.visitor.map(|v| v.id),
                properties,
                matched,
                skipped,
            })
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn props() -> Map<String, Value> {
        match json!({
            "cart_total": 129.50,
            "items": 3,
            "currency": "USD",
            "plan": null,
            "returning": true,
            "skus": ["A-1", "B-2", 7],
            "cart": {"total": 129.5, "coupon": {"code": "SPRING"}},
            "lines": [{"sku": "A-1", "qty": 2}]
        }) {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    /// `check(property, op, value, expected)`: one condition against [`props`].
    #[track_caller]
    fn check(property: &str, op: Op, value: Option<Value>, expected: bool) {
        let condition = Condition {
            property: property.to_string(),
            op,
            value: value.clone(),
        };
        assert_eq!(
            condition.matches(&props()),
            expected,
            "{property} {op} {value:?}"
        );
    }

    #[test]
    fn eq_and_ne_compare_numbers_numerically_and_refuse_type_mismatches() {
        check("cart_total", Op::Eq, Some(json!(129.5)), true);
        check("items", Op::Eq, Some(json!(3.0)), true);
        check("currency", Op::Eq, Some(json!("USD")), true);
        check("currency", Op::Eq, Some(json!("usd")), false);
        check("returning", Op::Eq, Some(json!(true)), true);
        check("skus", Op::Eq, Some(json!(["A-1", "B-2", 7])), true);
        check("currency", Op::Ne, Some(json!("EUR")), true);
        check("currency", Op::Ne, Some(json!("USD")), false);
        check("items", Op::Eq, Some(json!("3")), false);
        check("items", Op::Ne, Some(json!("3")), false);
        check("missing", Op::Ne, Some(json!("x")), false);
    }

    #[test]
    fn ordering_ops_compare_numbers_and_strings() {
        check("cart_total", Op::Gt, Some(json!(100)), true);
        check("cart_total", Op::Gt, Some(json!(129.5)), false);
        check("cart_total", Op::Gte, Some(json!(129.5)), true);
        check("cart_total", Op::Lt, Some(json!(200)), true);
        check("cart_total", Op::Lte, Some(json!(129.5)), true);
        check("cart_total", Op::Lte, Some(json!(129)), false);
        check("items", Op::Gt, Some(json!(2)), true);
        check("currency", Op::Gt, Some(json!("EUR")), true);
        check("currency", Op::Lt, Some(json!("EUR")), false);
        check("currency", Op::Gte, Some(json!("USD")), true);
    }

    #[test]
    fn ordering_ops_do_not_match_across_types() {
        check("cart_total", Op::Gt, Some(json!("100")), false);
        check("currency", Op::Lt, Some(json!(5)), false);
        check("returning", Op::Gt, Some(json!(0)), false);
        check("skus", Op::Gte, Some(json!(1)), false);
        check("plan", Op::Lt, Some(json!(1)), false);
    }

    #[test]
    fn contains_looks_into_strings_and_arrays() {
        check("currency", Op::Contains, Some(json!("SD")), true);
        check("currency", Op::Contains, Some(json!("sd")), false);
        check("skus", Op::Contains, Some(json!("B-2")), true);
        check("skus", Op::Contains, Some(json!(7.0)), true);
        check("skus", Op::Contains, Some(json!("C-3")), false);
        check("cart_total", Op::Contains, Some(json!(1)), false);
        check("currency", Op::Contains, Some(json!(5)), false);
    }

    #[test]
    fn exists_needs_a_non_null_property() {
        check("currency", Op::Exists, None, true);
        check("cart.coupon", Op::Exists, None, true);
        check("plan", Op::Exists, None, false);
        check("missing", Op::Exists, None, false);
    }

    #[test]
    fn dotted_paths_read_nested_objects_and_array_indexes() {
        check("cart.total", Op::Gt, Some(json!(100)), true);
        check("cart.coupon.code", Op::Eq, Some(json!("SPRING")), true);
        check("lines.0.qty", Op::Gte, Some(json!(2)), true);
        check("lines.1.qty", Op::Exists, None, false);
        check("cart.total.value", Op::Exists, None, false);
        check("currency.code", Op::Exists, None, false);
        check("lines.first.sku", Op::Exists, None, false);
    }

    #[test]
    fn a_rule_without_conditions_matches_and_all_conditions_must_hold() {
        let gt = |v: i64| Condition {
            property: "cart_total".into(),
            op: Op::Gt,
            value: Some(json!(v)),
        };
        assert!(conditions_hold(&[], &props()));
        assert!(conditions_hold(&[gt(100), gt(50)], &props()));
        assert!(!conditions_hold(&[gt(100), gt(500)], &props()));
    }

    /// Decodes and validates a rule, returning the field an error names.
    fn rule_error(rule: Value) -> Option<String> {
        parse_rule_json(&rule.to_string())
            .and_then(RuleFields::parse)
            .err()
            .map(|e| e.field().unwrap_or("").to_string())
    }

    #[test]
    fn rule_errors_name_the_field() {
        let rule = |conditions: Value, actions: Value| json!({"name": "r", "event": "checkout.abandoned", "conditions": conditions, "actions": actions});
        let ok_action = json!([{"type": "add_tags", "tags": ["vip"]}]);
        let cond = |c: Value| rule(json!([c]), ok_action.clone());
        let act = |a: Value| rule(json!([]), json!([a]));
        for (bad, field) in [
            (
                cond(json!({"property": "x", "op": "bigger", "value": 1})),
                "conditions[0].op",
            ),
            (
                cond(json!({"property": "x", "op": "gt"})),
                "conditions[0].value",
            ),
            (
                cond(json!({"property": "x", "op": "gt", "value": [1]})),
                "conditions[0].value",
            ),
            (
                cond(json!({"property": "x", "op": "exists", "value": 1})),
                "conditions[0].value",
            ),
            (
                cond(json!({"property": "a..b", "op": "exists"})),
                "conditions[0].property",
            ),
            (
                cond(json!({"property": "", "op": "exists"})),
                "conditions[0].property",
            ),
            (
                cond(json!({"property": "x", "op": "eq", "value": 1, "extra": 1})),
                "conditions[0].extra",
            ),
            (act(json!({"type": "send_fax"})), "actions[0].type"),
            (act(json!({"type": "queue_message"})), "actions[0].body"),
            (
                act(json!({"type": "queue_message", "body": 5})),
                "actions[0].body",
            ),
            (
                act(json!({"type": "queue_message", "body": "hi", "delta": 1})),
                "actions[0].delta",
            ),
            (
                act(json!({"type": "create_ticket", "body": "b"})),
                "actions[0].subject",
            ),
            (
                act(json!({"type": "create_ticket", "subject": "s", "priority": "asap"})),
                "actions[0].priority",
            ),
            (
                act(json!({"type": "add_tags", "tags": []})),
                "actions[0].tags",
            ),
            (
                act(json!({"type": "change_lead_score", "delta": 0})),
                "actions[0].delta",
            ),
            (
                act(json!({"type": "change_lead_score", "delta": "5"})),
                "actions[0].delta",
            ),
            (
                act(json!({"type": "change_lead_score", "delta": 1.5})),
                "actions[0].delta",
            ),
            (
                act(json!({"type": "change_lead_score", "delta": 1, "color": "red"})),
                "actions[0].color",
            ),
            (rule(json!([]), json!([])), "actions"),
            (json!({"event": "e", "actions": ok_action}), "name"),
            (json!({"name": "r", "actions": ok_action}), "event"),
            (
                json!({"name": "r", "event": "e", "actions": ok_action, "cooldown_seconds": -1}),
                "cooldown_seconds",
            ),
            (
                json!({"name": "r", "event": "e", "actions": ok_action, "when": "now"}),
                "when",
            ),
        ] {
            assert_eq!(rule_error(bad.clone()).as_deref(), Some(field), "{bad}");
        }
        assert_eq!(
            rule_error(rule(
                json!([{"property": "cart.total", "op": "exists"}]),
                ok_action
            )),
            None
        );
    }

    #[test]
    fn integers_may_be_written_as_whole_floats_but_not_as_strings() {
        let rule = |cooldown: Value, delta: Value| {
            json!({"name": "r", "event": "e", "cooldown_seconds": cooldown,
                "actions": [{"type": "change_lead_score", "delta": delta}]})
        };
        let parsed = parse_rule_json(&rule(json!(60.0), json!(-5.0)).to_string())
            .and_then(RuleFields::parse)
            .unwrap();
        assert_eq!(parsed.cooldown_seconds, 60);
        assert_eq!(parsed.actions, [RuleAction::ChangeLeadScore { delta: -5 }]);
        assert_eq!(
            rule_error(rule(json!("60"), json!(1))).as_deref(),
            Some("cooldown_seconds")
        );
        assert_eq!(
            rule_error(rule(json!(0.5), json!(1))).as_deref(),
            Some("cooldown_seconds")
        );
        assert_eq!(
            rule_error(rule(json!(1e300), json!(1))).as_deref(),
            Some("cooldown_seconds")
        );
    }

    #[test]
    fn a_create_ticket_action_defaults_to_an_empty_body_and_normal_priority() {
        let spec: ActionSpec =
            serde_json::from_value(json!({"type": "create_ticket", "subject": " Help "})).unwrap();
        assert_eq!(
            spec.parse("actions[0]").unwrap(),
            RuleAction::CreateTicket {
                subject: "Help".into(),
                body: String::new(),
                priority: Priority::Normal
            }
        );
    }

    #[test]
    fn stored_actions_round_trip_through_json() {
        let actions = vec![
            RuleAction::QueueMessage { body: "Hi".into() },
            RuleAction::CreateTicket {
                subject: "s".into(),
                body: "b".into(),
                priority: Priority::High,
            },
            RuleAction::AddTags {
                tags: vec!["vip".into()],
            },
            RuleAction::ChangeLeadScore { delta: -5 },
        ];
        let text = serde_json::to_string(&actions).unwrap();
        assert!(
            text.contains(r#"{"type":"change_lead_score","delta":-5}"#),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<Vec<RuleAction>>(&text).unwrap(),
            actions
        );
    }

    #[test]
    fn the_common_events_are_valid_event_names() {
        for name in COMMON_EVENTS {
            assert_eq!(event_name("event", name).unwrap(), name);
        }
        assert!(event_name("event", "").is_err());
        assert!(event_name("event", &"x".repeat(101)).is_err());
    }
}
