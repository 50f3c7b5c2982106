//! Outbox events: the state changes integrators subscribe to. Each is written in the same
//! transaction as the change that caused it; the webhook worker delivers them.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::types::{Id, Timestamp, sortable_base62};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum EventType {
    #[serde(rename = "ticket.created")]
    TicketCreated,
    #[serde(rename = "ticket.updated")]
    TicketUpdated,
    #[serde(rename = "chat.started")]
    ChatStarted,
    #[serde(rename = "lead.scored")]
    LeadScored,
    #[serde(rename = "order.attributed")]
    OrderAttributed,
    #[serde(rename = "knowledge.missed_question")]
    KnowledgeMissedQuestion,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::TicketCreated,
        EventType::TicketUpdated,
        EventType::ChatStarted,
        EventType::LeadScored,
        EventType::OrderAttributed,
        EventType::KnowledgeMissedQuestion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TicketCreated => "ticket.created",
            EventType::TicketUpdated => "ticket.updated",
            EventType::ChatStarted => "chat.started",
            EventType::LeadScored => "lead.scored",
            EventType::OrderAttributed => "order.attributed",
            EventType::KnowledgeMissedQuestion => "knowledge.missed_question",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown event type `{s}`"))
    }
}

/// One outbox event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `evt_...`, stable across every delivery of the event.
    pub id: String,
    pub workspace_id: Id,
    pub event: EventType,
    pub created_at: Timestamp,
    pub data: Value,
}

impl Event {
    pub fn new(workspace_id: Id, event: EventType, data: Value) -> Self {
        let created_at = Timestamp::now();
        Event {
            // Time-ordered, so that the outbox's unique index on `id` grows at its end.
            id: format!("evt_{}", sortable_base62(created_at, 24)),
            workspace_id,
            event,
            created_at,
            data,
        }
    }

    /// The delivered body: `{"event","id","created_at","data"}`.
    pub fn payload(&self) -> Value {
        json!({"event": self.event.as_str(), "id": self.id, "created_at": self.created_at, "data": self.data})
    }
}

/// The `data` of one event type: its payload schema, and how it is emitted.
pub trait EventData: Serialize + JsonSchema {
    const TYPE: EventType;

    /// Writes the event to the outbox inside the caller's transaction.
    fn emit(&self, w: &mut dyn crate::store::Writes, workspace: Id) -> crate::Result<Event> {
        let data = serde_json::to_value(self)
            .map_err(|e| crate::Error::Internal(format!("cannot encode an event: {e}")))?;
        let event = Event::new(workspace, Self::TYPE, data);
        w.insert_event(&event)?;
        Ok(event)
    }
}

/// `ticket.created`: a ticket was opened (API, action endpoint, chat, e-mail, connector, rule).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TicketCreated {
    pub ticket_id: Id,
    pub subject: String,
    pub ticket: crate::tickets::Ticket,
}

/// One changed field: its value before and after.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Change {
    pub old: Value,
    pub new: Value,
}

/// `ticket.updated`: status, priority, department, assignment, subject or tags changed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TicketUpdated {
    pub ticket_id: Id,
    /// Only the fields that changed.
    pub changes: std::collections::BTreeMap<String, Change>,
    pub ticket: crate::tickets::Ticket,
}

/// `chat.started`: a visitor started a chat.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ChatStarted {
    pub chat_id: Id,
    pub site_id: Id,
    pub visitor_id: String,
    pub contact: Option<crate::chats::ContactRef>,
}

/// `lead.scored`: a contact's lead score crossed the threshold upwards.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LeadScored {
    pub contact_id: Id,
    pub site_id: Id,
    pub score: i64,
    pub previous_score: i64,
    pub threshold: i64,
    pub reason: String,
}

/// `order.attributed`: a tracked purchase was connected to a visitor or contact.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OrderAttributed {
    pub order_id: Id,
    pub site_id: Id,
    pub visitor_id: Option<String>,
    pub contact_id: Option<Id>,
    pub external_id: Option<String>,
    /// In the currency's minor unit.
    pub amount_minor: i64,
    pub currency: String,
}

/// `knowledge.missed_question`: the customer AI could not answer a repeated question.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct KnowledgeMissedQuestion {
    pub site_id: Id,
    pub question: String,
    pub times_missed: i64,
}

impl EventData for TicketCreated {
    const TYPE: EventType = EventType::TicketCreated;
}
impl EventData for TicketUpdated {
    const TYPE: EventType = EventType::TicketUpdated;
}
impl EventData for ChatStarted {
    const TYPE: EventType = EventType::ChatStarted;
}
impl EventData for LeadScored {
    const TYPE: EventType = EventType::LeadScored;
}
impl EventData for OrderAttributed {
    const TYPE: EventType = EventType::OrderAttributed;
}
impl EventData for KnowledgeMissedQuestion {
    const TYPE: EventType = EventType::KnowledgeMissedQuestion;
}

impl EventType {
    /// The JSON Schema of this type's `data`.
    pub fn data_schema(self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        match self {
            EventType::TicketCreated => generator.subschema_for::<TicketCreated>(),
            EventType::TicketUpdated => generator.subschema_for::<TicketUpdated>(),
            EventType::ChatStarted => generator.subschema_for::<ChatStarted>(),
            EventType::LeadScored => generator.subschema_for::<LeadScored>(),
            EventType::OrderAttributed => generator.subschema_for::<OrderAttributed>(),
            EventType::KnowledgeMissedQuestion => {
                generator.subschema_for::<KnowledgeMissedQuestion>()
            }
        }
    }
}
