//! Embedded schema migrations, applied in order on open and tracked in `PRAGMA user_version`.

use rusqlite::Connection;

use super::db_err;
use crate::{Error, Result};

/// Each entry moves the schema from version `i` to `i + 1`. Append only: never edit one that
/// has shipped.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("0001_init.sql"),
    include_str!("0002_public_api.sql"),
    include_str!("0003_webhooks.sql"),
    include_str!("0004_rate_limits.sql"),
    include_str!("0005_idempotency.sql"),
    include_str!("0006_usage.sql"),
    include_str!("0007_webhook_lease.sql"),
    include_str!("0008_fts_merge.sql"),
    include_str!("0009_key_generation.sql"),
    include_str!("0010_ticket_customer.sql"),
    include_str!("0011_stored_json.sql"),
    include_str!("0012_search_newest_first.sql"),
    include_str!("0013_audit_log_lean.sql"),
];

/// The schema version this build expects.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn apply(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db_err)?;
    if current > SCHEMA_VERSION {
        return Err(Error::Unavailable {
            part: "database",
            reason: format!(
                "the database schema is version {current}, newer than this build's {SCHEMA_VERSION}; upgrade opsiq"
            ),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(db_err)?;
        tx.execute_batch(sql).map_err(db_err)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
    }
    Ok(())
}
