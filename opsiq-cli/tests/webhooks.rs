//! `opsiq webhooks` as an operator scripts it.

mod common;

use common::{json_of, opsiq};

use serde_json::Value;

#[test]
fn webhook_endpoints_are_managed_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opsiq.db");
    let added = json_of(&opsiq(
        &db,
        &[
            "--json",
            "webhooks",
            "add",
            "--url",
            "https://example.com/hook",
            "--events",
            "ticket.created,ticket.updated",
        ],
    ));
    let secret = added["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let id = added["id"].as_i64().unwrap().to_string();

    let listed = opsiq(&db, &["--json", "webhooks", "list"]);
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(&secret),
        "lists never show the secret"
    );
    assert_eq!(
        json_of(&listed)[0]["events"],
        serde_json::json!(["ticket.created", "ticket.updated"])
    );

    let updated = json_of(&opsiq(
        &db,
        &[
            "--json",
            "webhooks",
            "update",
            &id,
            "--events",
            "*",
            "--description",
            "CRM mirror",
        ],
    ));
    assert_eq!(updated["events"], Value::Null);
    assert_eq!(updated["description"], "CRM mirror");
    assert_eq!(
        json_of(&opsiq(&db, &["--json", "webhooks", "disable", &id]))["enabled"],
        false
    );
    assert_eq!(
        json_of(&opsiq(&db, &["--json", "webhooks", "enable", &id]))["enabled"],
        true
    );
    let rotated = json_of(&opsiq(&db, &["--json", "webhooks", "rotate-secret", &id]));
    assert_ne!(rotated["secret"].as_str().unwrap(), secret);
    assert!(rotated["secret_rotated_at"].is_string());

    let deliveries = json_of(&opsiq(
        &db,
        &["--json", "webhooks", "deliveries", "--status", "pending"],
    ));
    assert_eq!(deliveries, serde_json::json!([]));
    let missing = opsiq(&db, &["webhooks", "replay", "evt_nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no event with id evt_nope"));
    let replayed = json_of(&opsiq(
        &db,
        &[
            "--json",
            "webhooks",
            "replay",
            "--since",
            "2020-01-01T00:00:00Z",
        ],
    ));
    assert_eq!(replayed["events"], 0);

    let bad = opsiq(&db, &["webhooks", "add", "--url", "ftp://example.com"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a webhook URL"));
    let bad_status = opsiq(&db, &["webhooks", "deliveries", "--status", "lost"]);
    assert_eq!(bad_status.status.code(), Some(2));

    json_of(&opsiq(&db, &["--json", "webhooks", "remove", &id]));
    assert_eq!(
        json_of(&opsiq(&db, &["--json", "webhooks", "list"])),
        serde_json::json!([])
    );
}
