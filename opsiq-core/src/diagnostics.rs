//! `opsiq doctor`: what is wrong with an install, and what to do about it.

use schemars::JsonSchema;
use serde::Serialize;

use crate::Result;
use crate::service::Opsiq;
use crate::store::StoreHealth;
use crate::types::Timestamp;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Ok,
    Warning,
    /// Something is broken: `opsiq doctor` exits 1.
    Error,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Finding {
    pub check: String,
    pub severity: Severity,
    pub message: String,
    /// What to do about it (empty when all is well).
    pub advice: String,
}

impl Finding {
    pub fn new(
        check: &str,
        severity: Severity,
        message: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        Finding {
            check: check.into(),
            severity,
            message: message.into(),
            advice: advice.into(),
        }
    }
}

/// Keys unused for this long are reported.
const STALE_KEY_DAYS: i64 = 90;

/// The database's own findings: integrity, journal mode, schema version.
pub fn store_findings(health: &StoreHealth) -> Vec<Finding> {
    let mut out = Vec::new();
    match health.integrity.as_deref() {
        Some("ok") => out.push(Finding::new(
            "integrity",
            Severity::Ok,
            "integrity_check passed",
            "",
        )),
        Some(other) => out.push(Finding::new(
            "integrity",
            Severity::Error,
            format!("integrity_check reports: {other}"),
            "restore the latest backup with `opsiq restore --from FILE` (stop the server first)",
        )),
        None => {}
    }
    match health.journal_mode.as_deref() {
        Some("wal") | None => out.push(Finding::new(
            "journal_mode",
            Severity::Ok,
            "the database is in WAL mode",
            "",
        )),
        Some(other) => out.push(Finding::new(
            "journal_mode",
            Severity::Error,
            format!("the journal mode is `{other}`, not WAL"),
            "start `opsiq serve` once on this file: it switches the database to WAL",
        )),
    }
    if health.schema_version == health.expected_schema_version {
        out.push(Finding::new(
            "migrations",
            Severity::Ok,
            format!("schema version {} is current", health.schema_version),
            "",
        ));
    } else {
        out.push(Finding::new(
            "migrations",
            Severity::Error,
            format!("schema version {}, this build expects {}", health.schema_version, health.expected_schema_version),
            "run this build's `opsiq serve` once to migrate, or upgrade opsiq if the database is newer",
        ));
    }
    out
}

impl Opsiq {
    /// Findings about what the install holds: failing webhook endpoints, unused keys.
    pub fn data_findings(&self) -> Result<Vec<Finding>> {
        let now = Timestamp::now();
        let stale_before = Timestamp(now.0 - STALE_KEY_DAYS * 24 * 3600 * 1000);
        let (keys, endpoints) = self.read(|r| {
            let keys = r.keys(None)?;
            let mut endpoints = Vec::new();
            for workspace in r.workspaces()? {
                endpoints.extend(r.endpoints(workspace.id)?);
            }
            Ok((keys, endpoints))
        })?;
        let mut out = Vec::new();
        for e in &endpoints {
            if let Some(reason) = e.disabled_reason.as_deref().filter(|_| !e.enabled) {
                out.push(Finding::new(
                    "webhooks",
                    Severity::Warning,
                    format!("webhook endpoint {} ({}) is disabled: {reason}", e.id, e.url),
                    format!("fix the receiver, then `opsiq webhooks enable {}` and replay what it missed", e.id),
                ));
            } else if let Some(since) = e.failing_since.filter(|_| e.enabled) {
                out.push(Finding::new(
                    "webhooks",
                    Severity::Warning,
                    format!("webhook endpoint {} ({}) has failed every delivery since {since}", e.id, e.url),
                    format!("check the receiver; `opsiq webhooks deliveries --endpoint {}` shows each attempt", e.id),
                ));
            }
        }
        for k in keys.iter().filter(|k| k.revoked_at.is_none()) {
            match k.last_used_at {
                None => out.push(Finding::new(
                    "keys",
                    Severity::Warning,
                    format!("key {} \"{}\" has never been used", k.id, k.name),
                    format!(
                        "revoke it if nothing needs it: `opsiq keys revoke {}`",
                        k.id
                    ),
                )),
                Some(used) if used < stale_before => out.push(Finding::new(
                    "keys",
                    Severity::Warning,
                    format!("key {} \"{}\" has not been used since {used}", k.id, k.name),
                    format!(
                        "revoke it if nothing needs it: `opsiq keys revoke {}`",
                        k.id
                    ),
                )),
                Some(_) => {}
            }
        }
        if !out.iter().any(|f| f.check == "webhooks") {
            out.push(Finding::new(
                "webhooks",
                Severity::Ok,
                format!("{} webhook endpoints, none failing", endpoints.len()),
                "",
            ));
        }
        if !out.iter().any(|f| f.check == "keys") {
            out.push(Finding::new(
                "keys",
                Severity::Ok,
                "every active key is in use",
                "",
            ));
        }
        Ok(out)
    }
}
