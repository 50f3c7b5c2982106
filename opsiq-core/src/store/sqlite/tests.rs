//! The writer's promises: concurrent writes share commits, a failing write drops only its own
//! changes, and nothing is reported done before its commit.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{SqliteConfig, SqliteStore};
use crate::audit::AuditEntry;
use crate::scope::Scope;
use crate::store::{Store, UsageRecord};
use crate::types::{Id, Timestamp};
use crate::{Error, Opsiq};

fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db"), SqliteConfig::default()).unwrap();
    (dir, Arc::new(store))
}

/// Polls `done` until it holds, failing with `what` after `seconds`.
fn wait_until(seconds: u64, done: impl Fn() -> bool, what: impl Fn() -> String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{}", what());
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Waits (bounded) until the writer's queue holds `n` jobs.
fn wait_for_queue(store: &SqliteStore, n: u64) {
    let stats = store.stats();
    wait_until(
        30,
        || stats.queued.load(Ordering::Relaxed) >= n,
        || {
            format!(
                "writes never queued: {} queued, {} written",
                stats.queued.load(Ordering::Relaxed),
                stats.writes.load(Ordering::Relaxed)
            )
        },
    );
}

#[test]
fn concurrent_writes_share_one_commit_and_all_land() {
    let (_dir, store) = store();
    let opsiq = Opsiq::new(store.clone());
    // Hold the writer inside a first write while 32 callers queue theirs.
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let (started_tx, started) = std::sync::mpsc::channel::<()>();
    let blocker = {
        let opsiq = opsiq.clone();
        std::thread::spawn(move || {
            opsiq.write(move |_| {
                started_tx
                    .send(())
                    .map_err(|_| Error::Internal("test gone".into()))?;
                hold.recv().map_err(|_| Error::Internal("test gone".into()))
            })
        })
    };
    started.recv().unwrap();
    let threads: Vec<_> = (0..32)
        .map(|t| {
            let opsiq = opsiq.clone();
            std::thread::spawn(move || {
                opsiq
                    .write(move |w| w.insert_workspace(&format!("w{t}"), Timestamp::now()))
                    .unwrap()
            })
        })
        .collect();
    wait_for_queue(&store, 32);
    let commits_before = store.stats().commits.load(Ordering::Relaxed);
    release.send(()).unwrap();
    blocker.join().unwrap().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        opsiq.list_workspaces().unwrap().len(),
        32,
        "every acknowledged write is readable"
    );
    let commits = store.stats().commits.load(Ordering::Relaxed) - commits_before;
    assert!(
        commits <= 2,
        "32 queued writes were committed together, not one by one ({commits} commits)"
    );
}

#[test]
fn with_full_durability_a_write_is_answered_only_once_its_commit_is_synced() {
    let (_dir, store) = store();
    let opsiq = Opsiq::new(store.clone());
    let stats = store.stats();
    for n in 0..20 {
        opsiq
            .write(move |w| w.insert_workspace(&format!("w{n}"), Timestamp::now()))
            .unwrap();
        // Nothing else writes: the write's commit is the last one, and it is on disk.
        let commits = stats.commits.load(Ordering::Relaxed);
        assert_eq!(
            stats.durable_commits.load(Ordering::Relaxed),
            commits,
            "write {n} was answered before its commit was synced"
        );
    }
    // Many writers at once: every write lands, and one sync serves several commits' callers
    // or at least never more syncs than commits.
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let opsiq = opsiq.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    opsiq
                        .write(move |w| w.insert_workspace(&format!("t{t}-{i}"), Timestamp::now()))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(opsiq.list_workspaces().unwrap().len(), 20 + 16 * 20);
    let (commits, syncs) = (
        stats.commits.load(Ordering::Relaxed),
        stats.syncs.load(Ordering::Relaxed),
    );
    assert!(syncs <= commits, "{syncs} syncs for {commits} commits");
    assert_eq!(stats.durable_commits.load(Ordering::Relaxed), commits);
}

#[test]
fn with_normal_durability_no_sync_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteConfig {
        durability: super::Durability::Normal,
        ..SqliteConfig::default()
    };
    let store = Arc::new(SqliteStore::open(&dir.path().join("t.db"), config).unwrap());
    let opsiq = Opsiq::new(store.clone());
    opsiq
        .write(|w| w.insert_workspace("w", Timestamp::now()))
        .unwrap();
    assert_eq!(opsiq.list_workspaces().unwrap().len(), 1);
    assert_eq!(store.stats().syncs.load(Ordering::Relaxed), 0);
}

#[test]
fn a_failing_write_drops_only_its_own_changes() {
    let (_dir, store) = store();
    let opsiq = Opsiq::new(store.clone());
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let opsiq = opsiq.clone();
            std::thread::spawn(move || {
                opsiq.write(move |w| {
                    w.insert_workspace(&format!("w{t}"), Timestamp::now())?;
                    if t % 2 == 1 {
                        Err(Error::validation("name", "odd"))
                    } else {
                        Ok(())
                    }
                })
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 8);
    let names: Vec<String> = opsiq
        .list_workspaces()
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names.len(), 8);
    assert!(
        names
            .iter()
            .all(|n| n[1..].parse::<u32>().unwrap() % 2 == 0),
        "{names:?}"
    );
}

#[test]
fn a_panicking_write_is_rolled_back_and_the_writer_survives() {
    let (_dir, store) = store();
    let opsiq = Opsiq::new(store.clone());
    let err = opsiq
        .write(|w| -> crate::Result<()> {
            w.insert_workspace("doomed", Timestamp::now())?;
            panic!("bug in a write closure")
        })
        .unwrap_err();
    assert!(matches!(err, Error::Internal(_)));
    opsiq
        .write(|w| w.insert_workspace("fine", Timestamp::now()))
        .unwrap();
    let names: Vec<String> = opsiq
        .list_workspaces()
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, ["fine"]);
}

/// A read's usage record with its audit row, one millisecond of latency, at `at`.
fn record(key: Option<Id>, action: &str, at: Timestamp) -> UsageRecord {
    UsageRecord {
        audit: Some(AuditEntry {
            request_id: format!("req_{}", at.0),
            key_id: key,
            workspace_id: Some(Id(1)),
            action: Some(action.into()),
            outcome: "ok".into(),
            status: 200,
            latency_us: 1_000,
            created_at: at,
        }),
        touch: key.map(|k| (k, at)),
    }
}

fn audit_rows(opsiq: &Opsiq) -> usize {
    opsiq.read(|r| r.audit_entries(None, 1000)).unwrap().len()
}

#[test]
fn usage_records_are_committed_by_flush_and_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let opsiq = Opsiq::open(&path).unwrap();
        opsiq.create_workspace("w", "w.example").unwrap();
        opsiq
            .store()
            .record(record(None, "tickets.get", Timestamp(1)));
        opsiq.store().flush().unwrap();
        assert_eq!(audit_rows(&opsiq), 1);
        opsiq
            .store()
            .record(record(None, "tickets.get", Timestamp(2)));
    }
    let opsiq = Opsiq::open(&path).unwrap();
    assert_eq!(
        audit_rows(&opsiq),
        2,
        "closing the store commits queued records"
    );
}

