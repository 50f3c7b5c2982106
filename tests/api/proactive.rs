//! Proactive events and rules: `POST /api/v1/proactive/trigger` stores the event and runs the
//! rules listening for it; rules are managed under the `admin` scope.

use opsiq::core::Scope;
use opsiq::core::events::EventType;
use opsiq::core::proactive::COMMON_EVENTS;
use opsiq::core::types::Id;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Client, Reply, TestServer};

/// The contract's example body, verbatim but for the docs' address placeholder.
const SPEC_BODY: &str = r#"{
"event":"checkout.abandoned",
"email":"customer@example.com",
"cart_total":129.50,
"currency":"USD"
}"#;

const TRIGGER: &str = "/api/v1/proactive/trigger";
const RULES: &str = "/api/v1/proactive/rules";

/// A server, an admin client (rules, tickets, contacts) and a client holding only
/// `proactive.write`, the scope an integration firing events needs.
async fn setup() -> (TestServer, Client, Client) {
    let server = TestServer::start().await;
    let admin = server.client(&server.admin_key());
    let integration = server.client(&server.key(&[Scope::ProactiveWrite]));
    (server, admin, integration)
}

fn big_cart_rule(cooldown_seconds: i64) -> Value {
    json!({
        "name": "Rescue big carts",
        "event": "checkout.abandoned",
        "conditions": [{"property": "cart_total", "op": "gt", "value": 100}],
        "actions": [
            {"type": "create_ticket", "subject": "Abandoned cart", "body": "Call them back.", "priority": "high"},
            {"type": "add_tags", "tags": ["cart-abandoner", "VIP"]},
            {"type": "change_lead_score", "delta": 10},
            {"type": "queue_message", "body": "Need a hand finishing your order?"}
        ],
        "cooldown_seconds": cooldown_seconds
    })
}

async fn create_rule(admin: &Client, rule: Value) -> i64 {
    admin.create(RULES, rule).await
}

async fn fire_spec_body(client: &Client) -> Reply {
    client
        .send_raw(Method::POST, TRIGGER, SPEC_BODY.as_bytes().to_vec())
        .await
}

fn stored_events(server: &TestServer) -> Vec<opsiq::core::proactive::ProactiveEvent> {
    server
        .opsiq
        .read(|r| r.proactive_events(Id(1), 100))
        .unwrap()
}

fn outbox(server: &TestServer, event: EventType) -> Vec<Value> {
    server
        .opsiq
        .read(|r| r.events(Id(1), 1000))
        .unwrap()
        .into_iter()
        .filter(|e| e.event == event)
        .map(|e| e.data)
        .collect()
}

#[tokio::test]
async fn the_spec_trigger_body_is_accepted_and_stored() {
    let (server, admin, integration) = setup().await;
    let reply = fire_spec_body(&integration).await.expect(201);
    let data = reply.data();
    assert_eq!(data["event"], "checkout.abandoned");
    assert_eq!(data["contact"]["email"], "customer@example.com");
    assert_eq!(
        data["properties"],
        json!({"cart_total": 129.5, "currency": "USD"})
    );
    assert_eq!(data["matched"], json!([]));
    assert_eq!(data["skipped"], json!([]));

    let events = stored_events(&server);
    assert_eq!(events.len(), 1);
    let stored = &events[0];
    assert_eq!(json!(stored.id), data["event_id"]);
    assert_eq!(stored.name, "checkout.abandoned");
    assert_eq!(stored.site_id, Id(1), "stamped to the key's active site");
    assert_eq!(json!(stored.contact_id), data["contact"]["id"]);
    assert_eq!(
        Value::Object(stored.properties.clone()),
        json!({"cart_total": 129.5, "currency": "USD"})
    );
    let contacts = admin.get_all("/api/v1/contacts").await;
    assert_eq!(contacts.len(), 1, "the contact was created by e-mail");
    assert_eq!(contacts[0]["email"], "customer@example.com");
}

#[tokio::test]
async fn the_common_events_and_unknown_event_names_are_accepted() {
    let (server, _admin, integration) = setup().await;
    for name in COMMON_EVENTS
        .iter()
        .chain(&["custom.anything_goes", "Trial Extended"])
    {
        let reply = integration
            .post(
                TRIGGER,
                json!({"event": name, "email": "customer@example.com", "nested": {"a": [1, 2]}}),
            )
            .await
            .expect(201);
        assert_eq!(reply.data()["event"], *name);
    }
    let events = stored_events(&server);
    assert_eq!(events.len(), COMMON_EVENTS.len() + 2);
    assert!(
        events
            .iter()
            .all(|e| e.properties["nested"] == json!({"a": [1, 2]})),
        "extra properties are kept as sent"
    );
}

