//! Outbox events: the state changes integrators subscribe to. Each is written in the same
//! transaction as the change that caused it; the webhook worker delivers them.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::types::{Id, Timestamp, random_base62};

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
        Event {
            id: format!("evt_{}", random_base62(24)),
            workspace_id,
            event,
            created_at: Timestamp::now(),
            data,
        }
    }

    /// The delivered body: `{"event","id","created_at","data"}`.
    pub fn payload(&self) -> Value {
        json!({"event": self.event.as_str(), "id": self.id, "created_at": self.created_at, "data": self.data})
    }
}
