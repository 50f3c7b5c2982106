//! The envelope and the status table: every response carries a request id; bad input gets a
//! 4xx naming what is wrong and changes nothing.

use opsiq::core::Scope;
use reqwest::Method;
use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn every_response_carries_a_request_id_in_the_body_and_the_header() {
    let server = TestServer::start().await;
    let api = server.client(&server.admin_key());
    let replies = vec![
        api.get("/api/v1/contacts").await.expect(200),
        api.post("/api/v1/contacts", json!({"email": "a@example.com"}))
            .await
            .expect(201),
        api.get("/api/v1/contacts/999").await.expect(404),
        api.get("/api/v1/nothing-here").await.expect(404),
        server.anonymous().get("/api/v1/tickets").await.expect(401),
        api.send_raw(Method::POST, "/api/v1/tickets", b"{".to_vec())
            .await
            .expect(400),
    ];
    let mut seen = std::collections::HashSet::new();
    for reply in replies {
        let id = reply.body["request_id"]
            .as_str()
            .expect("request_id")
            .to_string();
        assert!(id.starts_with("req_") && id.len() == 28, "{id}");
        assert_eq!(reply.request_id_header.as_deref(), Some(id.as_str()));
        assert!(seen.insert(id), "request ids are unique");
    }
}

#[tokio::test]
async fn errors_have_the_spec_shape_with_a_message() {
    let server = TestServer::start().await;
    let reader = server.client(&server.key(&[Scope::TicketsRead]));
    let reply = reader
        .post(
            "/api/v1/tickets",
            json!({"customer_email": "c@example.com", "subject": "s"}),
        )
        .await
        .expect(403);
    let body = reply.body.as_object().unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["error"], "scope_required:tickets.write");
    assert!(body["request_id"].as_str().unwrap().starts_with("req_"));
    assert!(body["message"].as_str().unwrap().contains("tickets.write"));
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let server = TestServer::start().await;
    let api = server.client(&server.admin_key());
    let cases: Vec<(Method, &str, Vec<u8>, u16, &str)> = vec![
        (
            Method::POST,
            "/api/v1/tickets",
            b"{\"subject\": ".to_vec(),
            400,
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            b"not json".to_vec(),
            400,
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            b"[1,2]".to_vec(),
            422,
            "validation_failed:body",
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            b"\"x\"".to_vec(),
            422,
            "validation_failed:body",
        ),
        (
            Method::POST,
            "/api/v1/tickets",
            br#"{"customer_email":"c@example.com"}"#.to_vec(),
            422,
            "validation_failed:subject",
        ),
        (
            Method::POST,
            "/api/v1/tickets",
            br#"{"customer_email":"c@example.com","subject":5}"#.to_vec(),
            422,
            "validation_failed:subject",
        ),
        (
            Method::POST,
            "/api/v1/tickets",
            br#"{"customer_email":"c@example.com","subject":"s","priority":"asap"}"#.to_vec(),
            422,
            "validation_failed:priority",
        ),
        (
            Method::POST,
            "/api/v1/tickets",
            br#"{"customer_email":"c@example.com","subject":"s","department_id":"one"}"#.to_vec(),
            422,
            "validation_failed:department_id",
        ),
        (
            Method::POST,
            "/api/v1/tickets",
            br#"{"customer_email":"c@example.com","subject":"s","department_id":-1}"#.to_vec(),
            422,
            "validation_failed:department_id",
        ),
        (
            Method::POST,
            "/api/v1/tickets",
            br#"{"customer_email":"c@example.com","subject":"s","tags":[1]}"#.to_vec(),
            422,
            "validation_failed:tags[0]",
        ),
        (
            Method::GET,
            "/api/v1/tickets/abc",
            vec![],
            404,
            "not_found:ticket",
        ),
        (
            Method::GET,
            "/api/v1/tickets/0",
            vec![],
            404,
            "not_found:ticket",
        ),
        (
            Method::GET,
            "/api/v1/tickets/99999999999999999999",
            vec![],
            404,
            "not_found:ticket",
        ),
        (
            Method::GET,
            "/api/v1/contacts?limit=0",
            vec![],
            400,
            "invalid_parameter:limit",
        ),
        (
            Method::GET,
            "/api/v1/contacts?limit=abc",
            vec![],
            400,
            "invalid_parameter:limit",
        ),
        (
            Method::GET,
            "/api/v1/contacts?limit=1&limit=2",
            vec![],
            400,
            "invalid_parameter:limit",
        ),
        (
            Method::GET,
            "/api/v1/contacts/1/everything",
            vec![],
            404,
            "route_not_found",
        ),
        (Method::GET, "/", vec![], 404, "route_not_found"),
        (
            Method::DELETE,
            "/api/v1/contacts",
            vec![],
            405,
            "method_not_allowed",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let reply = api.send_raw(method.clone(), path, body.clone()).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{method} {path} {}: {}",
            String::from_utf8_lossy(&body),
            reply.body
        );
        assert_eq!(reply.error(), code, "{method} {path}");
        assert!(!reply.body["message"].as_str().unwrap().is_empty());
    }
    assert!(
        api.get_all("/api/v1/contacts").await.is_empty(),
        "no rejected request wrote a contact"
    );
    assert!(
        api.get_all("/api/v1/tickets").await.is_empty(),
        "no rejected request wrote a ticket"
    );
}

#[tokio::test]
async fn an_oversized_body_is_413_before_it_is_read_whole() {
    let server = TestServer::start().await;
    let api = server.client(&server.admin_key());
    let big = format!(
        "{{\"email\":\"a@example.com\",\"name\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let reply = api
        .send_raw(Method::POST, "/api/v1/contacts", big.into_bytes())
        .await
        .expect(413);
    assert_eq!(reply.error(), "payload_too_large");
    assert!(api.get_all("/api/v1/contacts").await.is_empty());
}

#[tokio::test]
async fn healthz_answers_without_a_key() {
    let server = TestServer::start().await;
    let reply = server.anonymous().get("/healthz").await.expect(200);
    assert_eq!(reply.body["status"], "ok");
}