#[test]
fn usage_records_of_one_batch_add_up_and_a_bad_one_is_dropped_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let config = SqliteConfig {
        // Long enough that every record below lingers into the same transaction.
        detached_linger: std::time::Duration::from_secs(60),
        ..SqliteConfig::default()
    };
    let opsiq = Opsiq::open_with(&path, config).unwrap();
    let (ws, _) = opsiq.create_workspace("w", "w.example").unwrap();
    let key = opsiq
        .create_key(ws.id, None, "k", &[Scope::TicketsRead])
        .unwrap()
        .key
        .id;
    let now = Timestamp::now();
    let store = opsiq.store();
    for i in 0..300 {
        let action = if i % 3 == 0 {
            "contacts.list"
        } else {
            "tickets.get"
        };
        store.record(record(Some(key), action, Timestamp(now.0 + i)));
    }
    const DAY: i64 = 24 * 60 * 60 * 1000;
    store.record(record(Some(key), "tickets.get", Timestamp(now.0 - 2 * DAY)));
    // A status that is no HTTP status fails its audit row's check.
    let mut bad = record(Some(key), "tickets.get", now);
    if let Some(audit) = bad.audit.as_mut() {
        audit.status = 0;
    }
    store.record(bad);
    store.flush().unwrap();
    assert_eq!(audit_rows(&opsiq), 301);
    // Each row as it was recorded, in order, whatever statement of many rows it went in by.
    let stored: Vec<(String, i64, Option<String>)> = opsiq
        .read(|r| r.audit_entries(None, 1000))
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| (e.request_id, e.created_at.0, e.action))
        .collect();
    let sent: Vec<(String, i64, Option<String>)> = (0..300)
        .map(|i| {
            (
                now.0 + i,
                if i % 3 == 0 {
                    "contacts.list"
                } else {
                    "tickets.get"
                },
            )
        })
        .chain([(now.0 - 2 * DAY, "tickets.get")])
        .map(|(at, action)| (format!("req_{at}"), at, Some(action.to_string())))
        .collect();
    assert_eq!(stored, sent);
    let windows = [Timestamp(now.0 - DAY), Timestamp(now.0 - 7 * DAY)];
    let usage = opsiq.read(|r| r.usage(key, &windows)).unwrap();
    let requests = |window: usize, action: &str| {
        usage[window]
            .iter()
            .find(|u| u.action.as_deref() == Some(action))
            .map(|u| u.requests)
    };
    assert_eq!(usage.len(), 2);
    assert_eq!(requests(0, "tickets.get"), Some(200));
    assert_eq!(requests(0, "contacts.list"), Some(100));
    assert_eq!(
        requests(1, "tickets.get"),
        Some(201),
        "the week holds the day"
    );
    assert_eq!(requests(1, "contacts.list"), Some(100));
    let last_used = opsiq.read(|r| r.key(key)).unwrap().unwrap().last_used_at;
    assert_eq!(
        last_used,
        Some(Timestamp(now.0 + 299)),
        "the latest use is kept"
    );
    assert_eq!(store.backend(), "sqlite");
    // A batch with no bad row goes in by statements of 32, 8 and 1 rows: every row in order.
    for i in 0..45 {
        store.record(record(
            Some(key),
            "tickets.list",
            Timestamp(now.0 + 1_000 + i),
        ));
    }
    store.flush().unwrap();
    let latest: Vec<String> = opsiq
        .read(|r| r.audit_entries(None, 45))
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| e.request_id)
        .collect();
    let sent: Vec<String> = (0..45)
        .map(|i| format!("req_{}", now.0 + 1_000 + i))
        .collect();
    assert_eq!(latest, sent);
    assert_eq!(audit_rows(&opsiq), 346);
}

#[test]
fn a_database_from_a_newer_build_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(SqliteStore::open(&path, SqliteConfig::default()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path, SqliteConfig::default())
        .err()
        .unwrap();
    assert_eq!(err.status(), 503);
    assert!(err.to_string().contains("newer than this build"), "{err}");
}

/// The number of segments in an FTS5 index, from its structure record (row 10 of `<table>_data`:
/// a 4-byte cookie, 4 more bytes on a v2 record, then varints: levels, segments).
fn fts_segments(path: &std::path::Path, table: &str) -> u64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    let block: Vec<u8> = conn
        .query_row(
            &format!("SELECT block FROM {table}_data WHERE id = 10"),
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut at = if block[4..8] == [0xff, 0, 0, 1] { 8 } else { 4 };
    let mut varint = || {
        let mut v = 0u64;
        loop {
            let b = block[at];
            at += 1;
            v = (v << 7) | u64::from(b & 0x7f);
            if b < 0x80 {
                return v;
            }
        }
    };
    let _levels = varint();
    varint()
}

/// 20 commits of 50 contacts each, every name its own words: 20 flushes of sizeable
/// segments, which FTS5's own merging (four per level) would leave as about 15.
fn index_contacts_in_20_commits(opsiq: &Opsiq, ws: Id) {
    for batch in 0..20 {
        opsiq
            .write(move |w| {
                for i in 0..50 {
                    let n = batch * 50 + i;
                    let fields = crate::contacts::ContactFields {
                        name: Some(format!("Ada{n} Lovelace{}", n * 7)),
                        email: None,
                        phone: None,
                        external_id: None,
                        tags: vec![format!("tag{n}")],
                        attributes: Default::default(),
                    };
                    w.insert_contact(ws, None, &fields, Timestamp::now())?;
                }
                Ok(())
            })
            .unwrap();
    }
}

