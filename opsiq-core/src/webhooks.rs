//! Webhooks: endpoints that subscribe to outbox events, Standard Webhooks signing, and the
//! delivery state machine (pending → delivered, or retrying with backoff → failed).
//!
//! The sending itself happens in the HTTP adapter's worker; this module decides what to send,
//! signs it, and records what came of each attempt. Deliveries are rows: they survive a
//! restart, and a second server on the same database could lease them too.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::catalog::{Action, Method};
use crate::events::EventType;
use crate::service::{Call, Opsiq};
use crate::types::{Cursor, Id, Limit, NoParams, Page, Timestamp, text, vocabulary};
use crate::{Error, Result, Scope};

/// Delays before each retry; with the first attempt that makes nine attempts over about 32 h.
pub const RETRY_SCHEDULE: [Duration; 8] = [
    Duration::from_secs(5),
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(12 * 3600),
    Duration::from_secs(12 * 3600),
];
/// An endpoint that has failed every attempt for this long is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(3 * 24 * 3600);
/// For this long after a rotation, deliveries are signed with the old secret too.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// How much of a receiver's answer the delivery log keeps.
pub const MAX_LOGGED_BODY: usize = 2048;

vocabulary!(
    /// Where a delivery is.
    DeliveryStatus { Pending = "pending", Retrying = "retrying", Delivered = "delivered", Failed = "failed" }
);

/// A subscribed URL. Its signing secret is never part of it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Endpoint {
    pub id: Id,
    pub workspace_id: Id,
    pub url: String,
    /// The event types it receives; `null` for all.
    pub events: Option<Vec<EventType>>,
    pub enabled: bool,
    pub description: String,
    /// Why the endpoint was disabled, when it was.
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed (`null` while deliveries succeed).
    pub failing_since: Option<Timestamp>,
    pub secret_rotated_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The secrets an endpoint's deliveries are signed with.
#[derive(Debug, Clone, PartialEq)]
pub struct SigningSecrets {
    pub current: String,
    /// The secret before the last rotation, while the overlap lasts.
    pub previous: Option<String>,
}

/// An endpoint to insert or the new state of one.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointFields {
    pub url: String,
    pub events: Option<Vec<EventType>>,
    pub enabled: bool,
    pub description: String,
}

/// A delivery of one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Delivery {
    pub id: Id,
    pub endpoint_id: Id,
    /// The event id, the `webhook-id` of every attempt.
    pub event_id: String,
    pub event: EventType,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Attempt {
    pub id: Id,
    pub delivery_id: Id,
    pub attempted_at: Timestamp,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// The start of the receiver's answer.
    pub response_body: Option<String>,
}

/// A leased delivery, ready to send: what the worker needs and nothing more.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub delivery_id: Id,
    pub endpoint_id: Id,
    pub url: String,
    pub event_id: String,
    /// The exact body to send (the event payload as JSON).
    pub body: String,
    pub secrets: SigningSecrets,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What came of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptOutcome {
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_body: Option<String>,
    /// A `Retry-After` the receiver asked for (429 and 503 only).
    pub retry_after: Option<Duration>,
}

impl AttemptOutcome {
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// How to filter the delivery log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryFilter {
    pub endpoint: Option<Id>,
    pub event_id: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub before: Option<Cursor>,
    pub limit: Limit,
}

/// A new signing secret: `whsec_` and the base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("whsec_{}", B64.encode(bytes))
}

fn secret_bytes(secret: &str) -> Result<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    B64.decode(encoded)
        .map_err(|_| Error::validation("secret", "a signing secret is `whsec_` and base64"))
}

