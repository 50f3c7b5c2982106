//! The one error type of OpsIQ, and its mapping onto the public status table.
//!
//! Every variant maps to exactly one HTTP status and one machine-readable `error` code; the
//! adapters never invent their own.

use crate::scope::Scope;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request body is not JSON at all.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// A query or path parameter is malformed or unknown.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter { name: String, reason: String },
    /// No bearer key, or one that does not verify.
    #[error("{0}")]
    Unauthorized(String),
    /// The key is valid but lacks the scope the action needs.
    #[error("this API key lacks the `{0}` scope")]
    ScopeRequired(Scope),
    /// The key's permissions block this action.
    #[error("this API key is not allowed to run `{0}`")]
    ActionBlocked(String),
    /// The action endpoint was asked for an action the catalog does not have.
    #[error("no action `{0}`")]
    ActionNotFound(String),
    /// The resource does not exist in the caller's workspace.
    #[error("no {resource} with id {id}")]
    NotFound { resource: &'static str, id: String },
    /// No route answers this path.
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    /// The path exists but not for this method.
    #[error("{method} is not allowed on {path}; allowed: {}", allowed.join(", "))]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: Vec<String>,
    },
    /// A field of the input is missing, of the wrong type or fails validation.
    #[error("field `{field}`: {reason}")]
    Validation { field: String, reason: String },
    /// The key made more requests than its limit allows.
    #[error("this API key is over its rate limit; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// An `Idempotency-Key` sent again with a different request.
    #[error(
        "this Idempotency-Key was used for a different request; use a new key for a new request"
    )]
    IdempotencyKeyReused,
    /// The request conflicts with another one in flight.
    #[error("{reason}")]
    Conflict { code: &'static str, reason: String },
    /// The request body is larger than the server accepts.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A required service (the database) cannot serve right now.
    #[error("{part} is unavailable: {reason}")]
    Unavailable { part: &'static str, reason: String },
    /// A bug or an unexpected fault; never caused by client input.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Validation {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn parameter(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(resource: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            resource,
            id: id.to_string(),
        }
    }

    /// The HTTP status of the public status table.
    pub fn status(&self) -> u16 {
        match self {
            Error::InvalidJson(_) | Error::InvalidParameter { .. } => 400,
            Error::Unauthorized(_) => 401,
            Error::ScopeRequired(_) | Error::ActionBlocked(_) => 403,
            Error::NotFound { .. } | Error::RouteNotFound { .. } | Error::ActionNotFound(_) => 404,
            Error::MethodNotAllowed { .. } => 405,
            Error::PayloadTooLarge { .. } => 413,
            Error::Conflict { .. } => 409,
            Error::IdempotencyKeyReused => 422,
            Error::RateLimited { .. } => 429,
            Error::Validation { .. } => 422,
            Error::Internal(_) => 500,
            Error::Unavailable { .. } => 503,
        }
    }

    /// The machine-readable `error` code: `<code>[:<detail>]`.
    pub fn code(&self) -> String {
        match self {
            Error::InvalidJson(_) => "invalid_json".into(),
            Error::InvalidParameter { name, .. } => format!("invalid_parameter:{name}"),
            Error::Unauthorized(_) => "unauthorized".into(),
            Error::ScopeRequired(scope) => format!("scope_required:{scope}"),
            Error::ActionBlocked(action) => format!("action_blocked:{action}"),
            Error::ActionNotFound(_) => "action_not_found".into(),
            Error::NotFound { resource, .. } => format!("not_found:{resource}"),
            Error::RouteNotFound { .. } => "route_not_found".into(),
            Error::MethodNotAllowed { .. } => "method_not_allowed".into(),
            Error::Validation { field, .. } => format!("validation_failed:{field}"),
            Error::PayloadTooLarge { .. } => "payload_too_large".into(),
            Error::Conflict { code, .. } => (*code).into(),
            Error::IdempotencyKeyReused => "idempotency_key_reused".into(),
            Error::RateLimited { .. } => "rate_limited".into(),
            Error::Unavailable { .. } => "service_unavailable".into(),
            Error::Internal(_) => "internal_error".into(),
        }
    }

    /// The field or parameter the error names, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidParameter { name, .. } => Some(name),
            Error::Validation { field, .. } => Some(field),
            Error::IdempotencyKeyReused => Some("Idempotency-Key"),
            _ => None,
        }
    }
}