/// Waits (20 s at most) for the writer's merge steps to bring the contacts' index down to 3
/// segments, then checks that a search still finds every contact it should.
fn merged_without_loss(dir: &tempfile::TempDir, store: &SqliteStore, opsiq: &Opsiq, ws: Id) {
    let path = dir.path().join("t.db");
    // The writer counts a step after its commit, so the segments can be seen merged a moment
    // before the step is counted: both are waited for.
    let steps = || store.stats().merge_steps.load(Ordering::Relaxed);
    wait_until(
        20,
        || fts_segments(&path, "contacts_fts") <= 3 && steps() > 0,
        || {
            format!(
                "the writer left {} segments after {} merge steps",
                fts_segments(&path, "contacts_fts"),
                steps()
            )
        },
    );
    let found = opsiq
        .read(|r| {
            r.contacts(
                ws,
                &crate::contacts::ContactFilter {
                    q: Some("lov".into()),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    assert_eq!(
        found.len(),
        26,
        "a page of 25 and one more: merging lost nothing"
    );
}

/// A new store with a workspace, and the service over it.
fn store_with_workspace() -> (tempfile::TempDir, Arc<SqliteStore>, Opsiq, Id) {
    let (dir, store) = store();
    let opsiq = Opsiq::new(store.clone());
    let ws = opsiq
        .write(|w| w.insert_workspace("w", Timestamp::now()))
        .unwrap();
    (dir, store, opsiq, ws)
}

#[test]
fn the_writer_merges_full_text_segments_while_idle() {
    let (dir, store, opsiq, ws) = store_with_workspace();
    index_contacts_in_20_commits(&opsiq, ws);
    merged_without_loss(&dir, &store, &opsiq, ws);
}

/// Under a steady read load, a request's usage record arrives every few microseconds, so a
/// wake-up for the writer is always queued. The writer is free only while it lets those
/// records gather, and it merges then: otherwise merging would wait for the load to stop.
#[test]
fn the_writer_merges_full_text_segments_under_a_steady_stream_of_usage_records() {
    let (dir, store, opsiq, ws) = store_with_workspace();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                store.record(record(None, "tickets.read", Timestamp::now()));
                sent += 1;
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
            sent
        })
    };
    index_contacts_in_20_commits(&opsiq, ws);
    merged_without_loss(&dir, &store, &opsiq, ws);
    stop.store(true, Ordering::Relaxed);
    let sent = load.join().unwrap();
    store.flush().unwrap();
    assert!(sent > 100, "the stream sent {sent} records");
    let written: i64 = rusqlite::Connection::open(dir.path().join("t.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(written, sent as i64, "every usage record was written");
}

/// `.cargo/config.toml` builds the bundled SQLite with per-connection page caches and no
/// memory statistics (no global mutex on every page and every allocation).
#[test]
fn sqlite_is_built_with_the_repository_flags() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let mut stmt = conn.prepare("PRAGMA compile_options").unwrap();
    let options: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "{options:?}"
    );
}

#[test]
fn reads_in_one_view_share_a_snapshot_until_a_write_on_their_thread() {
    let dir = tempfile::tempdir().unwrap();
    let opsiq = Opsiq::open(dir.path().join("t.db")).unwrap();
    opsiq.create_workspace("a", "a.example").unwrap();
    let count = || opsiq.list_workspaces().unwrap().len();
    let (first, during, after_write) = opsiq.in_one_view(true, || {
        let first = count();
        // Committed by another thread: not in this view.
        std::thread::scope(|s| {
            s.spawn(|| opsiq.create_workspace("b", "b.example").unwrap())
                .join()
                .unwrap()
        });
        let during = count();
        // A write on this thread ends the view: what follows sees it.
        opsiq.create_workspace("c", "c.example").unwrap();
        (first, during, count())
    });
    assert_eq!((first, during, after_write), (1, 1, 3));
    assert_eq!(count(), 3);
    // Outside a view each read has its own.
    let (before, after) = opsiq.in_one_view(false, || {
        let before = count();
        std::thread::scope(|s| {
            s.spawn(|| opsiq.create_workspace("d", "d.example").unwrap())
                .join()
                .unwrap()
        });
        (before, count())
    });
    assert_eq!((before, after), (3, 4));
}

/// A store with one read connection and one workspace.
fn one_read_connection() -> (tempfile::TempDir, Opsiq) {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteConfig {
        max_readers: 1,
        ..SqliteConfig::default()
    };
    let opsiq = Opsiq::open_with(dir.path().join("t.db"), config).unwrap();
    opsiq.create_workspace("a", "a.example").unwrap();
    (dir, opsiq)
}

#[test]
fn a_panic_in_one_view_leaves_no_connection_in_a_transaction() {
    // One connection: one that leaked or stayed in a transaction would stop every read.
    let (_dir, opsiq) = one_read_connection();
    for inside_the_read in [false, true] {
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            opsiq.in_one_view(true, || {
                opsiq.list_workspaces().unwrap();
                if inside_the_read {
                    let _ = opsiq.read(|_| -> crate::Result<()> { panic!("a bug in a read") });
                }
                panic!("a bug after a read")
            })
        }));
        assert!(panicked.is_err());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = opsiq.clone();
    std::thread::spawn(move || {
        let seen = reader.in_one_view(true, || {
            reader.create_workspace("b", "b.example").unwrap();
            reader.list_workspaces().unwrap().len()
        });
        let _ = tx.send(seen);
    });
    let seen = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("reads still get a connection");
    assert_eq!(seen, 2);
}

#[test]
fn threads_waiting_for_the_one_read_connection_all_get_it() {
    // Every read but one at a time waits for the connection to come back: a wake-up lost when
    // it is given back would leave a thread waiting for good.
    let (_dir, opsiq) = one_read_connection();
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..8 {
        let (opsiq, tx) = (opsiq.clone(), tx.clone());
        std::thread::spawn(move || {
            let seen: usize = (0..300)
                .map(|_| opsiq.list_workspaces().unwrap().len())
                .sum();
            let _ = tx.send(seen);
        });
    }
    for _ in 0..8 {
        let seen = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("every thread's reads get the connection in turn");
        assert_eq!(seen, 300);
    }
}

/// Two services on one database file, as `opsiq serve` and the `opsiq` CLI beside it.
fn two_processes() -> (tempfile::TempDir, Opsiq, Opsiq) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let server = Opsiq::new(Arc::new(
        SqliteStore::open(&path, SqliteConfig::default()).unwrap(),
    ));
    let cli = Opsiq::new(Arc::new(
        SqliteStore::open(&path, SqliteConfig::default()).unwrap(),
    ));
    (dir, server, cli)
}

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

/// A new install's workspace and a `tickets.read` key in it.
fn issue_key(opsiq: &Opsiq) -> crate::keys::IssuedKey {
    let (workspace, _) = opsiq.bootstrap().unwrap().unwrap();
    opsiq
        .create_key(workspace.id, None, "k", &[Scope::TicketsRead])
        .unwrap()
}

#[test]
fn a_key_changed_by_another_process_takes_effect_at_the_next_request() {
    let (_dir, server, cli) = two_processes();
    let issued = issue_key(&cli);
    let auth = bearer(&issued.secret);
    // Verified twice: the second time from what the server keeps.
    for _ in 0..2 {
        let principal = server.authenticate(Some(&auth)).unwrap();
        assert_eq!(principal.scopes, vec![Scope::TicketsRead]);
    }
    // Scopes changed by the other process are seen at once.
    cli.update_key(
        issued.key.id,
        crate::keys::KeyUpdate {
            scopes: Some(vec![Scope::TicketsRead, Scope::TicketsWrite]),
            rate_limit: Some(7),
            ..Default::default()
        },
    )
    .unwrap();
    let principal = server.authenticate(Some(&auth)).unwrap();
    assert_eq!(
        principal.scopes,
        vec![Scope::TicketsRead, Scope::TicketsWrite]
    );
    assert_eq!(principal.rate_limit, Some(7));
    // A rotation ends the old secret at once, and the new one works.
    let rotated = cli.rotate_key(issued.key.id).unwrap();
    let err = server.authenticate(Some(&auth)).unwrap_err();
    assert!(matches!(err, Error::Unauthorized(_)), "{err:?}");
    let new_auth = bearer(&rotated.secret);
    server.authenticate(Some(&new_auth)).unwrap();
    server.authenticate(Some(&new_auth)).unwrap();
    // So does a revocation.
    cli.revoke_key(issued.key.id).unwrap();
    for _ in 0..2 {
        let err = server.authenticate(Some(&new_auth)).unwrap_err();
        assert!(err.to_string().contains("revoked"), "{err}");
    }
}