#[tokio::test]
async fn a_matching_rule_creates_a_ticket_adds_tags_scores_the_lead_and_queues_a_message() {
    let (server, admin, integration) = setup().await;
    let rule = create_rule(&admin, big_cart_rule(0)).await;
    let reply = fire_spec_body(&integration).await.expect(201);
    let data = reply.data();
    let contact = data["contact"]["id"].as_i64().unwrap();
    assert_eq!(data["matched"].as_array().unwrap().len(), 1, "{data}");
    let fired = &data["matched"][0];
    assert_eq!(fired["rule_id"], rule);
    assert_eq!(fired["name"], "Rescue big carts");
    let actions = fired["actions"].as_array().unwrap();
    let kinds: Vec<&str> = actions
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "create_ticket",
            "add_tags",
            "change_lead_score",
            "queue_message"
        ]
    );
    assert!(actions.iter().all(|a| a["status"] == "done"), "{actions:?}");

    let ticket_id = actions[0]["ticket_id"].as_i64().unwrap();
    let tickets = admin.get_all("/api/v1/tickets").await;
    assert_eq!(tickets.len(), 1);
    let ticket = &tickets[0];
    assert_eq!(ticket["id"], ticket_id);
    assert_eq!(ticket["subject"], "Abandoned cart");
    assert_eq!(ticket["body"], "Call them back.");
    assert_eq!(ticket["priority"], "high");
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["source"], "proactive");
    assert_eq!(ticket["contact_id"], contact);
    assert_eq!(ticket["customer_email"], "customer@example.com");
    let created = outbox(&server, EventType::TicketCreated);
    assert_eq!(created.len(), 1, "ticket.created is in the outbox");
    assert_eq!(created[0]["ticket_id"], ticket_id);
    assert_eq!(created[0]["ticket"]["source"], "proactive");

    assert_eq!(actions[1]["tags"], json!(["cart-abandoner", "vip"]));
    let stored = admin
        .get(&format!("/api/v1/contacts/{contact}"))
        .await
        .expect(200);
    assert_eq!(stored.data()["tags"], json!(["cart-abandoner", "vip"]));

    assert_eq!(actions[2]["lead_score"], 10);

    let message_id = actions[3]["message_id"].as_i64().unwrap();
    let queued = server
        .opsiq
        .read(|r| r.queued_messages(None, Some(Id(contact))))
        .unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].id, Id(message_id));
    assert_eq!(queued[0].body, "Need a hand finishing your order?");
    assert_eq!(queued[0].rule_id, Some(Id(rule)));

    // Without a cooldown the rule fires again: the score adds up, the tags stay unique.
    let again = fire_spec_body(&integration).await.expect(201);
    let actions = &again.data()["matched"][0]["actions"];
    assert_eq!(actions[1]["tags"], json!(["cart-abandoner", "vip"]));
    assert_eq!(actions[2]["lead_score"], 20);
    assert_eq!(admin.get_all("/api/v1/tickets").await.len(), 2);
}

#[tokio::test]
async fn the_cooldown_skips_a_second_trigger_for_the_same_contact_within_it() {
    let (server, admin, integration) = setup().await;
    let rule = create_rule(&admin, big_cart_rule(3600)).await;
    fire_spec_body(&integration).await.expect(201);
    let second = fire_spec_body(&integration).await.expect(201);
    let data = second.data();
    assert_eq!(data["matched"], json!([]));
    let skipped = data["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{data}");
    assert_eq!(skipped[0]["rule_id"], rule);
    assert_eq!(skipped[0]["reason"], "cooldown");
    assert!(skipped[0]["cooldown_until"].is_string());
    assert_eq!(admin.get_all("/api/v1/tickets").await.len(), 1);
    assert_eq!(
        stored_events(&server).len(),
        2,
        "the event is stored anyway"
    );

    // The cooldown is per contact: someone else's abandoned cart still fires the rule.
    let other = integration
        .post(
            TRIGGER,
            json!({"event": "checkout.abandoned", "email": "other@example.com", "cart_total": 500}),
        )
        .await
        .expect(201);
    assert_eq!(other.data()["matched"][0]["rule_id"], rule);
    assert_eq!(admin.get_all("/api/v1/tickets").await.len(), 2);
}

