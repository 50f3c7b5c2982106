//! Column conversions shared by the query modules, and the outbox and audit queries.

use std::collections::BTreeMap;

use foldhash::HashMap;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{OptionalExtension, Row, RowIndex, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Db, db_err};
use crate::audit::AuditEntry;
use crate::events::Event;
use crate::idempotency::{Claim, Record};
use crate::meta::{ActionOutcome, HOUR_MS, UsageRow, latency_bucket, usage_rows};
use crate::store::{
    AuditReads, AuditWrites, EventReads, EventWrites, IdempotencyWrites, WebhookWrites,
};
use crate::types::{Doc, Email, Id, PageText, Timestamp};
use crate::{Error, Result};

impl ToSql for Id {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0))
    }
}

impl FromSql for Id {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(Id)
    }
}

impl ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0))
    }
}

impl FromSql for Timestamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(Timestamp)
    }
}

impl FromSql for Email {
    /// Stored addresses were checked when they were written.
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(Email::stored(value.as_str()?))
    }
}

/// Reads a JSON text column into a typed value.
pub(crate) fn json_col<T: DeserializeOwned>(
    row: &Row<'_>,
    idx: impl RowIndex,
) -> rusqlite::Result<T> {
    let text = row.get_ref(idx)?.as_str().map_err(conversion)?;
    serde_json::from_str(text).map_err(conversion)
}

/// Writes a value as JSON text for a column.
pub(crate) fn json_text<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::Internal(format!("cannot encode a column: {e}")))
}

/// Reads a text column that holds one of our `FromStr` vocabularies.
pub(crate) fn enum_col<T: std::str::FromStr<Err = String>>(
    row: &Row<'_>,
    idx: impl RowIndex,
) -> rusqlite::Result<T> {
    let text = row.get_ref(idx)?.as_str().map_err(conversion)?;
    text.parse().map_err(|e: String| conversion(e))
}

pub(crate) fn conversion(
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
}

/// Reads a row's columns one after another in the order the statement selects them. By
/// position is cheaper than by name (which compares every column name until one matches);
/// debug builds check each name against the statement, so a reordered SELECT fails the tests.
pub(crate) struct Cols<'a, 'r> {
    row: &'a Row<'r>,
    next: usize,
}

impl<'a, 'r> Cols<'a, 'r> {
    pub(crate) fn new(row: &'a Row<'r>) -> Self {
        Cols { row, next: 0 }
    }

    fn index(&mut self, name: &str) -> usize {
        let i = self.next;
        self.next += 1;
        debug_assert_eq!(
            self.row.as_ref().column_name(i).ok(),
            Some(name),
            "column {i} of the statement"
        );
        i
    }

    pub(crate) fn get<T: FromSql>(&mut self, name: &str) -> rusqlite::Result<T> {
        let i = self.index(name);
        self.row.get(i)
    }

    /// The next column, holding JSON text.
    pub(crate) fn json<T: DeserializeOwned>(&mut self, name: &str) -> rusqlite::Result<T> {
        let i = self.index(name);
        json_col(self.row, i)
    }

    /// The next column, holding one of our `FromStr` vocabularies.
    pub(crate) fn parse<T: std::str::FromStr<Err = String>>(
        &mut self,
        name: &str,
    ) -> rusqlite::Result<T> {
        let i = self.index(name);
        enum_col(self.row, i)
    }
}

/// Runs a query expected to return at most one row.
pub(crate) fn one<T>(
    db: &Db<'_, '_>,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    let mut stmt = db.prepare(sql)?;
    stmt.query_row(params, map).optional().map_err(db_err)
}

/// Runs a query and maps every row.
pub(crate) fn all<T>(
    db: &Db<'_, '_>,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = db.prepare(sql)?;
    let rows = stmt.query_map(params, map).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(db_err)
}

