//! The second door: `POST /v1.php` runs any catalog action with the REST route's auth,
//! permissions, validation, envelope and audit; `meta.me` describes the calling key.

use opsiq::core::Scope;
use opsiq::core::catalog::Catalog;
use opsiq::core::keys::{KeySpec, Permissions};
use opsiq::core::types::Id;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Client, TestServer};

async fn act(client: &Client, action: &str, params: Value) -> crate::common::Reply {
    client
        .post("/v1.php", json!({"action": action, "params": params}))
        .await
}

#[tokio::test]
async fn every_action_refuses_a_key_lacking_its_scope_through_the_action_endpoint() {
    let server = TestServer::start().await;
    for action in Catalog::builtin().actions() {
        let Some(scope) = action.scope else { continue };
        let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| *s != scope).collect();
        let client = server.client(&server.key(&others));
        let reply = act(&client, &action.id, json!({"id": 1})).await.expect(403);
        assert_eq!(
            reply.error(),
            format!("scope_required:{scope}"),
            "{}",
            action.id
        );
    }
}

#[tokio::test]
async fn the_action_endpoint_answers_like_the_rest_route() {
    let server = TestServer::start().await;
    let api = server.client(&server.admin_key());
    let created = act(
        &api,
        "tickets.create",
        json!({"customer_email": "c@example.com", "subject": "Via action", "status": "closed"}),
    )
    .await
    .expect(201);
    assert_eq!(created.body["success"], true);
    assert_eq!(created.data()["status"], "open");
    let id = created.data()["id"].as_i64().unwrap();
    let rest = api.get(&format!("/api/v1/tickets/{id}")).await.expect(200);
    let via_action = act(&api, "tickets.get", json!({"id": id}))
        .await
        .expect(200);
    assert_eq!(rest.data(), via_action.data());
    let listed = server
        .client(api.key.as_ref().unwrap())
        .post(
            "/api/v1.php",
            json!({"action": "tickets.list", "params": {"limit": 1}}),
        )
        .await
        .expect(200);
    assert_eq!(listed.data().as_array().unwrap().len(), 1);
    assert!(listed.body.as_object().unwrap().contains_key("next_cursor"));
    let invalid = act(
        &api,
        "tickets.create",
        json!({"customer_email": "c@example.com", "subject": "s", "priority": "asap"}),
    )
    .await
    .expect(422);
    assert_eq!(invalid.error(), "validation_failed:priority");
    assert_eq!(
        act(&api, "tickets.get", json!({"id": 999}))
            .await
            .expect(404)
            .error(),
        "not_found:ticket"
    );
    assert_eq!(
        act(&api, "tickets.list", json!({"limit": 0}))
            .await
            .expect(422)
            .error(),
        "validation_failed:limit"
    );

    server.opsiq.store().flush().unwrap();
    let audit = server.opsiq.read(|r| r.audit_entries(None, 50)).unwrap();
    let row = audit
        .iter()
        .find(|e| e.request_id == created.body["request_id"])
        .expect("audited");
    assert_eq!(
        (row.action.as_deref(), row.status),
        (Some("tickets.create"), 201)
    );
}