#[test]
fn the_key_generation_moves_with_every_key_column_but_its_last_use() {
    let (dir, store) = store();
    let opsiq = Opsiq::new(store);
    let issued = issue_key(&opsiq);
    let generation = || opsiq.read(|r| r.key_generation()).unwrap();
    let id = issued.key.id;
    let before = generation();
    opsiq
        .write(move |w| w.touch_key(id, Timestamp(Timestamp::now().0 + 3_600_000)))
        .unwrap();
    assert_eq!(
        generation(),
        before,
        "a key's last use changes nothing it may do"
    );
    opsiq
        .update_key(
            id,
            crate::keys::KeyUpdate {
                name: Some("renamed".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(generation() > before);
    // Every column of api_keys but last_used_at is in the trigger: a column added later must
    // be added there too (or named here as one that cannot change what a key may do).
    let conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
    let trigger: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'api_keys_changed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('api_keys')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let listed = trigger
        .split_once("UPDATE OF")
        .and_then(|(_, rest)| rest.split_once("ON api_keys"))
        .map(|(list, _)| list)
        .unwrap();
    let listed: Vec<&str> = listed.split(',').map(str::trim).collect();
    for column in columns.iter().filter(|c| *c != "last_used_at") {
        assert!(
            listed.contains(&column.as_str()),
            "api_keys.{column} is not in the api_keys_changed trigger"
        );
    }
}

#[test]
fn a_commit_nobody_waits_for_is_synced_soon_all_the_same() {
    let (_dir, store) = store();
    let stats = store.stats();
    store.record(record(None, "tickets.get", Timestamp::now()));
    // Background rows: nobody waits for their commit, yet it reaches the disk within about
    // BACKGROUND_SYNC (100 ms) of it.
    wait_until(
        10,
        || {
            let commits = stats.commits.load(Ordering::Relaxed);
            commits > 0 && stats.durable_commits.load(Ordering::Relaxed) == commits
        },
        || {
            format!(
                "a background commit was never synced ({} commits, {} durable)",
                stats.commits.load(Ordering::Relaxed),
                stats.durable_commits.load(Ordering::Relaxed)
            )
        },
    );
}

fn contact_fields(name: &str, email: &str) -> crate::contacts::ContactFields {
    crate::contacts::ContactFields {
        name: Some(name.into()),
        email: Some(crate::types::Email::parse(email).unwrap()),
        phone: None,
        external_id: None,
        tags: vec![],
        attributes: Default::default(),
    }
}

fn new_ticket(workspace: Id, contact: Id) -> crate::tickets::NewTicket {
    crate::tickets::NewTicket {
        workspace_id: workspace,
        site_id: None,
        contact_id: contact,
        subject: "Parcel".into(),
        body: "Never arrived".into(),
        priority: crate::tickets::Priority::Normal,
        department_id: None,
        assignee_id: None,
        tags: vec![],
        source: "api".into(),
    }
}

/// The customer's e-mail and name (copied onto each ticket so that reads join nothing).
fn customer(opsiq: &Opsiq, workspace: Id, ticket: Id) -> (Option<String>, Option<String>) {
    let t = opsiq
        .read(|r| r.ticket(workspace, ticket))
        .unwrap()
        .unwrap();
    (
        t.customer_email.map(|e| e.as_str().to_string()),
        t.customer_name,
    )
}

#[test]
fn a_ticket_shows_its_customer_as_the_contact_is_now() {
    let (dir, store) = store();
    let opsiq = Opsiq::new(store);
    let (workspace, _) = opsiq.bootstrap().unwrap().unwrap();
    let ws = workspace.id;
    let now = Timestamp::now();
    let (ada, bob, first, second) = opsiq
        .write(move |w| {
            let ada = w.insert_contact(ws, None, &contact_fields("Ada", "ada@example.com"), now)?;
            let bob = w.insert_contact(ws, None, &contact_fields("Bob", "bob@example.com"), now)?;
            let first = w.insert_ticket(&new_ticket(ws, ada), now)?.id;
            let second = w.insert_ticket(&new_ticket(ws, ada), now)?.id;
            Ok((ada, bob, first, second))
        })
        .unwrap();
    let ada_now = (Some("ada@example.com".into()), Some("Ada".into()));
    assert_eq!(customer(&opsiq, ws, first), ada_now);
    // A change to the contact's e-mail or name reaches every one of its tickets.
    opsiq
        .write(move |w| {
            w.update_contact(
                ws,
                ada,
                &contact_fields("Ada L.", "ada@lovelace.example"),
                now,
            )
        })
        .unwrap();
    let renamed = (Some("ada@lovelace.example".into()), Some("Ada L.".into()));
    assert_eq!(customer(&opsiq, ws, first), renamed);
    assert_eq!(customer(&opsiq, ws, second), renamed);
    let listed = opsiq
        .read(|r| r.tickets(ws, &crate::tickets::TicketFilter::default()))
        .unwrap();
    assert!(
        listed
            .iter()
            .all(|t| t.customer_name.as_deref() == Some("Ada L."))
    );
    // A ticket moved to another contact (or inserted naming other values) takes that
    // contact's, whoever wrote the row.
    let conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
    conn.execute(
        "UPDATE tickets SET contact_id = ?1 WHERE id = ?2",
        rusqlite::params![bob.0, second.0],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO tickets (workspace_id, contact_id, customer_email, subject, body, status, priority, \
         source, created_at, updated_at) VALUES (?1, ?2, 'stale@example.com', 's', 'b', 'open', 'low', 'api', 0, 0)",
        rusqlite::params![ws.0, bob.0],
    )
    .unwrap();
    let third = Id(conn.last_insert_rowid());
    let bob_now = (Some("bob@example.com".into()), Some("Bob".into()));
    assert_eq!(customer(&opsiq, ws, second), bob_now);
    assert_eq!(customer(&opsiq, ws, third), bob_now);
    assert_eq!(customer(&opsiq, ws, first), renamed);
    // A write to the copy itself is put back; a contact row replaced whole reaches its tickets.
    conn.execute(
        "UPDATE tickets SET customer_name = 'Mallory' WHERE id = ?1",
        [third.0],
    )
    .unwrap();
    assert_eq!(customer(&opsiq, ws, third), bob_now);
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    conn.execute(
        "REPLACE INTO contacts (id, workspace_id, name, email, email_norm, created_at, updated_at) \
         VALUES (?1, ?2, 'Robert', 'robert@example.com', 'robert@example.com', 0, 0)",
        rusqlite::params![bob.0, ws.0],
    )
    .unwrap();
    let robert = (Some("robert@example.com".into()), Some("Robert".into()));
    assert_eq!(customer(&opsiq, ws, second), robert);
    assert_eq!(customer(&opsiq, ws, third), robert);
    // Every one of these writes left the stored JSON current.
    assert_eq!(assert_docs_match(&opsiq, &dir.path().join("t.db"), ws), 0);
}

/// Every ticket's and contact's JSON as listed from the store (its stored `doc`, or rendered
/// from the columns where SQLite left it NULL) is the typed record's serialisation, byte for
/// byte. Answers the number of rows whose `doc` is NULL.
fn assert_docs_match(opsiq: &Opsiq, path: &std::path::Path, ws: Id) -> i64 {
    let limit = crate::types::Limit::new(100).unwrap();
    let tickets = crate::tickets::TicketFilter {
        limit,
        ..Default::default()
    };
    let contacts = crate::contacts::ContactFilter {
        limit,
        ..Default::default()
    };
    let (typed, docs) = opsiq
        .read(|r| Ok((r.tickets(ws, &tickets)?, r.ticket_docs(ws, &tickets)?)))
        .unwrap();
    assert_eq!(typed.len(), docs.len());
    for (t, doc) in typed.iter().zip(&docs) {
        assert_eq!(doc.id(), t.id);
        assert_eq!(
            doc.json(),
            serde_json::to_string(t).unwrap(),
            "ticket {}",
            t.id
        );
        let one = opsiq.read(|r| r.ticket_doc(ws, t.id)).unwrap().unwrap();
        assert_eq!(one, *doc, "ticket {} read alone", t.id);
    }
    let (typed, docs) = opsiq
        .read(|r| Ok((r.contacts(ws, &contacts)?, r.contact_docs(ws, &contacts)?)))
        .unwrap();
    assert_eq!(typed.len(), docs.len());
    for (c, doc) in typed.iter().zip(&docs) {
        assert_eq!(doc.id(), c.id);
        assert_eq!(
            doc.json(),
            serde_json::to_string(c).unwrap(),
            "contact {}",
            c.id
        );
    }
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT (SELECT count(*) FROM tickets WHERE doc IS NULL) \
                  + (SELECT count(*) FROM contacts WHERE doc IS NULL)",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn the_stored_json_of_tickets_and_contacts_is_their_rendering() {
    let (dir, store) = store();
    let path = dir.path().join("t.db");
    let opsiq = Opsiq::new(store);
    let (workspace, _) = opsiq.bootstrap().unwrap().unwrap();
    let ws = workspace.id;
    let now = Timestamp::now();
    // Every ASCII character (the controls escaped, short or as \u00XX), and text beyond it.
    let awkward: String =
        (0u8..0x80).map(char::from).collect::<String>() + "é\u{2028}\u{2029}😀\u{FEFF}";
    let attributes: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        r#"{"zeta": 1, "alpha": {"nested": [1.5, -0.0, 0.1, 1e300, 12345678901234567890, -9223372036854775808]},
            "é\"key": "\u0001\n\\/", "none": null, "yes": true, "empty": {}, "list": []}"#,
    )
    .unwrap();
    let (ada, first, second) = opsiq
        .write(move |w| {
            let mut fields = contact_fields(&awkward, "ada@example.com");
            fields.phone = Some(awkward.clone());
            fields.external_id = Some("ext-\"1\"".into());
            fields.tags = vec!["vip".into(), awkward.clone()];
            fields.attributes = attributes;
            let ada = w.insert_contact(ws, None, &fields, now)?;
            w.insert_contact(
                ws,
                Some(Id(1)),
                &contact_fields("Bob", "bob@example.com"),
                now,
            )?;
            let mut ticket = new_ticket(ws, ada);
            ticket.subject = awkward.clone();
            ticket.body = awkward.repeat(3);
            ticket.tags = vec![awkward.clone(), "billing".into()];
            ticket.department_id = Some(Id(1));
            let first = w.insert_ticket(&ticket, now)?.id;
            let second = w.insert_ticket(&new_ticket(ws, ada), now)?.id;
            Ok((ada, first, second))
        })
        .unwrap();
    assert_eq!(assert_docs_match(&opsiq, &path, ws), 0);
    // The store renders a new ticket's doc itself; a row inserted without one, by hand, gets
    // it from the insert trigger, rendered by SQL to the same bytes.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO tickets (workspace_id, contact_id, subject, body, status, priority, tags, source, \
             created_at, updated_at) VALUES (?1, ?2, ?3, 'by hand', 'pending', 'low', '[\"x\"]', 'email', ?4, ?4)",
            rusqlite::params![ws, ada, "Inserted \"by hand\" é", now],
        )
        .unwrap();
    assert_eq!(assert_docs_match(&opsiq, &path, ws), 0);
    // Written again through the store: a ticket's fields, and the contact (whose new name
    // reaches its tickets' copies by trigger).
    opsiq
        .write(move |w| {
            let fields = crate::tickets::TicketFields {
                subject: "Re: parcel".into(),
                status: crate::tickets::TicketStatus::Resolved,
                priority: crate::tickets::Priority::Urgent,
                department_id: None,
                assignee_id: None,
                tags: vec!["done".into()],
            };
            w.update_ticket(ws, second, &fields, now)?;
            w.update_contact(ws, ada, &contact_fields("Ada \"L\"", "ada@l.example"), now)
        })
        .unwrap();
    assert_eq!(assert_docs_match(&opsiq, &path, ws), 0);
    // Timestamps at the ends of the years 0 to 9999 and around the epoch; past them SQLite
    // does not render (NULL), and the listing renders those rows from their columns.
    let conn = rusqlite::Connection::open(&path).unwrap();
    for (created, updated) in [
        (-62_167_219_200_000_i64, 253_402_300_799_999_i64),
        (-1, 0),
        (1, 999),
        (1_796_305_513_077, 1_796_305_513_078),
    ] {
        conn.execute(
            "UPDATE tickets SET created_at = ?1, updated_at = ?2 WHERE id = ?3",
            [created, updated, first.0],
        )
        .unwrap();
        conn.execute(
            "UPDATE contacts SET created_at = ?1, updated_at = ?2 WHERE id = ?3",
            [created, updated, ada.0],
        )
        .unwrap();
        assert_eq!(
            assert_docs_match(&opsiq, &path, ws),
            0,
            "{created} {updated}"
        );
    }
    conn.execute(
        "UPDATE tickets SET created_at = 253402300800000 WHERE id = ?1",
        [second.0],
    )
    .unwrap();
    conn.execute(
        "UPDATE contacts SET updated_at = -62167219200001 WHERE id = ?1",
        [ada.0],
    )
    .unwrap();
    assert_eq!(assert_docs_match(&opsiq, &path, ws), 2);
    // A search's page comes from the stored JSON too.
    let found = opsiq
        .read(|r| {
            r.contact_docs(
                ws,
                &crate::contacts::ContactFilter {
                    q: Some("bob".into()),
                    limit: crate::types::Limit::new(5).unwrap(),
                    before: None,
                },
            )
        })
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].parse().unwrap().name.as_deref(), Some("Bob"));
}