/// Runs a query of at most `at_most` `(id, doc)` rows into [`Doc`]s, which share one
/// [`PageText`]. A row whose `doc` SQLite left NULL (see migration 0011) is rendered from its
/// columns, read by `load`.
pub(crate) fn docs<T: Serialize>(
    db: &Db<'_, '_>,
    sql: &str,
    params: impl rusqlite::Params,
    at_most: usize,
    load: impl Fn(Id) -> Result<Option<T>>,
) -> Result<Vec<Doc<T>>> {
    let mut text = PageText::new();
    let rows = all(db, sql, params, |r| {
        let id: Id = r.get(0)?;
        Ok(match text_or_null(r.get_ref(1)?)? {
            Some(json) => {
                if text.is_empty() {
                    // Room for the page, guessed from its first record, rather than a copy
                    // of the text at every doubling (three for a page of 50 tickets).
                    text.reserve(json.len().saturating_add(64), at_most);
                }
                (id, Some(text.push(json)))
            }
            None => (id, None),
        })
    })?;
    let text = text.finish();
    rows.into_iter()
        .map(|(id, range)| match range {
            Some(range) => Ok(Doc::stored_in(id, &text, range)),
            None => {
                let record = load(id)?.ok_or_else(|| {
                    Error::Internal(format!("record {id} went missing inside a read"))
                })?;
                crate::store::doc(id, &record)
            }
        })
        .collect()
}

/// A text value, or `None` for NULL. Its UTF-8 is checked with SIMD (a page's docs are tens of
/// KiB; the standard library's check took 3% of a list page's time under load).
fn text_or_null(value: ValueRef<'_>) -> FromSqlResult<Option<&str>> {
    match value {
        ValueRef::Text(bytes) => simdutf8::basic::from_utf8(bytes)
            .map(Some)
            .map_err(|e| FromSqlError::Other(Box::new(e))),
        ValueRef::Null => Ok(None),
        _ => Err(FromSqlError::InvalidType),
    }
}

/// Runs a statement that changes rows.
pub(crate) fn exec(db: &Db<'_, '_>, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
    let mut stmt = db.prepare(sql)?;
    stmt.execute(params).map_err(db_err)
}

/// Runs an `INSERT` and returns the new row's id.
pub(crate) fn insert(db: &Db<'_, '_>, sql: &str, params: impl rusqlite::Params) -> Result<Id> {
    exec(db, sql, params)?;
    Ok(db.last_insert_id())
}

/// Turns search words into an FTS5 query: every word must match as a prefix. Words are quoted,
/// so no FTS5 syntax in the input can take effect.
pub(crate) fn fts_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

impl EventReads for Db<'_, '_> {
    fn events(&self, workspace: Id, limit: u32) -> Result<Vec<Event>> {
        all(
            self,
            "SELECT id, workspace_id, type, data, created_at FROM events WHERE workspace_id = ?1 ORDER BY seq LIMIT ?2",
            params![workspace, limit],
            event,
        )
    }
}

/// Maps a row of `events` (id, workspace_id, type, data, created_at).
pub(crate) fn event(r: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        id: r.get("id")?,
        workspace_id: r.get("workspace_id")?,
        event: enum_col(r, "type")?,
        created_at: r.get("created_at")?,
        data: json_col(r, "data")?,
    })
}

impl EventWrites for Db<'_, '_> {
    fn insert_event(&mut self, event: &Event) -> Result<()> {
        exec(
            self,
            "INSERT INTO events (id, workspace_id, type, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                event.id,
                event.workspace_id,
                event.event.as_str(),
                json_text(&event.data)?,
                event.created_at
            ],
        )?;
        // The fan-out to subscribed endpoints commits with the event.
        self.queue_deliveries(event, None, event.created_at)?;
        Ok(())
    }
}