#[tokio::test]
async fn the_action_endpoint_names_what_is_wrong_with_its_envelope() {
    let server = TestServer::start().await;
    let api = server.client(&server.admin_key());
    let cases: Vec<(&[u8], u16, &str)> = vec![
        (br#"{"action":"tickets.nuke"}"#, 404, "action_not_found"),
        (br#"{"params":{}}"#, 422, "validation_failed:action"),
        (br#"{"action":7}"#, 422, "validation_failed:action"),
        (
            br#"{"action":"tickets.list","params":[1]}"#,
            422,
            "validation_failed:params",
        ),
        (
            br#"{"action":"tickets.list","extra":true}"#,
            422,
            "validation_failed:extra",
        ),
        (br#"{"action":"#, 400, "invalid_json"),
        (br#"[]"#, 422, "validation_failed:body"),
    ];
    for (body, status, code) in cases {
        let reply = api.send_raw(Method::POST, "/v1.php", body.to_vec()).await;
        assert_eq!(
            (reply.status.as_u16(), reply.error()),
            (status, code),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let anonymous = server
        .anonymous()
        .post("/v1.php", json!({"action": "meta.me"}))
        .await
        .expect(401);
    assert_eq!(anonymous.error(), "unauthorized");
    let get = api.get("/v1.php").await.expect(405);
    assert_eq!(get.error(), "method_not_allowed");
}

#[tokio::test]
async fn meta_me_describes_the_key_and_its_recent_usage() {
    let server = TestServer::start().await;
    let issued = server.issue(Id(1), &[Scope::ContactsRead, Scope::KbRead]);
    let api = server.client(&issued.secret);
    for _ in 0..3 {
        api.get("/api/v1/contacts").await.expect(200);
    }
    api.post("/api/v1/contacts", json!({"email": "x@example.com"}))
        .await
        .expect(403);
    server.opsiq.store().flush().unwrap();

    let me = act(&api, "meta.me", json!({})).await.expect(200);
    let me = me.data();
    assert_eq!(me["key"]["name"], "test-key");
    assert_eq!(me["key"]["id"], issued.key.id.0);
    assert_eq!(me["scopes"], json!(["contacts.read", "kb.read"]));
    assert_eq!(me["permissions_mode"], "scopes");
    assert_eq!(me["workspace"]["id"], 1);
    assert_eq!(me["site"]["domain"], "localhost");
    let allowed: Vec<&str> = me["allowed_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        allowed.contains(&"contacts.list")
            && allowed.contains(&"contacts.get")
            && allowed.contains(&"meta.me")
    );
    assert!(!allowed.contains(&"contacts.create"));
    let blocked: Vec<&str> = me["blocked_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(blocked.contains(&"contacts.create") && blocked.contains(&"tickets.create"));
    assert_eq!(
        allowed.len() + blocked.len(),
        Catalog::builtin().actions().len()
    );

    let day = &me["usage"]["last_24h"];
    assert_eq!(day["requests"], 4);
    let rows = day["by_action"].as_array().unwrap();
    let list = rows
        .iter()
        .find(|r| r["action"] == "contacts.list" && r["outcome"] == "ok")
        .expect("contacts.list row");
    assert_eq!(list["requests"], 3);
    assert!(
        list["p50_ms"].as_f64().unwrap() > 0.0
            && list["p95_ms"].as_f64().unwrap() >= list["p50_ms"].as_f64().unwrap()
    );
    assert!(rows.iter().any(
        |r| r["action"] == "contacts.create" && r["outcome"] == "scope_required:contacts.write"
    ));
    assert_eq!(me["usage"]["last_7d"]["requests"], 4);
}

#[tokio::test]
async fn custom_permissions_allow_and_block_single_actions() {
    let server = TestServer::start().await;
    let admin = server.client(&server.admin_key());
    let id = admin
        .create(
            "/api/v1/tickets",
            json!({"customer_email": "c@example.com", "subject": "s"}),
        )
        .await;
    let permissions = Permissions::parse(
        None,
        vec!["tickets.update".into()],
        vec!["tickets.get".into()],
        server.opsiq.catalog(),
    )
    .unwrap();
    let issued = server
        .opsiq
        .create_key_with(KeySpec {
            workspace: Id(1),
            site: None,
            name: "custom",
            scopes: &[Scope::TicketsRead],
            permissions,
            rate_limit: None,
        })
        .unwrap();
    let api = server.client(&issued.secret);
    assert_eq!(
        api.get(&format!("/api/v1/tickets/{id}"))
            .await
            .expect(403)
            .error(),
        "action_blocked:tickets.get"
    );
    assert_eq!(
        act(&api, "tickets.get", json!({"id": id}))
            .await
            .expect(403)
            .error(),
        "action_blocked:tickets.get"
    );
    api.get("/api/v1/tickets").await.expect(200);
    api.patch(
        &format!("/api/v1/tickets/{id}"),
        json!({"status": "pending"}),
    )
    .await
    .expect(200);
    let create = api
        .post(
            "/api/v1/tickets",
            json!({"customer_email": "c@example.com", "subject": "s"}),
        )
        .await
        .expect(403);
    assert_eq!(create.error(), "scope_required:tickets.write");
    let me = act(&api, "meta.me", json!({})).await.expect(200);
    assert_eq!(me.data()["permissions_mode"], "custom");
    let allowed = me.data()["allowed_actions"].as_array().unwrap();
    assert!(allowed.contains(&json!("tickets.update")) && !allowed.contains(&json!("tickets.get")));
    assert!(
        Permissions::parse(
            None,
            vec!["tickets.nuke".into()],
            vec![],
            server.opsiq.catalog()
        )
        .is_err()
    );
}
