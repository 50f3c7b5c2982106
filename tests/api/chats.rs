//! Chat reads: sessions with their full transcripts, and one thread per contact.

use opsiq::core::Scope;
use opsiq::core::chats::AuthorType;
use opsiq::core::types::Id;
use serde_json::json;

use crate::common::TestServer;

/// Two sessions of Ada (one before she identified herself), one anonymous session.
async fn seeded() -> (TestServer, i64) {
    let server = TestServer::start().await;
    let op = &server.opsiq;
    let site = op.list_sites(Some(Id(1))).unwrap().remove(0);
    let admin = server.client(&server.admin_key());
    let contact = admin
        .create(
            "/api/v1/contacts",
            json!({"email": "ada@example.com", "name": "Ada"}),
        )
        .await;

    let visitor = op.visitor(&site, None).unwrap();
    let first = op.start_chat(&site, &visitor).unwrap();
    op.add_chat_message(Id(1), first.id, AuthorType::Visitor, None, "Hello?")
        .unwrap();
    op.add_chat_message(
        Id(1),
        first.id,
        AuthorType::Agent,
        Some("Grace"),
        "Hi! How can I help?",
    )
    .unwrap();
    op.close_chat(Id(1), first.id).unwrap();
    op.identify_visitor(&visitor, Id(contact)).unwrap();
    let visitor = op.visitor(&site, Some(&visitor.id)).unwrap();
    let second = op.start_chat(&site, &visitor).unwrap();
    op.add_chat_message(
        Id(1),
        second.id,
        AuthorType::Bot,
        Some("OpsIQ"),
        "Welcome back, Ada.",
    )
    .unwrap();

    let stranger = op.visitor(&site, None).unwrap();
    let third = op.start_chat(&site, &stranger).unwrap();
    op.add_chat_message(Id(1), third.id, AuthorType::System, None, "Visitor left.")
        .unwrap();
    (server, contact)
}

#[tokio::test]
async fn chat_sessions_are_listed_newest_first_with_their_transcripts() {
    let (server, contact) = seeded().await;
    let api = server.client(&server.key(&[Scope::ChatsRead]));
    let sessions = api.get_all("/api/v1/chats?limit=2").await;
    assert_eq!(sessions.len(), 3);
    assert!(
        sessions[0]["contact"].is_null(),
        "the anonymous session has no contact"
    );
    assert_eq!(sessions[0]["messages"][0]["author_type"], "system");
    let first = &sessions[2];
    assert_eq!(
        first["contact"]["id"], contact,
        "stitched after the visitor identified"
    );
    assert_eq!(first["status"], "closed");
    assert!(first["visitor"]["id"].as_str().unwrap().starts_with("vis_"));
    let transcript: Vec<(&str, &str)> = first["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["author_type"].as_str().unwrap(),
                m["body"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        transcript,
        [("visitor", "Hello?"), ("agent", "Hi! How can I help?")]
    );
    assert!(first["first_response_at"].is_string());

    let id = first["id"].as_i64().unwrap();
    let one = api.get(&format!("/api/v1/chats/{id}")).await.expect(200);
    assert_eq!(one.data(), first);
    assert_eq!(
        api.get("/api/v1/chats/999").await.expect(404).error(),
        "not_found:chat"
    );
}

#[tokio::test]
async fn threads_join_a_contacts_sessions_into_one_conversation() {
    let (server, contact) = seeded().await;
    let api = server.client(&server.key(&[Scope::ChatsRead]));
    let threads = api.get_all("/api/v1/chats?view=threads").await;
    assert_eq!(
        threads.len(),
        1,
        "one thread per contact; anonymous sessions have none"
    );
    let thread = &threads[0];
    assert_eq!(thread["id"], contact);
    assert_eq!(thread["contact"]["email"], "ada@example.com");
    assert_eq!(thread["session_count"], 2);
    let bodies: Vec<&str> = thread["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["Hello?", "Hi! How can I help?", "Welcome back, Ada."]
    );
    let fetched = api
        .get(&format!("/api/v1/chats/{contact}?view=threads"))
        .await
        .expect(200);
    assert_eq!(fetched.data(), thread);
    assert_eq!(
        api.get("/api/v1/chats?view=everything")
            .await
            .expect(400)
            .error(),
        "invalid_parameter:view"
    );
}

#[tokio::test]
async fn chat_started_is_recorded_in_the_outbox_and_chats_stay_in_their_workspace() {
    let (server, _) = seeded().await;
    let events = server.opsiq.read(|r| r.events(Id(1), 100)).unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event.as_str() == "chat.started")
            .count(),
        3
    );
    let (other, _) = server
        .opsiq
        .create_workspace("Other", "other.example")
        .unwrap();
    let theirs = server.client(&server.key_in(other.id, &[Scope::ChatsRead]));
    assert!(theirs.get_all("/api/v1/chats").await.is_empty());
    assert!(
        theirs
            .get_all("/api/v1/chats?view=threads")
            .await
            .is_empty()
    );
    assert_eq!(
        theirs.get("/api/v1/chats/1").await.expect(404).error(),
        "not_found:chat"
    );
}
