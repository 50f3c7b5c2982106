//! Secrets never leak: after a run that issues every kind of secret, the server log, every API
//! response and every CLI `--json` output (other than the one that issued a secret) hold none
//! of them; the database holds no raw API key secret and no client address.

mod common;

use std::io::Read;
use std::process::Command;

use common::{Served, json_of, opsiq, serve};
use opsiq_core::types::SECRET_PREFIXES;
use serde_json::json;

/// Every secret-looking token in a text: a known prefix and at least 16 more characters.
fn secrets_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for prefix in SECRET_PREFIXES {
        for (at, _) in text.match_indices(prefix) {
            let token: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "_+/=".contains(*c))
                .collect();
            if token.len() >= prefix.len() + 16 {
                found.push(token);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_into_logs_responses_cli_output_or_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opsiq.db");
    let all_scopes = "contacts.read,contacts.write,tickets.read,tickets.write,chats.read,analytics.read,proactive.write,kb.write,kb.read,admin";
    // Issue every kind of secret (these outputs are where secrets are shown, once).
    let first = json_of(&opsiq(
        &db,
        &[
            "--json",
            "keys",
            "create",
            "--name",
            "leak-test",
            "--scopes",
            all_scopes,
            "--rate-limit",
            "100000",
        ],
    ));
    let rotated = json_of(&opsiq(
        &db,
        &["--json", "keys", "rotate", &first["id"].to_string()],
    ));
    let hook = json_of(&opsiq(
        &db,
        &[
            "--json",
            "webhooks",
            "add",
            "--url",
            "https://example.com/hook",
        ],
    ));
    let hook_rotated = json_of(&opsiq(
        &db,
        &[
            "--json",
            "webhooks",
            "rotate-secret",
            &hook["id"].to_string(),
        ],
    ));
    let mut issued: Vec<String> = Vec::new();
    for out in [&first, &rotated, &hook, &hook_rotated] {
        issued.extend(secrets_in(&out.to_string()));
    }
    for prefix in SECRET_PREFIXES {
        assert!(
            issued.iter().any(|s| s.starts_with(prefix)),
            "the run issued a `{prefix}` secret"
        );
    }
    let key = rotated["secret"].as_str().unwrap().to_string();
    let old_key = first["secret"].as_str().unwrap().to_string();

    let Served {
        child: mut server,
        addr,
        ..
    } = serve(&db, true, &[("OPSIQ_LOG", "debug")]);

    let client = reqwest::Client::new();
    let mut seen = String::new();
    let requests: Vec<(reqwest::Method, &str, Option<serde_json::Value>, &str)> = vec![
        (
            reqwest::Method::POST,
            "/api/v1/contacts",
            Some(json!({"email": "ada@example.com"})),
            key.as_str(),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/tickets",
            Some(json!({"customer_email": "ada@example.com", "subject": "s"})),
            key.as_str(),
        ),
        (reqwest::Method::GET, "/api/v1/webhooks", None, key.as_str()),
        (
            reqwest::Method::GET,
            "/api/v1/webhooks/deliveries",
            None,
            key.as_str(),
        ),
        (
            reqwest::Method::POST,
            "/v1.php",
            Some(json!({"action": "meta.me"})),
            key.as_str(),
        ),
        (
            reqwest::Method::GET,
            "/api/v1/tickets",
            None,
            old_key.as_str(),
        ),
        (reqwest::Method::GET, "/api/v1/nope", None, key.as_str()),
        (
            reqwest::Method::POST,
            "/api/v1/tickets",
            Some(json!({"subject": 1})),
            key.as_str(),
        ),
    ];
    for (method, path, body, bearer) in requests {
        let mut req = client
            .request(method, format!("http://{addr}{path}"))
            .bearer_auth(bearer)
            .header("X-Forwarded-For", "203.0.113.77")
            .header("Idempotency-Key", "leak-1");
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        seen.push_str(&format!("{:?}\n", res.headers()));
        seen.push_str(&res.text().await.unwrap());
    }
    Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status()
        .unwrap();
    server.wait().unwrap();
    let mut log = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("listening") || !log.is_empty(),
        "the server logged something to search"
    );

    for args in [
        &["--json", "keys", "list"][..],
        &["--json", "webhooks", "list"],
        &["--json", "webhooks", "deliveries"],
        &["--json", "doctor"],
        &["--json", "workspaces", "list"],
        &["--json", "sites", "list"],
    ] {
        let out = opsiq(&db, args);
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
        seen.push_str(&String::from_utf8_lossy(&out.stderr));
    }

    let mut hits = Vec::new();
    for secret in &issued {
        if log.contains(secret.as_str()) {
            hits.push(format!("server log holds {secret}"));
        }
        if seen.contains(secret.as_str()) {
            hits.push(format!("an API response or CLI output holds {secret}"));
        }
    }
    let mut file = std::fs::read(&db).unwrap();
    file.extend(std::fs::read(db.with_extension("db-wal")).unwrap_or_default());
    let file = String::from_utf8_lossy(&file);
    for secret in issued.iter().filter(|s| s.starts_with("opq_")) {
        if file.contains(secret.as_str()) {
            hits.push(format!("the database holds the API key secret {secret}"));
        }
    }
    for address in ["203.0.113.77", "127.0.0.1"] {
        if file.contains(address) {
            hits.push(format!("the database holds the client address {address}"));
        }
    }
    println!(
        "searched {} secrets of {} kinds; {} hits",
        issued.len(),
        SECRET_PREFIXES.len(),
        hits.len()
    );
    assert!(hits.is_empty(), "{hits:#?}");
}
