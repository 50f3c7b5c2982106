//! Tickets: always opened `open`, linked to a contact, filtered, updated, and recorded in the
//! outbox.

use opsiq::core::Scope;
use opsiq::core::events::EventType;
use opsiq::core::types::Id;
use serde_json::{Value, json};

use crate::common::{Client, TestServer};

async fn server_and_client() -> (TestServer, Client) {
    let server = TestServer::start().await;
    let client =
        server.client(&server.key(&[Scope::TicketsRead, Scope::TicketsWrite, Scope::ContactsRead]));
    (server, client)
}

#[tokio::test]
async fn new_ticket_is_open_even_if_resolved_is_sent() {
    let (_server, api) = server_and_client().await;
    for status in [
        json!("resolved"),
        json!("closed"),
        json!("nonsense"),
        json!(7),
    ] {
        let reply = api
            .post(
                "/api/v1/tickets",
                json!({"customer_email": "c@example.com", "subject": "Hi", "status": status}),
            )
            .await
            .expect(201);
        assert_eq!(reply.data()["status"], "open", "sent {status}");
    }
}

#[tokio::test]
async fn a_ticket_links_or_creates_its_contact_by_customer_email() {
    let (_server, api) = server_and_client().await;
    let first = api
        .post("/api/v1/tickets", json!({"customer_email": "Customer@Example.com", "customer_name": "Example Customer", "subject": "One"}))
        .await
        .expect(201);
    let second = api
        .post(
            "/api/v1/tickets",
            json!({"customer_email": "customer@example.com", "subject": "Two"}),
        )
        .await
        .expect(201);
    assert_eq!(
        first.data()["contact_id"],
        second.data()["contact_id"],
        "one contact per e-mail"
    );
    assert_eq!(second.data()["customer_name"], "Example Customer");
    assert_eq!(first.data()["priority"], "normal");
    assert_eq!(first.data()["source"], "api");
    let contacts = api.get_all("/api/v1/contacts").await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["email"], "Customer@Example.com");
}

