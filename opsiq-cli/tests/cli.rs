//! The `opsiq` binary as an operator scripts it: real processes, a real database file.

mod common;

use common::{Served, json_of, opsiq, serve, stderr};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};

use serde_json::Value;

#[test]
fn keys_are_shown_once_listed_without_secrets_rotated_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opsiq.db");
    let created = json_of(&opsiq(
        &db,
        &[
            "--json",
            "keys",
            "create",
            "--name",
            "crm",
            "--scopes",
            "contacts.read,tickets.write",
        ],
    ));
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("opq_") && secret.len() == 44);
    assert_eq!(
        created["scopes"],
        serde_json::json!(["contacts.read", "tickets.write"])
    );
    let id = created["id"].as_i64().unwrap().to_string();

    let human = opsiq(
        &db,
        &["keys", "create", "--name", "other", "--scopes", "kb.write"],
    );
    assert!(human.status.success());
    assert!(
        String::from_utf8_lossy(&human.stdout).contains("opq_"),
        "the secret is printed once"
    );

    let listed = opsiq(&db, &["--json", "keys", "list"]);
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(!text.contains(&secret), "lists never show secrets");
    assert_eq!(json_of(&listed).as_array().unwrap().len(), 2);

    let rotated = json_of(&opsiq(&db, &["--json", "keys", "rotate", &id]));
    assert_ne!(rotated["secret"], created["secret"]);
    assert!(rotated["rotated_at"].is_string());
    let revoked = json_of(&opsiq(&db, &["--json", "keys", "revoke", &id]));
    assert!(revoked["revoked_at"].is_string());
    let again = opsiq(&db, &["keys", "rotate", &id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("revoked"));
    let raw = std::fs::read(&db).unwrap();
    assert!(
        !String::from_utf8_lossy(&raw).contains(&secret),
        "the database keeps only a hash"
    );
}

#[test]
fn read_only_commands_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("typo.db");
    for args in [
        &["keys", "list"][..],
        &["workspaces", "list"],
        &["sites", "list"],
        &["agents", "list"],
    ] {
        let out = opsiq(&db, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    }
    assert!(!db.exists(), "no file was created");
}

#[test]
fn serve_on_a_busy_port_fails_without_creating_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("never.db");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = opsiq(&db, &["serve", "--bind", &addr]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot listen"), "{}", stderr(&out));
    assert!(!db.exists());
}

#[test]
fn failures_exit_non_zero_with_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opsiq.db");
    json_of(&opsiq(
        &db,
        &["--json", "departments", "add", "--name", "Sales"],
    ));
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["keys", "create", "--name", "x", "--scopes", "tickets.admin"],
            2,
            "unknown scope `tickets.admin`",
        ),
        (&["keys", "create", "--name", "x"], 2, "--scopes"),
        (&["keys", "revoke", "99"], 1, "no key with id 99"),
        (&["keys", "revoke", "abc"], 2, "not an id"),
        (
            &[
                "keys",
                "create",
                "--name",
                "x",
                "--scopes",
                "kb.write",
                "--site",
                "nowhere.example",
            ],
            1,
            "no site `nowhere.example`",
        ),
        (
            &[
                "keys",
                "create",
                "--name",
                "x",
                "--scopes",
                "kb.write",
                "--workspace",
                "7",
            ],
            1,
            "no workspace with id 7",
        ),
        (
            &["sites", "add", "--domain", "https://shop.example/x"],
            1,
            "not a domain",
        ),
        (
            &["workspaces", "add", "--name", "", "--domain", "a.example"],
            1,
            "name",
        ),
        (
            &["agents", "add", "--name", "Grace", "--email", "grace"],
            1,
            "not a valid e-mail",
        ),
        (
            &["departments", "list", "--workspace", "5"],
            1,
            "no workspace with id 5",
        ),
    ];
    for (args, code, needle) in cases {
        let out = opsiq(&db, args);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        if *code == 1 {
            assert_eq!(
                stderr(&out).trim_end().lines().count(),
                1,
                "one line: {}",
                stderr(&out)
            );
        }
    }
    let json_err = opsiq(&db, &["--json", "keys", "revoke", "99"]);
    let parsed: Value = serde_json::from_slice(&json_err.stderr).expect("a JSON error with --json");
    assert_eq!(parsed["error"], "not_found:key");
}

