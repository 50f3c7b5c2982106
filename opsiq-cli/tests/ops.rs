//! `opsiq doctor`, `opsiq backup` and `opsiq restore` as an operator runs them.

mod common;

use common::{json_of, opsiq, stderr};

#[test]
fn doctor_reports_each_check_with_advice_and_exits_1_only_when_something_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opsiq.db");
    json_of(&opsiq(
        &db,
        &[
            "--json",
            "keys",
            "create",
            "--name",
            "idle",
            "--scopes",
            "tickets.read",
        ],
    ));
    let out = opsiq(&db, &["--json", "doctor"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let find = |check: &str| {
        findings
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == check)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(find("integrity")["severity"], "ok");
    assert_eq!(find("journal_mode")["severity"], "ok");
    assert_eq!(find("migrations")["severity"], "ok");
    assert!(
        find("disk")["message"]
            .as_str()
            .unwrap()
            .contains("MiB free")
    );
    let keys = find("keys");
    assert_eq!(keys["severity"], "warning");
    assert!(
        keys["message"]
            .as_str()
            .unwrap()
            .contains("never been used")
    );
    assert!(
        keys["advice"]
            .as_str()
            .unwrap()
            .contains("opsiq keys revoke 1")
    );

    let text = opsiq(&db, &["doctor"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("warning  keys:"));

    // A damaged file: the doctor says so and exits 1.
    let mut bytes = std::fs::read(&db).unwrap();
    let page = 4096 * 3;
    for b in bytes.iter_mut().skip(page).take(4096) {
        *b = 0xAB;
    }
    std::fs::write(&db, &bytes).unwrap();
    let _ = std::fs::remove_file(db.with_extension("db-wal"));
    let broken = opsiq(&db, &["doctor"]);
    assert_eq!(
        broken.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&broken.stdout)
    );
    assert_eq!(
        stderr(&broken).trim_end().lines().count(),
        1,
        "{}",
        stderr(&broken)
    );
}

#[test]
fn a_backup_restores_the_install_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opsiq.db");
    let copy = dir.path().join("backup.db");
    json_of(&opsiq(
        &db,
        &[
            "--json",
            "keys",
            "create",
            "--name",
            "first",
            "--scopes",
            "tickets.read",
        ],
    ));
    let backed = json_of(&opsiq(
        &db,
        &["--json", "backup", "--to", copy.to_str().unwrap()],
    ));
    assert_eq!(backed["integrity"], "ok");
    json_of(&opsiq(
        &db,
        &[
            "--json",
            "keys",
            "create",
            "--name",
            "second",
            "--scopes",
            "tickets.read",
        ],
    ));

    let again = opsiq(&db, &["backup", "--to", copy.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists"));
    let unforced = opsiq(&db, &["restore", "--from", copy.to_str().unwrap()]);
    assert_eq!(unforced.status.code(), Some(1));
    assert!(stderr(&unforced).contains("--force"));
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all, just bytes").unwrap();
    let refused = opsiq(
        &db,
        &["restore", "--force", "--from", junk.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("not a usable OpsIQ backup"),
        "{}",
        stderr(&refused)
    );

    json_of(&opsiq(
        &db,
        &[
            "--json",
            "restore",
            "--force",
            "--from",
            copy.to_str().unwrap(),
        ],
    ));
    let keys = json_of(&opsiq(&db, &["--json", "keys", "list"]));
    let names: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first"], "the install is as it was at the backup");
}