/// The `webhook-signature` value for a message: `v1,<base64 HMAC-SHA256>` per secret, joined by
/// spaces, over `{id}.{timestamp}.{body}` (the Standard Webhooks scheme).
pub fn sign(secrets: &SigningSecrets, msg_id: &str, timestamp: i64, body: &str) -> Result<String> {
    let mut signatures = Vec::new();
    for secret in std::iter::once(&secrets.current).chain(secrets.previous.as_ref()) {
        let mut mac = Hmac::<Sha256>::new_from_slice(&secret_bytes(secret)?)
            .map_err(|e| Error::Internal(e.to_string()))?;
        mac.update(format!("{msg_id}.{timestamp}.{body}").as_bytes());
        signatures.push(format!("v1,{}", B64.encode(mac.finalize().into_bytes())));
    }
    Ok(signatures.join(" "))
}

/// Verifies a delivery as a receiver would: one of the `v1` signatures must match, and the
/// timestamp must be within `tolerance` of `now` (unix seconds).
pub fn verify(
    secret: &str,
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &str,
    now: i64,
    tolerance: i64,
) -> Result<()> {
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| Error::validation("webhook-timestamp", "not a unix timestamp"))?;
    if (now - ts).abs() > tolerance {
        return Err(Error::validation(
            "webhook-timestamp",
            "outside the tolerance window",
        ));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret_bytes(secret)?)
        .map_err(|e| Error::Internal(e.to_string()))?;
    mac.update(format!("{msg_id}.{ts}.{body}").as_bytes());
    let expected = mac.finalize().into_bytes();
    let ok = signature_header
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| B64.decode(s).ok())
        .any(|sig| constant_time_eq(&sig, &expected));
    if ok {
        Ok(())
    } else {
        Err(Error::validation(
            "webhook-signature",
            "no signature matches",
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// When deliveries are retried and when a failing endpoint is given up on.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delays before each retry.
    pub schedule: Vec<Duration>,
    /// An endpoint failing every attempt for this long is disabled.
    pub disable_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            schedule: RETRY_SCHEDULE.to_vec(),
            disable_after: DISABLE_AFTER,
        }
    }
}

impl RetryPolicy {
    /// When to try again after `attempts` failed attempts, or `None` when the schedule is
    /// over. Adds ±10% jitter; a receiver's `Retry-After` is honoured when it asks for longer
    /// (up to a day).
    pub fn next_retry(&self, attempts: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let base = *self.schedule.get(attempts.checked_sub(1)? as usize)?;
        let delay = base.mul_f64(rand::rng().random_range(0.9..1.1));
        Some(match retry_after {
            Some(asked) => delay.max(asked.min(Duration::from_secs(24 * 3600))),
            None => delay,
        })
    }
}

/// A URL a webhook may be sent to: absolute http(s), with a host, at most 2000 characters.
pub fn parse_url(raw: &str) -> Result<String> {
    let url = raw;
    let bad = |why: &str| {
        Err(Error::validation(
            "url",
            format!("`{raw}` is not a webhook URL: {why}"),
        ))
    };
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return bad("it must start with https:// or http://");
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    // A well-formed URL (an IPv6 literal closed, a valid port, a real host).
    match url::Url::parse(url) {
        Ok(parsed) if parsed.host_str().is_some_and(|h| !h.is_empty()) => {}
        _ => return bad("it is not a well-formed URL"),
    }
    if host.is_empty()
        || host.contains('@')
        || url.len() > 2000
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return bad("it needs a host and no credentials or spaces");
    }
    Ok(url.to_string())
}

fn parse_events(events: Option<Vec<String>>) -> Result<Option<Vec<EventType>>> {
    let Some(names) = events else { return Ok(None) };
    if names.is_empty() || names.iter().any(|n| n == "*") {
        return Ok(None);
    }
    let mut types = names
        .iter()
        .map(|n| {
            n.parse::<EventType>()
                .map_err(|e| Error::validation("events", e))
        })
        .collect::<Result<Vec<_>>>()?;
    types.sort_by_key(|t| t.as_str());
    types.dedup();
    Ok(Some(types))
}

