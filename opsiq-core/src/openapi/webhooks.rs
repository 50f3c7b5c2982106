//! The document's top-level `webhooks`: per event type, the signed `POST` that OpsIQ sends to a
//! subscribed endpoint. The payload is `Event::payload()` around the type's `data` schema, the
//! headers are those of Standard Webhooks, and the retry terms come from `crate::webhooks`.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::schemas::EventSchemas;
use super::take_operation_id;
use crate::events::EventType;
use crate::webhooks::{DISABLE_AFTER, RETRY_SCHEDULE, ROTATION_OVERLAP};

/// When each event fires and what it is useful for, as the public docs' webhook table says.
fn docs_row(event: EventType) -> (&'static str, &'static str) {
    match event {
        EventType::TicketCreated => (
            "A ticket is opened from chat, email, API, or connector.",
            "External helpdesk mirror.",
        ),
        EventType::TicketUpdated => (
            "Status, priority, department, assignment, or tags change.",
            "Workflow automation.",
        ),
        EventType::ChatStarted => ("A visitor starts a chat.", "Sales alerting."),
        EventType::LeadScored => (
            "Lead score crosses a configured threshold.",
            "CRM enrichment.",
        ),
        EventType::OrderAttributed => (
            "A tracked purchase is connected to a visitor/session.",
            "Revenue reporting.",
        ),
        EventType::KnowledgeMissedQuestion => (
            "The AI could not confidently answer a repeated question.",
            "Content backlog.",
        ),
    }
}

/// One entry per event type, named by the type (`ticket.created`).
pub(super) fn webhooks(
    events: &EventSchemas,
    operation_ids: &mut HashSet<String>,
) -> Map<String, Value> {
    events
        .data
        .iter()
        .map(|(event, data)| {
            let base = format!("webhook.{event}");
            let id = take_operation_id(
                operation_ids,
                std::iter::once(base.clone()).chain((2..).map(|i| format!("{base}{i}"))),
            );
            let operation = operation(*event, id, payload(*event, data, &events.created_at));
            (event.as_str().to_string(), json!({"post": operation}))
        })
        .collect()
}

fn operation(event: EventType, operation_id: String, payload: Value) -> Value {
    let (when, useful_for) = docs_row(event);
    json!({
        "operationId": operation_id,
        "summary": when,
        "description": format!(
            "{when} Useful for: {useful_for}\n\nOpsIQ sends this to every enabled endpoint \
             subscribed to `{event}` (or to every event), signed as Standard Webhooks describes. \
             Receivers deduplicate by `webhook-id`: retries and replays keep the event's id."
        ),
        "tags": ["webhooks"],
        "security": [],
        "parameters": headers(),
        "requestBody": {
            "description": "The event, as `{event, id, created_at, data}`.",
            "required": true,
            "content": {"application/json": {"schema": payload}},
        },
        "responses": {
            "2XX": {
                "description": "Delivered. The body is ignored; its start is kept in the delivery log.",
            },
            "default": {"description": retry_terms()},
        },
    })
}

/// The delivered body, as `Event::payload()` writes it.
fn payload(event: EventType, data: &Value, created_at: &Value) -> Value {
    json!({
        "type": "object",
        "required": ["event", "id", "created_at", "data"],
        "properties": {
            "event": {"const": event.as_str()},
            "id": {
                "type": "string",
                "pattern": "^evt_[0-9A-Za-z]+$",
                "description": "The event's id (`evt_...`), also sent as `webhook-id`.",
            },
            "created_at": created_at,
            "data": data,
        },
        "additionalProperties": false,
    })
}

