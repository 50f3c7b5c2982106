//! `opsiq rules` as an operator scripts it: rule files, stdin, listing, enabling and disabling,
//! and the CLI's error conventions.

mod common;

use common::{json_of, opsiq, opsiq_with_stdin, stderr};

use serde_json::{Value, json};

fn rule() -> Value {
    json!({
        "name": "Rescue big carts",
        "event": "checkout.abandoned",
        "conditions": [{"property": "cart_total", "op": "gt", "value": 100}],
        "actions": [{"type": "create_ticket", "subject": "Abandoned cart", "priority": "high"}],
        "cooldown_seconds": 3600
    })
}

#[test]
fn rules_are_added_from_a_file_or_stdin_listed_disabled_and_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opsiq.db");
    let file = dir.path().join("rule.json");
    std::fs::write(&file, rule().to_string()).unwrap();

    let added = json_of(&opsiq(
        &db,
        &["--json", "rules", "add", "--file", file.to_str().unwrap()],
    ));
    assert_eq!(added["name"], "Rescue big carts");
    assert_eq!(added["workspace_id"], 1);
    assert_eq!(added["enabled"], true);
    assert_eq!(added["conditions"], rule()["conditions"]);
    let id = added["id"].as_i64().unwrap().to_string();

    let welcome = json!({"name": "Welcome", "event": "signup.started", "enabled": false,
        "actions": [{"type": "queue_message", "body": "Welcome!"}]});
    let from_stdin = opsiq_with_stdin(
        &db,
        &["rules", "add", "--file", "-", "--workspace", "1"],
        &welcome.to_string(),
    );
    assert!(from_stdin.status.success(), "{}", stderr(&from_stdin));
    assert!(
        String::from_utf8_lossy(&from_stdin.stdout).contains("\"Welcome\""),
        "{}",
        String::from_utf8_lossy(&from_stdin.stdout)
    );

    let listed = json_of(&opsiq(&db, &["--json", "rules", "list"]));
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Welcome", "Rescue big carts"]);
    let table = opsiq(&db, &["rules", "list", "--workspace", "1"]);
    let text = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(text.starts_with("ID"), "{text}");
    assert!(text.contains("checkout.abandoned") && text.contains("create_ticket"));
    assert!(text.contains("disabled") && text.contains("enabled"));

    let disabled = json_of(&opsiq(&db, &["--json", "rules", "disable", &id]));
    assert_eq!(disabled["enabled"], false);
    let enabled = opsiq(&db, &["rules", "enable", &id]);
    assert!(enabled.status.success());
    assert!(String::from_utf8_lossy(&enabled.stdout).contains("is enabled"));
    let listed = json_of(&opsiq(
        &db,
        &["--json", "rules", "list", "--workspace", "1"],
    ));
    assert_eq!(listed[1]["enabled"], true);
}

#[test]
fn bad_rule_files_fail_with_a_one_line_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opsiq.db");
    let mut bad = rule();
    bad["conditions"][0]["op"] = json!("bigger");
    let out = opsiq_with_stdin(&db, &["rules", "add", "--file", "-"], &bad.to_string());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("conditions[0].op"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1);

    let out = opsiq_with_stdin(&db, &["--json", "rules", "add", "--file", "-"], "{not json");
    assert_eq!(out.status.code(), Some(1));
    let error: Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(error["error"], "invalid_json");

    let missing = dir.path().join("nope.json");
    let out = opsiq(&db, &["rules", "add", "--file", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));

    let file = dir.path().join("rule.json");
    std::fs::write(&file, rule().to_string()).unwrap();
    let out = opsiq(
        &db,
        &[
            "rules",
            "add",
            "--file",
            file.to_str().unwrap(),
            "--workspace",
            "9",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no workspace"), "{}", stderr(&out));

    let out = opsiq(&db, &["rules", "disable", "42"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no rule with id 42"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        opsiq(&db, &["rules", "enable", "abc"]).status.code(),
        Some(2)
    );
    assert!(
        json_of(&opsiq(&db, &["--json", "rules", "list"]))
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing was added"
    );
}

#[test]
fn rules_list_never_creates_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("typo.db");
    let out = opsiq(&db, &["rules", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"));
    assert!(!db.exists());
}
