//! The API request pipeline, the same for every door: authenticate the bearer key, check the
//! action's scope, decode the parameters, run the action, build the JSON envelope, audit.
//!
//! Adapters only translate: the HTTP adapter matches a route to an action and hands over the
//! raw parts of the request; everything with meaning happens here.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::audit::AuditEntry;
use crate::catalog::{Action, Output, Rendered};
use crate::idempotency::{self, Claim, Held, Record};
use crate::keys::{self, Principal};
use crate::ratelimit::RateState;
use crate::service::{Call, Opsiq, Verified};
use crate::store::UsageRecord;
use crate::types::{Id, RequestId, Timestamp};
use crate::{Error, Result};

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// An API request, as the adapter received it.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub request_id: RequestId,
    pub started: Instant,
    /// The raw `Authorization` header.
    pub authorization: Option<String>,
    /// Which door the request came through.
    pub door: Door,
    /// The `Idempotency-Key` header of a POST.
    pub idempotency_key: Option<String>,
    /// The raw body, if one was sent.
    pub body: Option<Vec<u8>>,
}

/// The two doors to the catalog.
#[derive(Debug, Clone)]
pub enum Door {
    /// A REST route bound to a catalog action.
    Rest {
        action: String,
        /// Parameters bound from the path template (`{id}`).
        path_params: Vec<(String, String)>,
        /// Decoded query-string pairs.
        query: Vec<(String, String)>,
    },
    /// The action endpoint `POST /v1.php`: `{"action": "<id>", "params": {...}}` in the body.
    ActionEndpoint,
}

/// What a request came to: an action's output, or the stored answer of an idempotent retry.
#[derive(Debug, Clone)]
pub enum Outcome {
    Output(Rendered),
    Replay { status: u16, body: String },
}

/// The answer: a status and a JSON body (the envelope).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub request_id: RequestId,
    /// Extra headers, named from [`EXTRA_HEADERS`]: the `RateLimit-*` fields, `Retry-After` on
    /// a 429, and `Idempotent-Replayed` on a replayed answer.
    pub headers: Vec<(&'static str, String)>,
}

/// The names of the extra headers an answer may carry (see [`ApiResponse::headers`]), in
/// lower case, for adapters to prepare once.
pub const EXTRA_HEADERS: [&str; 5] = [
    RATELIMIT_LIMIT,
    RATELIMIT_REMAINING,
    RATELIMIT_RESET,
    RETRY_AFTER,
    IDEMPOTENT_REPLAYED,
];
const RATELIMIT_LIMIT: &str = "ratelimit-limit";
const RATELIMIT_REMAINING: &str = "ratelimit-remaining";
const RATELIMIT_RESET: &str = "ratelimit-reset";
const RETRY_AFTER: &str = "retry-after";
const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The IETF `RateLimit-*` header fields for a key's standing, and `Retry-After` when refused.
fn rate_headers(state: &RateState, retry_after: Option<u64>) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        (RATELIMIT_LIMIT, state.limit.to_string()),
        (RATELIMIT_REMAINING, state.remaining.to_string()),
        (RATELIMIT_RESET, state.reset.to_string()),
    ];
    if let Some(seconds) = retry_after {
        headers.push((RETRY_AFTER, seconds.to_string()));
    }
    headers
}

#[derive(Serialize)]
struct Failure<'a> {
    success: bool,
    error: String,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    request_id: &'a str,
}

/// The error envelope `{"success":false,"error":"<code>","message":"...","request_id":"req_..."}`.
pub fn error_body(error: &Error, request_id: &RequestId) -> Vec<u8> {
    let failure = Failure {
        success: false,
        error: error.code(),
        message: error.to_string(),
        field: error.field(),
        request_id: request_id.as_str(),
    };
    serde_json::to_vec(&failure).unwrap_or_default()
}