#[tokio::test]
async fn a_trigger_that_matches_no_rule_changes_nothing_but_the_event() {
    let (server, admin, integration) = setup().await;
    create_rule(&admin, big_cart_rule(0)).await;
    for body in [
        json!({"event": "checkout.abandoned", "email": "customer@example.com", "cart_total": 50}),
        json!({"event": "checkout.abandoned", "email": "customer@example.com", "cart_total": "129.50"}),
        json!({"event": "checkout.abandoned", "email": "customer@example.com"}),
        json!({"event": "signup.started", "email": "customer@example.com", "cart_total": 500}),
    ] {
        let reply = integration.post(TRIGGER, body.clone()).await.expect(201);
        assert_eq!(reply.data()["matched"], json!([]), "{body}");
        assert_eq!(reply.data()["skipped"], json!([]), "{body}");
    }
    assert_eq!(stored_events(&server).len(), 4);
    assert!(admin.get_all("/api/v1/tickets").await.is_empty());
    assert!(outbox(&server, EventType::TicketCreated).is_empty());
    let contacts = admin.get_all("/api/v1/contacts").await;
    assert_eq!(contacts[0]["tags"], json!([]));
}

#[tokio::test]
async fn bad_trigger_bodies_are_422_naming_the_field_and_change_nothing() {
    let (server, admin, integration) = setup().await;
    create_rule(&admin, big_cart_rule(0)).await;
    for (body, field) in [
        (json!({}), "event"),
        (
            json!({"email": "customer@example.com", "cart_total": 500}),
            "event",
        ),
        (
            json!({"event": "", "email": "customer@example.com"}),
            "event",
        ),
        (
            json!({"event": "   ", "email": "customer@example.com"}),
            "event",
        ),
        (
            json!({"event": 5, "email": "customer@example.com"}),
            "event",
        ),
        (
            json!({"event": "x".repeat(101), "email": "customer@example.com"}),
            "event",
        ),
        (
            json!({"event": "checkout.abandoned", "cart_total": 500}),
            "email",
        ),
        (
            json!({"event": "checkout.abandoned", "email": "not-an-address"}),
            "email",
        ),
        (
            json!({"event": "checkout.abandoned", "visitor_id": "abc"}),
            "visitor_id",
        ),
        (
            json!({"event": "checkout.abandoned", "visitor_id": "vis_doesnotexist"}),
            "visitor_id",
        ),
    ] {
        let reply = integration.post(TRIGGER, body.clone()).await.expect(422);
        assert_eq!(
            reply.error(),
            format!("validation_failed:{field}"),
            "{body}"
        );
        assert_eq!(reply.body["field"], field);
    }
    for raw in ["[1, 2]", "\"checkout.abandoned\"", "42"] {
        let reply = integration
            .send_raw(Method::POST, TRIGGER, raw.as_bytes().to_vec())
            .await
            .expect(422);
        assert_eq!(reply.error(), "validation_failed:body", "{raw}");
    }
    assert!(stored_events(&server).is_empty());
    assert!(admin.get_all("/api/v1/contacts").await.is_empty());
    assert!(admin.get_all("/api/v1/tickets").await.is_empty());
}

#[tokio::test]
async fn a_visitor_trigger_uses_the_visitors_contact_once_identified() {
    let (server, admin, integration) = setup().await;
    let rule = create_rule(&admin, big_cart_rule(0)).await;
    let site = server.opsiq.list_sites(Some(Id(1))).unwrap().remove(0);
    let visitor = server.opsiq.visitor(&site, None).unwrap();
    let body = json!({"event": "checkout.abandoned", "visitor_id": visitor.id, "cart_total": 150});

    let anonymous = integration.post(TRIGGER, body.clone()).await.expect(201);
    let data = anonymous.data();
    assert_eq!(data["visitor_id"], visitor.id.as_str());
    assert_eq!(data["contact"], Value::Null);
    let actions = &data["matched"][0]["actions"];
    for i in 0..3 {
        assert_eq!(actions[i]["status"], "skipped", "{actions}");
        assert!(actions[i]["reason"].as_str().unwrap().contains("contact"));
    }
    assert_eq!(
        actions[3]["status"], "done",
        "the message is queued for the visitor"
    );
    let queued = server
        .opsiq
        .read(|r| r.queued_messages(Some(visitor.row_id), None))
        .unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].visitor_id, Some(visitor.row_id));
    assert!(admin.get_all("/api/v1/tickets").await.is_empty());

    let contact = admin
        .create("/api/v1/contacts", json!({"email": "known@example.com"}))
        .await;
    server
        .opsiq
        .identify_visitor(&visitor, Id(contact))
        .unwrap();
    let known = integration.post(TRIGGER, body).await.expect(201);
    assert_eq!(known.data()["contact"]["id"], contact);
    assert_eq!(known.data()["matched"][0]["rule_id"], rule);
    let tickets = admin.get_all("/api/v1/tickets").await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0]["customer_email"], "known@example.com");

    let (_, elsewhere) = server
        .opsiq
        .create_workspace("Elsewhere", "elsewhere.example")
        .unwrap();
    let stranger = server.opsiq.visitor(&elsewhere, None).unwrap();
    let reply = integration
        .post(
            TRIGGER,
            json!({"event": "checkout.abandoned", "visitor_id": stranger.id}),
        )
        .await
        .expect(422);
    assert_eq!(
        reply.error(),
        "validation_failed:visitor_id",
        "another workspace's visitor is unknown here"
    );
}