/// A database at `path` with only the first `version` migrations applied, as the build of that
/// schema left it.
fn database_at_version(path: &std::path::Path, version: usize) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    for (i, sql) in super::migrations::MIGRATIONS
        .iter()
        .take(version)
        .enumerate()
    {
        conn.execute_batch(sql).unwrap();
        conn.pragma_update(None, "user_version", i as i64 + 1)
            .unwrap();
    }
    conn
}

#[test]
fn the_customer_migration_fills_in_the_tickets_already_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        // A database as the build before migration 0010 left it.
        let conn = database_at_version(&path, 9);
        conn.execute_batch(
            "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0);
             INSERT INTO contacts (id, workspace_id, name, email, email_norm, created_at, updated_at)
                 VALUES (7, 1, 'Cy', 'Cy@Example.com', 'cy@example.com', 0, 0);
             INSERT INTO contacts (id, workspace_id, name, created_at, updated_at)
                 VALUES (8, 1, 'Cyd', 0, 0), (9, 1, 'Cyra', 0, 0), (10, 1, 'Dee', 0, 0);
             INSERT INTO tickets (workspace_id, contact_id, subject, body, status, priority, source,
                 created_at, updated_at) VALUES (1, 7, 's', 'b', 'open', 'low', 'api', 0, 0);",
        )
        .unwrap();
    }
    let opsiq = Opsiq::open(&path).unwrap();
    assert_eq!(
        customer(&opsiq, Id(1), Id(1)),
        (Some("Cy@Example.com".into()), Some("Cy".into()))
    );
    // Migration 0011 rendered the records already stored.
    assert_eq!(assert_docs_match(&opsiq, &path, Id(1)), 0);
    // Migration 0012 indexed them again for search: newest first, page by page.
    let search = |before: Option<i64>| search_ids(&opsiq, Id(1), "cy", before);
    assert_eq!(
        search(None),
        [9, 8, 7],
        "a page of 2, and one more to tell a next page"
    );
    assert_eq!(search(Some(8)), [7]);
}

