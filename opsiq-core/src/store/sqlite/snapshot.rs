//! Whether a read transaction left open still sees the latest commit, told without a system
//! call.
//!
//! Beginning a read transaction in WAL mode takes a read lock on the wal-index and ending it
//! releases it (an `fcntl` each), besides SQLite's own bookkeeping and, when anything was
//! committed meanwhile, a reset of the connection's page cache. For a point read that was about
//! a fifth of the store's time. So a read connection keeps its transaction open between reads
//! and the next read reuses it, as long as nothing has been committed since, by any connection
//! of any process: the CLI beside the server included.
//!
//! Every commit increments the `iChange` field of the wal-index header (at byte 8; see "The
//! WAL-Index Format" in <https://sqlite.org/walformat.html>, a format every SQLite version
//! sharing a database must agree on). The header lives in the shared memory that SQLite has
//! already mapped for the connection, so reading it is one atomic load. A writer updates the
//! header's two copies with a barrier between them, the first copy (read here) last, before
//! its commit returns: once a write has been answered, the counter has moved.

use std::ffi::{c_int, c_void};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use rusqlite::{Connection, ffi};

/// The size of a wal-index region, as SQLite maps them (`WALINDEX_PGSZ`).
const REGION: c_int = 32 * 1024;

/// The commit counter of one connection's wal-index header.
pub(super) struct ChangeCounter(NonNull<AtomicU32>);

// SAFETY: the counter is in memory shared between processes, made for concurrent access; it is
// only ever read, atomically, and `ChangeCounter::of` ties its life to its connection, which
// may itself move between threads.
unsafe impl Send for ChangeCounter {}

impl ChangeCounter {
    /// The counter of `conn`'s wal-index, or `None` when the database is not in WAL mode
    /// through shared memory (the caller then ends every read transaction at once).
    ///
    /// # Safety
    /// The value must not be used once `conn` is closed or has left WAL mode: its wal-index
    /// is unmapped then. Keep it beside the connection and drop them together.
    pub(super) unsafe fn of(conn: &Connection) -> Option<ChangeCounter> {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: a valid handle for as long as `conn` lives; SQLITE_FCNTL_FILE_POINTER writes
        // the database file's `sqlite3_file` pointer to the given address.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&raw mut file).cast::<c_void>(),
            )
        };
        if rc != ffi::SQLITE_OK || file.is_null() {
            return None;
        }
        // SAFETY: `file` is the open database file of `conn`; its methods outlive it. Region 0
        // is mapped by the connection's first read in WAL mode, and `bExtend = 0` only returns
        // an existing mapping (or NULL), which stays put until the connection's wal-index is
        // closed.
        unsafe {
            let methods = (*file).pMethods;
            if methods.is_null() || (*methods).iVersion < 2 {
                return None;
            }
            let map = (*methods).xShmMap?;
            let mut region: *mut c_void = std::ptr::null_mut();
            if map(file, 0, REGION, 0, &raw mut region) != ffi::SQLITE_OK {
                return None;
            }
            // `iChange` is the third 32-bit word of the header's first copy.
            NonNull::new(region.cast::<AtomicU32>().add(2)).map(ChangeCounter)
        }
    }

    /// The number of commits so far, modulo 2^32.
    pub(super) fn get(&self) -> u32 {
        // SAFETY: see `of`: the region stays mapped while the connection is open, and the
        // field is a naturally aligned 32-bit word.
        unsafe { self.0.as_ref() }.load(Ordering::Acquire)
    }
}
