//! The API request pipeline, the same for every door: authenticate the bearer key, check the
//! action's scope, decode the parameters, run the action, build the JSON envelope, audit.
//!
//! Adapters only translate: the HTTP adapter matches a route to an action and hands over the
//! raw parts of the request; everything with meaning happens here.

use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::audit::AuditEntry;
use crate::catalog::{Action, Output};
use crate::keys::{self, Principal};
use crate::service::{Call, Opsiq};
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
    /// The catalog action the route resolved to.
    pub action: String,
    /// Parameters bound from the path template (`{id}`).
    pub path_params: Vec<(String, String)>,
    /// Decoded query-string pairs.
    pub query: Vec<(String, String)>,
    /// The raw body, if one was sent.
    pub body: Option<Vec<u8>>,
}

/// The answer: a status and a JSON body (the envelope).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub request_id: RequestId,
}

#[derive(Serialize)]
struct Success<'a> {
    success: bool,
    data: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<&'a Option<String>>,
    request_id: &'a str,
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
    let success = Success {
        success: true,
        data: &output.data,
        next_cursor: output.next_cursor.as_ref(),
        request_id: request_id.as_str(),
    };
    serde_json::to_vec(&success).unwrap_or_default()
}

impl Opsiq {
    /// Verifies an `Authorization: Bearer opq_...` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal> {
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
        let hash = keys::hash(token);
        let key = self.read(|r| r.key_by_hash(&hash))?.ok_or_else(|| {
            Error::Unauthorized("the API key is not valid (it may have been rotated)".into())
        })?;
        if key.revoked_at.is_some() {
            return Err(Error::Unauthorized("the API key has been revoked".into()));
        }
        Ok(Principal::from_key(&key))
    }

    /// Handles one API request end to end. Never panics on client input; every outcome,
    /// including a failure, is audited.
    pub fn handle(&self, req: ApiRequest) -> ApiResponse {
        let mut principal = None;
        let result = self.dispatch(&req, &mut principal);
        let key = principal.as_ref().map(|p: &Principal| p.key_id);
        let (status, body, audit) = match &result {
            Ok((call, output)) => {
                let audit = (!call.is_audited()).then(|| call.audit_entry(None));
                (
                    call.success_status,
                    success_body(output, &req.request_id),
                    audit,
                )
            }
            Err(error) => {
                let entry = AuditEntry {
                    request_id: req.request_id.to_string(),
                    key_id: key,
                    workspace_id: principal.as_ref().map(|p| p.workspace_id),
                    action: self.catalog().get(&req.action).map(|a| a.id.clone()),
                    outcome: error.code(),
                    status: error.status(),
                    latency_us: req.started.elapsed().as_micros() as i64,
                    created_at: Timestamp::now(),
                };
                (
                    error.status(),
                    error_body(error, &req.request_id),
                    Some(entry),
                )
            }
        };
        self.record_usage(audit, key);
        ApiResponse {
            status,
            body,
            request_id: req.request_id,
        }
    }

    /// Runs a catalog action for an already verified principal: the in-process door for
    /// embedders, with the same scope check, validation and audit row as the API.
    pub fn execute(&self, principal: &Principal, action: &str, params: Value) -> Result<Output> {
        let params = match params {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => {
                return Err(Error::validation(
                    "params",
                    format!("params must be a JSON object, not {}", kind(&other)),
                ));
            }
        };
        let request_id = RequestId::generate();
        let result = self.run_action(
            principal.clone(),
            request_id,
            Instant::now(),
            action,
            params,
        );
        let audit = match &result {
            Ok(call) if call.0.is_audited() => None,
            Ok(call) => Some(call.0.audit_entry(None)),
            Err((call, error)) => call.as_ref().map(|c| c.audit_entry(Some(error))),
        };
        self.record_usage(audit, Some(principal.key_id));
        result.map(|(_, output)| output).map_err(|(_, error)| error)
    }

    /// Answers a request that failed before it reached an action (no route, body too large):
    /// the error envelope, audited like any other request.
    pub fn reject(&self, request_id: RequestId, started: Instant, error: Error) -> ApiResponse {
        let entry = AuditEntry {
            request_id: request_id.to_string(),
            key_id: None,
            workspace_id: None,
            action: None,
            outcome: error.code(),
            status: error.status(),
            latency_us: started.elapsed().as_micros() as i64,
            created_at: Timestamp::now(),
        };
        self.record_usage(Some(entry), None);
        ApiResponse {
            status: error.status(),
            body: error_body(&error, &request_id),
            request_id,
        }
    }

    /// Writes a request's audit row and the key's last use, without making the caller wait.
    fn record_usage(&self, audit: Option<AuditEntry>, key: Option<Id>) {
        if audit.is_none() && key.is_none() {
            return;
        }
        self.store().write_detached(Box::new(move |w| {
            if let Some(entry) = &audit {
                w.insert_audit(entry)?;
            }
            if let Some(key) = key {
                w.touch_key(key, Timestamp::now())?;
            }
            Ok(())
        }));
    }

    fn dispatch(
        &self,
        req: &ApiRequest,
        principal_out: &mut Option<Principal>,
    ) -> Result<(Call, Output)> {
        let principal = self.authenticate(req.authorization.as_deref())?;
        *principal_out = Some(principal.clone());
        let action = self
            .catalog()
            .get(&req.action)
            .ok_or_else(|| unknown_action(&req.action))?;
        if !principal.has(action.scope) {
            return Err(Error::ScopeRequired(action.scope));
        }
        let params = params(req)?;
        self.run_action(
            principal,
            req.request_id.clone(),
            req.started,
            &req.action,
            params,
        )
        .map_err(|(_, e)| relabel(e, req, action))
    }

    /// Checks the scope, then decodes and runs the action. On failure the call is returned when
    /// it got far enough to be audited under its action.
    #[allow(clippy::type_complexity)]
    fn run_action(
        &self,
        principal: Principal,
        request_id: RequestId,
        started: Instant,
        action_id: &str,
        params: Map<String, Value>,
    ) -> std::result::Result<(Call, Output), (Option<Call>, Error)> {
        let Some(action) = self.catalog().get(action_id) else {
            return Err((None, unknown_action(action_id)));
        };
        let call = Call::new(
            principal,
            request_id,
            &action.id,
            started,
            action.success_status,
        );
        if !call.principal.has(action.scope) {
            return Err((Some(call), Error::ScopeRequired(action.scope)));
        }
        match action.run(self, &call, params) {
            Ok(output) => Ok((call, output)),
            Err(error) => Err((Some(call), error)),
        }
    }
}

