//! A rule as written: its conditions and actions, the inputs that create and change one, their
//! published schemas, and the validation that turns a written rule into stored fields, naming
//! the failing field (`actions[0].body`).

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::RuleFields;
use crate::tickets::Priority;
use crate::types::{Id, clean_tags, text, vocabulary};
use crate::{Error, Result};

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
pub(super) fn event_name(field: &str, raw: &str) -> Result<String> {
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
pub(super) fn one_of_present(schema: &mut Schema, fields: &[&str]) {
    let alternatives: Vec<Value> = fields
        .iter()
        .map(|f| json!({"required": [f], "properties": {*f: {"not": {"type": "null"}}}}))
        .collect();
    schema.insert("anyOf".into(), Value::Array(alternatives));
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
    pub(super) fn parse(input: CreateRule) -> Result<Self> {
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
pub(super) struct RuleChange {
    pub(super) name: Option<String>,
    pub(super) conditions: Option<Vec<Condition>>,
    pub(super) actions: Option<Vec<RuleAction>>,
    pub(super) cooldown_seconds: Option<i64>,
    pub(super) enabled: Option<bool>,
}

impl RuleChange {
    pub(super) fn parse(input: UpdateRule) -> Result<Self> {
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

#[cfg(test)]
mod tests {
    use super::super::COMMON_EVENTS;
    use super::*;

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