impl AuditReads for Db<'_, '_> {
    fn usage(&self, key: Id, windows: &[Timestamp]) -> Result<Vec<Vec<UsageRow>>> {
        let hours: Vec<i64> = windows.iter().map(|t| t.0.div_euclid(HOUR_MS)).collect();
        let Some(&first) = hours.iter().min() else {
            return Ok(Vec::new());
        };
        // One scan of the widest window serves every window, and the rows are summed here as
        // they come: SQLite's GROUP BY would sort every bucket first (a busy key has
        // thousands). Names are compared in place and copied once per action and outcome.
        let mut groups: Vec<(ActionOutcome, Vec<BTreeMap<i64, i64>>)> = Vec::new();
        let mut stmt = self.prepare("SELECT hour, action, outcome, bucket, requests FROM usage_hourly WHERE key_id = ?1 AND hour >= ?2")?;
        let mut rows = stmt.query(params![key, first]).map_err(db_err)?;
        let mut last = 0;
        while let Some(r) = rows.next().map_err(db_err)? {
            let text = |i| -> Result<&str> {
                r.get_ref(i)
                    .and_then(|v| v.as_str().map_err(Into::into))
                    .map_err(db_err)
            };
            let (action, outcome) = (text(1)?, text(2)?);
            let (hour, bucket, requests): (i64, i64, i64) = (
                r.get(0).map_err(db_err)?,
                r.get(3).map_err(db_err)?,
                r.get(4).map_err(db_err)?,
            );
            let is = |(a, o): &ActionOutcome| a == action && o == outcome;
            if !groups.get(last).is_some_and(|(g, _)| is(g)) {
                last = match groups.iter().position(|(g, _)| is(g)) {
                    Some(i) => i,
                    None => {
                        let windows = vec![BTreeMap::new(); hours.len()];
                        groups.push(((action.to_string(), outcome.to_string()), windows));
                        groups.len() - 1
                    }
                };
            }
            for (since, counts) in hours.iter().zip(&mut groups[last].1) {
                if hour >= *since {
                    *counts.entry(bucket).or_default() += requests;
                }
            }
        }
        Ok((0..hours.len())
            .map(|w| {
                usage_rows(groups.iter().filter(|(_, per)| !per[w].is_empty()).map(
                    |(group, per)| {
                        (
                            group.clone(),
                            per[w].iter().map(|(b, n)| (*b, *n)).collect(),
                        )
                    },
                ))
            })
            .collect())
    }

    fn audit_entries(&self, workspace: Option<Id>, limit: u32) -> Result<Vec<AuditEntry>> {
        all(
            self,
            "SELECT request_id, key_id, workspace_id, action, outcome, status, latency_us, created_at FROM audit_log \
             WHERE ?1 IS NULL OR workspace_id = ?1 ORDER BY id DESC LIMIT ?2",
            params![workspace, limit],
            |r| {
                Ok(AuditEntry {
                    request_id: r.get("request_id")?,
                    key_id: r.get("key_id")?,
                    workspace_id: r.get("workspace_id")?,
                    action: r.get("action")?,
                    outcome: r.get("outcome")?,
                    status: r.get("status")?,
                    latency_us: r.get("latency_us")?,
                    created_at: r.get("created_at")?,
                })
            },
        )
    }
}

impl AuditWrites for Db<'_, '_> {
    fn insert_audits(&mut self, entries: &[&AuditEntry]) -> Result<()> {
        // Requests of one key, hour, action, outcome and latency bucket add up before they
        // reach their counter: one upsert each, however many requests a batch holds.
        let mut usage: HashMap<(Id, i64, &str, &str, i64), i64> = HashMap::default();
        for e in entries {
            if let Some(key) = e.key_id {
                let counter = (
                    key,
                    e.created_at.0.div_euclid(HOUR_MS),
                    e.action.as_deref().unwrap_or_default(),
                    e.outcome.as_str(),
                    latency_bucket(e.latency_us),
                );
                *usage.entry(counter).or_default() += 1;
            }
        }
        // The rows go in by statements of many rows: a statement's own cost (starting it,
        // its transaction check, ending it) was most of a row's.
        let mut rest = entries;
        for rows in AUDIT_ROWS {
            if rest.len() < rows {
                continue;
            }
            let mut insert = self.prepare(&audit_insert(rows))?;
            while rest.len() >= rows {
                let (chunk, after) = rest.split_at(rows);
                for (i, e) in chunk.iter().enumerate() {
                    let at = i * 8;
                    insert
                        .raw_bind_parameter(at + 1, &e.request_id)
                        .and_then(|()| insert.raw_bind_parameter(at + 2, e.key_id))
                        .and_then(|()| insert.raw_bind_parameter(at + 3, e.workspace_id))
                        .and_then(|()| insert.raw_bind_parameter(at + 4, &e.action))
                        .and_then(|()| insert.raw_bind_parameter(at + 5, &e.outcome))
                        .and_then(|()| insert.raw_bind_parameter(at + 6, e.status))
                        .and_then(|()| insert.raw_bind_parameter(at + 7, e.latency_us))
                        .and_then(|()| insert.raw_bind_parameter(at + 8, e.created_at))
                        .map_err(db_err)?;
                }
                insert.raw_execute().map_err(db_err)?;
                rest = after;
            }
        }
        for ((key, hour, action, outcome, bucket), requests) in usage {
            exec(
                self,
                "INSERT INTO usage_hourly (key_id, hour, action, outcome, bucket, requests) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (key_id, hour, action, outcome, bucket) DO UPDATE SET requests = requests + excluded.requests",
                params![key, hour, action, outcome, bucket, requests],
            )?;
        }
        Ok(())
    }
}