/// The Standard Webhooks headers, each a required header parameter.
fn headers() -> Value {
    let overlap_hours = ROTATION_OVERLAP.as_secs() / 3600;
    json!([
        {
            "name": "webhook-id",
            "in": "header",
            "required": true,
            "description": "The event's id (`evt_...`), the payload's `id`. It is the same on every \
                attempt and on a replay, so a receiver can drop duplicates.",
            "schema": {"type": "string", "pattern": "^evt_[0-9A-Za-z]+$"},
        },
        {
            "name": "webhook-timestamp",
            "in": "header",
            "required": true,
            "description": "When this attempt was sent, in Unix seconds. It is signed; reject a \
                message whose timestamp is far from your clock (Standard Webhooks suggests 5 \
                minutes) so that a captured message cannot be replayed.",
            "schema": {"type": "integer", "minimum": 0},
        },
        {
            "name": "webhook-signature",
            "in": "header",
            "required": true,
            "description": format!(
                "`v1,<base64 HMAC-SHA256>` over `{{webhook-id}}.{{webhook-timestamp}}.{{body}}` \
                 (the raw body as received), keyed with the bytes that the endpoint's secret \
                 encodes in base64 after `whsec_`. For {overlap_hours} h after a secret rotation \
                 the header holds one signature per secret, separated by a space: accept the \
                 message when any `v1` signature matches, compared in constant time."
            ),
            "schema": {
                "type": "string",
                "pattern": "^v1,[A-Za-z0-9+/]+={0,2}( v1,[A-Za-z0-9+/]+={0,2})*$",
            },
        },
    ])
}

/// What happens when a receiver does not answer 2xx, from the retry policy's defaults.
fn retry_terms() -> String {
    let retries = RETRY_SCHEDULE.len();
    let hours = RETRY_SCHEDULE.iter().map(|d| d.as_secs()).sum::<u64>() / 3600;
    let days = DISABLE_AFTER.as_secs() / (24 * 3600);
    format!(
        "Not delivered: any other status, or no answer (a connection error or timeout). The \
         delivery is retried with backoff and jitter, {retries} more times over about {hours} h; \
         a longer `Retry-After` on 429 or 503 is honoured (up to a day). Then the delivery is \
         marked failed, and an endpoint whose every attempt has failed for {days} days is disabled."
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::super::tests::resolve;
    use crate::catalog::Catalog;
    use crate::events::EventType;
    use crate::openapi::document;

    /// Follows `value`'s `$ref`, if it has one.
    fn deref<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(r) => resolve(doc, r).unwrap_or_else(|| panic!("dangling reference {r}")),
            None => value,
        }
    }

    #[test]
    fn every_event_type_is_a_webhook_whose_data_schema_resolves() {
        let doc = document(&Catalog::builtin());
        let webhooks = doc["webhooks"].as_object().unwrap();
        assert_eq!(webhooks.len(), EventType::ALL.len());
        for event in EventType::ALL {
            let post = &doc["webhooks"][event.as_str()]["post"];
            assert!(post.is_object(), "no webhook for {event}");
            let payload = &post["requestBody"]["content"]["application/json"]["schema"];
            assert_eq!(payload["properties"]["event"]["const"], event.as_str());
            let data = deref(&doc, &payload["properties"]["data"]);
            assert_eq!(data["type"], "object", "{event}: {data}");
            assert!(
                data["properties"]
                    .as_object()
                    .is_some_and(|p| !p.is_empty()),
                "{event}: {data}"
            );
            let created_at = deref(&doc, &payload["properties"]["created_at"]);
            assert_eq!(created_at["format"], "date-time", "{event}");

            let headers: Vec<&str> = post["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "header" && p["required"] == true)
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(
                headers,
                ["webhook-id", "webhook-timestamp", "webhook-signature"]
            );
            assert!(
                post["responses"]["2XX"].is_object() && post["responses"]["default"].is_object()
            );
        }
    }

    #[test]
    fn webhook_operation_ids_are_not_taken_by_paths() {
        let doc = document(&Catalog::builtin());
        let path_ids: Vec<&Value> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .map(|op| &op["operationId"])
            .collect();
        for (name, item) in doc["webhooks"].as_object().unwrap() {
            let id = &item["post"]["operationId"];
            assert!(id.is_string() && !path_ids.contains(&id), "{name}: {id}");
        }
    }

    #[test]
    fn the_ticket_created_data_has_the_documented_fields() {
        // The public docs' example payload: `{"ticket_id": 42, "subject": "Need help"}`.
        let doc = document(&Catalog::builtin());
        let payload = &doc["webhooks"]["ticket.created"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        let data = deref(&doc, &payload["properties"]["data"]);
        for field in ["ticket_id", "subject"] {
            assert!(
                data["required"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r == field),
                "{data}"
            );
        }
    }
}
