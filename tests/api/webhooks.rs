//! Webhooks: signed so a stock Standard Webhooks library accepts them, retried with the same
//! `webhook-id`, durable across restarts, filtered by subscription, refused to private
//! addresses unless allowed. Real receivers on 127.0.0.1.

use std::process::Command;
use std::time::Duration;

use opsiq::core::Scope;
use opsiq::core::types::Id;
use opsiq::core::webhooks::{CreateEndpoint, DeliveryLog, DeliveryStatus, ListDeliveries, Replay};
use serde_json::{Value, json};

use crate::common::{Received, Receiver, TestServer, eventually, fast_webhooks};

/// The receiver of examples/verify_webhook.rs, written from the Standard Webhooks spec alone.
#[path = "../../examples/verify_webhook.rs"]
mod spec_receiver;

async fn server(allow_private: bool) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opsiq.db");
    let mut server = TestServer::start_with(&db, fast_webhooks(allow_private)).await;
    server.keep(dir);
    server
}

fn subscribe(server: &TestServer, url: &str, events: Option<Vec<&str>>) -> (Id, String) {
    let created = server
        .opsiq
        .create_endpoint(
            Id(1),
            CreateEndpoint {
                url: url.to_string(),
                events: events.map(|e| e.iter().map(|s| s.to_string()).collect()),
                description: String::new(),
            },
        )
        .unwrap();
    (created.endpoint.id, created.secret)
}

/// The newest page of the delivery log, of one endpoint or all.
fn deliveries(server: &TestServer, endpoint: Option<Id>) -> Vec<DeliveryLog> {
    let filter = ListDeliveries {
        endpoint_id: endpoint,
        event_id: None,
        status: None,
        limit: Default::default(),
        cursor: None,
    };
    server.opsiq.list_deliveries(Id(1), filter).unwrap().items
}

