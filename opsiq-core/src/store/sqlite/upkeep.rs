//! Upkeep the writer does when nothing waits for it: merging full-text index segments.
//!
//! Each FTS5 flush (every transaction that changes an indexed row) adds a segment; FTS5 merges
//! them as it writes only once four share a level, so a big index holds many (about twenty at
//! a million contacts), and a search reads every one. The writer merges them in small steps
//! between jobs instead (`usermerge = 2`, migration 0008): each step is its own short
//! transaction, and a job that arrives waits for at most one step. "Nothing waits" includes
//! the time the writer lets background writes (usage records) gather: under a steady load a
//! wake-up for those is always queued, and that is the only time the writer is free.

use std::time::{Duration, Instant};

use super::Conn;

/// The full-text indexes the writer keeps merged.
const FTS_TABLES: [&str; 2] = ["contacts_fts", "kb_articles_fts"];

/// Pages (of about 4 KB) one merge step writes at most: a few milliseconds of work.
const MERGE_PAGES: u32 = 32;

/// After a step found nothing to merge, the next look waits this long, however often rows
/// are written meanwhile: a busy writer pays for one empty look per interval, not per commit.
const RECHECK: Duration = Duration::from_millis(100);

/// Which indexes may have segments to merge.
pub(super) struct FtsMerge {
    pending: [bool; FTS_TABLES.len()],
    /// When the last look found nothing left to merge.
    rested_at: Option<Instant>,
}

impl FtsMerge {
    /// A database just opened may hold segments nobody merged (an import, another process's
    /// writes), so every index starts as pending; a step that finds nothing clears it.
    pub(super) fn new() -> Self {
        FtsMerge {
            pending: [true; FTS_TABLES.len()],
            rested_at: None,
        }
    }

    /// A committed batch changed rows: any index may have a new segment.
    pub(super) fn wrote(&mut self) {
        self.pending = [true; FTS_TABLES.len()];
    }

    /// When the next step is due, if any index is pending: at once while merging goes on.
    pub(super) fn due(&self) -> Option<Instant> {
        self.pending
            .contains(&true)
            .then(|| self.rested_at.map_or_else(Instant::now, |at| at + RECHECK))
    }

    /// Runs one merge step on the first pending index, in its own transaction. Returns whether
    /// it merged anything; an index with nothing left to merge stops being pending.
    pub(super) fn step(&mut self, conn: &Conn) -> bool {
        let Some(i) = self.pending.iter().position(|p| *p) else {
            return false;
        };
        let table = FTS_TABLES[i];
        let sql = format!("INSERT INTO {table} ({table}, rank) VALUES ('merge', {MERGE_PAGES})");
        let merged = (|| {
            conn.run("BEGIN IMMEDIATE")?;
            let before = conn.raw().total_changes();
            conn.with_statement(&sql, |stmt| stmt.execute([]))?;
            // FTS5's own test: a step that merged something changes at least two rows.
            let merged = conn.raw().total_changes() - before >= 2;
            conn.run("COMMIT")?;
            Ok::<_, rusqlite::Error>(merged)
        })();
        let merged = merged.unwrap_or_else(|e| {
            // Busy with another process, or a fault: look again after a later write.
            let _ = conn.run("ROLLBACK");
            tracing::warn!(index = table, error = %e, "merging full-text segments failed");
            false
        });
        if merged {
            self.rested_at = None;
        } else {
            self.pending[i] = false;
            if !self.pending.contains(&true) {
                self.rested_at = Some(Instant::now());
            }
        }
        merged
    }
}
