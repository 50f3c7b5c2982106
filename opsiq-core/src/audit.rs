//! The audit/usage log: one row per API request (who, which action, outcome, latency), never the
//! caller's IP address.

use schemars::JsonSchema;
use serde::Serialize;

use crate::types::{Id, Timestamp};

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AuditEntry {
    pub request_id: String,
    /// The verified key, when the request got that far.
    pub key_id: Option<Id>,
    pub workspace_id: Option<Id>,
    /// The catalog action the request resolved to.
    pub action: Option<String>,
    /// `ok`, or the error code of the response.
    pub outcome: String,
    pub status: u16,
    pub latency_us: i64,
    pub created_at: Timestamp,
}