/// The sizes of the statements audit rows are inserted by, largest first; a batch takes as
/// many of each as fit, so a few statements serve any number of rows.
const AUDIT_ROWS: [usize; 3] = [32, 8, 1];

/// `INSERT INTO audit_log` of `rows` rows, eight parameters each.
fn audit_insert(rows: usize) -> String {
    let row = "(?, ?, ?, ?, ?, ?, ?, ?)";
    format!(
        "INSERT INTO audit_log (request_id, key_id, workspace_id, action, outcome, status, latency_us, created_at) \
         VALUES {}",
        vec![row; rows].join(", ")
    )
}

impl IdempotencyWrites for Db<'_, '_> {
    fn claim_idempotency(
        &mut self,
        key: Id,
        idem_key: &str,
        action: &str,
        fingerprint: &str,
        now: Timestamp,
        expired_before: Timestamp,
    ) -> Result<Claim> {
        exec(
            self,
            "DELETE FROM idempotency_keys WHERE created_at < ?1",
            [expired_before],
        )?;
        let existing = one(
            self,
            "SELECT action, fingerprint, committed, status, response FROM idempotency_keys WHERE key_id = ?1 AND idem_key = ?2",
            params![key, idem_key],
            |r| {
                let status: Option<u16> = r.get("status")?;
                let response: Option<String> = r.get("response")?;
                Ok(Record {
                    action: r.get("action")?,
                    fingerprint: r.get("fingerprint")?,
                    committed: r.get("committed")?,
                    response: status.zip(response),
                })
            },
        )?;
        if let Some(record) = existing {
            return Ok(Claim::Existing(record));
        }
        exec(
            self,
            "INSERT INTO idempotency_keys (key_id, idem_key, action, fingerprint, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![key, idem_key, action, fingerprint, now],
        )?;
        Ok(Claim::Claimed)
    }

    fn commit_idempotency(&mut self, key: Id, idem_key: &str) -> Result<()> {
        exec(
            self,
            "UPDATE idempotency_keys SET committed = 1 WHERE key_id = ?1 AND idem_key = ?2",
            params![key, idem_key],
        )?;
        Ok(())
    }

    fn answer_idempotency(
        &mut self,
        key: Id,
        idem_key: &str,
        status: u16,
        response: &str,
    ) -> Result<()> {
        exec(
            self,
            "UPDATE idempotency_keys SET status = ?3, response = ?4 WHERE key_id = ?1 AND idem_key = ?2",
            params![key, idem_key, status, response],
        )?;
        Ok(())
    }

    fn release_idempotency(&mut self, key: Id, idem_key: &str) -> Result<()> {
        exec(
            self,
            "DELETE FROM idempotency_keys WHERE key_id = ?1 AND idem_key = ?2 AND committed = 0",
            params![key, idem_key],
        )?;
        Ok(())
    }
}