/// The ids of a page of 2 contacts of `workspace` that search `q` finds (and the one more that
/// tells a next page follows), newest first, from the cursor `before`.
fn search_ids(opsiq: &Opsiq, workspace: Id, q: &str, before: Option<i64>) -> Vec<i64> {
    opsiq
        .read(|r| {
            r.contact_docs(
                workspace,
                &crate::contacts::ContactFilter {
                    q: Some(q.into()),
                    limit: crate::types::Limit::new(2).unwrap(),
                    before: before.map(crate::types::Cursor),
                },
            )
        })
        .unwrap()
        .iter()
        .map(|d| d.id().0)
        .collect()
}

/// A store committing without syncs (the WAL's length is what these tests watch), and a way to
/// read its WAL's length.
fn store_watching_the_wal() -> (tempfile::TempDir, Opsiq, impl Fn() -> u64) {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteConfig {
        durability: super::Durability::Normal,
        ..SqliteConfig::default()
    };
    let opsiq = Opsiq::open_with(dir.path().join("t.db"), config).unwrap();
    let wal = dir.path().join("t.db-wal");
    let wal_len = move || std::fs::metadata(&wal).map_or(0, |m| m.len());
    (dir, opsiq, wal_len)
}

/// The WAL's length the tests allow: the writer checkpoints itself at 3000 frames of 4 KiB
/// (about 12 MB, see `checkpoint`), and a few batches may land before the WAL starts over.
const WAL_BOUND: u64 = 16 << 20;

#[test]
fn the_wal_starts_over_while_writes_and_reads_alternate() {
    let (_dir, opsiq, wal_len) = store_watching_the_wal();
    let mut largest = 0;
    // Each write commits a few pages; 1,500 of them made a WAL of about 40 MB when read
    // transactions kept open between reads stopped it from starting over (5c4e995, reverted),
    // and as much without the writer's own checkpoint.
    for i in 0..1500 {
        opsiq
            .create_workspace(&format!("w{i}"), "w.example")
            .unwrap();
        opsiq.list_workspaces().unwrap();
        largest = largest.max(wal_len());
    }
    assert!(largest < WAL_BOUND, "the WAL grew to {largest} bytes");
}

#[test]
fn the_wal_starts_over_under_a_steady_stream_of_writes() {
    // A checkpoint beside the writer never catches up with a steady stream of commits; the
    // writer's own checkpoint past `INLINE_AT` frames lets the WAL start over all the same
    // (without it, this grew the WAL past 80 MB).
    let (_dir, opsiq, wal_len) = store_watching_the_wal();
    let largest = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (opsiq, wal_len, largest) = (&opsiq, &wal_len, &largest);
            s.spawn(move || {
                for i in 0..1500 {
                    opsiq
                        .create_workspace(&format!("w{t}-{i}"), "w.example")
                        .unwrap();
                    largest.fetch_max(wal_len(), Ordering::Relaxed);
                }
            });
        }
    });
    let largest = largest.into_inner();
    assert!(largest < WAL_BOUND, "the WAL grew to {largest} bytes");
}

