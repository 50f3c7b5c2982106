//! The contract's contact and ticket examples, run as written with real `curl`, the host
//! swapped for the test server and the key for a real one.
//!
//! The published docs show every sample address as the placeholder `[email protected]` (an
//! artefact of how they were exported); the examples below use `ada@example.com` and
//! `customer@example.com` in its place and are otherwise verbatim.

use std::process::Command;

use serde_json::Value;

use crate::common::TestServer;

const CREATE_CONTACT: &str = r#"curl -X POST https://your-opsiq-domain.com/api/v1/contacts \
-H "Authorization: Bearer opq_your_key_here" \
-H "Content-Type: application/json" \
-d '{"name":"Ada Lovelace","email":"ada@example.com","tags":["trial"]}'"#;

const LIST_TICKETS: &str = r#"curl -H "Authorization: Bearer opq_your_key_here" \
https://your-opsiq-domain.com/api/v1/tickets"#;

/// The documented request bodies of the other contact and ticket routes, sent the same way.
const BODIES: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/api/v1/tickets",
        r#"{
"customer_email":"customer@example.com",
"customer_name":"Example Customer",
"subject":"Cannot activate account",
"body":"Activation email never arrived.",
"priority":"high",
"department_id":1
}"#,
    ),
    (
        "PATCH",
        "/api/v1/tickets/1",
        r#"{"status":"in_progress","priority":"high"}"#,
    ),
    (
        "POST",
        "/api/v1/contacts/1/tags",
        r#"{"tags":["vip","renewal"]}"#,
    ),
    (
        "POST",
        "/api/v1/contacts/1/notes",
        r#"{"note":"Customer asked for annual billing."}"#,
    ),
];

fn run(server: &TestServer, key: &str, command: &str) -> Value {
    let command = command
        .replace("https://your-opsiq-domain.com", &server.base())
        .replace("opq_your_key_here", key);
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{command} --silent --show-error"))
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_specs_contact_and_ticket_curl_examples_work_as_written() {
    let server = TestServer::start().await;
    let key = server.admin_key();
    let srv = &server;
    let key_ref = key.as_str();
    let (contact, tickets, bodies) = tokio::task::block_in_place(|| {
        let contact = run(srv, key_ref, CREATE_CONTACT);
        let bodies: Vec<Value> = BODIES
            .iter()
            .map(|(method, path, body)| {
                let line = format!(
                    "curl -X {method} https://your-opsiq-domain.com{path} \\\n-H \"Authorization: Bearer opq_your_key_here\" \\\n-H \"Content-Type: application/json\" \\\n-d '{body}'"
                );
                run(srv, key_ref, &line)
            })
            .collect();
        let tickets = run(srv, key_ref, LIST_TICKETS);
        (contact, tickets, bodies)
    });
    assert_eq!(contact["success"], true, "{contact}");
    assert_eq!(contact["data"]["name"], "Ada Lovelace");
    assert_eq!(contact["data"]["tags"], serde_json::json!(["trial"]));
    for reply in &bodies {
        assert_eq!(reply["success"], true, "{reply}");
        assert!(reply["request_id"].as_str().unwrap().starts_with("req_"));
    }
    let ticket = &bodies[0]["data"];
    assert_eq!(
        (
            ticket["status"].as_str(),
            ticket["priority"].as_str(),
            ticket["department_id"].as_i64()
        ),
        (Some("open"), Some("high"), Some(1))
    );
    assert_eq!(bodies[1]["data"]["status"], "in_progress");
    assert_eq!(
        bodies[2]["data"]["tags"],
        serde_json::json!(["trial", "vip", "renewal"])
    );
    assert_eq!(
        bodies[3]["data"]["notes"][0]["body"],
        "Customer asked for annual billing."
    );
    assert_eq!(tickets["success"], true);
    assert_eq!(tickets["data"][0]["subject"], "Cannot activate account");
}
