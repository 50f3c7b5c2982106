//! Contacts: create, unique e-mail, search, pages, updates, tags and the notes timeline.

use opsiq::core::Scope;
use serde_json::{Value, json};

use crate::common::{Client, TestServer};

async fn server_and_client() -> (TestServer, Client) {
    let server = TestServer::start().await;
    let client = server.client(&server.key(&[Scope::ContactsRead, Scope::ContactsWrite]));
    (server, client)
}

#[tokio::test]
async fn a_contact_is_created_and_fetched_by_id() {
    let (_server, api) = server_and_client().await;
    let created = api
        .post("/api/v1/contacts", json!({"name": "Ada Lovelace", "email": "ada@example.com", "tags": ["trial"], "phone": "+44 1", "external_id": "cust_1", "attributes": {"plan": "pro", "seats": 3}}))
        .await
        .expect(201);
    let id = created.data()["id"].as_i64().unwrap();
    let fetched = api.get(&format!("/api/v1/contacts/{id}")).await.expect(200);
    for field in [
        "name",
        "email",
        "tags",
        "phone",
        "external_id",
        "attributes",
    ] {
        assert_eq!(fetched.data()[field], created.data()[field], "{field}");
    }
    assert_eq!(fetched.data()["email"], "ada@example.com");
    assert_eq!(
        fetched.data()["attributes"],
        json!({"plan": "pro", "seats": 3})
    );
    assert_eq!(fetched.data()["notes"], json!([]));
}

#[tokio::test]
async fn a_duplicate_email_is_422_naming_email_whatever_its_case() {
    let (_server, api) = server_and_client().await;
    api.post("/api/v1/contacts", json!({"email": "ada@example.com"}))
        .await
        .expect(201);
    let dup = api
        .post("/api/v1/contacts", json!({"email": "  ADA@Example.com "}))
        .await
        .expect(422);
    assert_eq!(dup.error(), "validation_failed:email");
    assert_eq!(dup.body["field"], "email");
    assert_eq!(
        api.get_all("/api/v1/contacts").await.len(),
        1,
        "the rejected request wrote nothing"
    );
}

#[tokio::test]
async fn invalid_contact_fields_are_422_naming_the_field() {
    let (_server, api) = server_and_client().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"email": "not-an-address"}), "email"),
        (json!({"email": 42}), "email"),
        (json!({"email": "a@example.com", "tags": "vip"}), "tags"),
        (json!({"email": "a@example.com", "tags": [""]}), "tags[0]"),
        (
            json!({"email": "a@example.com", "attributes": [1]}),
            "attributes",
        ),
        (
            json!({"email": "a@example.com", "name": "x".repeat(201)}),
            "name",
        ),
        (json!({}), "email"),
    ];
    for (body, field) in cases {
        let reply = api.post("/api/v1/contacts", body.clone()).await.expect(422);
        assert_eq!(
            reply.error(),
            format!("validation_failed:{field}"),
            "{body}"
        );
    }
    assert!(api.get_all("/api/v1/contacts").await.is_empty());
}

#[tokio::test]
async fn search_matches_name_email_and_tags_as_prefixes() {
    let (_server, api) = server_and_client().await;
    for (name, email, tags) in [
        ("Ada Lovelace", "ada@example.com", json!(["trial"])),
        ("Grace Hopper", "grace@navy.mil", json!(["vip"])),
        (
            "Alan Turing",
            "alan@bletchley.uk",
            json!(["trial", "renewal"]),
        ),
    ] {
        api.post(
            "/api/v1/contacts",
            json!({"name": name, "email": email, "tags": tags}),
        )
        .await
        .expect(201);
    }
    let names = |items: Vec<Value>| {
        items
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(api.get_all("/api/v1/contacts?q=lov").await),
        ["Ada Lovelace"]
    );
    assert_eq!(
        names(api.get_all("/api/v1/contacts?q=navy").await),
        ["Grace Hopper"]
    );
    assert_eq!(
        names(api.get_all("/api/v1/contacts?q=trial").await),
        ["Alan Turing", "Ada Lovelace"]
    );
    assert_eq!(
        names(api.get_all("/api/v1/contacts?q=ALAN%20tur").await),
        ["Alan Turing"]
    );
    assert_eq!(
        names(api.get_all("/api/v1/contacts?q=ada%40example.com").await),
        ["Ada Lovelace"]
    );
    assert!(api.get_all("/api/v1/contacts?q=zzz").await.is_empty());
    assert!(
        api.get_all("/api/v1/contacts?q=%22%20OR%20*")
            .await
            .is_empty(),
        "search syntax in q is inert"
    );
    assert_eq!(
        api.get_all("/api/v1/contacts?q=").await.len(),
        3,
        "an empty q lists everything"
    );
}

#[tokio::test]
async fn lists_page_newest_first_with_a_cursor() {
    let (_server, api) = server_and_client().await;
    for i in 0..7 {
        api.post(
            "/api/v1/contacts",
            json!({"email": format!("p{i}@example.com")}),
        )
        .await
        .expect(201);
    }
    let first = api.get("/api/v1/contacts?limit=3").await.expect(200);
    let emails: Vec<&str> = first
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["p6@example.com", "p5@example.com", "p4@example.com"]
    );
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = api
        .get(&format!("/api/v1/contacts?limit=3&cursor={cursor}"))
        .await
        .expect(200);
    assert_eq!(second.data()[0]["email"], "p3@example.com");
    let all = api.get_all("/api/v1/contacts?limit=2").await;
    assert_eq!(all.len(), 7);
    // A search pages the same way, newest first, each contact once.
    let found: Vec<String> = api
        .get_all("/api/v1/contacts?q=example&limit=2")
        .await
        .iter()
        .map(|c| c["email"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        found,
        (0..7)
            .rev()
            .map(|i| format!("p{i}@example.com"))
            .collect::<Vec<_>>()
    );
    let last = api.get("/api/v1/contacts?limit=7").await.expect(200);
    assert_eq!(
        last.body["next_cursor"],
        Value::Null,
        "no cursor after the last page"
    );
    assert_eq!(
        api.get("/api/v1/contacts")
            .await
            .data()
            .as_array()
            .unwrap()
            .len(),
        7,
        "limit defaults to 25"
    );
}

