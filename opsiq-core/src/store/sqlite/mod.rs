//! The bundled SQLite store: WAL, foreign keys, embedded migrations applied on open, one writer
//! thread with group commit, and a small pool of read-only connections.
//!
//! Group commit: write closures queue to the writer thread, which runs every closure waiting in
//! the queue inside one transaction (each in its own savepoint, so a failing closure drops only
//! its own changes), commits once, and only then answers each caller. Background writes
//! (audit rows, usage) do not wake the writer one by one: they linger in a queue for at most
//! `detached_linger` and go into the next transaction, with whatever waited-for write comes.
//!
//! Pipelined durability ([`Durability::Full`]): the writer commits with `synchronous = NORMAL`
//! (the commit is written to the WAL, not yet synced) and hands the batch's callers to a syncer
//! thread, which `fdatasync`s the WAL file and only then answers them; meanwhile the writer is
//! already running the next batch. No caller is answered before its commit is on disk, as with
//! `synchronous = FULL`, but the writer no longer waits for the disk between batches.
//! Checkpoints run on a checkpointer thread of their own, with the writer checkpointing itself
//! only when the WAL grows long (see `checkpoint`); `NORMAL` syncs the WAL before copying it
//! into the database and the database before the WAL is reused.

mod analytics;
mod chats;
mod checkpoint;
mod contacts;
mod kb;
mod migrations;
mod misc;
mod pin;
mod proactive;
mod statements;
mod tenancy;
#[cfg(test)]
mod tests;
mod tickets;
mod upkeep;
mod webhooks;

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvError, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use super::{Reads, Store, StoreHealth, UsageRecord, WriteFn, Writes, write_usage};
use crate::{Error, Result};
use checkpoint::Checkpoints;
use pin::Pin;
use statements::{Conn, Statements};
use upkeep::FtsMerge;

pub use migrations::SCHEMA_VERSION;

/// How durable a commit is (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is fsynced before it is acknowledged: an acknowledged write survives power
    /// loss. The sync runs on a thread of its own while the writer goes on with the next batch.
    Full,
    /// Commits survive a process crash; the last ones may be lost on power loss.
    Normal,
}

#[derive(Debug, Clone)]
pub struct SqliteConfig {
    pub durability: Durability,
    /// How long a connection waits for a lock before the store reports itself unavailable.
    pub busy_timeout: Duration,
    /// Read connections open at most: more readers wait for one to be free, so a burst of
    /// requests never pays for opening (and parsing the schema on) fresh connections.
    pub max_readers: usize,
    /// The most write closures committed together.
    pub max_batch: usize,
    /// The page cache of each read connection, in bytes: pages are held only once read, so at
    /// most `max_readers * cache_bytes` in all. SQLite's own default of 2 MiB left a page of 25
    /// search results mostly read from the file again (benches/RESULTS.md, fix 32). The writer
    /// keeps that default: its inserts touch the right edge of each index, and a large cache
    /// there only held what upkeep had read (3 MB more idle RSS).
    pub cache_bytes: usize,
    /// How long background writes (audit rows, usage) may wait to be committed together when
    /// no waited-for write comes along: one commit, and one wake-up of the writer, for all the
    /// requests of that time instead of one each. Every commit also empties the page cache of
    /// each read connection (a WAL reader that finds the database changed starts over), so a
    /// read-only load keeps its cache for about this long. The cost is freshness: audit rows,
    /// usage figures and a key's last use may show up to this late (a flush, a waited-for
    /// write or closing the store commits them at once). Default 1 s (benches/RESULTS.md,
    /// fix 33).
    pub detached_linger: Duration,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            max_readers: std::thread::available_parallelism()
                .map_or(4, |n| (2 * n.get()).clamp(4, 16)),
            max_batch: 256,
            cache_bytes: 16 << 20,
            detached_linger: Duration::from_secs(1),
        }
    }
}

/// What a write closure returned, boxed.
type WriteResult = Result<Box<dyn Any + Send>>;

/// A write queued for the writer thread, and where its result goes.
enum Job {
    Write(WriteFn, Sender<WriteResult>),
    /// A usage record that found the lingering queue full.
    Record(UsageRecord),
    /// Background writes are lingering (sent when the queue stops being empty).
    Lingering,
    Flush(Sender<()>),
}

/// Background writes waiting for the writer's next transaction, past which callers queue on
/// the channel instead (and so wait when the writer falls behind).
const MAX_LINGERING: usize = 4096;