/// A new endpoint, as the operator describes it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    #[schemars(
        length(max = 2000),
        regex(
            pattern = "^https?://[^/?#@\\s\\u0000-\\u001f\\u007f-\\u009f]+[^\\s\\u0000-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub url: String,
    /// Event types to receive (`["ticket.created"]`); all when absent, empty or `["*"]`.
    #[schemars(with = "Option<Vec<EventSelector>>")]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub description: String,
}

/// An event type, or `*` for all of them (for the schema of `events`).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum EventSelector {
    One(EventType),
    All(AllEvents),
}

#[derive(JsonSchema)]
#[allow(dead_code)]
enum AllEvents {
    #[serde(rename = "*")]
    All,
}

/// Changes to an endpoint; absent fields stay as they are.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    {"required": ["url"]}, {"required": ["events"]}, {"required": ["description"]}, {"required": ["enabled"]}
]))]
pub struct UpdateEndpoint {
    pub id: Id,
    #[schemars(
        length(max = 2000),
        regex(
            pattern = "^https?://[^/?#@\\s\\u0000-\\u001f\\u007f-\\u009f]+[^\\s\\u0000-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub url: Option<String>,
    #[schemars(with = "Option<Vec<EventSelector>>")]
    pub events: Option<Vec<String>>,
    #[schemars(length(max = 500))]
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointId {
    pub id: Id,
}

/// An endpoint just created, or its secret just rotated: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    pub secret: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDeliveries {
    pub endpoint_id: Option<Id>,
    /// An event id (`evt_...`).
    #[schemars(length(max = 100))]
    pub event_id: Option<String>,
    pub status: Option<DeliveryStatus>,
    #[serde(default)]
    pub limit: Limit,
    pub cursor: Option<Cursor>,
}

/// A delivery with its attempts.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeliveryLog {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub attempts_log: Vec<Attempt>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// Exactly one of the two, given as a string: a null counts as not given (the server reads it
// so), which a bare `required` would not say.
#[schemars(extend("oneOf" = [
    {"required": ["event_id"], "properties": {"event_id": {"type": "string"}}},
    {"required": ["since"], "properties": {"since": {"type": "string"}}}
]))]
pub struct Replay {
    /// One event to deliver again (`evt_...`).
    pub event_id: Option<String>,
    /// Or every event since this time (RFC 3339).
    pub since: Option<Timestamp>,
    /// Only to this endpoint (default: every endpoint subscribed to the event).
    pub endpoint_id: Option<Id>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Replayed {
    /// Deliveries queued, each with the event's original id.
    pub deliveries: usize,
    pub events: usize,
}

impl Opsiq {
    pub fn create_endpoint(
        &self,
        workspace: Id,
        input: CreateEndpoint,
    ) -> Result<EndpointWithSecret> {
        let fields = EndpointFields {
            url: parse_url(&input.url)?,
            events: parse_events(input.events)?,
            enabled: true,
            description: text("description", &input.description, 500, false)?,
        };
        let secret = generate_secret();
        let stored = secret.clone();
        let endpoint = self.write(move |w| {
            w.workspace(workspace)?
                .ok_or_else(|| Error::not_found("workspace", workspace))?;
            let id = w.insert_endpoint(workspace, &fields, &stored, Timestamp::now())?;
            w.endpoint(workspace, id)?
                .ok_or_else(|| Error::Internal("endpoint vanished".into()))
        })?;
        Ok(EndpointWithSecret { endpoint, secret })
    }

    pub fn list_endpoints(&self, workspace: Id) -> Result<Vec<Endpoint>> {
        self.read(|r| r.endpoints(workspace))
    }