/// The success envelope `{"success":true,"data":...,"request_id":"req_..."}` (lists add
/// `next_cursor`).
pub fn success_body(output: &Output, request_id: &RequestId) -> Vec<u8> {
    let data = serde_json::to_string(&output.data).unwrap_or_default();
    envelope(&data, output.next_cursor.as_ref(), request_id)
}

/// [`success_body`] for an action's result already rendered as JSON text. A result with room in
/// front of it (a page of stored records, see [`crate::types::PageText`]) is answered from its
/// own buffer: the envelope is written around it, not the result copied into the envelope.
pub fn rendered_body(rendered: Rendered, request_id: &RequestId) -> Vec<u8> {
    let cursor = rendered.next_cursor.as_ref();
    if rendered.headroom != OPENING.len() {
        return envelope(rendered.json(), cursor, request_id);
    }
    let mut out = rendered.text.into_bytes();
    out[..OPENING.len()].copy_from_slice(OPENING);
    close_envelope(&mut out, cursor, request_id);
    out
}

/// What a success envelope opens with, before its `data`.
const OPENING: &[u8] = b"{\"success\":true,\"data\":";
const _: () = assert!(OPENING.len() == crate::types::HEADROOM);

/// Writes the envelope around `data`, JSON text written as it is, in a buffer sized for it and
/// the fields around it, so that a page of a list is not copied again at every doubling.
fn envelope(data: &str, next_cursor: Option<&Option<String>>, request_id: &RequestId) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 160);
    out.extend_from_slice(OPENING);
    out.extend_from_slice(data.as_bytes());
    close_envelope(&mut out, next_cursor, request_id);
    out
}

/// Writes what follows `data` in a success envelope.
fn close_envelope(out: &mut Vec<u8>, next_cursor: Option<&Option<String>>, request_id: &RequestId) {
    // Strings go through serde_json for their escaping; writing into a Vec cannot fail.
    if let Some(cursor) = next_cursor {
        out.extend_from_slice(b",\"next_cursor\":");
        let _ = serde_json::to_writer(&mut *out, cursor);
    }
    out.extend_from_slice(b",\"request_id\":");
    let _ = serde_json::to_writer(&mut *out, request_id.as_str());
    out.push(b'}');
}