/// Counters of the writer, for diagnostics and benchmarks.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Writes run: waited-for closures and usage records.
    pub writes: AtomicU64,
    /// Jobs sent to the writer and not yet taken up by it.
    pub queued: AtomicU64,
    /// Steps that merged full-text index segments while the writer was otherwise idle.
    pub merge_steps: AtomicU64,
    /// `fdatasync`s of the WAL by the syncer ([`Durability::Full`]): one serves every batch
    /// committed before it.
    pub syncs: AtomicU64,
    /// The last commit (counted as in `commits`) known to be on disk by a sync of the syncer.
    pub durable_commits: AtomicU64,
}

pub struct SqliteStore {
    /// Tells this store's shared read view from another store's on the same thread.
    id: u64,
    path: PathBuf,
    stats: Arc<WriterStats>,
    config: SqliteConfig,
    readers: Mutex<Readers>,
    reader_free: Condvar,
    jobs: Mutex<Option<SyncSender<Job>>>,
    /// Usage records not yet taken by the writer; they do not wake it one by one.
    lingering: Arc<Mutex<Vec<UsageRecord>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// The read connections: those idle, and how many are open in all.
#[derive(Default)]
struct Readers {
    /// Each idle connection with the thread that gave it back (see `take_reader`).
    idle: Vec<(Conn, ThreadId)>,
    open: usize,
    /// Threads waiting in `take_reader` for a connection to come back. Only then is the
    /// condition variable notified: `notify_one` is a system call even with no one waiting.
    waiting: usize,
}

/// A read connection taken from the pool; it goes back when dropped, unless it was spoiled.
struct Reader<'s> {
    store: &'s SqliteStore,
    conn: Option<Conn>,
}

impl Reader<'_> {
    fn conn(&self) -> &Conn {
        self.conn
            .as_ref()
            .expect("a reader holds its connection until dropped")
    }

    /// Closes the connection instead of returning it to the pool.
    fn spoil(mut self) {
        self.conn = None;
    }

    /// Takes the connection out of the pool's hands; it still counts as open, and comes back
    /// in another `Reader` (see `SqliteStore::give_back`).
    fn keep(mut self) -> Conn {
        let conn = self
            .conn
            .take()
            .expect("a reader holds its connection until dropped");
        // Not dropped: that would count the connection as closed.
        std::mem::forget(self);
        conn
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        let mut readers = self
            .store
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A connection left in a transaction (its user panicked) is closed, not reused.
        match self.conn.take().filter(|c| c.raw().is_autocommit()) {
            Some(conn) => readers.idle.push((conn, this_thread())),
            None => readers.open -= 1,
        }
        if readers.waiting > 0 {
            self.store.reader_free.notify_one();
        }
    }
}

/// A thread's shared read view (see [`Store::with_one_view`]): whose store it is, and its
/// connection, in a transaction, once the first read has opened it.
struct View {
    store: u64,
    conn: Option<Conn>,
    /// Counts the writes that ended the view.
    epoch: u64,
}

thread_local! {
    static THIS_THREAD: ThreadId = std::thread::current().id();
}

/// The calling thread's id, without the reference count `thread::current()` takes.
fn this_thread() -> ThreadId {
    THIS_THREAD.with(|id| *id)
}

thread_local! {
    static VIEW: RefCell<Option<View>> = const { RefCell::new(None) };
}

/// Query code shared by read connections and the writer: it implements every store trait.
/// Its queries' statements are the connection's own (see `statements`).
pub(crate) struct Db<'s, 'c>(&'s Statements<'c>);

impl<'c> Db<'_, 'c> {
    /// The connection's statement for `sql`, prepared at its first use.
    pub(crate) fn prepare(&self, sql: &str) -> Result<statements::Prepared<'_, 'c>> {
        self.0.prepare(sql).map_err(db_err)
    }

    /// The id of the row the connection inserted last.
    pub(crate) fn last_insert_id(&self) -> crate::types::Id {
        crate::types::Id(self.0.conn().last_insert_rowid())
    }
}

/// How the triggers of migrations 0015 and 0016 begin refusing a contact whose id or workspace id
/// the search key cannot hold.
const SEARCH_KEY_LIMIT: &str = "contact search key out of range";

