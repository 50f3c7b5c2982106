//! Per-key rate limits: the `RateLimit-*` headers on every answer to a key, 429 with
//! `Retry-After` past the limit, audited, changing nothing.

use opsiq::core::Scope;
use opsiq::core::keys::{KeySpec, Permissions};
use opsiq::core::types::Id;
use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn a_key_over_its_limit_gets_429_with_retry_after_and_changes_nothing() {
    let server = TestServer::start().await;
    let limited = server
        .opsiq
        .create_key_with(KeySpec {
            workspace: Id(1),
            site: None,
            name: "limited",
            scopes: &[Scope::TicketsRead, Scope::TicketsWrite],
            permissions: Permissions::default(),
            rate_limit: Some(3),
        })
        .unwrap();
    let api = server.client(&limited.secret);
    let http = reqwest::Client::new();
    for remaining in ["2", "1", "0"] {
        let res = http
            .get(server.url("/api/v1/tickets"))
            .bearer_auth(&limited.secret)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let header = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(header("ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(header("ratelimit-remaining").as_deref(), Some(remaining));
        assert!(header("ratelimit-reset").unwrap().parse::<u64>().unwrap() <= 60);
    }
    let res = http
        .post(server.url("/api/v1/tickets"))
        .bearer_auth(&limited.secret)
        .json(&json!({"customer_email": "c@example.com", "subject": "too many"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert!(body["request_id"].as_str().unwrap().starts_with("req_"));
    assert_eq!(
        api.post("/v1.php", json!({"action": "meta.me"}))
            .await
            .expect(429)
            .error(),
        "rate_limited"
    );

    let other = server.client(&server.admin_key());
    assert!(
        other.get_all("/api/v1/tickets").await.is_empty(),
        "the refused creation wrote nothing"
    );
    server.opsiq.store().flush().unwrap();
    let audit = server.opsiq.read(|r| r.audit_entries(None, 50)).unwrap();
    let refused = audit
        .iter()
        .filter(|e| e.key_id == Some(limited.key.id) && e.outcome == "rate_limited")
        .count();
    assert_eq!(refused, 2, "each refused request is audited");
    let me = other
        .post("/v1.php", json!({"action": "meta.me"}))
        .await
        .expect(200);
    assert_eq!(
        me.data()["rate_limit"]["limit"],
        1_000_000,
        "other keys have the install's limit"
    );
}