#[test]
fn an_idle_store_leaves_the_wal_to_another_process() {
    // The writer holds a read transaction between its batches (the `pin` module) and lets it
    // go once idle: then another process's checkpoint copies the whole WAL and truncates it,
    // which a read transaction held anywhere in the WAL would stop.
    let (dir, opsiq, wal_len) = store_watching_the_wal();
    for i in 0..50 {
        opsiq
            .create_workspace(&format!("w{i}"), "w.example")
            .unwrap();
    }
    opsiq.store().flush().unwrap();
    let other = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
    other
        .execute("UPDATE workspaces SET name = name || '.' WHERE id = 1", [])
        .unwrap();
    // Asked while a read transaction is held, the checkpoint answers busy at once.
    other.busy_timeout(std::time::Duration::ZERO).unwrap();
    assert!(wal_len() > 0, "the writes went through the WAL");
    let truncated = || {
        let busy: i64 = other
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .unwrap();
        busy == 0 && wal_len() == 0
    };
    let deadline = std::time::Instant::now() + super::pin::IDLE * 10;
    while !truncated() {
        assert!(
            std::time::Instant::now() < deadline,
            "the WAL was still held after {:?} idle",
            super::pin::IDLE * 10
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn the_lean_audit_log_migration_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        // A database as the build before migration 0013 left it, with a request logged in
        // each workspace and one refused before any key was known.
        let conn = database_at_version(&path, 12);
        conn.execute_batch(
            "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0), (2, 'v', 0);
             INSERT INTO audit_log (request_id, key_id, workspace_id, action, outcome, status, latency_us, created_at)
                 VALUES ('req_a', NULL, NULL, NULL, 'unauthorized', 401, 5, 10),
                        ('req_b', NULL, 1, 'tickets.get', 'ok', 200, 7, 11),
                        ('req_c', NULL, 2, 'contacts.list', 'not_found', 404, 9, 12);",
        )
        .unwrap();
    }
    let opsiq = Opsiq::open(&path).unwrap();
    let logged = |ws: Option<Id>| {
        opsiq
            .read(|r| r.audit_entries(ws, 10))
            .unwrap()
            .into_iter()
            .map(|e| (e.request_id, e.workspace_id, e.action, e.outcome, e.status))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        logged(None),
        [
            (
                "req_c".into(),
                Some(Id(2)),
                Some("contacts.list".into()),
                "not_found".into(),
                404
            ),
            (
                "req_b".into(),
                Some(Id(1)),
                Some("tickets.get".into()),
                "ok".into(),
                200
            ),
            ("req_a".into(), None, None, "unauthorized".into(), 401),
        ]
    );
    assert_eq!(logged(Some(Id(1))).len(), 1);
    // One b-tree a row: no secondary index, no foreign key to look up.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(
        count("SELECT COUNT(*) FROM pragma_index_list('audit_log')"),
        0
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM pragma_foreign_key_list('audit_log')"),
        0
    );
    // New rows still land after the old ones, whatever key they name.
    opsiq.store().record(UsageRecord {
        audit: Some(AuditEntry {
            request_id: "req_d".into(),
            key_id: Some(Id(99)),
            workspace_id: Some(Id(1)),
            action: Some("tickets.get".into()),
            outcome: "ok".into(),
            status: 200,
            latency_us: 3,
            created_at: Timestamp(13),
        }),
        touch: None,
    });
    opsiq.store().flush().unwrap();
    let logged = logged(None);
    assert_eq!(logged.len(), 4);
    assert_eq!(logged[0].0, "req_d");
}

/// Everything a schema holds but the named tables: `(type, name, table, sql)`, sorted.
fn schema_apart_from(conn: &rusqlite::Connection, tables: &[&str]) -> Vec<[String; 4]> {
    let mut stmt = conn
        .prepare(
            "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master \
             WHERE NOT (type = 'table' AND name IN (SELECT value FROM json_each(?1))) ORDER BY 1, 2",
        )
        .unwrap();
    stmt.query_map([serde_json::to_string(tables).unwrap()], |r| {
        Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?])
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

/// Every row of a table as `column = value` pairs sorted by column, rows in id order.
fn rows_by_name(
    conn: &rusqlite::Connection,
    table: &str,
) -> Vec<Vec<(String, rusqlite::types::Value)>> {
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM {table} ORDER BY id"))
        .unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|n| n.to_string()).collect();
    stmt.query_map([], |r| {
        let mut row = names
            .iter()
            .enumerate()
            .map(|(i, n)| Ok((n.clone(), r.get(i)?)))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        row.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(row)
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

#[test]
fn the_doc_first_migration_keeps_every_row_index_and_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let tables = ["tickets", "contacts"];
    let (schema, before) = {
        // A database as the build before migration 0014 left it: contacts with a note (which
        // a careless drop of `contacts` would delete by cascade) and tickets.
        let conn = database_at_version(&path, 13);
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0);
             INSERT INTO contacts (id, workspace_id, name, email, email_norm, tags, created_at, updated_at)
                 VALUES (7, 1, 'Cy', 'Cy@Example.com', 'cy@example.com', '[\"vip\"]', 0, 0);
             INSERT INTO contacts (id, workspace_id, name, created_at, updated_at)
                 VALUES (8, 1, 'Cyd', 0, 0), (9, 1, 'Dee', 0, 0);
             INSERT INTO contact_notes (contact_id, body, author, created_at) VALUES (7, 'called', 'ann', 1);
             INSERT INTO tickets (workspace_id, contact_id, subject, body, status, priority, source,
                 created_at, updated_at) VALUES (1, 7, 's', 'b', 'open', 'low', 'api', 0, 0),
                 (1, 8, 't', 'c', 'resolved', 'high', 'email', 0, 5);",
        )
        .unwrap();
        let before: Vec<_> = tables.iter().map(|t| rows_by_name(&conn, t)).collect();
        (schema_apart_from(&conn, &tables), before)
    };
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    super::migrations::apply_to(&mut conn, 14).unwrap();
    // The same rows, indexes, triggers and views; `doc` second in both tables.
    assert_eq!(schema_apart_from(&conn, &tables), schema);
    for (table, rows) in tables.iter().zip(&before) {
        assert_eq!(&rows_by_name(&conn, table), rows, "{table}");
        let second: String = conn
            .query_row(
                &format!("SELECT name FROM pragma_table_info('{table}') WHERE cid = 1"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(second, "doc", "{table}");
    }
    let notes: i64 = conn
        .query_row("SELECT count(*) FROM contact_notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(notes, 1);
    // The triggers work on the new tables, and after the migrations since: a renamed contact
    // renames its ticket's customer, both are rendered again, and search finds the new name.
    drop(conn);
    let opsiq = Opsiq::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE contacts SET name = 'Cyril' WHERE id = 7", [])
        .unwrap();
    assert_eq!(customer(&opsiq, Id(1), Id(1)).1.as_deref(), Some("Cyril"));
    assert_eq!(assert_docs_match(&opsiq, &path, Id(1)), 0);
    let found = opsiq
        .read(|r| {
            r.contact_docs(
                Id(1),
                &crate::contacts::ContactFilter {
                    q: Some("cyr".into()),
                    limit: crate::types::Limit::new(5).unwrap(),
                    before: None,
                },
            )
        })
        .unwrap();
    assert_eq!(found.iter().map(|d| d.id()).collect::<Vec<_>>(), [Id(7)]);
    assert!(found[0].json().contains("\"name\":\"Cyril\""));
}

#[test]
fn a_migration_that_would_break_a_foreign_key_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        // A ticket naming a contact that is not there (foreign keys were off when it was
        // written): copying the tickets would carry it over.
        let conn = database_at_version(&path, 13);
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0);
             INSERT INTO tickets (workspace_id, contact_id, subject, body, status, priority, source,
                 created_at, updated_at) VALUES (1, 404, 's', 'b', 'open', 'low', 'api', 0, 0);",
        )
        .unwrap();
    }
    let refused = Opsiq::open(&path).err().expect("the upgrade is refused");
    assert!(
        refused.to_string().contains(
            "migration 14 would leave a row (1) of tickets referring to a missing row of contacts"
        ),
        "{refused}"
    );
    // Nothing of it stays: the schema is still version 13, `doc` still last.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 13);
    let last: String = conn
        .query_row(
            "SELECT name FROM pragma_table_info('tickets') ORDER BY cid DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last, "doc");
}