#[tokio::test]
async fn bad_rules_are_422_naming_the_field_and_change_nothing() {
    let (_server, admin, _integration) = setup().await;
    // The example rule with one field set (`pointer` names the object that holds it).
    let with = |pointer: &str, key: &str, value: Value| {
        let mut rule = big_cart_rule(0);
        let object = rule.pointer_mut(pointer).unwrap().as_object_mut().unwrap();
        object.insert(key.to_string(), value);
        rule
    };
    for (rule, field) in [
        (
            with("/conditions/0", "op", json!("bigger")),
            "conditions[0].op",
        ),
        (
            with("/conditions/0", "value", json!({"a": 1})),
            "conditions[0].value",
        ),
        (
            with("/conditions/0", "property", json!("cart..total")),
            "conditions[0].property",
        ),
        (
            with("/conditions/0", "extra", json!(1)),
            "conditions[0].extra",
        ),
        (
            with("/actions/0", "type", json!("send_fax")),
            "actions[0].type",
        ),
        (
            with("/actions/0", "priority", json!("asap")),
            "actions[0].priority",
        ),
        (with("/actions/1", "tags", json!([])), "actions[1].tags"),
        (with("/actions/2", "delta", json!(0)), "actions[2].delta"),
        (
            with("/actions/3", "subject", json!("Hi")),
            "actions[3].subject",
        ),
        (with("", "actions", json!([])), "actions"),
        (with("", "name", json!("")), "name"),
        (with("", "event", json!("")), "event"),
        (with("", "cooldown_seconds", json!(-5)), "cooldown_seconds"),
        (with("", "when", json!("always")), "when"),
    ] {
        let reply = admin.post(RULES, rule.clone()).await.expect(422);
        assert_eq!(
            reply.error(),
            format!("validation_failed:{field}"),
            "{rule}"
        );
    }
    assert!(admin.get_all(RULES).await.is_empty());

    let id = create_rule(&admin, big_cart_rule(60)).await;
    let before = admin.get(&format!("{RULES}/{id}")).await.expect(200);
    for (patch, field) in [
        (
            json!({"conditions": [{"property": "x", "op": "exists", "value": 1}]}),
            "conditions[0].value",
        ),
        (
            json!({"actions": [{"type": "queue_message"}]}),
            "actions[0].body",
        ),
        (
            json!({"enabled": false, "cooldown_seconds": 1.5}),
            "cooldown_seconds",
        ),
        (json!({"event": "other"}), "event"),
        (json!({}), "params"),
    ] {
        let reply = admin
            .patch(&format!("{RULES}/{id}"), patch.clone())
            .await
            .expect(422);
        assert_eq!(
            reply.error(),
            format!("validation_failed:{field}"),
            "{patch}"
        );
    }
    let after = admin.get(&format!("{RULES}/{id}")).await.expect(200);
    assert_eq!(before.data(), after.data());
}