impl Opsiq {
    /// Verifies an `Authorization: Bearer opq_...` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal> {
        self.verify(authorization).map(Arc::unwrap_or_clone)
    }

    /// [`Opsiq::authenticate`], sharing the principal kept for the key rather than copying it.
    fn verify(&self, authorization: Option<&str>) -> Result<Arc<Principal>> {
        let header = authorization
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                Error::Unauthorized("send an API key as `Authorization: Bearer opq_...`".into())
            })?;
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(Error::Unauthorized(
                    "the Authorization header must use the Bearer scheme".into(),
                ));
            }
        };
        if !keys::looks_like_secret(token) {
            return Err(Error::Unauthorized(
                "the bearer token is not an OpsIQ API key".into(),
            ));
        }
        let digest = keys::digest(token);
        // The key generation is read in the same snapshot as the key, and as the request's
        // own reads when they share one view: a key changed or revoked by any process is
        // read afresh at the next request.
        let verified = self.read(|r| {
            let generation = r.key_generation()?;
            if let Some(kept) = self.key_cache().get(generation, &digest) {
                return Ok(Some(kept));
            }
            let Some(key) = r.key_by_hash(&keys::hex_sha256(digest))? else {
                return Ok(None);
            };
            let verified = match key.revoked_at {
                Some(_) => Verified::Revoked,
                None => Verified::Active(Arc::new(Principal::from_key(&key))),
            };
            self.key_cache().keep(generation, digest, &verified);
            Ok(Some(verified))
        })?;
        match verified {
            Some(Verified::Active(principal)) => Ok(principal),
            Some(Verified::Revoked) => {
                Err(Error::Unauthorized("the API key has been revoked".into()))
            }
            None => Err(Error::Unauthorized(
                "the API key is not valid (it may have been rotated)".into(),
            )),
        }
    }

    /// Handles one API request end to end. Never panics on client input; every outcome,
    /// including a failure, is audited.
    pub fn handle(&self, req: ApiRequest) -> ApiResponse {
        let started = req.started;
        let mut caller = None;
        let mut rate = None;
        // A route's action is looked up once; the action endpoint's comes with the body.
        let routed = match &req.door {
            Door::Rest { action, .. } => self.catalog().get(action),
            Door::ActionEndpoint => None,
        };
        // A route to a read verifies the key and reads in one view (one transaction).
        let reads_only = routed.is_some_and(|a| !a.mutates);
        let (call, result) = self.in_one_view(reads_only, || {
            self.dispatch(&req, routed, &mut caller, &mut rate)
        });
        let key = caller.map(|c: Caller| c.key_id);
        let mut headers = Vec::new();
        let (status, body, result) = match result {
            Ok(Outcome::Output(output)) => (
                call.as_ref().map_or(200, |c| c.success_status),
                rendered_body(output, &req.request_id),
                Ok(()),
            ),
            Ok(Outcome::Replay { status, body }) => {
                headers.push((IDEMPOTENT_REPLAYED, "true".to_string()));
                (status, body.into_bytes(), Ok(()))
            }
            Err(error) => (
                error.status(),
                error_body(&error, &req.request_id),
                Err(error),
            ),
        };
        // The claimed key keeps the answer, or is let go when nothing was changed.
        if let Some(held) = call.as_ref().and_then(|c| c.idempotency.clone()) {
            let (answer, text) = (status, String::from_utf8_lossy(&body).into_owned());
            let stored = if result.is_ok() {
                self.write(move |w| {
                    w.answer_idempotency(held.key_id, &held.idem_key, answer, &text)
                })
            } else {
                self.write(move |w| w.release_idempotency(held.key_id, &held.idem_key))
            };
            if let Err(e) = stored {
                tracing::warn!(request_id = %req.request_id, error = %e, "cannot store an idempotent response");
            }
        }
        let audit = match (&call, &result) {
            (Some(call), _) if call.is_audited() => None,
            (Some(call), result) => Some(call.audit_entry(result.as_ref().err())),
            (None, Err(error)) => Some(anonymous_audit(&req.request_id, started, caller, error)),
            (None, Ok(_)) => None,
        };
        self.record_usage(audit, key);
        let retry_after = match &result {
            Err(Error::RateLimited { retry_after }) => Some(*retry_after),
            _ => None,
        };
        headers.extend(
            rate.map(|state| rate_headers(&state, retry_after))
                .unwrap_or_default(),
        );
        ApiResponse {
            status,
            body,
            request_id: req.request_id,
            headers,
        }
    }

    /// Runs a catalog action for an already verified principal: the in-process door for
    /// embedders, with the same scope check, validation and audit row as the API.
    pub fn execute(&self, principal: &Principal, action: &str, params: Value) -> Result<Output> {
        let started = Instant::now();
        let request_id = RequestId::generate();
        let Some(action) = self.catalog().get(action) else {
            let error = Error::ActionNotFound(action.to_string());
            self.record_usage(
                Some(anonymous_audit(
                    &request_id,
                    started,
                    Some(Caller::of(principal)),
                    &error,
                )),
                Some(principal.key_id),
            );
            return Err(error);
        };
        let call = Call::new(
            principal.clone(),
            request_id,
            &action.id,
            started,
            action.success_status,
        );
        let result = self.in_one_view(!action.mutates, || match params {
            Value::Object(map) => self.run_action(&call, action, map),
            Value::Null => self.run_action(&call, action, Map::new()),
            other => Err(Error::validation(
                "params",
                format!("params must be a JSON object, not {}", kind(&other)),
            )),
        });
        let audit = (!call.is_audited()).then(|| call.audit_entry(result.as_ref().err()));
        self.record_usage(audit, Some(principal.key_id));
        result
    }

    /// Answers a request that failed before it reached an action (no route, body too large):
    /// the error envelope, audited like any other request.
    pub fn reject(&self, request_id: RequestId, started: Instant, error: Error) -> ApiResponse {
        self.record_usage(
            Some(anonymous_audit(&request_id, started, None, &error)),
            None,
        );
        ApiResponse {
            status: error.status(),
            body: error_body(&error, &request_id),
            request_id,
            headers: Vec::new(),
        }
    }

    /// Writes a request's audit row and the key's last use, without making the caller wait.
    fn record_usage(&self, audit: Option<AuditEntry>, key: Option<Id>) {
        let key = key.filter(|k| self.touch_due(*k));
        if audit.is_none() && key.is_none() {
            return;
        }
        self.store().record(UsageRecord {
            audit,
            touch: key.map(|k| (k, Timestamp::now())),
        });
    }

    /// Authenticates, resolves the action and runs it. The call is returned once the key is
    /// verified and the action known, so that its audit row names them.
    fn dispatch(
        &self,
        req: &ApiRequest,
        routed: Option<&Action>,
        caller_out: &mut Option<Caller>,
        rate_out: &mut Option<RateState>,
    ) -> (Option<Call>, Result<Outcome>) {
        let principal = match self.verify(req.authorization.as_deref()) {
            Ok(p) => p,
            Err(e) => return (None, Err(e)),
        };
        *caller_out = Some(Caller::of(&principal));
        // The rate limit comes before anything else runs: a refused request changes nothing.
        let rate = match self
            .rate_limits()
            .check(principal.key_id, principal.rate_limit)
        {
            Ok(state) => state,
            Err(exceeded) => {
                *rate_out = Some(exceeded.state);
                return (
                    None,
                    Err(Error::RateLimited {
                        retry_after: exceeded.retry_after,
                    }),
                );
            }
        };
        *rate_out = Some(rate);
        let (action, endpoint_params) = match self.resolve(req, routed) {
            Ok(resolved) => resolved,
            Err(e) => return (None, Err(e)),
        };
        let mut call = Call::new(
            principal,
            req.request_id.clone(),
            &action.id,
            req.started,
            action.success_status,
        );
        call.rate = Some(rate);
        // Permissions are checked before REST parameters are decoded: a key that may not run
        // the action learns nothing more.
        if let Err(e) = call.principal.check(action) {
            return (Some(call), Err(e));
        }
        if let Some(raw) = &req.idempotency_key {
            match self.claim(&call, action, raw, req) {
                Ok(None) => {}
                Ok(Some(replay)) => return (Some(call), Ok(replay)),
                Err(e) => return (Some(call), Err(e)),
            }
            call.idempotency = Some(Held {
                key_id: call.principal.key_id,
                idem_key: raw.clone(),
            });
        }
        let result = (|| {
            let params = match endpoint_params {
                Some(params) => params,
                None => rest_params(req).map_err(|e| relabel(e, req, action))?,
            };
            self.entered(&call, action, || action.render(self, &call, params))
                .map_err(|e| relabel(e, req, action))
        })();
        (Some(call), result.map(Outcome::Output))
    }

    /// Claims an idempotency key for this request: `None` to go ahead, or the stored answer of
    /// the same request made before.
    fn claim(
        &self,
        call: &Call,
        action: &Action,
        raw: &str,
        req: &ApiRequest,
    ) -> Result<Option<Outcome>> {
        let idem_key = idempotency::parse_key(raw)?;
        let (path, query) = match &req.door {
            Door::Rest {
                path_params, query, ..
            } => (format!("{path_params:?}"), format!("{query:?}")),
            Door::ActionEndpoint => (String::new(), String::new()),
        };
        let body = req.body.as_deref().unwrap_or_default();
        let fingerprint =
            idempotency::fingerprint(&action.id, &[path.as_bytes(), query.as_bytes(), body]);
        let (key, action_id) = (call.principal.key_id, action.id.clone());
        let claim = self.write(move |w| {
            let now = Timestamp::now();
            w.claim_idempotency(
                key,
                &idem_key,
                &action_id,
                &fingerprint,
                now,
                idempotency::expiry(now),
            )
            .map(|claim| (claim, fingerprint))
        })?;
        match claim {
            (Claim::Claimed, _) => Ok(None),
            (Claim::Existing(record), fingerprint)
                if record.action != action.id || record.fingerprint != fingerprint =>
            {
                Err(Error::IdempotencyKeyReused)
            }
            (
                Claim::Existing(Record {
                    response: Some((status, body)),
                    ..
                }),
                _,
            ) => Ok(Some(Outcome::Replay { status, body })),
            (Claim::Existing(record), _) => Err(Error::Conflict {
                code: "idempotency_key_in_use",
                reason: if record.committed {
                    "the first request with this key changed what it asked for, but its answer was lost; do not retry it".into()
                } else {
                    "a request with this key is still running; retry when it has answered".into()
                },
            }),
        }
    }

    /// The action a request is for (a route's was looked up already: `routed`), and for the
    /// action endpoint its parameters.
    fn resolve<'a>(
        &'a self,
        req: &ApiRequest,
        routed: Option<&'a Action>,
    ) -> Result<(&'a Action, Option<Map<String, Value>>)> {
        match &req.door {
            Door::Rest { action, .. } => Ok((routed.ok_or_else(|| unknown_action(action))?, None)),
            Door::ActionEndpoint => {
                let (id, params) = action_envelope(req.body.as_deref())?;
                let action = self.catalog().get(&id).ok_or(Error::ActionNotFound(id))?;
                Ok((action, Some(params)))
            }
        }
    }

    /// Checks the call's permissions, then decodes the parameters and runs the action.
    fn run_action(
        &self,
        call: &Call,
        action: &Action,
        params: Map<String, Value>,
    ) -> Result<Output> {
        self.entered(call, action, || action.run(self, call, params))
    }

    /// Checks the call's permissions, then runs `f`; an action that changes something runs as
    /// the thread's current call, so that its first write carries its audit row. One that
    /// changes nothing has no write to carry it: its row is written after the answer.
    fn entered<T>(&self, call: &Call, action: &Action, f: impl FnOnce() -> Result<T>) -> Result<T> {
        call.principal.check(action)?;
        let _entered = action.mutates.then(|| call.enter());
        f()
    }
}