/// Maps a SQLite failure to the public taxonomy: faults of the database file (busy, locked,
/// full, unreadable) are 503, and so is the store's limit on the ids a contact search key can
/// hold (migration 0015), in its trigger's words; anything else is a bug.
pub(crate) fn db_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::*;
    if let rusqlite::Error::SqliteFailure(failure, Some(limit)) = &e
        && failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_TRIGGER
        && limit.starts_with(SEARCH_KEY_LIMIT)
    {
        return Error::Unavailable {
            part: "database",
            reason: limit.clone(),
        };
    }
    match e.sqlite_error_code() {
        Some(
            DatabaseBusy | DatabaseLocked | DiskFull | CannotOpen | SystemIoFailure | ReadOnly
            | DatabaseCorrupt | NotADatabase | OutOfMemory | PermissionDenied,
        ) => Error::Unavailable {
            part: "database",
            reason: e.to_string(),
        },
        _ => Error::Internal(format!("database: {e}")),
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating it and applying migrations as needed, and starts
    /// the writer thread.
    pub fn open(path: &Path, config: SqliteConfig) -> Result<Self> {
        let mut conn = open_connection(path, &config, false)?;
        migrations::apply(&mut conn)?;
        let (tx, rx) = mpsc::sync_channel::<Job>(4096);
        let stats = Arc::new(WriterStats::default());
        let lingering = Arc::new(Mutex::new(Vec::new()));
        let syncer = match config.durability {
            Durability::Full => {
                // The syncer makes each commit durable before its callers hear of it, so the
                // writer's own commits need not wait for the disk (see the module's docs).
                conn.pragma_update(None, "synchronous", "NORMAL")
                    .map_err(db_err)?;
                Some(Syncer::start(wal_path(&conn, path), stats.clone())?)
            }
            Durability::Normal => None,
        };
        let checkpoints = Checkpoints::start(&conn, path, &config);
        let pin = Pin::open(path, &config);
        let writer = Writer {
            conn: Conn::wrap(conn),
            pin,
            jobs: rx,
            lingering: lingering.clone(),
            max_batch: config.max_batch,
            linger: config.detached_linger,
            stats: stats.clone(),
            syncer,
            checkpoints,
        };
        let writer = std::thread::Builder::new()
            .name("opsiq-sqlite-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| Error::Internal(format!("cannot start the writer thread: {e}")))?;
        static STORES: AtomicU64 = AtomicU64::new(0);
        Ok(SqliteStore {
            id: STORES.fetch_add(1, Ordering::Relaxed),
            path: path.to_path_buf(),
            stats,
            config,
            readers: Mutex::new(Readers::default()),
            reader_free: Condvar::new(),
            jobs: Mutex::new(Some(tx)),
            lingering,
            writer: Mutex::new(Some(writer)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    fn send(&self, job: Job) -> Result<()> {
        let guard = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = guard.as_ref().ok_or(Error::Unavailable {
            part: "database",
            reason: "the store is closed".into(),
        })?;
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        tx.send(job).map_err(|_| Error::Unavailable {
            part: "database",
            reason: "the writer has stopped".into(),
        })
    }

    /// Runs a read in this thread's shared view, when there is one for this store: in the
    /// view's transaction, opened (with a pooled connection) at its first read.
    fn shared_view(&self, f: &mut dyn FnMut(&dyn Reads) -> Result<()>) -> Option<Result<()>> {
        // The connection is lent out of the view while `f` runs, so that nothing `f` does on
        // this thread finds the view borrowed.
        let (lent, epoch) = VIEW.with_borrow_mut(|view| match view {
            Some(v) if v.store == self.id => Some((v.conn.take(), v.epoch)),
            _ => None,
        })?;
        let reader = match lent {
            Some(conn) => Reader {
                store: self,
                conn: Some(conn),
            },
            None => match self.take_reader() {
                Ok(reader) => match reader.conn().run("BEGIN") {
                    Ok(()) => reader,
                    Err(e) => {
                        reader.spoil();
                        return Some(Err(db_err(e)));
                    }
                },
                Err(e) => return Some(Err(e)),
            },
        };
        let out = reader.conn().with_db(|db| f(db));
        let conn = reader.keep();
        let unused = VIEW.with_borrow_mut(|view| match view {
            // A write during `f` ended the view: this transaction is not to be read again.
            Some(v) if v.store == self.id && v.epoch == epoch && v.conn.is_none() => {
                v.conn = Some(conn);
                None
            }
            _ => Some(conn),
        });
        if let Some(conn) = unused {
            self.give_back(conn);
        }
        Some(out)
    }

    /// Ends this thread's shared view of this store, if one is open: its transaction ends and
    /// its connection goes back to the pool. Later reads of the scope open a new one.
    fn end_view(&self) {
        let conn = VIEW.with_borrow_mut(|view| match view {
            Some(v) if v.store == self.id => {
                v.epoch += 1;
                v.conn.take()
            }
            _ => None,
        });
        if let Some(conn) = conn {
            self.give_back(conn);
        }
    }

    /// Ends a read connection's transaction and returns it to the pool.
    fn give_back(&self, conn: Conn) {
        let reader = Reader {
            store: self,
            conn: Some(conn),
        };
        if !end_read(reader.conn()).1 {
            reader.spoil();
        }
    }

    /// An idle read connection (the one this thread gave back last, when idle), a new one
    /// while fewer than `max_readers` are open, or else the next one given back.
    fn take_reader(&self) -> Result<Reader<'_>> {
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            // The connection this thread gave back last, if idle, else the last given back:
            // its page cache was filled on this thread's core and is likely still in that
            // core's caches. Taking whichever came back last, two threads reading by turns
            // swapped connections often, and read their pages from the other core's cache.
            // `remove` keeps the others in the order they came back (at most `max_readers`).
            let here = this_thread();
            let mine = readers.idle.iter().rposition(|(_, by)| *by == here);
            if let Some(at) = mine.or_else(|| readers.idle.len().checked_sub(1)) {
                let (conn, _) = readers.idle.remove(at);
                return Ok(Reader {
                    store: self,
                    conn: Some(conn),
                });
            }
            if readers.open < self.config.max_readers.max(1) {
                readers.open += 1;
                break;
            }
            readers.waiting += 1;
            readers = self
                .reader_free
                .wait(readers)
                .unwrap_or_else(PoisonError::into_inner);
            readers.waiting -= 1;
        }
        drop(readers);
        // Opened outside the lock; the slot is counted already and given back on failure.
        let mut reader = Reader {
            store: self,
            conn: None,
        };
        reader.conn = Some(Conn::wrap(open_connection(&self.path, &self.config, true)?));
        Ok(reader)
    }
}

fn open_connection(path: &Path, config: &SqliteConfig, read_only: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    };
    let conn = Connection::open_with_flags(path, flags).map_err(|e| Error::Unavailable {
        part: "database",
        reason: format!("cannot open {}: {e}", path.display()),
    })?;
    conn.busy_timeout(config.busy_timeout).map_err(db_err)?;
    let synchronous = match config.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    // `temp_store = MEMORY` keeps the savepoint of every job in a batch in memory: otherwise,
    // once one job's sub-journal outgrows 64 KiB, every later first change of a page writes
    // the page to a temporary file.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = {synchronous}; \
         PRAGMA query_only = {}; PRAGMA temp_store = MEMORY;",
        i32::from(read_only),
    ))
    .map_err(db_err)?;
    if read_only {
        conn.pragma_update(None, "cache_size", -((config.cache_bytes / 1024) as i64))
            .map_err(db_err)?;
    }
    // Plans do not depend on bound values (`LIMIT ?n` would otherwise make SQLite re-prepare a
    // kept statement at every use; see `statements` for where statements are kept).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(db_err)?;
    Ok(conn)
}

