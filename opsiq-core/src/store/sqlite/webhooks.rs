//! Webhook queries: endpoints, the fan-out of events to deliveries, leasing due deliveries,
//! and the attempt log.

use rusqlite::{Row, params};

use super::misc::{all, enum_col, event, exec, insert, json_col, json_text, one};
use super::{Db, db_err};
use crate::Result;
use crate::events::Event;
use crate::store::{WebhookReads, WebhookWrites};
use crate::types::{Id, Timestamp};
use crate::webhooks::{
    Attempt, AttemptOutcome, Delivery, DeliveryFilter, DeliveryStatus, Endpoint, EndpointFields,
    Outgoing, SigningSecrets,
};

const ENDPOINT: &str = "SELECT id, workspace_id, url, events, enabled, description, disabled_reason, failing_since, \
                        secret_rotated_at, created_at, updated_at FROM webhook_endpoints";

fn endpoint(r: &Row<'_>) -> rusqlite::Result<Endpoint> {
    let events: Option<String> = r.get("events")?;
    let events = match events {
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?),
        None => None,
    };
    Ok(Endpoint {
        id: r.get("id")?,
        workspace_id: r.get("workspace_id")?,
        url: r.get("url")?,
        events,
        enabled: r.get("enabled")?,
        description: r.get("description")?,
        disabled_reason: r.get("disabled_reason")?,
        failing_since: r.get("failing_since")?,
        secret_rotated_at: r.get("secret_rotated_at")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

const DELIVERY: &str = "SELECT d.id, d.endpoint_id, ev.id AS event_id, ev.type AS event_type, d.status, d.attempts, \
                        d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at \
                        FROM webhook_deliveries d JOIN events ev ON ev.seq = d.event_seq \
                        JOIN webhook_endpoints e ON e.id = d.endpoint_id";

fn delivery(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get("id")?,
        endpoint_id: r.get("endpoint_id")?,
        event_id: r.get("event_id")?,
        event: enum_col(r, "event_type")?,
        status: enum_col(r, "status")?,
        attempts: r.get("attempts")?,
        next_attempt_at: r.get("next_attempt_at")?,
        last_status_code: r.get("last_status_code")?,
        last_error: r.get("last_error")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

impl WebhookReads for Db<'_, '_> {
    fn endpoints(&self, workspace: Id) -> Result<Vec<Endpoint>> {
        all(
            self,
            &format!("{ENDPOINT} WHERE workspace_id = ?1 ORDER BY id"),
            [workspace],
            endpoint,
        )
    }

    fn endpoint(&self, workspace: Id, id: Id) -> Result<Option<Endpoint>> {
        one(
            self,
            &format!("{ENDPOINT} WHERE workspace_id = ?1 AND id = ?2"),
            [workspace, id],
            endpoint,
        )
    }

    fn deliveries(&self, workspace: Id, f: &DeliveryFilter) -> Result<Vec<Delivery>> {
        all(
            self,
            &format!(
                "{DELIVERY} WHERE e.workspace_id = ?1 AND (?2 IS NULL OR d.id < ?2) AND (?3 IS NULL OR d.endpoint_id = ?3) \
                 AND (?4 IS NULL OR ev.id = ?4) AND (?5 IS NULL OR d.status = ?5) ORDER BY d.id DESC LIMIT ?6"
            ),
            params![
                workspace,
                f.before.map(|c| c.0),
                f.endpoint,
                f.event_id,
                f.status.map(|s| s.as_str()),
                f.limit.get() + 1
            ],
            delivery,
        )
    }

    fn attempts(&self, delivery: Id) -> Result<Vec<Attempt>> {
        all(
            self,
            "SELECT id, delivery_id, attempted_at, status_code, latency_ms, error, response_body FROM webhook_attempts \
             WHERE delivery_id = ?1 ORDER BY id",
            [delivery],
            |r| {
                Ok(Attempt {
                    id: r.get("id")?,
                    delivery_id: r.get("delivery_id")?,
                    attempted_at: r.get("attempted_at")?,
                    status_code: r.get("status_code")?,
                    latency_ms: r.get("latency_ms")?,
                    error: r.get("error")?,
                    response_body: r.get("response_body")?,
                })
            },
        )
    }

    fn event_by_id(&self, workspace: Id, id: &str) -> Result<Option<Event>> {
        one(
            self,
            "SELECT id, workspace_id, type, data, created_at FROM events WHERE workspace_id = ?1 AND id = ?2",
            params![workspace, id],
            event,
        )
    }

    fn events_since(&self, workspace: Id, since: Timestamp) -> Result<Vec<Event>> {
        all(
            self,
            "SELECT id, workspace_id, type, data, created_at FROM events WHERE workspace_id = ?1 AND created_at >= ?2 ORDER BY seq",
            params![workspace, since],
            event,
        )
    }

    fn next_due_delivery(&self, now: Timestamp) -> Result<Option<Timestamp>> {
        one(
            self,
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status IN ('pending', 'retrying') \
             AND (lease_until IS NULL OR lease_until < ?1)",
            [now],
            |r| r.get(0),
        )
        .map(Option::flatten)
    }
}

impl WebhookWrites for Db<'_, '_> {
    fn insert_endpoint(
        &mut self,
        workspace: Id,
        f: &EndpointFields,
        secret: &str,
        now: Timestamp,
    ) -> Result<Id> {
        let events = f.events.as_ref().map(json_text).transpose()?;
        insert(
            self,
            "INSERT INTO webhook_endpoints (workspace_id, url, events, enabled, description, secret, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            params![
                workspace,
                f.url,
                events,
                f.enabled,
                f.description,
                secret,
                now
            ],
        )
    }

    fn update_endpoint(
        &mut self,
        workspace: Id,
        id: Id,
        f: &EndpointFields,
        now: Timestamp,
    ) -> Result<()> {
        let events = f.events.as_ref().map(json_text).transpose()?;
        exec(
            self,
            "UPDATE webhook_endpoints SET url = ?3, events = ?4, description = ?5, updated_at = ?6, \
             disabled_reason = CASE WHEN ?7 THEN NULL ELSE disabled_reason END, \
             failing_since = CASE WHEN ?7 AND NOT enabled THEN NULL ELSE failing_since END, enabled = ?7 \
             WHERE workspace_id = ?1 AND id = ?2",
            params![workspace, id, f.url, events, f.description, now, f.enabled],
        )?;
        Ok(())
    }

    fn rotate_endpoint_secret(
        &mut self,
        id: Id,
        secret: &str,
        previous_until: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        exec(
            self,
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = ?3, secret = ?2, \
             secret_rotated_at = ?4, updated_at = ?4 WHERE id = ?1",
            params![id, secret, previous_until, now],
        )?;
        Ok(())
    }

    fn delete_endpoint(&mut self, id: Id) -> Result<()> {
        exec(self, "DELETE FROM webhook_endpoints WHERE id = ?1", [id])?;
        Ok(())
    }

    fn disable_endpoint(&mut self, id: Id, reason: &str, now: Timestamp) -> Result<()> {
        exec(
            self,
            "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, reason, now],
        )?;
        Ok(())
    }

    fn queue_deliveries(
        &mut self,
        event: &Event,
        endpoint: Option<Id>,
        now: Timestamp,
    ) -> Result<usize> {
        exec(
            self,
            "INSERT INTO webhook_deliveries (endpoint_id, event_seq, status, next_attempt_at, created_at, updated_at) \
             SELECT e.id, ev.seq, 'pending', ?4, ?4, ?4 FROM webhook_endpoints e JOIN events ev ON ev.id = ?1 \
             WHERE e.workspace_id = ev.workspace_id AND e.enabled = 1 AND (?3 IS NULL OR e.id = ?3) \
             AND (e.events IS NULL OR EXISTS (SELECT 1 FROM json_each(e.events) WHERE value = ?2))",
            params![event.id, event.event.as_str(), endpoint, now],
        )
    }

    fn lease_due_deliveries(
        &mut self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        per_endpoint: u32,
    ) -> Result<Vec<Outgoing>> {
        // Due deliveries, at most `per_endpoint` in flight per endpoint, so that one slow
        // endpoint never takes every slot. Each enabled endpoint is probed through its own
        // indexes (its leased deliveries, then its first due ones), never by ranking every
        // waiting delivery; the earliest due of all the candidates go first.
        let endpoints: Vec<Id> = all(
            self,
            "SELECT id FROM webhook_endpoints WHERE enabled = 1 ORDER BY id",
            [],
            |r| r.get(0),
        )?;
        let mut due: Vec<(Timestamp, Id)> = Vec::new();
        for endpoint in endpoints {
            let in_flight: u32 = one(
                self,
                "SELECT COUNT(*) FROM webhook_deliveries INDEXED BY webhook_deliveries_endpoint_leased \
                 WHERE endpoint_id = ?1 AND status IN ('pending', 'retrying') AND lease_until >= ?2",
                params![endpoint, now],
                |r| r.get(0),
            )?
            .unwrap_or(0);
            let room = per_endpoint.saturating_sub(in_flight).min(limit);
            if room == 0 {
                continue;
            }
            due.extend(all(
                self,
                "SELECT next_attempt_at, id FROM webhook_deliveries INDEXED BY webhook_deliveries_endpoint_due \
                 WHERE endpoint_id = ?1 AND status IN ('pending', 'retrying') AND next_attempt_at <= ?2 \
                 AND (lease_until IS NULL OR lease_until < ?2) ORDER BY next_attempt_at, id LIMIT ?3",
                params![endpoint, now, room],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?);
        }
        due.sort();
        due.truncate(limit as usize);
        let ids: Vec<Id> = due.into_iter().map(|(_, id)| id).collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            exec(
                self,
                "UPDATE webhook_deliveries SET lease_until = ?2 WHERE id = ?1",
                params![id, lease_until],
            )?;
            let mut stmt = self.prepare("SELECT d.id, d.endpoint_id, d.attempts, e.url, e.secret, \
                     CASE WHEN e.previous_secret_until > ?2 THEN e.previous_secret END AS previous_secret, \
                     ev.id AS event_id, ev.workspace_id, ev.type, ev.data, ev.created_at \
                     FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                     JOIN events ev ON ev.seq = d.event_seq WHERE d.id = ?1")?;
            let outgoing = stmt
                .query_row(params![id, now], |r| {
                    let event = Event {
                        id: r.get("event_id")?,
                        workspace_id: r.get("workspace_id")?,
                        event: enum_col(r, "type")?,
                        created_at: r.get("created_at")?,
                        data: json_col(r, "data")?,
                    };
                    Ok(Outgoing {
                        delivery_id: r.get("id")?,
                        endpoint_id: r.get("endpoint_id")?,
                        url: r.get("url")?,
                        body: event.payload().to_string(),
                        event_id: event.id,
                        secrets: SigningSecrets {
                            current: r.get("secret")?,
                            previous: r.get("previous_secret")?,
                        },
                        attempts: r.get("attempts")?,
                    })
                })
                .map_err(db_err)?;
            out.push(outgoing);
        }
        Ok(out)
    }

    fn insert_attempt(&mut self, delivery: Id, o: &AttemptOutcome, now: Timestamp) -> Result<()> {
        exec(
            self,
            "INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, latency_ms, error, response_body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                delivery,
                now,
                o.status_code,
                o.latency_ms,
                o.error,
                o.response_body
            ],
        )?;
        Ok(())
    }

    fn set_delivery_state(
        &mut self,
        delivery: Id,
        status: DeliveryStatus,
        attempts: u32,
        next_attempt_at: Option<Timestamp>,
        o: &AttemptOutcome,
        now: Timestamp,
    ) -> Result<()> {
        exec(
            self,
            "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, lease_until = NULL, \
             last_status_code = ?5, last_error = ?6, updated_at = ?7 WHERE id = ?1",
            params![
                delivery,
                status.as_str(),
                attempts,
                next_attempt_at,
                o.status_code,
                o.error,
                now
            ],
        )?;
        Ok(())
    }

    fn mark_endpoint_result(
        &mut self,
        endpoint: Id,
        success: bool,
        now: Timestamp,
    ) -> Result<Option<Timestamp>> {
        if success {
            exec(
                self,
                "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?1",
                [endpoint],
            )?;
            return Ok(None);
        }
        exec(
            self,
            "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?2) WHERE id = ?1",
            params![endpoint, now],
        )?;
        one(
            self,
            "SELECT failing_since FROM webhook_endpoints WHERE id = ?1",
            [endpoint],
            |r| r.get(0),
        )
        .map(Option::flatten)
    }
}
