//! Workspaces are walls: a key never sees another workspace's rows (404, not 403).

use opsiq::core::Scope;
use reqwest::Method;
use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn a_key_cannot_list_fetch_or_update_another_workspaces_contacts_and_tickets() {
    let server = TestServer::start().await;
    let (other, _) = server
        .opsiq
        .create_workspace("Other", "other.example")
        .unwrap();
    let ours = server.client(&server.admin_key());
    let theirs = server.client(&server.key_in(other.id, &Scope::ALL));

    let contact = ours
        .post(
            "/api/v1/contacts",
            json!({"email": "ada@example.com", "name": "Ada"}),
        )
        .await
        .expect(201)
        .data()["id"]
        .as_i64()
        .unwrap();
    let ticket = ours
        .post(
            "/api/v1/tickets",
            json!({"customer_email": "ada@example.com", "subject": "Ours"}),
        )
        .await
        .expect(201)
        .data()["id"]
        .as_i64()
        .unwrap();

    assert!(theirs.get_all("/api/v1/contacts").await.is_empty());
    assert!(theirs.get_all("/api/v1/contacts?q=ada").await.is_empty());
    assert!(theirs.get_all("/api/v1/tickets").await.is_empty());
    assert!(
        theirs
            .get_all("/api/v1/tickets?email=ada%40example.com")
            .await
            .is_empty()
    );
    let attempts = [
        (
            Method::GET,
            format!("/api/v1/contacts/{contact}"),
            json!({}),
            "not_found:contact",
        ),
        (
            Method::PATCH,
            format!("/api/v1/contacts/{contact}"),
            json!({"name": "Mallory"}),
            "not_found:contact",
        ),
        (
            Method::PUT,
            format!("/api/v1/contacts/{contact}"),
            json!({"name": "Mallory"}),
            "not_found:contact",
        ),
        (
            Method::POST,
            format!("/api/v1/contacts/{contact}/tags"),
            json!({"tags": ["pwned"]}),
            "not_found:contact",
        ),
        (
            Method::POST,
            format!("/api/v1/contacts/{contact}/notes"),
            json!({"note": "pwned"}),
            "not_found:contact",
        ),
        (
            Method::GET,
            format!("/api/v1/tickets/{ticket}"),
            json!({}),
            "not_found:ticket",
        ),
        (
            Method::PATCH,
            format!("/api/v1/tickets/{ticket}"),
            json!({"status": "closed"}),
            "not_found:ticket",
        ),
    ];
    for (method, path, body, code) in attempts {
        let reply = theirs
            .send(method.clone(), &path, Some(&body))
            .await
            .expect(404);
        assert_eq!(reply.error(), code, "{method} {path}");
    }
    // Their own contact with the same e-mail is a different row; ours is untouched.
    theirs
        .post("/api/v1/contacts", json!({"email": "ada@example.com"}))
        .await
        .expect(201);
    let ours_now = ours
        .get(&format!("/api/v1/contacts/{contact}"))
        .await
        .expect(200);
    assert_eq!(ours_now.data()["name"], "Ada");
    assert_eq!(ours_now.data()["tags"], json!([]));
    assert_eq!(ours_now.data()["notes"], json!([]));
    assert_eq!(
        ours.get(&format!("/api/v1/tickets/{ticket}"))
            .await
            .expect(200)
            .data()["status"],
        "open"
    );
}