/// Ends a read transaction by `COMMIT`, or by `ROLLBACK` when that fails. Answers the commit's
/// outcome, and whether the transaction ended: a connection still in it is not to be used again.
fn end_read(conn: &Conn) -> (rusqlite::Result<()>, bool) {
    let committed = conn.run("COMMIT");
    let ended = committed.is_ok() || conn.run("ROLLBACK").is_ok();
    (committed, ended)
}

impl Store for SqliteStore {
    fn read_with(&self, f: &mut dyn FnMut(&dyn Reads) -> Result<()>) -> Result<()> {
        if let Some(shared) = self.shared_view(f) {
            return shared;
        }
        let reader = self.take_reader()?;
        let conn = reader.conn();
        // A deferred transaction gives the closure one consistent snapshot.
        if let Err(e) = conn.run("BEGIN") {
            reader.spoil();
            return Err(db_err(e));
        }
        let out = conn.with_db(|db| f(db));
        let (end, ended) = end_read(conn);
        if !ended {
            reader.spoil();
        }
        out.and(end.map_err(db_err))
    }

    fn write_boxed(&self, f: WriteFn) -> Result<Box<dyn Any + Send>> {
        self.end_view();
        let (tx, rx) = mpsc::channel();
        self.send(Job::Write(f, tx))?;
        rx.recv().unwrap_or_else(|_| {
            Err(Error::Unavailable {
                part: "database",
                reason: "the writer has stopped".into(),
            })
        })
    }

    fn record(&self, record: UsageRecord) {
        let mut lingering = self
            .lingering
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if lingering.len() >= MAX_LINGERING {
            drop(lingering);
            // Only a closed store drops it (a full channel makes the caller wait): it holds
            // usage rows, never an acknowledged change.
            let _ = self.send(Job::Record(record));
            return;
        }
        lingering.push(record);
        let first = lingering.len() == 1;
        drop(lingering);
        if first {
            let _ = self.send(Job::Lingering);
        }
    }

