//! Idempotent writes: a retried POST with the same `Idempotency-Key` is answered from the first
//! request and changes nothing; never a double write.

use opsiq::core::Scope;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestServer;

async fn post(
    server: &TestServer,
    key: &str,
    path: &str,
    idem: Option<&str>,
    body: &Value,
) -> (StatusCode, Option<String>, Value) {
    let mut req = reqwest::Client::new()
        .post(server.url(path))
        .bearer_auth(key)
        .json(body);
    if let Some(idem) = idem {
        req = req.header("Idempotency-Key", idem);
    }
    let res = req.send().await.unwrap();
    let replayed = res
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_string());
    (res.status(), replayed, res.json().await.unwrap())
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_first_answer_and_writes_nothing() {
    let server = TestServer::start().await;
    let key = server.key(&[
        Scope::TicketsWrite,
        Scope::TicketsRead,
        Scope::ContactsWrite,
    ]);
    let body = json!({"customer_email": "c@example.com", "subject": "Once"});
    let (status, replayed, first) =
        post(&server, &key, "/api/v1/tickets", Some("order-42"), &body).await;
    assert_eq!((status.as_u16(), replayed), (201, None));
    let (status, replayed, again) =
        post(&server, &key, "/api/v1/tickets", Some("order-42"), &body).await;
    assert_eq!((status.as_u16(), replayed.as_deref()), (201, Some("true")));
    assert_eq!(
        again, first,
        "the stored response, unchanged (request id included)"
    );
    assert_eq!(
        server.client(&key).get_all("/api/v1/tickets").await.len(),
        1
    );

    // The action endpoint honours it too.
    let envelope = json!({"action": "tickets.create", "params": {"customer_email": "c@example.com", "subject": "Twice?"}});
    let (s1, _, one) = post(&server, &key, "/v1.php", Some("action-1"), &envelope).await;
    let (s2, r2, two) = post(&server, &key, "/v1.php", Some("action-1"), &envelope).await;
    assert_eq!(
        (s1.as_u16(), s2.as_u16(), r2.as_deref()),
        (201, 201, Some("true"))
    );
    assert_eq!(one, two);
    assert_eq!(
        server.client(&key).get_all("/api/v1/tickets").await.len(),
        2
    );

    let events = server
        .opsiq
        .read(|r| r.events(opsiq::core::types::Id(1), 100))
        .unwrap();
    assert_eq!(
        events.len(),
        2,
        "one ticket.created per write, none for the replays"
    );
}

#[tokio::test]
async fn the_same_key_for_another_request_is_422_and_bad_keys_are_400() {
    let server = TestServer::start().await;
    let key = server.key(&[Scope::TicketsWrite, Scope::ContactsWrite]);
    let body = json!({"customer_email": "c@example.com", "subject": "A"});
    post(&server, &key, "/api/v1/tickets", Some("k1"), &body).await;
    let (status, _, reply) = post(
        &server,
        &key,
        "/api/v1/tickets",
        Some("k1"),
        &json!({"customer_email": "c@example.com", "subject": "B"}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), reply["error"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    let (status, _, reply) = post(
        &server,
        &key,
        "/api/v1/contacts",
        Some("k1"),
        &json!({"email": "x@example.com"}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), reply["error"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    // Another API key has its own key space.
    let other = server.key(&[Scope::TicketsWrite]);
    assert_eq!(
        post(&server, &other, "/api/v1/tickets", Some("k1"), &body)
            .await
            .0
            .as_u16(),
        201
    );
    let (status, _, reply) = post(
        &server,
        &key,
        "/api/v1/tickets",
        Some(&"k".repeat(256)),
        &body,
    )
    .await;
    assert_eq!(
        (status.as_u16(), reply["error"].as_str()),
        (400, Some("invalid_parameter:Idempotency-Key"))
    );
}

#[tokio::test]
async fn a_failed_request_does_not_use_up_its_key() {
    let server = TestServer::start().await;
    let key = server.key(&[Scope::TicketsWrite]);
    let (status, _, _) = post(
        &server,
        &key,
        "/api/v1/tickets",
        Some("fix-me"),
        &json!({"customer_email": "c@example.com"}),
    )
    .await;
    assert_eq!(status.as_u16(), 422);
    let fixed = json!({"customer_email": "c@example.com", "subject": "Fixed"});
    let (status, replayed, _) =
        post(&server, &key, "/api/v1/tickets", Some("fix-me"), &fixed).await;
    assert_eq!((status.as_u16(), replayed), (201, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_never_write_twice() {
    let server = TestServer::start().await;
    let key = server.key(&[Scope::TicketsWrite, Scope::TicketsRead]);
    let body = json!({"customer_email": "c@example.com", "subject": "Race"});
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (url, key, body) = (server.url("/api/v1/tickets"), key.clone(), body.clone());
        tasks.spawn(async move {
            let res = reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .header("Idempotency-Key", "race-1")
                .json(&body)
                .send()
                .await
                .unwrap();
            res.status().as_u16()
        });
    }
    let statuses = tasks.join_all().await;
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201));
    assert_eq!(
        server.client(&key).get_all("/api/v1/tickets").await.len(),
        1,
        "one write, whatever the timing"
    );
}
