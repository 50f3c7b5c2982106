//! Checkpoints, mostly off the writer's thread.
//!
//! SQLite's own automatic checkpoint runs inside the `COMMIT` that takes the WAL past 1000
//! frames: the writer copies the frames into the database and syncs the WAL and the database
//! file before it can start the next batch. Here the writer's connection has no automatic
//! checkpoint; its WAL hook notes the WAL's length after each commit, and every
//! [`BACKGROUND_EVERY`] frames the writer wakes a checkpointer thread, which runs a `PASSIVE`
//! checkpoint on a connection of its own while the writer goes on committing.
//!
//! A checkpoint running beside the writer never catches up with it under a steady load: by the
//! time it has copied what it saw, more has been committed, so the WAL is never wholly copied
//! when a write begins, and SQLite starts the WAL over only then. So once the WAL reaches
//! [`INLINE_AT`] frames, the writer runs a `PASSIVE` checkpoint itself between two batches:
//! the checkpointer has copied most frames already, so this one copies only the latest, and
//! with nothing committed meanwhile the next write starts the WAL over (unless a reader that
//! began before the checkpoint ended still reads from it; then the writer tries again after
//! each commit until it does, as SQLite's own automatic checkpoint does).

use std::cell::Cell;
use std::path::Path;
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::{SqliteConfig, db_err, open_connection};
use crate::{Error, Result};

/// WAL frames (pages of about 4 KB) committed between two background checkpoints: SQLite's own
/// automatic checkpoint interval.
const BACKGROUND_EVERY: i32 = 1000;

/// WAL frames past which the writer checkpoints itself, so that the WAL starts over (about
/// 12 MB with 4 KB pages).
const INLINE_AT: i32 = 3000;

thread_local! {
    /// Frames in the WAL after the last commit on this thread's writer connection, as its WAL
    /// hook reported (a hook is a plain function, so it leaves the figure here).
    static WAL_FRAMES: Cell<i32> = const { Cell::new(0) };
}

/// The writer's side: when to wake the checkpointer, and when to checkpoint itself.
pub(super) struct Checkpoints {
    checkpointer: Checkpointer,
    /// Held by whichever of the writer and the checkpointer runs a checkpoint: the writer's
    /// own waits for one under way to end (it has copied most frames by then) rather than find
    /// SQLite's checkpoint lock taken and leave the WAL growing.
    running: Arc<Mutex<()>>,
    /// The WAL length at which the checkpointer is woken next.
    background_at: i32,
    /// The WAL length at which the writer checkpoints next.
    inline_at: i32,
    /// The WAL length after the previous commit: a shorter one means the WAL started over.
    frames: i32,
    /// Whether a failed checkpoint was reported since the WAL last started over (a lasting
    /// fault is reported once, not after every commit).
    reported: bool,
}

impl Checkpoints {
    /// Starts the checkpointer, then takes the automatic checkpoint away from the writer's
    /// connection. Called before the writer's thread starts, so the hook counts the commits of
    /// that thread alone. Should the checkpointer not start (its connection cannot be opened),
    /// the writer keeps SQLite's automatic checkpoint inside its commits: `None`.
    pub(super) fn start(writer: &Connection, path: &Path, config: &SqliteConfig) -> Option<Self> {
        let running = Arc::new(Mutex::new(()));
        let checkpointer = Checkpointer::start(path, config, running.clone())
            .map_err(|e| {
                tracing::warn!(error = %e, "no checkpoint thread; the writer checkpoints in its commits");
            })
            .ok()?;
        // The hook must always answer `Ok`: an error would make the `COMMIT` that called it
        // report a failure after the batch was committed.
        writer.wal_hook(Some(|_, frames| {
            WAL_FRAMES.set(frames);
            Ok(())
        }));
        Some(Checkpoints {
            checkpointer,
            running,
            background_at: BACKGROUND_EVERY,
            inline_at: INLINE_AT,
            frames: 0,
            reported: false,
        })
    }

    /// After the writer committed: wakes the checkpointer, or checkpoints, as the WAL's length
    /// calls for.
    pub(super) fn committed(&mut self, writer: &Connection) {
        let frames = WAL_FRAMES.get();
        if frames < self.frames {
            self.background_at = BACKGROUND_EVERY;
            self.inline_at = INLINE_AT;
            self.reported = false;
        }
        self.frames = frames;
        if frames >= self.inline_at {
            // Should the WAL not start over at the next write (a reader that began before this
            // checkpoint ended still reads from it), the writer tries again after that write,
            // as SQLite's own automatic checkpoint would after every commit. Such a try finds
            // little or nothing left to copy.
            self.inline_at = frames + 1;
            self.background_at = frames + BACKGROUND_EVERY;
            if let Err(e) = checkpoint(writer, &self.running)
                && !self.reported
            {
                self.reported = true;
                tracing::warn!(error = %e, frames, "the writer's checkpoint failed; it tries again after each commit");
            }
        } else if frames >= self.background_at {
            self.background_at = frames + BACKGROUND_EVERY;
            self.checkpointer.wake();
        }
    }
}

/// Runs a `PASSIVE` checkpoint, with `running` held: it copies what no reader still needs from
/// the WAL, without waiting for readers. Another process's checkpoint under way is not an error
/// (SQLite answers a row saying so, and nothing was copied); it is logged for diagnosis.
fn checkpoint(conn: &Connection, running: &Mutex<()>) -> Result<()> {
    let _running = running.lock().unwrap_or_else(PoisonError::into_inner);
    let busy: i64 = conn
        .prepare_cached("PRAGMA wal_checkpoint(PASSIVE)")
        .and_then(|mut pragma| pragma.query_row([], |r| r.get(0)))
        .map_err(db_err)?;
    if busy != 0 {
        tracing::debug!("another process was checkpointing the WAL");
    }
    Ok(())
}

/// The checkpointer thread and the way to wake it.
struct Checkpointer {
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path, config: &SqliteConfig, running: Arc<Mutex<()>>) -> Result<Self> {
        // Its own connection, with the writer's `synchronous = NORMAL`, which syncs the WAL
        // before copying it and the database before the WAL may start over.
        let conn = open_connection(path, config, false)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        // One wake-up waits at most: more, while a checkpoint runs, would each run another.
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("opsiq-sqlite-checkpoint".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    if let Err(e) = checkpoint(&conn, &running) {
                        tracing::warn!(error = %e, "a background checkpoint failed");
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            wake: Some(tx),
            thread: Some(thread),
        })
    }

    fn wake(&self) {
        if let Some(tx) = &self.wake {
            // Full means a wake-up is already waiting.
            let _ = tx.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