/// Whose verified key a request came with: what its audit row names, should it not become a
/// call of an action.
#[derive(Clone, Copy)]
struct Caller {
    key_id: Id,
    workspace_id: Id,
}

impl Caller {
    fn of(principal: &Principal) -> Self {
        Caller {
            key_id: principal.key_id,
            workspace_id: principal.workspace_id,
        }
    }
}

/// The audit row of a request that did not become a call of an action.
fn anonymous_audit(
    request_id: &RequestId,
    started: Instant,
    caller: Option<Caller>,
    error: &Error,
) -> AuditEntry {
    AuditEntry {
        request_id: request_id.as_str().to_owned(),
        key_id: caller.map(|c| c.key_id),
        workspace_id: caller.map(|c| c.workspace_id),
        action: None,
        outcome: error.code(),
        status: error.status(),
        latency_us: started.elapsed().as_micros() as i64,
        created_at: Timestamp::now(),
    }
}

fn unknown_action(id: &str) -> Error {
    Error::RouteNotFound {
        method: "POST".into(),
        path: format!("action `{id}`"),
    }
}

/// Parses a JSON body that must be an object (an empty body is an empty object).
fn body_object(body: Option<&[u8]>) -> Result<Map<String, Value>> {
    match body.filter(|b| !b.iter().all(u8::is_ascii_whitespace)) {
        None => Ok(Map::new()),
        Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(Error::validation(
                "body",
                format!(
                    "the request body must be a JSON object, not {}",
                    kind(&other)
                ),
            )),
            Err(e) => Err(Error::InvalidJson(e.to_string())),
        },
    }
}

