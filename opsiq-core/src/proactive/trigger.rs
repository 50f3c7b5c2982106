//! What one proactive event does: the event as sent, finding who it is about, running the
//! matching rules' actions for them, and the answer that reports it.

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::rules::{event_name, one_of_present};
use super::{ActionKind, NewProactiveEvent, NewWidgetMessage, Rule, RuleAction, conditions_hold};
use crate::chats::{ContactRef, Visitor, parse_visitor_id};
use crate::contacts::{Contact, append_tags, find_or_create_by_email};
use crate::service::{Call, Opsiq};
use crate::store::Writes;
use crate::tickets::{NewTicket, open_ticket};
use crate::types::{Email, Id, Timestamp, vocabulary};
use crate::{Error, Result};

vocabulary!(
    /// Whether an action of a fired rule ran, or could not apply to this event.
    ActionStatus { Done = "done", Skipped = "skipped" }
);

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

fn trigger_schema(schema: &mut Schema) {
    one_of_present(schema, &["email", "visitor_id"]);
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
}
