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
use crate::types::{RequestId, Timestamp};
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
        let (status, body) = match &result {
            Ok((call, output)) => {
                if !call.is_audited() {
                    self.audit_detached(call.audit_entry(None));
                }
                (call.success_status, success_body(output, &req.request_id))
            }
            Err(error) => {
                if let Error::Internal(detail) = error {
                    tracing::error!(request_id = %req.request_id, action = %req.action, %detail, "internal error");
                }
                self.audit_detached(AuditEntry {
                    request_id: req.request_id.to_string(),
                    key_id: principal.as_ref().map(|p: &Principal| p.key_id),
                    workspace_id: principal.as_ref().map(|p| p.workspace_id),
                    action: self.catalog().get(&req.action).map(|a| a.id.clone()),
                    outcome: error.code(),
                    status: error.status(),
                    latency_us: req.started.elapsed().as_micros() as i64,
                    created_at: Timestamp::now(),
                });
                (error.status(), error_body(error, &req.request_id))
            }
        };
        if let Some(p) = &principal {
            let key = p.key_id;
            self.store()
                .write_detached(Box::new(move |w| w.touch_key(key, Timestamp::now())));
        }
        ApiResponse {
            status,
            body,
            request_id: req.request_id,
        }
    }

    /// Answers a request that failed before it reached an action (no route, body too large):
    /// the error envelope, audited like any other request.
    pub fn reject(&self, request_id: RequestId, started: Instant, error: Error) -> ApiResponse {
        self.audit_detached(AuditEntry {
            request_id: request_id.to_string(),
            key_id: None,
            workspace_id: None,
            action: None,
            outcome: error.code(),
            status: error.status(),
            latency_us: started.elapsed().as_micros() as i64,
            created_at: Timestamp::now(),
        });
        ApiResponse {
            status: error.status(),
            body: error_body(&error, &request_id),
            request_id,
        }
    }

    fn audit_detached(&self, entry: AuditEntry) {
        self.store()
            .write_detached(Box::new(move |w| w.insert_audit(&entry)));
    }

    fn dispatch(
        &self,
        req: &ApiRequest,
        principal_out: &mut Option<Principal>,
    ) -> Result<(Call, Output)> {
        let action = self
            .catalog()
            .get(&req.action)
            .ok_or_else(|| Error::RouteNotFound {
                method: "POST".into(),
                path: format!("action `{}`", req.action),
            })?;
        let principal = self.authenticate(req.authorization.as_deref())?;
        *principal_out = Some(principal.clone());
        if !principal.has(action.scope) {
            return Err(Error::ScopeRequired(action.scope));
        }
        let params = params(req)?;
        let call = Call::new(
            principal,
            req.request_id.clone(),
            &action.id,
            req.started,
            action.success_status,
        );
        let output = action
            .run(self, &call, params)
            .map_err(|e| relabel(e, req, action))?;
        Ok((call, output))
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