/// Verifies deliveries with the stock Standard Webhooks library for Python (installed by
/// scripts/test), a verifier written independently of our signing code.
fn verify_with_stock_library(secrets: &[&str], requests: &[Received]) {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/target/pyenv/bin/python");
    assert!(
        std::path::Path::new(python).exists(),
        "{python} is missing: run scripts/test, which installs standardwebhooks"
    );
    let cases: Vec<Value> = requests
        .iter()
        .flat_map(|r| {
            secrets.iter().map(move |secret| {
                json!({
                    "secret": secret,
                    "body": r.body,
                    "headers": {
                        "webhook-id": r.header("webhook-id"),
                        "webhook-timestamp": r.header("webhook-timestamp"),
                        "webhook-signature": r.header("webhook-signature"),
                    }
                })
            })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.json");
    std::fs::write(&file, serde_json::to_string(&cases).unwrap()).unwrap();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
cases = json.load(open(sys.argv[1]))
for case in cases:
    Webhook(case["secret"]).verify(case["body"], case["headers"])
    try:
        Webhook(case["secret"]).verify(case["body"] + " ", case["headers"])
    except Exception:
        pass
    else:
        sys.exit("a tampered body was accepted: the check is not checking")
print(f"verified {len(cases)} deliveries (and rejected each tampered copy)")
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the stock verifier rejected a delivery: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout).trim());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_carry_the_spec_payload_and_a_stock_verifier_accepts_their_signatures() {
    let server = server(true).await;
    let receiver = Receiver::ok().await;
    let (_, secret) = subscribe(&server, &receiver.url(), None);
    assert!(secret.starts_with("whsec_"));
    let api = server.client(&server.key(&[Scope::TicketsWrite]));
    let ticket = api
        .post(
            "/api/v1/tickets",
            json!({"customer_email": "c@example.com", "subject": "Need help"}),
        )
        .await
        .expect(201);
    let id = ticket.data()["id"].as_i64().unwrap();
    api.patch(
        &format!("/api/v1/tickets/{id}"),
        json!({"status": "pending"}),
    )
    .await
    .expect(200);
    let got = receiver.wait_for("two deliveries", |r| r.len() >= 2).await;

    let created: Value = serde_json::from_str(
        &got.iter()
            .find(|r| r.body.contains("ticket.created"))
            .unwrap()
            .body,
    )
    .unwrap();
    let keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["event", "id", "created_at", "data"]);
    assert_eq!(created["event"], "ticket.created");
    assert_eq!(created["data"]["ticket_id"], id);
    assert_eq!(created["data"]["subject"], "Need help");
    let request = got
        .iter()
        .find(|r| r.body.contains("ticket.created"))
        .unwrap();
    assert_eq!(request.header("webhook-id"), created["id"].as_str());
    assert_eq!(request.header("content-type"), Some("application/json"));
    let updated: Value = serde_json::from_str(
        &got.iter()
            .find(|r| r.body.contains("ticket.updated"))
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(
        updated["data"]["changes"],
        json!({"status": {"old": "open", "new": "pending"}})
    );
    tokio::task::block_in_place(|| verify_with_stock_library(&[&secret], &got));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for r in &got {
        let header = |name| r.header(name).unwrap();
        spec_receiver::verify(
            &secret,
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            r.body.as_bytes(),
            now,
        )
        .expect("the spec-only receiver accepts the delivery");
        assert!(
            spec_receiver::verify(
                &secret,
                header("webhook-id"),
                header("webhook-timestamp"),
                header("webhook-signature"),
                b"{}",
                now
            )
            .is_err()
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_three_times_gets_four_attempts_with_one_webhook_id() {
    let server = server(true).await;
    let receiver = Receiver::scripted(vec![
        (500, vec![]),
        (500, vec![]),
        (500, vec![]),
        (200, vec![]),
    ])
    .await;
    subscribe(&server, &receiver.url(), None);
    let api = server.client(&server.key(&[Scope::TicketsWrite]));
    api.post(
        "/api/v1/tickets",
        json!({"customer_email": "c@example.com", "subject": "retry me"}),
    )
    .await
    .expect(201);
    let got = receiver.wait_for("four attempts", |r| r.len() >= 4).await;
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let log = eventually("the delivery to be marked delivered", || {
        deliveries(&server, None)
            .into_iter()
            .find(|d| d.delivery.status == DeliveryStatus::Delivered)
    })
    .await;
    assert_eq!(log.delivery.attempts, 4);
    let codes: Vec<Option<u16>> = log.attempts_log.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), Some(500), Some(500), Some(200)]);
    assert_eq!(
        log.attempts_log[0].response_body.as_deref(),
        Some("answer 1")
    );
    assert!(
        log.attempts_log[0]
            .error
            .as_deref()
            .unwrap()
            .contains("500")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.requests().len(), 4, "no attempt after the success");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_when_the_receiver_is_down_and_the_server_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opsiq.db");
    // Retries 2 s apart: while the receiver is down each delivery fails a few times and stays
    // `retrying` (nine attempts would take 16 s), however slowly a busy machine creates tickets.
    let patient = || {
        let mut config = fast_webhooks(true);
        config.webhooks.as_mut().unwrap().retry.schedule = vec![Duration::from_secs(2); 8];
        config
    };
    let server = TestServer::start_with(&db, patient()).await;
    // A port with nothing listening: every attempt is refused until the receiver comes up.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    subscribe(&server, &format!("http://{addr}/hook"), None);
    let key = server.key(&[Scope::TicketsWrite]);
    let api = server.client(&key);
    for i in 0..200 {
        api.post("/api/v1/tickets", json!({"customer_email": format!("c{}@example.com", i % 20), "subject": format!("#{i}")})).await.expect(201);
    }
    server.stop().await;

    let receiver = Receiver::ok_at(addr).await;
    let again = TestServer::start_with(&db, patient()).await;
    let got = receiver
        .wait_for("200 distinct events", |r| {
            let mut ids: Vec<&str> = r.iter().filter_map(|x| x.header("webhook-id")).collect();
            ids.sort();
            ids.dedup();
            ids.len() >= 200
        })
        .await;
    let mut ids: Vec<&str> = got.iter().filter_map(|r| r.header("webhook-id")).collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    println!(
        "{} distinct events in {total} deliveries after the restart",
        ids.len()
    );
    assert_eq!(ids.len(), 200, "every event arrived");
    let events = again.opsiq.read(|r| r.events(Id(1), 1000)).unwrap();
    assert_eq!(events.len(), 200);
    assert!(
        events
            .iter()
            .all(|e| ids.binary_search(&e.id.as_str()).is_ok())
    );
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_subscribed_to_ticket_updated_never_receives_ticket_created() {
    let server = server(true).await;
    let updates = Receiver::ok().await;
    let everything = Receiver::ok().await;
    subscribe(&server, &updates.url(), Some(vec!["ticket.updated"]));
    subscribe(&server, &everything.url(), None);
    let api = server.client(&server.key(&[Scope::TicketsWrite]));
    for _ in 0..3 {
        let id = api
            .create(
                "/api/v1/tickets",
                json!({"customer_email": "c@example.com", "subject": "s"}),
            )
            .await;
        api.patch(
            &format!("/api/v1/tickets/{id}"),
            json!({"priority": "urgent"}),
        )
        .await
        .expect(200);
    }
    everything
        .wait_for("six deliveries", |r| r.len() >= 6)
        .await;
    let got = updates.wait_for("three updates", |r| r.len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(updates.requests().len(), 3);
    assert!(
        got.iter().all(
            |r| r.body.contains("\"ticket.updated\"") && !r.body.contains("\"ticket.created\"")
        )
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_loopback_are_refused_without_the_flag() {
    let server = server(false).await;
    let receiver = Receiver::ok().await;
    let (by_ip, _) = subscribe(&server, &receiver.url(), None);
    let (by_name, _) = subscribe(
        &server,
        &format!("http://localhost:{}/hook", receiver.addr.port()),
        None,
    );
    let api = server.client(&server.key(&[Scope::TicketsWrite]));
    api.post(
        "/api/v1/tickets",
        json!({"customer_email": "c@example.com", "subject": "s"}),
    )
    .await
    .expect(201);
    for endpoint in [by_ip, by_name] {
        let log = eventually("a refused attempt", || {
            deliveries(&server, Some(endpoint))
                .into_iter()
                .find(|d| !d.attempts_log.is_empty())
        })
        .await;
        let error = log.attempts_log[0].error.clone().unwrap();
        assert!(
            error.contains("refused") && error.contains("--allow-private-webhooks"),
            "{error}"
        );
        assert_eq!(log.attempts_log[0].status_code, None);
    }
    assert!(
        receiver.requests().is_empty(),
        "nothing reached the loopback receiver"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rotation_deliveries_are_signed_with_both_secrets_and_replays_keep_the_id() {
    let server = server(true).await;
    let receiver = Receiver::ok().await;
    let (endpoint, old) = subscribe(&server, &receiver.url(), Some(vec!["ticket.created"]));
    let new = server
        .opsiq
        .rotate_endpoint_secret(Id(1), endpoint)
        .unwrap()
        .secret;
    assert_ne!(old, new);
    let api = server.client(&server.key(&[Scope::TicketsWrite]));
    api.post(
        "/api/v1/tickets",
        json!({"customer_email": "c@example.com", "subject": "s"}),
    )
    .await
    .expect(201);
    let got = receiver.wait_for("one delivery", |r| !r.is_empty()).await;
    assert_eq!(
        got[0]
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    tokio::task::block_in_place(|| verify_with_stock_library(&[&old, &new], &got));

    let event_id = got[0].header("webhook-id").unwrap().to_string();
    let replayed = server
        .opsiq
        .replay(
            Id(1),
            Replay {
                event_id: Some(event_id.clone()),
                since: None,
                endpoint_id: None,
            },
        )
        .unwrap();
    assert_eq!((replayed.events, replayed.deliveries), (1, 1));
    let again = receiver.wait_for("the replay", |r| r.len() >= 2).await;
    assert_eq!(again[1].header("webhook-id"), Some(event_id.as_str()));
    assert_eq!(
        again[1].body, again[0].body,
        "the same event, byte for byte"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_is_respected_and_a_dead_endpoint_is_eventually_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opsiq.db");
    let mut config = fast_webhooks(true);
    config.webhooks.as_mut().unwrap().retry.disable_after = Duration::from_millis(200);
    let server = TestServer::start_with(&db, config).await;
    let polite = Receiver::scripted(vec![(429, vec![("retry-after", "1")]), (200, vec![])]).await;
    let dead = Receiver::scripted(vec![(503, vec![])]).await;
    subscribe(&server, &polite.url(), None);
    let (dead_id, _) = subscribe(&server, &dead.url(), None);
    let api = server.client(&server.key(&[Scope::TicketsWrite]));
    api.post(
        "/api/v1/tickets",
        json!({"customer_email": "c@example.com", "subject": "s"}),
    )
    .await
    .expect(201);
    let got = polite.wait_for("the retry", |r| r.len() >= 2).await;
    let waited = got[1].at - got[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 was honoured ({waited:?})"
    );

    let endpoint = eventually("the dead endpoint to be disabled", || {
        server
            .opsiq
            .list_endpoints(Id(1))
            .unwrap()
            .into_iter()
            .find(|e| e.id == dead_id && !e.enabled)
    })
    .await;
    assert!(
        endpoint
            .disabled_reason
            .unwrap()
            .contains("disabled automatically")
    );
    let before = dead.requests().len();
    api.post(
        "/api/v1/tickets",
        json!({"customer_email": "c@example.com", "subject": "after"}),
    )
    .await
    .expect(201);
    polite.wait_for("the next delivery", |r| r.len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        dead.requests().len(),
        before,
        "a disabled endpoint gets nothing"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_endpoint_never_holds_up_the_others() {
    let server = server(true).await;
    let stuck = Receiver::holding().await;
    let healthy = Receiver::ok().await;
    subscribe(&server, &stuck.url(), None);
    subscribe(&server, &healthy.url(), None);
    let api = server.client(&server.key(&[Scope::TicketsWrite]));
    for i in 0..30 {
        api.post(
            "/api/v1/tickets",
            json!({"customer_email": "c@example.com", "subject": format!("#{i}")}),
        )
        .await
        .expect(201);
    }
    // Every event reaches the healthy endpoint while the stuck one still holds its first few.
    healthy.wait_for("30 deliveries", |r| r.len() >= 30).await;
    let held = stuck.requests().len();
    assert!(
        (1..=8).contains(&held),
        "the stuck endpoint holds at most its own share of slots ({held})"
    );
    stuck.release();
    stuck
        .wait_for("the stuck endpoint's backlog", |r| r.len() >= 30)
        .await;
    server.stop().await;
}

#[tokio::test]
async fn endpoints_are_managed_through_the_admin_actions() {
    let server = TestServer::start().await;
    let admin = server.client(&server.key(&[Scope::Admin]));
    let created = admin
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://example.com/hook", "events": ["ticket.created"]}),
        )
        .await
        .expect(201);
    let secret = created.data()["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let id = created.data()["id"].as_i64().unwrap();
    let listed = admin.get("/api/v1/webhooks").await.expect(200);
    assert!(
        !listed.body.to_string().contains(&secret),
        "lists never show the secret"
    );
    assert_eq!(listed.data()[0]["events"], json!(["ticket.created"]));
    let updated = admin
        .patch(&format!("/api/v1/webhooks/{id}"), json!({"enabled": false}))
        .await
        .expect(200);
    assert_eq!(updated.data()["enabled"], false);
    for (body, field) in [
        (json!({"url": "ftp://x"}), "url"),
        (
            json!({"url": "https://example.com", "events": ["ticket.deleted"]}),
            "events",
        ),
    ] {
        assert_eq!(
            admin
                .post("/api/v1/webhooks", body)
                .await
                .expect(422)
                .error(),
            format!("validation_failed:{field}")
        );
    }
    let other = server.client(&server.key(&[Scope::TicketsWrite]));
    assert_eq!(
        other.get("/api/v1/webhooks").await.expect(403).error(),
        "scope_required:admin"
    );
    admin
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            None,
        )
        .await
        .expect(200);
    assert_eq!(
        admin.get("/api/v1/webhooks").await.expect(200).data(),
        &json!([])
    );
}
