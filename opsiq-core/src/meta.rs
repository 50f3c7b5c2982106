//! `meta.me`: what the calling key is, what it may do (from the catalog), and how it has been
//! used (from the audit log).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::Action;
use crate::keys::PermissionsMode;
use crate::ratelimit::RateState;
use crate::service::{Call, Opsiq};
use crate::tenancy::{Site, Workspace};
use crate::types::{Id, NoParams, Timestamp};
use crate::{Error, Result, Scope};

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Me {
    pub key: KeyInfo,
    pub scopes: Vec<Scope>,
    pub permissions_mode: PermissionsMode,
    pub workspace: Workspace,
    /// The site the key acts for.
    pub site: Site,
    /// Catalog actions this key may run.
    pub allowed_actions: Vec<String>,
    /// Catalog actions this key may not run (missing scope or blocked).
    pub blocked_actions: Vec<String>,
    /// The key's rate limit and what is left of it after this request.
    pub rate_limit: Option<RateState>,
    pub usage: Usage,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct KeyInfo {
    pub id: Id,
    pub name: String,
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Usage {
    pub last_24h: UsageWindow,
    pub last_7d: UsageWindow,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UsageWindow {
    pub since: Timestamp,
    pub requests: i64,
    /// Requests grouped by action and outcome, busiest first.
    pub by_action: Vec<UsageRow>,
}

/// Requests of one action with one outcome, and their latency percentiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsageRow {
    /// The catalog action; `null` for requests that named none.
    pub action: Option<String>,
    /// `ok` or the error code.
    pub outcome: String,
    pub requests: i64,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Opsiq {
    pub fn me(&self, call: &Call, _input: NoParams) -> Result<Me> {
        let p = &call.principal;
        let now = Timestamp::now();
        let (day, week) = (Timestamp(now.0 - DAY_MS), Timestamp(now.0 - 7 * DAY_MS));
        let (key, workspace, site, last_24h, last_7d) = self.read(|r| {
            let key = r
                .key(p.key_id)?
                .ok_or_else(|| Error::not_found("key", p.key_id))?;
            let workspace = r
                .workspace(p.workspace_id)?
                .ok_or_else(|| Error::not_found("workspace", p.workspace_id))?;
            let site = r
                .site(p.site_id)?
                .ok_or_else(|| Error::not_found("site", p.site_id))?;
            Ok((
                key,
                workspace,
                site,
                r.usage(p.key_id, day)?,
                r.usage(p.key_id, week)?,
            ))
        })?;
        let (allowed, blocked): (Vec<&Action>, Vec<&Action>) = self
            .catalog()
            .actions()
            .iter()
            .partition(|a| p.check(a).is_ok());
        let window = |since, by_action: Vec<UsageRow>| UsageWindow {
            since,
            requests: by_action.iter().map(|r| r.requests).sum(),
            by_action,
        };
        Ok(Me {
            key: KeyInfo {
                id: key.id,
                name: key.name,
                prefix: key.prefix,
                created_at: key.created_at,
                last_used_at: key.last_used_at,
            },
            scopes: key.scopes,
            permissions_mode: key.permissions.mode,
            workspace,
            site,
            allowed_actions: allowed.iter().map(|a| a.id.clone()).collect(),
            blocked_actions: blocked.iter().map(|a| a.id.clone()).collect(),
            rate_limit: call.rate,
            usage: Usage {
                last_24h: window(day, last_24h),
                last_7d: window(week, last_7d),
            },
        })
    }
}

/// The `meta.me` action of the catalog.
pub fn actions() -> Vec<Action> {
    vec![Action::new("meta.me", None, "key", "Describe the calling key.", |op, call, i| op.me(call, i)).describe(
        "The verified key's name, scopes, permissions mode, workspace, active site, effective allowed and blocked \
         actions, and a usage summary of the last 24 hours and 7 days. Any valid key may call it.",
    )]
}
