//! The writer's pin: a read transaction it holds open on its latest commit between batches.
//!
//! Every read transaction takes a shared lock on one of the WAL's read slots, and gives it back
//! at its end. SQLite counts those locks per process; only the first taker and the last giver
//! of a slot in the process make a system call (`fcntl` on the `-shm` file, under a mutex the
//! other readers then wait on). With readers coming and going one request at a time, a slot's
//! count kept falling to zero, and most requests made two `fcntl` calls. A transaction begun
//! just after a commit takes the slot that the reads of that commit take, and holding it keeps
//! the count above zero, so those reads lock and unlock it in memory.
//!
//! The pin must never hold back the WAL. So it is let go before each of the writer's
//! transactions (SQLite starts the WAL over at the first write of a transaction, only when no
//! reader holds a slot but the first) and taken again after the commit and any checkpoint the
//! commit called for; being the latest snapshot, it keeps no checkpoint from copying anything.
//! When the writer has had nothing to do for [`IDLE`], it lets go, so that another process
//! writing to the database while this one is idle finds nothing held.

use std::path::Path;
use std::time::Duration;

use super::{Conn, SqliteConfig, end_read, open_connection};

/// How long the writer waits for work before it lets the pin go.
pub(super) const IDLE: Duration = Duration::from_secs(1);

pub(super) struct Pin {
    conn: Conn,
    held: bool,
}

impl Pin {
    /// A connection for the pin, or `None` when it cannot be opened: reads then take their
    /// locks from the system, as without a pin.
    pub(super) fn open(path: &Path, config: &SqliteConfig) -> Option<Pin> {
        match open_connection(path, config, true) {
            Ok(conn) => Some(Pin {
                conn: Conn::wrap(conn),
                held: false,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "no read pin: reads lock the WAL by system calls");
                None
            }
        }
    }

    /// Begins a read transaction on the latest commit, unless one is held. `false` when the
    /// connection is left in a transaction it could not end, and is not to be used again.
    pub(super) fn hold(&mut self) -> bool {
        if self.held {
            return true;
        }
        // A deferred transaction starts reading at its first statement that reads the file.
        let begun = self.conn.run("BEGIN").and_then(|()| {
            self.conn.with_statement("PRAGMA schema_version", |stmt| {
                stmt.query_row([], |r| r.get::<_, i64>(0)).map(drop)
            })
        });
        match begun {
            Ok(()) => {
                self.held = true;
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "the read pin could not begin");
                self.end()
            }
        }
    }

    /// Ends the read transaction, if one is held. `false` as for [`Pin::hold`].
    pub(super) fn release(&mut self) -> bool {
        if !self.held {
            return true;
        }
        self.held = false;
        self.end()
    }

    fn end(&self) -> bool {
        self.conn.raw().is_autocommit() || end_read(&self.conn).1
    }
}
