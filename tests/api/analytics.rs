//! The analytics summary: per site, over a range, computed from the stored rows.

use opsiq::core::Scope;
use opsiq::core::chats::AuthorType;
use opsiq::core::types::Id;
use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn the_summary_counts_what_happened_on_the_keys_site_only() {
    let server = TestServer::start().await;
    let op = &server.opsiq;
    let site = op.list_sites(Some(Id(1))).unwrap().remove(0);
    let shop = op.add_site(Id(1), Some("Shop"), "shop.example").unwrap();
    let admin = server.client(&server.admin_key());

    // On the key's site: two visitors, three page views, a chat answered by an agent, a
    // ticket created and resolved, a lead scored, two orders in two currencies, knowledge.
    let a = op.visitor(&site, None).unwrap();
    let b = op.visitor(&site, None).unwrap();
    for (v, url) in [(&a, "/"), (&a, "/pricing"), (&b, "/")] {
        op.record_page_view(&site, v, url, None).unwrap();
    }
    let chat = op.start_chat(&site, &a).unwrap();
    op.add_chat_message(Id(1), chat.id, AuthorType::Visitor, None, "hi")
        .unwrap();
    op.add_chat_message(Id(1), chat.id, AuthorType::Agent, Some("Grace"), "hello")
        .unwrap();
    let ticket = admin
        .post(
            "/api/v1/tickets",
            json!({"customer_email": "c@example.com", "subject": "s"}),
        )
        .await
        .expect(201);
    let ticket_id = ticket.data()["id"].as_i64().unwrap();
    let contact = ticket.data()["contact_id"].as_i64().unwrap();
    admin
        .patch(
            &format!("/api/v1/tickets/{ticket_id}"),
            json!({"status": "resolved"}),
        )
        .await
        .expect(200);
    assert_eq!(
        op.score_lead(&site, Id(contact), 60, "pricing page")
            .unwrap(),
        60
    );
    op.record_order(&site, Some(&a), None, Some("o-1"), 12950, "usd")
        .unwrap();
    op.record_order(&site, None, Some(Id(contact)), None, 5000, "EUR")
        .unwrap();
    op.record_knowledge_query(&site, "How do I reset my password?", Some(Id(1)))
        .ok();
    op.record_knowledge_query(&site, "Do you ship to Mars?", None)
        .unwrap();
    op.record_knowledge_query(&site, "do you ship to  mars?", None)
        .unwrap();

    // On another site of the same workspace: must not be counted.
    let other = op.visitor(&shop, None).unwrap();
    op.record_page_view(&shop, &other, "/", None).unwrap();
    op.start_chat(&shop, &other).unwrap();
    op.record_order(&shop, Some(&other), None, None, 999, "USD")
        .unwrap();

    let api = server.client(&server.key(&[Scope::AnalyticsRead]));
    let s = api
        .get("/api/v1/analytics/summary?preset=30d")
        .await
        .expect(200);
    let s = s.data();
    assert_eq!(s["site"]["id"], site.id.0);
    assert_eq!(s["site"]["domain"], "localhost");
    assert_eq!(s["range"]["preset"], "30d");
    assert_eq!(s["range"]["timezone"], "UTC");
    assert_eq!(s["visitors"], 2);
    assert_eq!(s["sessions"], 2);
    assert_eq!(s["page_views"], 3);
    assert_eq!(s["chats_started"], 1);
    assert_eq!(s["tickets_created"], 1);
    assert_eq!(s["tickets_resolved"], 1);
    assert!(s["median_first_response_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(s["leads_scored"], 1);
    assert_eq!(s["orders"], 2);
    assert_eq!(
        s["revenue"],
        json!([{"currency": "EUR", "orders": 1, "amount_minor": 5000}, {"currency": "USD", "orders": 1, "amount_minor": 12950}])
    );
    assert_eq!(s["missed_questions"], 2);

    let events: Vec<String> = op
        .read(|r| r.events(Id(1), 100))
        .unwrap()
        .iter()
        .map(|e| e.event.as_str().to_string())
        .collect();
    assert!(events.contains(&"lead.scored".to_string()), "{events:?}");
    assert_eq!(
        events.iter().filter(|e| *e == "order.attributed").count(),
        3
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "knowledge.missed_question")
            .count(),
        1,
        "fired once, on the repeat"
    );

    let shop_key = server.client(
        &server
            .opsiq
            .create_key(Id(1), Some("shop.example"), "shop", &[Scope::AnalyticsRead])
            .unwrap()
            .secret,
    );
    let shop_summary = shop_key.get("/api/v1/analytics/summary").await.expect(200);
    assert_eq!(shop_summary.data()["site"]["domain"], "shop.example");
    assert_eq!(shop_summary.data()["page_views"], 1);
    assert_eq!(
        shop_summary.data()["revenue"],
        json!([{"currency": "USD", "orders": 1, "amount_minor": 999}])
    );
    assert_eq!(shop_summary.data()["tickets_created"], 0);
}

#[tokio::test]
async fn an_empty_site_reports_zeros_and_ranges_are_checked() {
    let server = TestServer::start().await;
    let api = server.client(&server.key(&[Scope::AnalyticsRead]));
    let s = api
        .get("/api/v1/analytics/summary?preset=30d&from=&to=")
        .await
        .expect(200);
    for field in [
        "visitors",
        "sessions",
        "page_views",
        "chats_started",
        "tickets_created",
        "tickets_resolved",
        "leads_scored",
        "orders",
        "knowledge_answers",
        "missed_questions",
    ] {
        assert_eq!(s.data()[field], 0, "{field}");
    }
    assert!(s.data()["median_first_response_seconds"].is_null());
    assert_eq!(s.data()["revenue"], json!([]));
    let r = api
        .get("/api/v1/analytics/summary?from=2026-01-01&to=2026-01-31")
        .await
        .expect(200);
    assert_eq!(r.data()["range"]["from"], "2026-01-01T00:00:00.000Z");
    assert_eq!(r.data()["range"]["to"], "2026-02-01T00:00:00.000Z");
    assert!(r.data()["range"]["preset"].is_null());
    for (query, param) in [
        ("from=2026-02-01&to=2026-01-01", "from"),
        ("from=2024-01-01&to=2026-01-01", "to"),
        ("from=2026-01-01", "to"),
        ("from=yesterday&to=2026-01-01", "from"),
        ("preset=1y", "preset"),
    ] {
        let reply = api
            .get(&format!("/api/v1/analytics/summary?{query}"))
            .await
            .expect(400);
        assert_eq!(
            reply.error(),
            format!("invalid_parameter:{param}"),
            "{query}"
        );
    }
}
