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
/// Usage is counted per hour: the windows of `meta.me` start on the hour.
pub const HOUR_MS: i64 = 60 * 60 * 1000;

/// Sub-buckets per power of two of a latency in microseconds: a bucket spans at most 1/8 of
/// its values, so a percentile read back from buckets is within about 6% of the exact one.
const SUB_BUCKETS: i64 = 8;

/// The bucket a latency (in microseconds) is counted in: exact below 8 µs, then 8 buckets per
/// power of two, so any latency up to hours fits in a few hundred buckets.
pub fn latency_bucket(us: i64) -> i64 {
    let us = us.max(0);
    if us < SUB_BUCKETS {
        return us;
    }
    let exponent = 63 - i64::from(us.leading_zeros()); // >= 3
    let sub = (us >> (exponent - 3)) & (SUB_BUCKETS - 1);
    (exponent - 2) * SUB_BUCKETS + sub
}

/// The latency a bucket stands for: the middle of its range, in microseconds.
pub fn bucket_latency_us(bucket: i64) -> f64 {
    if bucket < SUB_BUCKETS {
        return bucket as f64;
    }
    let exponent = bucket / SUB_BUCKETS + 2;
    let sub = bucket % SUB_BUCKETS;
    let low = (SUB_BUCKETS | sub) << (exponent - 3);
    low as f64 + ((1i64 << (exponent - 3)) as f64 - 1.0) / 2.0
}

/// An action's name (empty when the request named none) and the outcome.
pub type ActionOutcome = (String, String);

/// Turns each action and outcome's counts per latency bucket (in bucket order) into its row,
/// with nearest-rank p50 and p95; busiest first.
pub fn usage_rows(
    groups: impl IntoIterator<Item = (ActionOutcome, Vec<(i64, i64)>)>,
) -> Vec<UsageRow> {
    let mut rows: Vec<UsageRow> = groups
        .into_iter()
        .map(|((action, outcome), counts)| {
            let requests: i64 = counts.iter().map(|(_, n)| n).sum();
            let percentile = |p: i64| {
                let rank = (requests * p + 99) / 100;
                let mut seen = 0;
                for (bucket, n) in &counts {
                    seen += n;
                    if seen >= rank {
                        return bucket_latency_us(*bucket) / 1000.0;
                    }
                }
                0.0
            };
            UsageRow {
                p50_ms: percentile(50),
                p95_ms: percentile(95),
                // Requests that named no action are counted under the empty name.
                action: (!action.is_empty()).then_some(action),
                outcome,
                requests,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.action.cmp(&b.action))
            .then_with(|| a.outcome.cmp(&b.outcome))
    });
    rows
}

impl Opsiq {
    pub fn me(&self, call: &Call, _input: NoParams) -> Result<Me> {
        let p = &call.principal;
        let now = Timestamp::now();
        let on_the_hour = |t: i64| Timestamp(t.div_euclid(HOUR_MS) * HOUR_MS);
        let (day, week) = (on_the_hour(now.0 - DAY_MS), on_the_hour(now.0 - 7 * DAY_MS));
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
            let mut usage = r.usage(p.key_id, &[day, week])?.into_iter();
            let mut next = || usage.next().unwrap_or_default();
            let (last_24h, last_7d) = (next(), next());
            Ok((key, workspace, site, last_24h, last_7d))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_keep_percentiles_within_a_sixteenth() {
        let mut last = -1;
        for us in (0..2_000_000).step_by(7).chain([i64::MAX / 2]) {
            let bucket = latency_bucket(us);
            assert!(bucket >= last, "buckets grow with latency");
            last = bucket;
            let back = bucket_latency_us(bucket);
            assert!(
                (back - us as f64).abs() <= us as f64 / 16.0 + 0.5,
                "{us} came back as {back}"
            );
        }
        assert!(latency_bucket(3_600_000_000) < 400);
    }

    #[test]
    fn usage_rows_take_nearest_rank_percentiles_per_action_and_outcome() {
        let g = |a: &str, o: &str| (a.to_string(), o.to_string());
        let b = latency_bucket;
        let rows = usage_rows(vec![
            (
                g("contacts.list", "ok"),
                vec![(b(1_000), 90), (b(40_000), 10)],
            ),
            (g("tickets.get", "not_found"), vec![(b(500), 1)]),
            (g("", "action_not_found"), vec![(b(100), 1)]),
        ]);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].action, None, "no action sorts first among equals");
        assert_eq!(
            (rows[0].action.as_deref(), rows[0].requests),
            (Some("contacts.list"), 100)
        );
        assert!((rows[0].p50_ms - 1.0).abs() < 0.07, "{}", rows[0].p50_ms);
        assert!((rows[0].p95_ms - 40.0).abs() < 2.6, "{}", rows[0].p95_ms);
        assert_eq!(
            (rows[2].outcome.as_str(), rows[2].requests),
            ("not_found", 1)
        );
        assert!(usage_rows(Vec::new()).is_empty());
    }
}