#[tokio::test]
async fn tickets_are_filtered_by_status_priority_department_and_email() {
    let (server, api) = server_and_client().await;
    let billing = server.opsiq.add_department(Id(1), "Billing").unwrap().id.0;
    let mk = |email: &str, priority: &str, department: i64| json!({"customer_email": email, "subject": "s", "priority": priority, "department_id": department});
    let a = api
        .create("/api/v1/tickets", mk("a@example.com", "high", 1))
        .await;
    api.post("/api/v1/tickets", mk("b@example.com", "low", billing))
        .await
        .expect(201);
    api.post("/api/v1/tickets", mk("a@example.com", "low", billing))
        .await
        .expect(201);
    api.patch(
        &format!("/api/v1/tickets/{a}"),
        json!({"status": "pending"}),
    )
    .await
    .expect(200);

    let count = |items: Vec<Value>| items.len();
    assert_eq!(count(api.get_all("/api/v1/tickets").await), 3);
    assert_eq!(
        count(api.get_all("/api/v1/tickets?status=pending").await),
        1
    );
    assert_eq!(count(api.get_all("/api/v1/tickets?status=open").await), 2);
    assert_eq!(count(api.get_all("/api/v1/tickets?priority=low").await), 2);
    assert_eq!(
        count(
            api.get_all(&format!("/api/v1/tickets?department_id={billing}"))
                .await
        ),
        2
    );
    assert_eq!(
        count(api.get_all("/api/v1/tickets?email=A%40example.com").await),
        2
    );
    assert_eq!(
        count(
            api.get_all(&format!(
                "/api/v1/tickets?email=a%40example.com&department_id={billing}&priority=low"
            ))
            .await
        ),
        1
    );
    assert_eq!(
        count(api.get_all("/api/v1/tickets?status=open&limit=1").await),
        2,
        "pages follow the cursor"
    );
    for (query, param) in [
        ("status=opened", "status"),
        ("priority=extreme", "priority"),
        ("department_id=abc", "department_id"),
        ("email=nope", "email"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=101", "limit"),
        ("cursor=zzz", "cursor"),
        ("colour=red", "colour"),
    ] {
        let reply = api
            .get(&format!("/api/v1/tickets?{query}"))
            .await
            .expect(400);
        assert_eq!(
            reply.error(),
            format!("invalid_parameter:{param}"),
            "{query}"
        );
    }
}

#[tokio::test]
async fn unknown_departments_and_agents_are_422_naming_the_field() {
    let (server, api) = server_and_client().await;
    let other_workspace = server
        .opsiq
        .create_workspace("Other", "other.example")
        .unwrap()
        .0
        .id;
    let foreign_department = server
        .opsiq
        .add_department(other_workspace, "Theirs")
        .unwrap()
        .id
        .0;
    let base = json!({"customer_email": "c@example.com", "subject": "s"});
    for (field, value) in [
        ("department_id", json!(999)),
        ("department_id", json!(foreign_department)),
        ("assignee_id", json!(5)),
    ] {
        let mut body = base.clone();
        body[field] = value;
        let reply = api.post("/api/v1/tickets", body).await.expect(422);
        assert_eq!(reply.error(), format!("validation_failed:{field}"));
    }
    assert!(
        api.get_all("/api/v1/tickets").await.is_empty(),
        "nothing was written"
    );
    assert!(
        api.get_all("/api/v1/contacts").await.is_empty(),
        "not even the contact"
    );
}

#[tokio::test]
async fn a_ticket_update_changes_status_priority_routing_and_subject() {
    let (server, api) = server_and_client().await;
    let agent = server
        .opsiq
        .add_agent(Id(1), "Grace", "grace@support.example")
        .unwrap()
        .id
        .0;
    let billing = server.opsiq.add_department(Id(1), "Billing").unwrap().id.0;
    let id = api
        .create(
            "/api/v1/tickets",
            json!({"customer_email": "c@example.com", "subject": "Old"}),
        )
        .await;
    let path = format!("/api/v1/tickets/{id}");
    let reply = api
        .patch(&path, json!({"status": "in_progress", "priority": "high"}))
        .await
        .expect(200);
    assert_eq!(
        (
            reply.data()["status"].as_str(),
            reply.data()["priority"].as_str()
        ),
        (Some("in_progress"), Some("high"))
    );
    let reply = api
        .patch(&path, json!({"department_id": billing, "assignee_id": agent, "subject": "New", "tags": ["refund", "Refund"]}))
        .await
        .expect(200);
    assert_eq!(reply.data()["department_id"], billing);
    assert_eq!(reply.data()["assignee_id"], agent);
    assert_eq!(reply.data()["subject"], "New");
    assert_eq!(reply.data()["tags"], json!(["refund"]));
    let reply = api
        .patch(&path, json!({"assignee_id": null}))
        .await
        .expect(200);
    assert_eq!(reply.data()["assignee_id"], Value::Null);
    assert_eq!(
        reply.data()["status"],
        "in_progress",
        "untouched fields stay"
    );

    for (body, field) in [
        (json!({"status": "done"}), "status"),
        (json!({"priority": 3}), "priority"),
        (json!({"subject": ""}), "subject"),
        (json!({"assignee_id": 999}), "assignee_id"),
        (json!({}), "params"),
    ] {
        assert_eq!(
            api.patch(&path, body).await.expect(422).error(),
            format!("validation_failed:{field}")
        );
    }
    assert_eq!(
        api.patch("/api/v1/tickets/4242", json!({"status": "closed"}))
            .await
            .expect(404)
            .error(),
        "not_found:ticket"
    );
    assert_eq!(api.get(&path).await.expect(200).data()["subject"], "New");
}

#[tokio::test]
async fn creations_and_changes_write_outbox_events_with_the_change() {
    let (server, api) = server_and_client().await;
    let id = api
        .create(
            "/api/v1/tickets",
            json!({"customer_email": "c@example.com", "subject": "Need help"}),
        )
        .await;
    api.patch(
        &format!("/api/v1/tickets/{id}"),
        json!({"status": "resolved", "priority": "normal"}),
    )
    .await
    .expect(200);
    let events = server.opsiq.read(|r| r.events(Id(1), 100)).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event, EventType::TicketCreated);
    let created = events[0].payload();
    assert_eq!(created["event"], "ticket.created");
    assert!(created["id"].as_str().unwrap().starts_with("evt_"));
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(created["data"]["ticket_id"], id);
    assert_eq!(created["data"]["subject"], "Need help");
    assert_eq!(events[1].event, EventType::TicketUpdated);
    assert_eq!(
        events[1].data["changes"],
        json!({"status": {"old": "open", "new": "resolved"}}),
        "only what changed"
    );
}