    fn flush(&self) -> Result<()> {
        let (tx, rx) = mpsc::channel();
        self.send(Job::Flush(tx))?;
        rx.recv().map_err(|_| Error::Unavailable {
            part: "database",
            reason: "the writer has stopped".into(),
        })
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn with_one_view(&self, f: &mut dyn FnMut()) {
        let opened = VIEW.with_borrow_mut(|view| match view {
            Some(_) => false,
            None => {
                *view = Some(View {
                    store: self.id,
                    conn: None,
                    epoch: 0,
                });
                true
            }
        });
        if !opened {
            // Already inside one: the outer scope keeps it.
            return f();
        }
        // Ends the view however `f` returns, a panic included.
        struct End<'s>(&'s SqliteStore);
        impl Drop for End<'_> {
            fn drop(&mut self) {
                self.0.end_view();
                VIEW.with_borrow_mut(Option::take);
            }
        }
        let _end = End(self);
        f();
    }

    fn health(&self, thorough: bool) -> Result<StoreHealth> {
        let reader = self.take_reader()?;
        let conn = reader.conn().raw();
        let pragma = |name: &str| -> Result<String> {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| match v {
                rusqlite::types::Value::Text(t) => t,
                rusqlite::types::Value::Integer(i) => i.to_string(),
                other => format!("{other:?}"),
            })
            .map_err(db_err)
        };
        let schema_version: i64 = pragma("user_version")?.parse().unwrap_or(-1);
        let journal_mode = pragma("journal_mode")?;
        let integrity = if thorough {
            Some(pragma("integrity_check")?)
        } else {
            None
        };
        drop(reader);
        // A write round trip: the writer thread is alive and can take the write lock and commit.
        self.write_boxed(Box::new(|_| Ok(Box::new(()))))?;
        Ok(StoreHealth {
            backend: "sqlite".into(),
            schema_version,
            expected_schema_version: SCHEMA_VERSION,
            journal_mode: Some(journal_mode),
            integrity,
        })
    }
}

/// Writes a consistent copy of the database at `db` to `to` (a new file) with SQLite's online
/// backup API, in one step so that the copy is one snapshot; writers carry on meanwhile. The
/// copy is checked with `integrity_check` before this returns.
pub fn backup(db: &Path, to: &Path) -> Result<StoreHealth> {
    if !db.exists() {
        return Err(Error::validation(
            "db",
            format!("{} does not exist", db.display()),
        ));
    }
    if to.exists() {
        return Err(Error::validation(
            "to",
            format!("{} already exists; choose a new file", to.display()),
        ));
    }
    let src = open_connection(db, &SqliteConfig::default(), true)?;
    let mut dst = Connection::open(to)
        .map_err(|e| Error::validation("to", format!("cannot create {}: {e}", to.display())))?;
    {
        let copy = rusqlite::backup::Backup::new(&src, &mut dst).map_err(db_err)?;
        copy_all(&copy)?;
    }
    // One self-contained file: the copy leaves WAL mode (a restore or `serve` turns it back on).
    dst.execute_batch("PRAGMA journal_mode = DELETE")
        .map_err(db_err)?;
    drop(dst);
    check_copy(to, "to")
}

/// Checks a backup (it opens, passes `integrity_check`, holds an OpsIQ schema this build can
/// use), then copies it over the database at `db`. Stop the server first.
pub fn restore(from: &Path, db: &Path) -> Result<StoreHealth> {
    let health = check_copy(from, "from")?;
    let src =
        Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(db_err)?;
    let mut dst = open_connection(db, &SqliteConfig::default(), false)?;
    {
        let copy = rusqlite::backup::Backup::new(&src, &mut dst).map_err(db_err)?;
        copy_all(&copy)?;
    }
    Ok(health)
}

/// Copies every page in one step: one snapshot, never restarted by concurrent writers.
fn copy_all(copy: &rusqlite::backup::Backup<'_, '_>) -> Result<()> {
    match copy.step(-1).map_err(db_err)? {
        rusqlite::backup::StepResult::Done => Ok(()),
        other => Err(Error::Unavailable {
            part: "database",
            reason: format!("the backup did not finish: {other:?}"),
        }),
    }
}

/// Opens a database copy read-only and checks it is a sound OpsIQ database.
fn check_copy(path: &Path, field: &str) -> Result<StoreHealth> {
    let bad = |why: String| {
        Error::validation(
            field,
            format!("{} is not a usable OpsIQ backup: {why}", path.display()),
        )
    };
    if !path.exists() {
        return Err(bad("it does not exist".into()));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| bad(e.to_string()))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| bad(e.to_string()))?;
    if integrity != "ok" {
        return Err(bad(format!("integrity_check says {integrity}")));
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| bad(e.to_string()))?;
    if !(1..=SCHEMA_VERSION).contains(&version) {
        return Err(bad(format!(
            "schema version {version}, this build reads 1 to {SCHEMA_VERSION}"
        )));
    }
    let has_workspaces: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'workspaces'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| bad(e.to_string()))?;
    if has_workspaces == 0 {
        return Err(bad("it has no OpsIQ tables".into()));
    }
    Ok(StoreHealth {
        backend: "sqlite".into(),
        schema_version: version,
        expected_schema_version: SCHEMA_VERSION,
        journal_mode: None,
        integrity: Some(integrity),
    })
}