#[test]
fn migrations_leave_foreign_keys_as_they_found_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
    conn.pragma_update(None, "foreign_keys", true).unwrap();
    super::migrations::apply(&mut conn).unwrap();
    let on: bool = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert!(on);
    let refused = conn.execute(
        "INSERT INTO tickets (workspace_id, contact_id, subject, body, status, priority, source, \
         created_at, updated_at) VALUES (1, 404, 's', 'b', 'open', 'low', 'api', 0, 0)",
        [],
    );
    assert!(refused.is_err(), "a dangling contact is refused");
}

#[test]
fn search_walks_only_its_own_workspace_newest_first_page_by_page() {
    let (dir, store) = store();
    let opsiq = Opsiq::new(store);
    let now = Timestamp::now();
    // Two workspaces whose contacts interleave by id, all of them matching.
    let (mine, theirs, ids) = opsiq
        .write(move |w| {
            let mine = w.insert_workspace("mine", now)?;
            let theirs = w.insert_workspace("theirs", now)?;
            let mut ids = Vec::new();
            for i in 0..7 {
                let ws = if i % 3 == 1 { theirs } else { mine };
                let id = w.insert_contact(
                    ws,
                    None,
                    &contact_fields("Cyra", &format!("c{i}@example.com")),
                    now,
                )?;
                ids.push((ws, id.0));
            }
            Ok((mine, theirs, ids))
        })
        .unwrap();
    let search = |ws: Id, q: &str, before: Option<i64>| search_ids(&opsiq, ws, q, before);
    let newest_first = |of: Id| -> Vec<i64> {
        ids.iter()
            .rev()
            .filter(|(ws, _)| *ws == of)
            .map(|(_, id)| *id)
            .collect()
    };
    let (m, t) = (newest_first(mine), newest_first(theirs));
    assert_eq!((m.len(), t.len()), (5, 2));
    // A page of 2, and one more that tells a next page follows; then page by page from a cursor.
    assert_eq!(search(mine, "cyr", None), m[..3]);
    assert_eq!(search(mine, "cyr", Some(m[1])), m[2..5]);
    assert_eq!(search(mine, "cyr", Some(m[3])), m[4..]);
    assert_eq!(search(mine, "cyr", Some(m[4])), [0i64; 0]);
    assert_eq!(search(theirs, "cyr", None), t);
    assert_eq!(search(theirs, "c1", None), t[1..]);
    assert_eq!(search(mine, "c1", None), [0i64; 0]);
    // Cursors from anywhere, and workspaces that hold nothing, find nothing amiss.
    assert_eq!(search(mine, "cyr", Some(i64::MAX)), m[..3]);
    for before in [i64::MIN, -1, 0, 1] {
        assert_eq!(search(mine, "cyr", Some(before)), [0i64; 0], "{before}");
    }
    for nobody in [Id(-1), Id(0), Id(99), Id(1 << 23), Id(i64::MAX)] {
        assert_eq!(search(nobody, "cyr", None), [0i64; 0], "{nobody:?}");
    }
    // A contact moved to the other workspace (no action does, but the index follows any write),
    // and one deleted, are found where they are now.
    let path = dir.path().join("t.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE contacts SET workspace_id = ?1 WHERE id = ?2",
        [theirs.0, m[0]],
    )
    .unwrap();
    conn.execute("DELETE FROM contacts WHERE id = ?1", [t[1]])
        .unwrap();
    assert_eq!(search(mine, "cyr", None), m[1..4]);
    assert_eq!(search(theirs, "cyr", None), [m[0], t[0]]);
    // Ids beyond the index's keys are refused, not mixed into another workspace's.
    let refused_for_its_key = |sql: &str, args: [i64; 2]| {
        let refused = conn.execute(sql, args).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("contact search key out of range"),
            "{sql} {args:?}: {refused}"
        );
    };
    let insert = "INSERT INTO contacts (id, workspace_id, name, created_at, updated_at) VALUES (?1, ?2, 'Cyra', 0, 0)";
    for (ws, id) in [(mine.0, 1_i64 << 40), (1 << 23, 1000)] {
        refused_for_its_key(insert, [id, ws]);
    }
    conn.execute(insert, [(1_i64 << 40) - 1, mine.0]).unwrap();
    assert_eq!(search(mine, "cyr", None)[0], (1 << 40) - 1);
    // The next contact would take id 2^40: refused as a limit of the store (503, as a full disk
    // is, in the trigger's words) rather than as a bug, and nothing of it is written.
    let past = opsiq
        .write(move |w| {
            w.insert_contact(mine, None, &contact_fields("Cyra", "past@example.com"), now)
        })
        .unwrap_err();
    assert_eq!(past.status(), 503, "{past}");
    assert!(
        past.to_string()
            .contains("contact ids must stay below 2^40 and workspace ids below 2^23"),
        "{past}"
    );
    let written: i64 = conn
        .query_row(
            "SELECT count(*) FROM contacts WHERE email = 'past@example.com'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(written, 0);
    // An update is held to the same range (0016), and changes nothing when refused.
    for (column, value) in [
        ("workspace_id", 1_i64 << 23),
        ("workspace_id", -1),
        ("id", 1 << 40),
        ("id", 0),
    ] {
        refused_for_its_key(
            &format!("UPDATE contacts SET {column} = ?1 WHERE id = ?2"),
            [value, m[1]],
        );
    }
    assert_eq!(search(mine, "cyr", None)[1..], m[1..3]);
    // A contact whose id changes is found under its new id, and not under its old one.
    let renumbered = (1_i64 << 40) - 2;
    conn.execute(
        "UPDATE contacts SET id = ?1 WHERE id = ?2",
        [renumbered, m[1]],
    )
    .unwrap();
    assert_eq!(search(mine, "cyr", None), [(1 << 40) - 1, renumbered, m[2]]);
}

#[test]
fn a_thread_takes_back_the_read_connection_it_gave_back() {
    // Each connection is told apart by a page-cache size of its own. The other thread gives
    // its connection back last, so taking whichever came back last would hand this thread the
    // other thread's connection.
    let (_dir, store) = store();
    let mark = |reader: &super::Reader<'_>, pages: i64| {
        let conn = reader.conn().raw();
        conn.pragma_update(None, "cache_size", pages).unwrap();
    };
    let marked = |reader: &super::Reader<'_>| -> i64 {
        let conn = reader.conn().raw();
        conn.pragma_query_value(None, "cache_size", |r| r.get(0))
            .unwrap()
    };
    let mine = store.take_reader().unwrap();
    mark(&mine, -1111);
    let both_taken = std::sync::Barrier::new(2);
    let mine_back = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            let theirs = store.take_reader().unwrap();
            mark(&theirs, -2222);
            both_taken.wait();
            mine_back.wait();
            drop(theirs);
            marked(&store.take_reader().unwrap())
        });
        both_taken.wait();
        drop(mine);
        mine_back.wait();
        assert_eq!(
            other.join().unwrap(),
            -2222,
            "the other thread's own connection"
        );
    });
    assert_eq!(marked(&store.take_reader().unwrap()), -1111);
}