#[tokio::test]
async fn an_update_changes_only_the_fields_given() {
    let (_server, api) = server_and_client().await;
    let id = api.create("/api/v1/contacts", json!({"name": "Ada", "email": "ada@example.com", "phone": "1", "attributes": {"plan": "pro", "seats": 3}})).await;
    let path = format!("/api/v1/contacts/{id}");
    let updated = api
        .patch(&path, json!({"name": "Ada King", "phone": null, "external_id": "c-9", "attributes": {"seats": null, "region": "eu"}}))
        .await
        .expect(200);
    let c = updated.data();
    assert_eq!(c["name"], "Ada King");
    assert_eq!(c["email"], "ada@example.com");
    assert_eq!(c["phone"], Value::Null);
    assert_eq!(c["external_id"], "c-9");
    assert_eq!(c["attributes"], json!({"plan": "pro", "region": "eu"}));
    let put = api
        .send(
            reqwest::Method::PUT,
            &path,
            Some(&json!({"email": "ada@king.example"})),
        )
        .await
        .expect(200);
    assert_eq!(put.data()["email"], "ada@king.example");
    assert_eq!(
        api.patch(&path, json!({})).await.expect(422).error(),
        "validation_failed:params"
    );
    // An update's attribute names keep to the documented 1 to 64 characters, even when it
    // only removes one nobody has.
    let long = "a".repeat(65);
    assert_eq!(
        api.patch(&path, json!({"attributes": {long.as_str(): null}}))
            .await
            .expect(422)
            .error(),
        "validation_failed:attributes"
    );
    assert_eq!(
        api.patch("/api/v1/contacts/999", json!({"name": "x"}))
            .await
            .expect(404)
            .error(),
        "not_found:contact"
    );
}

#[tokio::test]
async fn an_update_cannot_take_another_contacts_email() {
    let (_server, api) = server_and_client().await;
    api.post("/api/v1/contacts", json!({"email": "ada@example.com"}))
        .await
        .expect(201);
    let id = api
        .create("/api/v1/contacts", json!({"email": "grace@example.com"}))
        .await;
    let reply = api
        .patch(
            &format!("/api/v1/contacts/{id}"),
            json!({"email": "Ada@example.com", "name": "G"}),
        )
        .await
        .expect(422);
    assert_eq!(reply.error(), "validation_failed:email");
    let after = api.get(&format!("/api/v1/contacts/{id}")).await.expect(200);
    assert_eq!(
        after.data()["name"],
        Value::Null,
        "the rejected update changed nothing"
    );
}

#[tokio::test]
async fn tags_are_appended_deduplicated_in_order() {
    let (_server, api) = server_and_client().await;
    let id = api
        .create(
            "/api/v1/contacts",
            json!({"email": "ada@example.com", "tags": ["trial"]}),
        )
        .await;
    let path = format!("/api/v1/contacts/{id}/tags");
    let reply = api
        .post(&path, json!({"tags": ["vip", "renewal", "VIP", "trial"]}))
        .await
        .expect(200);
    assert_eq!(reply.data()["tags"], json!(["trial", "vip", "renewal"]));
    let reply = api.post(&path, json!({"tags": ["vip"]})).await.expect(200);
    assert_eq!(reply.data()["tags"], json!(["trial", "vip", "renewal"]));
    assert_eq!(
        api.post(&path, json!({"tags": []}))
            .await
            .expect(422)
            .error(),
        "validation_failed:tags"
    );
    assert_eq!(
        api.post(&path, json!({})).await.expect(422).error(),
        "validation_failed:tags"
    );
}

#[tokio::test]
async fn notes_join_the_timeline_with_the_key_name_as_author() {
    let (_server, api) = server_and_client().await;
    let id = api
        .create("/api/v1/contacts", json!({"email": "ada@example.com"}))
        .await;
    let path = format!("/api/v1/contacts/{id}/notes");
    api.post(&path, json!({"note": "Customer asked for annual billing."}))
        .await
        .expect(200);
    let reply = api
        .post(&path, json!({"note": "Sent the quote."}))
        .await
        .expect(200);
    let notes = reply.data()["notes"].as_array().unwrap().clone();
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0]["body"], "Customer asked for annual billing.");
    assert_eq!(notes[1]["body"], "Sent the quote.");
    assert!(
        notes
            .iter()
            .all(|n| n["author"] == "test-key" && n["created_at"].as_str().unwrap().ends_with('Z'))
    );
    let fetched = api.get(&format!("/api/v1/contacts/{id}")).await.expect(200);
    assert_eq!(fetched.data()["notes"].as_array().unwrap().len(), 2);
    assert_eq!(
        api.post(&path, json!({"note": "  "}))
            .await
            .expect(422)
            .error(),
        "validation_failed:note"
    );
}
