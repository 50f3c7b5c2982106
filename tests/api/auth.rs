//! Bearer keys and scopes, checked over every route of the catalog (so a new route is covered
//! without editing these tests).

use opsiq::core::Scope;
use opsiq::core::catalog::{Catalog, Method as CatalogMethod};
use reqwest::Method;
use serde_json::json;

use crate::common::{Client, TestServer};

/// Every (method, concrete path, scope) the catalog binds, with `{id}` set to an id that exists.
fn routes(id: i64) -> Vec<(Method, String, Scope)> {
    Catalog::builtin()
        .actions()
        .iter()
        .filter_map(|a| a.scope.map(|scope| (a, scope)))
        .flat_map(|(a, scope)| {
            a.routes.iter().map(move |r| {
                let method = match r.method {
                    CatalogMethod::Get => Method::GET,
                    CatalogMethod::Post => Method::POST,
                    CatalogMethod::Put => Method::PUT,
                    CatalogMethod::Patch => Method::PATCH,
                    CatalogMethod::Delete => Method::DELETE,
                };
                (method, r.path.replace("{id}", &id.to_string()), scope)
            })
        })
        .collect()
}

async fn seeded() -> (TestServer, i64) {
    let server = TestServer::start().await;
    let admin = server.client(&server.admin_key());
    let contact = admin
        .post(
            "/api/v1/contacts",
            json!({"email": "seed@example.com", "name": "Seed"}),
        )
        .await
        .expect(201);
    admin
        .post(
            "/api/v1/tickets",
            json!({"customer_email": "seed@example.com", "subject": "Seed"}),
        )
        .await
        .expect(201);
    let id = contact.data()["id"].as_i64().unwrap();
    (server, id)
}

#[tokio::test]
async fn every_route_answers_403_scope_required_to_a_key_lacking_its_scope() {
    let (server, id) = seeded().await;
    let all = routes(id);
    assert!(
        all.len() >= 10,
        "the catalog binds the ten contact and ticket routes"
    );
    for (method, path, scope) in all {
        let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| *s != scope).collect();
        let client = server.client(&server.key(&others));
        let reply = client
            .send(method.clone(), &path, Some(&json!({})))
            .await
            .expect(403);
        assert_eq!(reply.body["success"], false);
        assert_eq!(
            reply.error(),
            format!("scope_required:{scope}"),
            "{method} {path}"
        );
        assert!(
            reply.body["request_id"]
                .as_str()
                .unwrap()
                .starts_with("req_")
        );
    }
}

#[tokio::test]
async fn every_route_answers_401_without_a_valid_key() {
    let (server, id) = seeded().await;
    let revoked = server.issue(opsiq::core::types::Id(1), &Scope::ALL);
    server.opsiq.revoke_key(revoked.key.id).unwrap();
    let rotated = server.issue(opsiq::core::types::Id(1), &Scope::ALL);
    let rotated_to = server.opsiq.rotate_key(rotated.key.id).unwrap();
    assert_ne!(rotated.secret, rotated_to.secret);
    // The last character changed (to `x`, or to `y` where it was `x`: the same character
    // would leave the key valid).
    let (head, last) = rotated_to.secret.split_at(rotated_to.secret.len() - 1);
    let garbled = format!("{head}{}", if last == "x" { "y" } else { "x" });
    assert_ne!(garbled, rotated_to.secret);
    let bad_keys: Vec<Option<String>> = vec![
        None,
        Some("opq_not_a_real_key".into()),
        Some(format!("opq_{}", "A".repeat(40))),
        Some(garbled),
        Some(revoked.secret),
        Some(rotated.secret),
    ];
    for (method, path, _) in routes(id) {
        for key in &bad_keys {
            let client = Client {
                key: key.clone(),
                ..server.anonymous()
            };
            let reply = client
                .send(method.clone(), &path, Some(&json!({})))
                .await
                .expect(401);
            assert_eq!(
                reply.error(),
                "unauthorized",
                "{method} {path} with {key:?}"
            );
        }
    }
    // The rotated-to secret works.
    server
        .client(&rotated_to.secret)
        .get("/api/v1/tickets")
        .await
        .expect(200);
}

#[tokio::test]
async fn authorization_must_use_the_bearer_scheme() {
    let server = TestServer::start().await;
    let key = server.admin_key();
    let res = reqwest::Client::new()
        .get(server.url("/api/v1/contacts"))
        .header("authorization", format!("Basic {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = reqwest::Client::new()
        .get(server.url("/api/v1/contacts"))
        .header("authorization", format!("bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the scheme name is case-insensitive");
}

#[tokio::test]
async fn key_usage_is_recorded_and_audited_without_the_callers_address() {
    let server = TestServer::start().await;
    let issued = server.issue(opsiq::core::types::Id(1), &[Scope::ContactsRead]);
    let client = server.client(&issued.secret);
    let ok = client.get("/api/v1/contacts").await.expect(200);
    let denied = client
        .post("/api/v1/contacts", json!({"email": "x@example.com"}))
        .await
        .expect(403);
    server.anonymous().get("/api/v1/contacts").await.expect(401);
    server.opsiq.store().flush().unwrap();

    let key = server
        .opsiq
        .list_keys(None)
        .unwrap()
        .into_iter()
        .find(|k| k.id == issued.key.id)
        .unwrap();
    assert!(key.last_used_at.is_some());
    let audit = server.opsiq.read(|r| r.audit_entries(None, 100)).unwrap();
    let ok_row = audit
        .iter()
        .find(|e| e.request_id == ok.body["request_id"])
        .expect("audit row of the read");
    assert_eq!(
        (
            ok_row.action.as_deref(),
            ok_row.outcome.as_str(),
            ok_row.status
        ),
        (Some("contacts.list"), "ok", 200)
    );
    assert_eq!(ok_row.key_id, Some(issued.key.id));
    let denied_row = audit
        .iter()
        .find(|e| e.request_id == denied.body["request_id"])
        .expect("audit row of the denial");
    assert_eq!(denied_row.outcome, "scope_required:contacts.write");
    assert_eq!(denied_row.status, 403);
    assert_eq!(audit.len(), 3, "one row per request");

    let raw = std::fs::read(&server.db).unwrap();
    let wal = std::fs::read(server.db.with_extension("db-wal")).unwrap_or_default();
    for bytes in [raw, wal] {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("127.0.0.1"),
            "the database holds no client address"
        );
        assert!(
            !text.contains(&issued.secret),
            "the database holds no raw key secret"
        );
    }
}

#[tokio::test]
async fn a_key_holding_only_the_required_scope_gets_past_permissions_on_every_route_and_action() {
    let (server, id) = seeded().await;
    let mut checked = 0;
    for (method, path, scope) in routes(id) {
        let client = server.client(&server.key(&[scope]));
        let reply = client.send(method.clone(), &path, Some(&json!({}))).await;
        let status = reply.status.as_u16();
        assert!(
            status != 401 && status != 403,
            "{method} {path} with only {scope}: {}",
            reply.body
        );
        assert!(status < 500, "{method} {path}: {}", reply.body);
        checked += 1;
    }
    for action in Catalog::builtin().actions() {
        let Some(scope) = action.scope else { continue };
        let client = server.client(&server.key(&[scope]));
        let reply = client
            .post(
                "/v1.php",
                json!({"action": action.id, "params": {"id": id}}),
            )
            .await;
        let status = reply.status.as_u16();
        assert!(
            status != 401 && status != 403 && status < 500,
            "{} with only {scope}: {}",
            action.id,
            reply.body
        );
        checked += 1;
    }
    println!("{checked} route and action calls, each with only its scope");
}
