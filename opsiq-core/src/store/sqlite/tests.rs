//! The writer's promises: concurrent writes share commits, a failing write drops only its own
//! changes, and nothing is reported done before its commit.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{SqliteConfig, SqliteStore};
use crate::store::Store;
use crate::types::Timestamp;
use crate::{Error, Opsiq};

fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db"), SqliteConfig::default()).unwrap();
    (dir, Arc::new(store))
}

/// Waits (bounded) until the writer's queue holds `n` jobs.
fn wait_for_queue(store: &SqliteStore, n: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.stats().queued.load(Ordering::Relaxed) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "writes never queued: {} queued, {} written",
            store.stats().queued.load(Ordering::Relaxed),
            store.stats().writes.load(Ordering::Relaxed)
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
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

#[test]
fn detached_writes_are_committed_by_flush_and_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let store = SqliteStore::open(&path, SqliteConfig::default()).unwrap();
        store.write_detached(Box::new(|w| {
            w.insert_workspace("a", Timestamp::now()).map(|_| ())
        }));
        store.flush().unwrap();
        store.write_detached(Box::new(|w| {
            w.insert_workspace("b", Timestamp::now()).map(|_| ())
        }));
    }
    let opsiq = Opsiq::open(&path).unwrap();
    assert_eq!(
        opsiq.list_workspaces().unwrap().len(),
        2,
        "closing the store commits queued writes"
    );
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