    pub fn update_endpoint(&self, workspace: Id, input: UpdateEndpoint) -> Result<Endpoint> {
        if input.url.is_none()
            && input.events.is_none()
            && input.description.is_none()
            && input.enabled.is_none()
        {
            return Err(Error::validation(
                "params",
                "give at least one of url, events, description, enabled",
            ));
        }
        let url = input.url.as_deref().map(parse_url).transpose()?;
        let events = input.events.map(|e| parse_events(Some(e))).transpose()?;
        let description = input
            .description
            .as_deref()
            .map(|d| text("description", d, 500, false))
            .transpose()?;
        let id = input.id;
        self.write(move |w| {
            let current = w
                .endpoint(workspace, id)?
                .ok_or_else(|| Error::not_found("webhook_endpoint", id))?;
            let fields = EndpointFields {
                url: url.unwrap_or(current.url),
                events: events.unwrap_or(current.events),
                enabled: input.enabled.unwrap_or(current.enabled),
                description: description.unwrap_or(current.description),
            };
            w.update_endpoint(workspace, id, &fields, Timestamp::now())?;
            w.endpoint(workspace, id)?
                .ok_or_else(|| Error::Internal("endpoint vanished".into()))
        })
    }

    /// Gives an endpoint a new secret; the old one keeps signing alongside for 24 hours.
    pub fn rotate_endpoint_secret(&self, workspace: Id, id: Id) -> Result<EndpointWithSecret> {
        let secret = generate_secret();
        let stored = secret.clone();
        let endpoint = self.write(move |w| {
            w.endpoint(workspace, id)?
                .ok_or_else(|| Error::not_found("webhook_endpoint", id))?;
            let now = Timestamp::now();
            let until = Timestamp(now.0 + ROTATION_OVERLAP.as_millis() as i64);
            w.rotate_endpoint_secret(id, &stored, until, now)?;
            w.endpoint(workspace, id)?
                .ok_or_else(|| Error::Internal("endpoint vanished".into()))
        })?;
        Ok(EndpointWithSecret { endpoint, secret })
    }

    /// Removes an endpoint and its delivery log.
    pub fn remove_endpoint(&self, workspace: Id, id: Id) -> Result<Endpoint> {
        self.write(move |w| {
            let endpoint = w
                .endpoint(workspace, id)?
                .ok_or_else(|| Error::not_found("webhook_endpoint", id))?;
            w.delete_endpoint(id)?;
            Ok(endpoint)
        })
    }