#[tokio::test]
async fn rules_are_listed_fetched_updated_and_disabled() {
    let (server, admin, integration) = setup().await;
    let first = create_rule(&admin, big_cart_rule(0)).await;
    let second = create_rule(
        &admin,
        json!({"name": "Welcome", "event": "signup.started", "actions": [{"type": "queue_message", "body": "Welcome!"}]}),
    )
    .await;
    let listed = admin.get_all(&format!("{RULES}?limit=1")).await;
    let ids: Vec<i64> = listed.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [second, first], "newest first, page by page");

    let fetched = admin.get(&format!("{RULES}/{second}")).await.expect(200);
    let rule = fetched.data();
    assert_eq!(rule["event"], "signup.started");
    assert_eq!(rule["conditions"], json!([]));
    assert_eq!(rule["cooldown_seconds"], 0);
    assert_eq!(rule["enabled"], true);
    assert_eq!(
        rule["actions"],
        json!([{"type": "queue_message", "body": "Welcome!"}])
    );

    let disabled = admin
        .patch(&format!("{RULES}/{first}"), json!({"enabled": false}))
        .await
        .expect(200);
    assert_eq!(disabled.data()["enabled"], false);
    let reply = fire_spec_body(&integration).await.expect(201);
    assert_eq!(
        reply.data()["matched"],
        json!([]),
        "a disabled rule does not fire"
    );

    let replaced = admin
        .send(
            Method::PUT,
            &format!("{RULES}/{first}"),
            Some(&json!({
                "enabled": true,
                "name": "Small carts too",
                "conditions": [{"property": "currency", "op": "eq", "value": "USD"}],
                "actions": [{"type": "change_lead_score", "delta": -3}]
            })),
        )
        .await
        .expect(200);
    assert_eq!(replaced.data()["name"], "Small carts too");
    assert_eq!(replaced.data()["cooldown_seconds"], 0, "absent fields stay");
    let reply = fire_spec_body(&integration).await.expect(201);
    let actions = &reply.data()["matched"][0]["actions"];
    assert_eq!(actions[0]["lead_score"], -3);

    assert_eq!(
        admin.get(&format!("{RULES}/999")).await.expect(404).error(),
        "not_found:rule"
    );
    let (other, _) = server
        .opsiq
        .create_workspace("Other", "other.example")
        .unwrap();
    let outsider = server.client(&server.key_in(other.id, &[Scope::Admin]));
    assert_eq!(
        outsider
            .get(&format!("{RULES}/{first}"))
            .await
            .expect(404)
            .error(),
        "not_found:rule"
    );
    assert!(outsider.get_all(RULES).await.is_empty());
    outsider
        .patch(&format!("{RULES}/{first}"), json!({"enabled": false}))
        .await
        .expect(404);
}

#[tokio::test]
async fn rules_need_the_admin_scope_and_the_trigger_needs_proactive_write() {
    let (server, admin, integration) = setup().await;
    let id = create_rule(&admin, big_cart_rule(0)).await;
    for reply in [
        integration.get(RULES).await,
        integration.post(RULES, big_cart_rule(0)).await,
        integration.get(&format!("{RULES}/{id}")).await,
        integration
            .patch(&format!("{RULES}/{id}"), json!({"enabled": false}))
            .await,
    ] {
        assert_eq!(reply.expect(403).error(), "scope_required:admin");
    }
    let everything_but = server.client(
        &server.key(
            &Scope::ALL
                .into_iter()
                .filter(|s| *s != Scope::ProactiveWrite)
                .collect::<Vec<_>>(),
        ),
    );
    let reply = fire_spec_body(&everything_but).await.expect(403);
    assert_eq!(reply.error(), "scope_required:proactive.write");
    assert!(admin.get_all("/api/v1/tickets").await.is_empty());
}

#[tokio::test]
async fn the_action_endpoint_fires_the_trigger_too() {
    let (server, admin, integration) = setup().await;
    let rule = create_rule(&admin, big_cart_rule(0)).await;
    let params: Value = serde_json::from_str(SPEC_BODY).unwrap();
    for path in ["/v1.php", "/api/v1.php"] {
        let reply = integration
            .post(
                path,
                json!({"action": "proactive.trigger", "params": params}),
            )
            .await
            .expect(201);
        assert_eq!(reply.data()["matched"][0]["rule_id"], rule);
    }
    assert_eq!(stored_events(&server).len(), 2);
    assert_eq!(admin.get_all("/api/v1/tickets").await.len(), 2);
    let missing = integration
        .post(
            "/v1.php",
            json!({"action": "proactive.trigger", "params": {"email": "customer@example.com"}}),
        )
        .await
        .expect(422);
    assert_eq!(missing.error(), "validation_failed:event");
    let rules = admin
        .post("/v1.php", json!({"action": "rules.list", "params": {}}))
        .await
        .expect(200);
    assert_eq!(rules.data()[0]["id"], rule);
}