impl Drop for SqliteStore {
    /// Closes the queue and waits for the writer to commit what it holds.
    fn drop(&mut self) {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = handle.join();
        }
    }
}

/// Runs one closure inside its own savepoint; a failure (or a panic) rolls back only its changes.
fn run_in_savepoint<T>(conn: &Conn, f: impl FnOnce(&mut dyn Writes) -> Result<T>) -> Result<T> {
    conn.run("SAVEPOINT job").map_err(db_err)?;
    let out = catch_unwind(AssertUnwindSafe(|| conn.with_db(|db| f(db)))).unwrap_or_else(|_| {
        Err(Error::Internal(
            "a write panicked; its changes were rolled back".into(),
        ))
    });
    if out.is_err() {
        conn.run("ROLLBACK TO job").map_err(db_err)?;
    }
    conn.run("RELEASE job").map_err(db_err)?;
    out
}

/// Writes a batch's usage records in one savepoint; should that fail, each audit row goes in
/// its own, so that one bad record (a key deleted meanwhile) does not drop the others.
fn write_records(conn: &Conn, records: &[UsageRecord]) {
    if records.is_empty() || run_in_savepoint(conn, |w| write_usage(w, records)).is_ok() {
        return;
    }
    let warn = |e: Error| tracing::warn!(error = %e, "a usage record could not be written");
    for audit in records.iter().filter_map(|r| r.audit.as_ref()) {
        run_in_savepoint(conn, |w| w.insert_audit(audit)).unwrap_or_else(warn);
    }
    let touches: Vec<UsageRecord> = records
        .iter()
        .map(|r| UsageRecord {
            audit: None,
            touch: r.touch,
        })
        .collect();
    run_in_savepoint(conn, |w| write_usage(w, &touches)).unwrap_or_else(warn);
}

/// The writer thread: its connection, its queue, and the background writes lingering for it.
struct Writer {
    conn: Conn,
    jobs: Receiver<Job>,
    lingering: Arc<Mutex<Vec<UsageRecord>>>,
    max_batch: usize,
    linger: Duration,
    stats: Arc<WriterStats>,
    /// Where committed batches go to be synced before their callers are answered; `None`
    /// answers them at once ([`Durability::Normal`]).
    syncer: Option<Syncer>,
    /// `None` when the checkpointer could not start: SQLite's automatic checkpoint then runs
    /// inside the writer's commits.
    checkpoints: Option<Checkpoints>,
    /// Held between batches (see the `pin` module); `None` when it could not be opened.
    pin: Option<Pin>,
}