fn unknown_action(id: &str) -> Error {
    Error::RouteNotFound {
        method: "POST".into(),
        path: format!("action `{id}`"),
    }
}

/// Merges the request's parameters into one object: the JSON body's fields, then query pairs,
/// then path parameters (which nothing may override).
fn params(req: &ApiRequest) -> Result<Map<String, Value>> {
    let mut params = match req
        .body
        .as_deref()
        .filter(|b| !b.iter().all(u8::is_ascii_whitespace))
    {
        None => Map::new(),
        Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return Err(Error::validation(
                    "body",
                    format!(
                        "the request body must be a JSON object, not {}",
                        kind(&other)
                    ),
                ));
            }
            Err(e) => return Err(Error::InvalidJson(e.to_string())),
        },
    };
    for (name, value) in &req.query {
        if req.query.iter().filter(|(n, _)| n == name).count() > 1 {
            return Err(Error::parameter(name, "is given more than once"));
        }
        params.insert(name.clone(), Value::String(value.clone()));
    }
    for (name, value) in &req.path_params {
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

/// A validation error about a query parameter is a 400 naming the parameter; one about a path
/// parameter means no such resource (404).
fn relabel(error: Error, req: &ApiRequest, action: &Action) -> Error {
    let Error::Validation { field, reason } = &error else {
        return error;
    };
    let root = field.split(['.', '[']).next().unwrap_or(field);
    if let Some((_, value)) = req.path_params.iter().find(|(name, _)| name == root) {
        return Error::not_found(action.noun, value);
    }
    if req.query.iter().any(|(name, _)| name == root) {
        return Error::parameter(root, reason.clone());
    }
    error
}