/// Reads the action endpoint's body: `{"action": "<id>", "params": {...}}`.
fn action_envelope(body: Option<&[u8]>) -> Result<(String, Map<String, Value>)> {
    let mut envelope = body_object(body)?;
    let action = match envelope.remove("action") {
        Some(Value::String(id)) if !id.trim().is_empty() => id,
        Some(other) => {
            return Err(Error::validation(
                "action",
                format!("must be an action id string, not {}", kind(&other)),
            ));
        }
        None => {
            return Err(Error::validation(
                "action",
                "the body must name an `action`, e.g. {\"action\":\"meta.me\"}",
            ));
        }
    };
    let params = match envelope.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(Error::validation(
                "params",
                format!("must be a JSON object, not {}", kind(&other)),
            ));
        }
    };
    if let Some(extra) = envelope.keys().next() {
        return Err(Error::validation(
            extra.clone(),
            "the action endpoint takes only `action` and `params`",
        ));
    }
    Ok((action, params))
}

/// Merges a REST request's parameters into one object: the JSON body's fields, then query
/// pairs, then path parameters (which nothing may override).
fn rest_params(req: &ApiRequest) -> Result<Map<String, Value>> {
    let mut params = body_object(req.body.as_deref())?;
    let Door::Rest {
        path_params, query, ..
    } = &req.door
    else {
        return Ok(params);
    };
    // An empty query parameter (`?q=&limit=`) is the same as an absent one.
    for (name, value) in query.iter().filter(|(_, v)| !v.is_empty()) {
        if query.iter().filter(|(n, _)| n == name).count() > 1 {
            return Err(Error::parameter(name, "is given more than once"));
        }
        params.insert(name.clone(), Value::String(value.clone()));
    }
    for (name, value) in path_params {
        params.insert(name.clone(), Value::String(value.clone()));
    }
    Ok(params)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// On a REST route, a validation error about a query parameter is a 400 naming the
/// parameter, and one about a path parameter means no such resource (404).
fn relabel(error: Error, req: &ApiRequest, action: &Action) -> Error {
    let (
        Error::Validation { field, reason },
        Door::Rest {
            path_params, query, ..
        },
    ) = (&error, &req.door)
    else {
        return error;
    };
    let root = field.split(['.', '[']).next().unwrap_or(field);
    if let Some((_, value)) = path_params.iter().find(|(name, _)| name == root) {
        return Error::not_found(action.noun, value);
    }
    if query.iter().any(|(name, _)| name == root) {
        return Error::parameter(root, reason.clone());
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Doc, Id, PageText};

    #[test]
    fn a_page_answered_from_its_own_text_reads_as_one_copied_into_the_envelope() {
        let request_id = RequestId::generate();
        let mut text = PageText::new();
        let ranges = [text.push(r#"{"id":2}"#), text.push(r#"{"id":1}"#)];
        let text = text.finish();
        let docs: Vec<Doc<()>> = ranges
            .into_iter()
            .map(|r| Doc::stored_in(Id(1), &text, r))
            .collect();
        drop(text);
        let joined = Doc::join(docs);
        assert_eq!(joined.headroom, OPENING.len(), "room for the envelope");
        let cursor = Some(Some("c1_1".to_string()));
        let in_place = Rendered {
            text: joined.text,
            headroom: joined.headroom,
            next_cursor: cursor.clone(),
        };
        let copied = Rendered {
            text: in_place.json().to_string(),
            headroom: 0,
            next_cursor: cursor,
        };
        let copied = rendered_body(copied, &request_id);
        assert_eq!(rendered_body(in_place, &request_id), copied);
        let parsed: serde_json::Value = serde_json::from_slice(&copied).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "success": true,
                "data": [{"id": 2}, {"id": 1}],
                "next_cursor": "c1_1",
                "request_id": request_id.as_str(),
            })
        );
    }
}