#[test]
fn workspaces_sites_departments_and_agents_are_managed_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opsiq.db");
    let ws = json_of(&opsiq(
        &db,
        &[
            "--json",
            "workspaces",
            "add",
            "--name",
            "Acme",
            "--domain",
            "acme.example",
        ],
    ));
    assert_eq!(ws["workspace"]["id"], 2, "workspace 1 is the default one");
    assert!(
        ws["site"]["site_key"]
            .as_str()
            .unwrap()
            .starts_with("site_")
    );
    let site = json_of(&opsiq(
        &db,
        &[
            "--json",
            "sites",
            "add",
            "--domain",
            "Shop.Acme.example",
            "--workspace",
            "2",
        ],
    ));
    assert_eq!(site["domain"], "shop.acme.example");
    let dup = opsiq(
        &db,
        &[
            "sites",
            "add",
            "--domain",
            "shop.acme.example",
            "--workspace",
            "2",
        ],
    );
    assert_eq!(dup.status.code(), Some(1));
    let sites = json_of(&opsiq(
        &db,
        &["--json", "sites", "list", "--workspace", "2"],
    ));
    assert_eq!(sites.as_array().unwrap().len(), 2);
    json_of(&opsiq(
        &db,
        &[
            "--json",
            "departments",
            "add",
            "--name",
            "Billing",
            "--workspace",
            "2",
        ],
    ));
    let departments = json_of(&opsiq(
        &db,
        &["--json", "departments", "list", "--workspace", "2"],
    ));
    let names: Vec<&str> = departments
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Support", "Billing"]);
    json_of(&opsiq(
        &db,
        &[
            "--json",
            "agents",
            "add",
            "--name",
            "Grace",
            "--email",
            "grace@acme.example",
            "--workspace",
            "2",
        ],
    ));
    assert_eq!(
        json_of(&opsiq(
            &db,
            &["--json", "agents", "list", "--workspace", "2"]
        ))
        .as_array()
        .unwrap()
        .len(),
        1
    );
    let key = json_of(&opsiq(
        &db,
        &[
            "--json",
            "keys",
            "create",
            "--name",
            "k",
            "--scopes",
            "kb.write",
            "--workspace",
            "2",
            "--site",
            "shop.acme.example",
        ],
    ));
    assert_eq!(key["site_id"], site["id"]);
    let table = opsiq(&db, &["workspaces", "list"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.lines().next().unwrap().starts_with("ID"), "{text}");
    assert!(text.contains("Acme") && text.contains("Default"));
}

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn serve_bootstraps_a_new_database_serves_and_stops_on_sigterm_and_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    for (round, signal) in ["TERM", "INT"].into_iter().enumerate() {
        let Served {
            mut child,
            addr,
            stdout: mut lines,
        } = serve(&db, false, &[]);
        let rest: Vec<String> = if round == 0 {
            lines.by_ref().take(3).map(|l| l.unwrap()).collect()
        } else {
            Vec::new()
        };
        if round == 0 {
            let text = rest.join("\n");
            assert!(text.contains("New database"), "{text}");
            assert!(
                text.contains("keys create"),
                "a new install is told how to make a key: {text}"
            );
        }
        let health = http_get(&addr, "/healthz");
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        let unauth = http_get(&addr, "/api/v1/tickets");
        assert!(unauth.starts_with("HTTP/1.1 401"), "{unauth}");
        kill(&child, signal);
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "SIG{signal} stops the server cleanly: {status:?}"
        );
    }
    let listed = json_of(&opsiq(&db, &["--json", "workspaces", "list"]));
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "the second start did not bootstrap again"
    );
}

#[test]
fn keys_are_updated_with_custom_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opsiq.db");
    let created = json_of(&opsiq(
        &db,
        &[
            "--json",
            "keys",
            "create",
            "--name",
            "crm",
            "--scopes",
            "tickets.read",
            "--allow",
            "tickets.update",
        ],
    ));
    assert_eq!(created["permissions"]["mode"], "custom");
    assert_eq!(
        created["permissions"]["allow"],
        serde_json::json!(["tickets.update"])
    );
    let id = created["id"].as_i64().unwrap().to_string();
    let updated = json_of(&opsiq(
        &db,
        &[
            "--json",
            "keys",
            "update",
            &id,
            "--block",
            "tickets.get",
            "--name",
            "crm-sync",
        ],
    ));
    assert_eq!(updated["name"], "crm-sync");
    assert_eq!(
        updated["permissions"]["block"],
        serde_json::json!(["tickets.get"])
    );
    assert_eq!(
        updated["permissions"]["allow"],
        serde_json::json!(["tickets.update"]),
        "lists not given stay"
    );
    let back = json_of(&opsiq(
        &db,
        &["--json", "keys", "update", &id, "--mode", "scopes"],
    ));
    assert_eq!(back["permissions"]["mode"], "scopes");
    let unknown = opsiq(&db, &["keys", "update", &id, "--allow", "tickets.nuke"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("no action `tickets.nuke`"),
        "{}",
        stderr(&unknown)
    );
    let bad_mode = opsiq(&db, &["keys", "update", &id, "--mode", "root"]);
    assert_eq!(bad_mode.status.code(), Some(2));
}