impl Writer {
    fn run(mut self) {
        let mut fts = FtsMerge::new();
        loop {
            // Upkeep runs only while no job waits, one short step at a time.
            let first = match fts.due() {
                None => match self.jobs.recv_timeout(pin::IDLE) {
                    Ok(job) => Ok(job),
                    Err(RecvTimeoutError::Timeout) => {
                        self.pin(false);
                        self.jobs.recv()
                    }
                    Err(RecvTimeoutError::Disconnected) => Err(RecvError),
                },
                Some(due) => match self
                    .jobs
                    .recv_timeout(due.saturating_duration_since(Instant::now()))
                {
                    Ok(job) => Ok(job),
                    Err(RecvTimeoutError::Timeout) => {
                        self.merge_step(&mut fts);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => Err(RecvError),
                },
            };
            let closed = first.is_err();
            let mut batch: Vec<Job> = first.into_iter().collect();
            self.gather(&mut batch);
            if !closed && batch.iter().all(|j| matches!(j, Job::Lingering)) {
                self.linger(&mut batch, &mut fts);
            }
            let records = std::mem::take(
                &mut *self
                    .lingering
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            self.stats
                .queued
                .fetch_sub(batch.len() as u64, Ordering::Relaxed);
            let writes = batch
                .iter()
                .filter(|j| matches!(j, Job::Write(..) | Job::Record(_)))
                .count()
                + records.len();
            if writes > 0 || batch.iter().any(|j| matches!(j, Job::Flush(_))) {
                // Background writes (audit rows, usage) touch no full-text index.
                let indexed = batch.iter().any(|j| matches!(j, Job::Write(..)));
                self.pin(false);
                let mut settled = commit_batch(&self.conn, records, batch);
                if settled.committed.is_ok() {
                    settled.commit = self.stats.commits.fetch_add(1, Ordering::Relaxed) + 1;
                    if indexed {
                        fts.wrote();
                    }
                }
                let committed = settled.committed.is_ok();
                match &self.syncer {
                    Some(syncer) if committed => syncer.send(settled),
                    _ => settled.answer(Ok(())),
                }
                if committed {
                    self.committed();
                }
                self.pin(true);
                self.stats
                    .writes
                    .fetch_add(writes as u64, Ordering::Relaxed);
            }
            if closed {
                break;
            }
        }
        // The syncer answers the batches it holds before the connection closes (closing the
        // last connection checkpoints the WAL and deletes it), then the checkpointer stops.
        let Writer {
            conn,
            syncer,
            checkpoints,
            pin,
            ..
        } = self;
        drop(pin);
        drop(syncer);
        drop(checkpoints);
        drop(conn);
    }

    /// Only background writes wait: lets more gather for a moment, unless a waited-for write
    /// or a flush comes first. Nobody waits for the writer meanwhile, so it merges full-text
    /// segments, one step at a time: under a steady read load, whose audit rows always have a
    /// wake-up queued, this is the only time it is free, and merging would otherwise wait for
    /// the load to stop.
    fn linger(&mut self, batch: &mut Vec<Job>, fts: &mut FtsMerge) {
        let until = Instant::now() + self.linger;
        loop {
            let now = Instant::now();
            let wait = match fts.due() {
                Some(due) => due.min(until),
                None => until,
            }
            .saturating_duration_since(now);
            match self.jobs.recv_timeout(wait) {
                Ok(job) => {
                    batch.push(job);
                    self.gather(batch);
                    return;
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() < until => {
                    self.merge_step(fts);
                }
                Err(_) => return,
            }
        }
    }

    /// One step of merging full-text segments, in its own transaction.
    fn merge_step(&mut self, fts: &mut FtsMerge) {
        self.pin(false);
        if fts.step(&self.conn) {
            self.stats.merge_steps.fetch_add(1, Ordering::Relaxed);
            self.committed();
        }
        self.pin(true);
    }

    /// Takes the pin (after a commit and its checkpoints) or lets it go (before a transaction
    /// of the writer's, and when idle).
    fn pin(&mut self, hold: bool) {
        let Some(pin) = &mut self.pin else { return };
        let usable = if hold { pin.hold() } else { pin.release() };
        if !usable {
            // Left in a transaction it could not end, the pin would hold the WAL back for good:
            // it is closed instead, and reads lock by system calls from then on.
            tracing::warn!("the read pin's transaction could not be ended; the pin is closed");
            self.pin = None;
        }
    }

    /// After a commit: the checkpoints it calls for.
    fn committed(&mut self) {
        if let Some(checkpoints) = &mut self.checkpoints {
            checkpoints.committed(self.conn.raw());
        }
    }

    /// Adds the jobs already queued, up to the batch limit.
    fn gather(&self, batch: &mut Vec<Job>) {
        while batch.len() < self.max_batch {
            match self.jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
    }
}

/// Runs a batch in one transaction. The callers are answered by the [`Settled`] it returns,
/// once the commit is durable.
fn commit_batch(conn: &Conn, mut records: Vec<UsageRecord>, batch: Vec<Job>) -> Settled {
    let mut replies = Vec::with_capacity(batch.len());
    let mut flushes = Vec::new();
    let begun = conn.run("BEGIN IMMEDIATE").map_err(db_err);
    for job in batch {
        match job {
            Job::Write(f, reply) => {
                let out = match &begun {
                    Ok(()) => run_in_savepoint(conn, f),
                    Err(e) => Err(e.clone()),
                };
                replies.push((reply, out));
            }
            Job::Record(record) => records.push(record),
            Job::Flush(reply) => flushes.push(reply),
            Job::Lingering => {}
        }
    }
    if begun.is_ok() {
        write_records(conn, &records);
    }
    let committed = begun.and_then(|()| conn.run("COMMIT").map_err(db_err));
    if let Err(e) = &committed {
        tracing::error!(error = %e, "commit failed; the batch was rolled back");
        let _ = conn.run("ROLLBACK");
    }
    Settled {
        committed,
        commit: 0,
        replies,
        flushes,
    }
}

/// A batch run and committed (or not), with the callers still to be answered.
struct Settled {
    committed: Result<()>,
    /// The commit's number (see `WriterStats::commits`), once committed.
    commit: u64,
    replies: Vec<(Sender<WriteResult>, WriteResult)>,
    flushes: Vec<Sender<()>>,
}

impl Settled {
    /// Whether anybody waits for this batch.
    fn waits(&self) -> bool {
        !self.replies.is_empty() || !self.flushes.is_empty()
    }

    /// Answers every caller: a write gets its own result when the batch was committed and
    /// `durable` (the commit reached the disk), or the error that stopped it.
    fn answer(self, durable: Result<()>) {
        let settled = self.committed.and(durable);
        for (reply, out) in self.replies {
            let _ = reply.send(match &settled {
                Ok(()) => out,
                Err(e) => Err(e.clone()),
            });
        }
        for reply in self.flushes {
            let _ = reply.send(());
        }
    }
}

/// The WAL file of the writer's database.
fn wal_path(conn: &Connection, path: &Path) -> PathBuf {
    let db = conn
        .path()
        .filter(|p| !p.is_empty())
        .map_or_else(|| path.to_path_buf(), PathBuf::from);
    let mut wal = db.into_os_string();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// The syncer thread's end of the pipe: committed batches, in commit order.
struct Syncer {
    batches: Option<Sender<Settled>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    fn start(wal: PathBuf, stats: Arc<WriterStats>) -> Result<Syncer> {
        let (tx, rx) = mpsc::channel::<Settled>();
        let thread = std::thread::Builder::new()
            .name("opsiq-sqlite-sync".into())
            .spawn(move || sync_loop(&wal, &rx, &stats))
            .map_err(|e| Error::Internal(format!("cannot start the sync thread: {e}")))?;
        Ok(Syncer {
            batches: Some(tx),
            thread: Some(thread),
        })
    }

    fn send(&self, settled: Settled) {
        if let Some(tx) = &self.batches
            && let Err(mpsc::SendError(settled)) = tx.send(settled)
        {
            // The syncer is gone (it cannot be while the writer holds this end): say so
            // rather than acknowledge a commit nobody made durable.
            settled.answer(Err(Error::Unavailable {
                part: "database",
                reason: "the sync thread has stopped".into(),
            }));
        }
    }
}

impl Drop for Syncer {
    /// Lets the syncer answer what it holds, then waits for it.
    fn drop(&mut self) {
        self.batches.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How long a commit that nobody waits for (background audit rows and usage) may stay unsynced:
/// it is synced with the next waited-for commit, or after this long, so that a read-only load
/// costs a few syncs a second rather than one per background commit.
const BACKGROUND_SYNC: Duration = Duration::from_millis(100);

/// Syncs the WAL once for every batch waiting, then answers their callers, until the writer
/// closes the pipe. Batches nobody waits for are held for up to [`BACKGROUND_SYNC`].
fn sync_loop(wal: &Path, batches: &Receiver<Settled>, stats: &WriterStats) {
    let mut file: Option<(std::fs::File, u64)> = None;
    let mut held: Vec<Settled> = Vec::new();
    let mut held_since = Instant::now();
    let mut open = true;
    while open || !held.is_empty() {
        let next = if held.is_empty() {
            batches.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            batches.recv_timeout(
                (held_since + BACKGROUND_SYNC).saturating_duration_since(Instant::now()),
            )
        };
        match next {
            Ok(settled) => {
                if held.is_empty() {
                    held_since = Instant::now();
                }
                held.push(settled);
                held.extend(batches.try_iter());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = false,
        }
        let due =
            !open || held.iter().any(Settled::waits) || held_since.elapsed() >= BACKGROUND_SYNC;
        if held.is_empty() || !due {
            continue;
        }
        let synced = sync_wal(wal, &mut file).map_err(|e| {
            tracing::error!(error = %e, wal = %wal.display(), "cannot sync the WAL; its commits are answered with an error");
            Error::Unavailable {
                part: "database",
                reason: format!("the commit could not be made durable: {e}"),
            }
        });
        stats.syncs.fetch_add(1, Ordering::Relaxed);
        if synced.is_ok()
            && let Some(last) = held.iter().map(|s| s.commit).max()
        {
            stats.durable_commits.fetch_max(last, Ordering::Relaxed);
        }
        for settled in held.drain(..) {
            settled.answer(synced.clone());
        }
    }
}

/// `fdatasync`s the WAL file. The file is opened once and again only if it was replaced (SQLite
/// reuses it in place while the writer's connection is open).
fn sync_wal(wal: &Path, file: &mut Option<(std::fs::File, u64)>) -> std::io::Result<()> {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(wal)?);
    #[cfg(not(unix))]
    let inode = 0;
    let wal_file = match file {
        Some((f, open)) if *open == inode => f,
        _ => &file.insert((std::fs::File::open(wal)?, inode)).0,
    };
    wal_file.sync_data()
}
