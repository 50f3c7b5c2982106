//! Embedded schema migrations, applied in order on open and tracked in `PRAGMA user_version`.

use rusqlite::{Connection, OptionalExtension};

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
    include_str!("0014_doc_first.sql"),
    include_str!("0015_search_by_workspace.sql"),
    include_str!("0016_search_key_on_update.sql"),
    include_str!("0017_ticket_doc_on_insert.sql"),
];

/// The schema version this build expects.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn apply(conn: &mut Connection) -> Result<()> {
    apply_to(conn, SCHEMA_VERSION)
}

/// Applies the migrations up to schema version `target` (tests stop short of the last).
pub(super) fn apply_to(conn: &mut Connection, target: i64) -> Result<()> {
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
    if current >= target {
        return Ok(());
    }
    // Foreign keys are off while the schema changes, as SQLite's documentation has it for a
    // table rebuilt by copy (0013, 0014): dropping the old table would otherwise delete, or
    // refuse to delete, the rows that refer to it. Every migration's result is checked
    // against them instead, before it commits. (The pragma cannot change inside a transaction.)
    let enforced: bool = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .map_err(db_err)?;
    conn.pragma_update(None, "foreign_keys", false)
        .map_err(db_err)?;
    let applied = apply_between(conn, current, target);
    let restored = conn
        .pragma_update(None, "foreign_keys", enforced)
        .map_err(db_err);
    applied.and(restored)
}

fn apply_between(conn: &mut Connection, current: i64, target: i64) -> Result<()> {
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(current as usize)
    {
        let tx = conn.transaction().map_err(db_err)?;
        tx.execute_batch(sql).map_err(db_err)?;
        let broken: Option<(String, Option<i64>, String)> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(db_err)?;
        if let Some((table, row, parent)) = broken {
            return Err(Error::Unavailable {
                part: "database",
                reason: format!(
                    "migration {} would leave a row{} of {table} referring to a missing row of {parent}",
                    i + 1,
                    row.map(|r| format!(" ({r})")).unwrap_or_default()
                ),
            });
        }
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
    }
    Ok(())
}
