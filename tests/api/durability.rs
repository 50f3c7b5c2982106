//! Writes are durable and concurrent: data survives a restart, concurrent creations all land.

use opsiq::core::Scope;
use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn data_written_survives_a_server_restart_on_the_same_file() {
    let server = TestServer::start().await;
    let key = server.admin_key();
    let api = server.client(&key);
    let contact = api
        .post(
            "/api/v1/contacts",
            json!({"email": "ada@example.com", "tags": ["trial"]}),
        )
        .await
        .expect(201);
    let contact_id = contact.data()["id"].as_i64().unwrap();
    api.post(
        &format!("/api/v1/contacts/{contact_id}/notes"),
        json!({"note": "remember me"}),
    )
    .await
    .expect(200);
    let ticket = api
        .post(
            "/api/v1/tickets",
            json!({"customer_email": "ada@example.com", "subject": "Persist"}),
        )
        .await
        .expect(201);
    let ticket_id = ticket.data()["id"].as_i64().unwrap();
    api.patch(
        &format!("/api/v1/tickets/{ticket_id}"),
        json!({"status": "pending"}),
    )
    .await
    .expect(200);
    let db = server.db.clone();
    let dir = server.stop().await;

    let again = TestServer::start_at(&db).await;
    let api = again.client(&key);
    let contact = api
        .get(&format!("/api/v1/contacts/{contact_id}"))
        .await
        .expect(200);
    assert_eq!(contact.data()["tags"], json!(["trial"]));
    assert_eq!(contact.data()["notes"][0]["body"], "remember me");
    let ticket = api
        .get(&format!("/api/v1/tickets/{ticket_id}"))
        .await
        .expect(200);
    assert_eq!(ticket.data()["status"], "pending");
    assert_eq!(
        again.opsiq.list_workspaces().unwrap().len(),
        1,
        "a restart does not bootstrap twice"
    );
    again.stop().await;
    drop(dir);
}

#[tokio::test]
async fn fifty_concurrent_ticket_creations_all_succeed_and_are_all_listed() {
    let server = TestServer::start().await;
    let api = server.client(&server.key(&[Scope::TicketsRead, Scope::TicketsWrite]));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let api = api.clone();
        tasks.spawn(async move {
            let body = json!({"customer_email": format!("c{}@example.com", i % 7), "subject": format!("Concurrent {i}")});
            api.create("/api/v1/tickets", body).await
        });
    }
    let mut ids: Vec<i64> = tasks.join_all().await;
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50, "fifty distinct tickets");
    let listed = api.get_all("/api/v1/tickets?limit=7").await;
    let mut listed_ids: Vec<i64> = listed.iter().map(|t| t["id"].as_i64().unwrap()).collect();
    listed_ids.sort();
    assert_eq!(listed_ids, ids);
    let contacts = server
        .opsiq
        .read(|r| r.contacts(opsiq::core::types::Id(1), &Default::default()))
        .unwrap();
    assert_eq!(
        contacts.len(),
        7,
        "concurrent creations shared contacts by e-mail without duplicates"
    );
}

/// A request still arriving when the server is told to stop is answered and kept; new
/// connections are refused meanwhile, and the server stops once the request is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_shutdown_is_answered_and_kept() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start().await;
    let key = server.key(&[Scope::TicketsRead, Scope::TicketsWrite]);
    let (opsiq, addr) = (server.opsiq.clone(), server.addr);
    let body = json!({"customer_email": "ada@example.com", "subject": "Sent slowly"}).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/tickets HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    // The server has the request's head before it is told to stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = tokio::spawn(server.stop());
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "still accepting connections after the stop");
    assert!(
        !stopping.is_finished(),
        "the server stopped with a request in flight"
    );
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("the connection is closed after the answer")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let envelope: serde_json::Value =
        serde_json::from_str(&answer[answer.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    let id = envelope["data"]["id"]
        .as_i64()
        .expect("the new ticket's id");
    let dir = tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the server stops once the request is answered")
        .unwrap();
    let ticket = opsiq
        .read(|r| r.ticket(opsiq::core::types::Id(1), opsiq::core::types::Id(id)))
        .unwrap();
    assert_eq!(ticket.map(|t| t.subject), Some("Sent slowly".to_string()));
    drop(dir);
}
