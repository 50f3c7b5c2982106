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
        .create(
            "/api/v1/contacts",
            json!({"email": "ada@example.com", "name": "Ada"}),
        )
        .await;
    let ticket = ours
        .create(
            "/api/v1/tickets",
            json!({"customer_email": "ada@example.com", "subject": "Ours"}),
        )
        .await;

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

/// Every catalog route that takes an `{id}`, tried by a key of another workspace holding every
/// scope, with the id of a row of this workspace: 404 naming the resource, and nothing changes.
/// Generated from the catalog, so a new route is covered without editing this test.
#[tokio::test]
async fn every_route_with_an_id_answers_404_across_workspaces_and_changes_nothing() {
    use opsiq::core::catalog::{Catalog, Method as M};
    use opsiq::core::chats::AuthorType;
    use opsiq::core::types::Id;
    use serde_json::Value;

    let server = TestServer::start().await;
    let ours = server.client(&server.admin_key());
    let contact = ours
        .create("/api/v1/contacts", json!({"email": "ada@example.com"}))
        .await;
    let ticket = ours
        .create(
            "/api/v1/tickets",
            json!({"customer_email": "ada@example.com", "subject": "s"}),
        )
        .await;
    let article = ours
        .create("/api/v1/kb/articles", json!({"title": "t", "body": "b"}))
        .await;
    let catalog = Catalog::builtin();
    let rule_example = catalog
        .get("rules.create")
        .and_then(|a| a.example.clone())
        .expect("rules.create has an example");
    let rule = ours.create("/api/v1/proactive/rules", rule_example).await;
    let endpoint = ours
        .create(
            "/api/v1/webhooks",
            json!({"url": "https://example.com/hook"}),
        )
        .await;
    let site = server.opsiq.list_sites(Some(Id(1))).unwrap().remove(0);
    let visitor = server.opsiq.visitor(&site, None).unwrap();
    let chat = server.opsiq.start_chat(&site, &visitor).unwrap().id.0;
    server
        .opsiq
        .add_chat_message(Id(1), Id(chat), AuthorType::Visitor, None, "hi")
        .unwrap();

    let ids = |noun: &str| match noun {
        "contact" => contact,
        "ticket" => ticket,
        "article" => article,
        "rule" => rule,
        "webhook_endpoint" => endpoint,
        "chat" => chat,
        other => panic!("no row made for `{other}`: add one to this test"),
    };
    let snapshot = || async {
        let mut all = Vec::new();
        for path in [
            format!("/api/v1/contacts/{contact}"),
            format!("/api/v1/tickets/{ticket}"),
            format!("/api/v1/kb/articles/{article}"),
            format!("/api/v1/proactive/rules/{rule}"),
            format!("/api/v1/chats/{chat}"),
            "/api/v1/webhooks".to_string(),
        ] {
            all.push(ours.get(&path).await.expect(200).body["data"].clone());
        }
        all
    };
    let before = snapshot().await;

    let (other, _) = server
        .opsiq
        .create_workspace("Other", "other.example")
        .unwrap();
    let theirs = server.client(&server.key_in(other.id, &Scope::ALL));
    let mut tried = 0;
    for action in catalog.actions() {
        for route in action.routes.iter().filter(|r| r.path.contains("{id}")) {
            let id = ids(action.noun);
            let path = route.path.replace("{id}", &id.to_string());
            let body: Option<Value> = match route.method {
                M::Get | M::Delete => None,
                _ => Some(
                    action
                        .example
                        .clone()
                        .unwrap_or_else(|| json!({"tags": ["x"], "note": "x"})),
                ),
            };
            let body = body.map(|b| match action.id.as_str() {
                "contacts.tags.add" => json!({"tags": ["x"]}),
                "contacts.notes.add" => json!({"note": "x"}),
                "webhooks.update" => json!({"description": "x"}),
                "webhooks.rotate_secret" => json!({}),
                _ => b,
            });
            let method = reqwest::Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
            let reply = theirs.send(method.clone(), &path, body.as_ref()).await;
            assert_eq!(
                reply.status.as_u16(),
                404,
                "{method} {path}: {}",
                reply.body
            );
            assert_eq!(
                reply.error(),
                format!("not_found:{}", action.noun),
                "{method} {path}"
            );
            tried += 1;
        }
    }
    println!("{tried} id routes tried across workspaces");
    assert!(tried >= 19);
    assert_eq!(snapshot().await, before, "nothing of ours changed");
    for list in [
        "/api/v1/contacts",
        "/api/v1/tickets",
        "/api/v1/chats",
        "/api/v1/kb/articles",
        "/api/v1/proactive/rules",
        "/api/v1/webhooks",
    ] {
        let reply = theirs.get(list).await.expect(200);
        assert_eq!(
            reply.data(),
            &json!([]),
            "{list} shows nothing of another workspace"
        );
    }
}
