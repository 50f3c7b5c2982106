//! The knowledge base: articles through REST and search over published content.

use opsiq::core::Scope;
use opsiq::core::types::Id;
use serde_json::json;

use crate::common::{Client, TestServer};

async fn server_and_client() -> (TestServer, Client) {
    let server = TestServer::start().await;
    let client = server.client(&server.key(&[Scope::KbRead, Scope::KbWrite]));
    (server, client)
}

#[tokio::test]
async fn the_specs_article_examples_create_and_update_articles() {
    let (_server, api) = server_and_client().await;
    let created = api
        .post(
            "/api/v1/kb/articles",
            json!({"title": "How to reset your password", "body": "Open Account Settings, choose Security, then Reset Password.", "status": "published"}),
        )
        .await
        .expect(201);
    let a = created.data();
    assert_eq!(a["slug"], "how-to-reset-your-password");
    assert_eq!(a["status"], "published");
    assert!(a["published_at"].is_string());
    let id = a["id"].as_i64().unwrap();
    let updated = api
        .patch(
            &format!("/api/v1/kb/articles/{id}"),
            json!({"status": "published", "body": "Updated article body."}),
        )
        .await
        .expect(200);
    assert_eq!(updated.data()["body"], "Updated article body.");
    assert_eq!(
        updated.data()["published_at"],
        a["published_at"],
        "first publication time is kept"
    );
    let put = api
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/kb/articles/{id}"),
            Some(&json!({"status": "archived"})),
        )
        .await
        .expect(200);
    assert_eq!(put.data()["status"], "archived");
    assert_eq!(
        api.get(&format!("/api/v1/kb/articles/{id}"))
            .await
            .expect(200)
            .data()["status"],
        "archived"
    );
}

#[tokio::test]
async fn slugs_are_unique_and_articles_are_validated() {
    let (_server, api) = server_and_client().await;
    let one = api
        .post(
            "/api/v1/kb/articles",
            json!({"title": "Billing FAQ", "body": "b"}),
        )
        .await
        .expect(201);
    assert_eq!(one.data()["status"], "draft", "drafts by default");
    let two = api
        .post(
            "/api/v1/kb/articles",
            json!({"title": "Billing FAQ", "body": "b"}),
        )
        .await
        .expect(201);
    assert_eq!(two.data()["slug"], "billing-faq-2");
    let taken = api
        .post(
            "/api/v1/kb/articles",
            json!({"title": "x", "body": "b", "slug": "billing-faq"}),
        )
        .await
        .expect(422);
    assert_eq!(taken.error(), "validation_failed:slug");
    for (body, field) in [
        (json!({"body": "b"}), "title"),
        (json!({"title": " ", "body": "b"}), "title"),
        (
            json!({"title": "t", "body": "b", "status": "live"}),
            "status",
        ),
        (
            json!({"title": "t", "body": "b", "slug": "Not A Slug"}),
            "slug",
        ),
    ] {
        assert_eq!(
            api.post("/api/v1/kb/articles", body)
                .await
                .expect(422)
                .error(),
            format!("validation_failed:{field}")
        );
    }
    assert_eq!(api.get_all("/api/v1/kb/articles").await.len(), 2);
    assert_eq!(
        api.get_all("/api/v1/kb/articles?status=draft").await.len(),
        2
    );
    assert!(
        api.get_all("/api/v1/kb/articles?status=published")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn published_articles_are_searchable_and_others_are_not() {
    let (server, api) = server_and_client().await;
    for (title, body, status) in [
        (
            "How to reset your password",
            "Open Account Settings, choose Security, then Reset Password.",
            "published",
        ),
        (
            "Refund policy",
            "Refunds are issued within 14 days.",
            "published",
        ),
        ("Secret roadmap", "Password managers integration.", "draft"),
    ] {
        api.post(
            "/api/v1/kb/articles",
            json!({"title": title, "body": body, "status": status}),
        )
        .await
        .expect(201);
    }
    let hits = server
        .opsiq
        .search_knowledge(Id(1), "how do I reset my password", 5)
        .unwrap();
    assert!(hits.is_empty(), "every word must match");
    let hits = server
        .opsiq
        .search_knowledge(Id(1), "reset password", 5)
        .unwrap();
    assert_eq!(
        hits.iter().map(|a| a.title.as_str()).collect::<Vec<_>>(),
        ["How to reset your password"]
    );
    let hits = server.opsiq.search_knowledge(Id(1), "refunds", 5).unwrap();
    assert_eq!(hits.len(), 1, "stemmed: refunds matches Refund");
    assert!(
        server
            .opsiq
            .search_knowledge(Id(1), "roadmap", 5)
            .unwrap()
            .is_empty(),
        "drafts are not searched"
    );
    let listed = api.get_all("/api/v1/kb/articles?q=password").await;
    assert_eq!(listed.len(), 2, "the list's q searches every status");
}