    pub fn list_deliveries(
        &self,
        workspace: Id,
        input: ListDeliveries,
    ) -> Result<Page<DeliveryLog>> {
        if input
            .event_id
            .as_ref()
            .is_some_and(|id| id.chars().count() > 100)
        {
            return Err(Error::validation(
                "event_id",
                "must be at most 100 characters",
            ));
        }
        let filter = DeliveryFilter {
            endpoint: input.endpoint_id,
            event_id: input.event_id,
            status: input.status,
            before: input.cursor,
            limit: input.limit,
        };
        let rows = self.read(|r| {
            r.deliveries(workspace, &filter)?
                .into_iter()
                .map(|d| {
                    Ok(DeliveryLog {
                        attempts_log: r.attempts(d.id)?,
                        delivery: d,
                    })
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(Page::from_rows(rows, filter.limit, |d| d.delivery.id.0))
    }

    /// Queues every matching event again, to every subscribed endpoint or to one, with the
    /// events' original ids (receivers deduplicate by `webhook-id`).
    pub fn replay(&self, workspace: Id, input: Replay) -> Result<Replayed> {
        if input.event_id.is_none() == input.since.is_none() {
            return Err(Error::validation(
                "event_id",
                "give either an event id or `since`",
            ));
        }
        self.write(move |w| {
            if let Some(endpoint) = input.endpoint_id {
                w.endpoint(workspace, endpoint)?
                    .ok_or_else(|| Error::not_found("webhook_endpoint", endpoint))?;
            }
            let events = match (&input.event_id, input.since) {
                (Some(id), _) => vec![
                    w.event_by_id(workspace, id)?
                        .ok_or_else(|| Error::not_found("event", id))?,
                ],
                (None, Some(since)) => w.events_since(workspace, since)?,
                (None, None) => Vec::new(),
            };
            let mut deliveries = 0;
            for event in &events {
                deliveries += w.queue_deliveries(event, input.endpoint_id, Timestamp::now())?;
            }
            Ok(Replayed {
                deliveries,
                events: events.len(),
            })
        })
    }

    /// Leases up to `limit` due deliveries (at most `per_endpoint` per endpoint) for
    /// `lease`, so that no other worker sends them meanwhile.
    pub fn lease_deliveries(
        &self,
        limit: u32,
        per_endpoint: u32,
        lease: Duration,
    ) -> Result<Vec<Outgoing>> {
        self.write(move |w| {
            let now = Timestamp::now();
            w.lease_due_deliveries(
                now,
                Timestamp(now.0 + lease.as_millis() as i64),
                limit,
                per_endpoint,
            )
        })
    }

    /// Records an attempt and moves the delivery on: delivered, retrying later, or failed.
    /// An endpoint that has failed everything for three days is disabled.
    pub fn record_attempt(
        &self,
        outgoing: &Outgoing,
        outcome: AttemptOutcome,
        policy: &RetryPolicy,
    ) -> Result<DeliveryStatus> {
        let (delivery, endpoint, attempts) = (
            outgoing.delivery_id,
            outgoing.endpoint_id,
            outgoing.attempts + 1,
        );
        let retry = if outcome.succeeded() {
            None
        } else {
            policy.next_retry(attempts, outcome.retry_after)
        };
        let disable_after = policy.disable_after;
        self.write(move |w| {
            let now = Timestamp::now();
            let status = match (outcome.succeeded(), retry) {
                (true, _) => DeliveryStatus::Delivered,
                (false, Some(_)) => DeliveryStatus::Retrying,
                (false, None) => DeliveryStatus::Failed,
            };
            let next = retry.map(|d| Timestamp(now.0 + d.as_millis() as i64));
            w.insert_attempt(delivery, &outcome, now)?;
            w.set_delivery_state(delivery, status, attempts, next, &outcome, now)?;
            let failing_since = w.mark_endpoint_result(endpoint, outcome.succeeded(), now)?;
            if let Some(since) = failing_since
                && now.0 - since.0 >= disable_after.as_millis() as i64
            {
                let reason = format!("disabled automatically: every delivery failed since {since}");
                tracing::warn!(endpoint = %endpoint, %reason, "webhook endpoint disabled");
                w.disable_endpoint(endpoint, &reason, now)?;
            }
            Ok(status)
        })
    }
}

fn workspace_of(call: &Call) -> Id {
    call.principal.workspace_id
}

/// The webhook actions of the catalog (admin scope).
pub fn actions() -> Vec<Action> {
    use Scope::Admin;
    vec![
        Action::new("webhooks.list", Admin, "webhook_endpoint", "List webhook endpoints.", |op, call, _: NoParams| {
            op.list_endpoints(workspace_of(call))
        })
        .route(Method::Get, "/webhooks"),
        Action::new("webhooks.add", Admin, "webhook_endpoint", "Subscribe a URL to events.", |op, call, i| {
            op.create_endpoint(workspace_of(call), i)
        })
        .route(Method::Post, "/webhooks")
        .mutating(true)
        .describe("Returns the endpoint's signing secret (`whsec_...`) once; deliveries are signed per Standard Webhooks.")
        .example(serde_json::json!({"url": "https://example.com/opsiq-hook", "events": ["ticket.created", "ticket.updated"]})),
        Action::new("webhooks.update", Admin, "webhook_endpoint", "Change a webhook endpoint.", |op, call, i| {
            op.update_endpoint(workspace_of(call), i)
        })
        .route(Method::Patch, "/webhooks/{id}")
        .route(Method::Put, "/webhooks/{id}")
        .mutating(false),
        Action::new("webhooks.rotate_secret", Admin, "webhook_endpoint", "Rotate an endpoint's signing secret.", |op, call, i: EndpointId| {
            op.rotate_endpoint_secret(workspace_of(call), i.id)
        })
        .route(Method::Post, "/webhooks/{id}/rotate-secret")
        .mutating(false)
        .describe("For 24 hours deliveries carry signatures by both the new and the old secret."),
        Action::new("webhooks.remove", Admin, "webhook_endpoint", "Remove a webhook endpoint.", |op, call, i: EndpointId| {
            op.remove_endpoint(workspace_of(call), i.id)
        })
        .route(Method::Delete, "/webhooks/{id}")
        .mutating(false),
        Action::list("webhooks.deliveries", Admin, "delivery", "The webhook delivery log.", |op, call, i| {
            op.list_deliveries(workspace_of(call), i)
        })
        .route(Method::Get, "/webhooks/deliveries")
        .describe("Every delivery with each attempt: time, status code, latency, error and the start of the response."),
        Action::new("webhooks.replay", Admin, "event", "Deliver events again.", |op, call, i| op.replay(workspace_of(call), i))
            .route(Method::Post, "/webhooks/replay")
            .mutating(false)
            .describe("One event by id, or every event since a time; same event ids, so receivers can deduplicate."),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_test_vector() {
        // The published test vector of the Standard Webhooks specification.
        let secrets = SigningSecrets {
            current: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            previous: None,
        };
        let body = r#"{"test": 2432232314}"#;
        let sig = sign(&secrets, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        verify(
            &secrets.current,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            &sig,
            body,
            1614265330,
            300,
        )
        .unwrap();
        assert!(
            verify(
                &secrets.current,
                "msg_other",
                "1614265330",
                &sig,
                body,
                1614265330,
                300
            )
            .is_err()
        );
        assert!(
            verify(
                &secrets.current,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                "1614265330",
                &sig,
                body,
                1614265330 + 3600,
                300
            )
            .is_err()
        );
    }

    #[test]
    fn during_a_rotation_both_secrets_sign() {
        let old = generate_secret();
        let new = generate_secret();
        assert!(new.starts_with("whsec_") && B64.decode(&new[6..]).unwrap().len() == 32);
        let secrets = SigningSecrets {
            current: new.clone(),
            previous: Some(old.clone()),
        };
        let sig = sign(&secrets, "evt_1", 10, "{}").unwrap();
        assert_eq!(sig.split(' ').count(), 2);
        verify(&old, "evt_1", "10", &sig, "{}", 10, 5).unwrap();
        verify(&new, "evt_1", "10", &sig, "{}", 10, 5).unwrap();
    }

    #[test]
    fn retries_back_off_over_more_than_a_day_then_stop() {
        let total: Duration = RETRY_SCHEDULE.iter().sum();
        assert!(total >= Duration::from_secs(24 * 3600), "{total:?}");
        let policy = RetryPolicy::default();
        let first = policy.next_retry(1, None).unwrap();
        assert!(
            first >= Duration::from_millis(4500) && first <= Duration::from_millis(5500),
            "{first:?}"
        );
        assert!(
            policy
                .next_retry(1, Some(Duration::from_secs(120)))
                .unwrap()
                >= Duration::from_secs(120),
            "Retry-After is honoured"
        );
        assert_eq!(
            policy.next_retry(RETRY_SCHEDULE.len() as u32 + 1, None),
            None
        );
    }

    #[test]
    fn urls_and_event_lists_are_validated() {
        assert!(parse_url("https://example.com/hook").is_ok());
        assert!(parse_url("http://127.0.0.1:9000/x").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "example.com",
            "https://user:pw@x.com/",
            "https://x.com/a b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_events(Some(vec!["*".into()])).unwrap(), None);
        assert_eq!(
            parse_events(Some(vec!["ticket.updated".into()])).unwrap(),
            Some(vec![EventType::TicketUpdated])
        );
        assert_eq!(
            parse_events(Some(vec!["ticket.deleted".into()]))
                .unwrap_err()
                .code(),
            "validation_failed:events"
        );
    }
}
