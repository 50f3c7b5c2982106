//! Criterion micro-benchmarks of the hot core paths: key verification, webhook signing, rule
//! evaluation and envelope serialisation. `cargo bench --bench core`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use opsiq::core::api::success_body;
use opsiq::core::catalog::Output;
use opsiq::core::keys;
use opsiq::core::proactive::{Condition, conditions_hold};
use opsiq::core::types::{Id, RequestId};
use opsiq::core::webhooks::{SigningSecrets, generate_secret, sign};
use opsiq::core::{Opsiq, Scope};
use serde_json::{Map, Value, json};

fn key_verification(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let opsiq = Opsiq::open(dir.path().join("opsiq.db")).unwrap();
    opsiq.bootstrap().unwrap();
    let issued = opsiq.create_key(Id(1), None, "bench", &Scope::ALL).unwrap();
    let header = format!("Bearer {}", issued.secret);
    c.bench_function("keys::hash (SHA-256 of a secret)", |b| {
        b.iter(|| keys::hash(black_box(&issued.secret)))
    });
    c.bench_function("Opsiq::authenticate (parse, hash, stored lookup)", |b| {
        b.iter(|| opsiq.authenticate(Some(black_box(&header))).unwrap())
    });
}

fn webhook_signing(c: &mut Criterion) {
    let secrets = SigningSecrets {
        current: generate_secret(),
        previous: None,
    };
    let body = json!({
        "event": "ticket.created",
        "id": "evt_2Jx0Yc8v3Qm1",
        "created_at": "2026-11-25T10:00:00.000Z",
        "data": {"ticket": {"id": 42, "subject": "Cannot log in", "status": "open",
                 "customer_email": "ada@example.com", "priority": "normal", "tags": ["vip"]}},
    })
    .to_string();
    c.bench_function("webhooks::sign (one secret, 300-byte payload)", |b| {
        b.iter(|| {
            sign(
                black_box(&secrets),
                "evt_2Jx0Yc8v3Qm1",
                1_764_064_800,
                black_box(&body),
            )
            .unwrap()
        })
    });
    let rotating = SigningSecrets {
        current: generate_secret(),
        previous: Some(generate_secret()),
    };
    c.bench_function("webhooks::sign (two secrets during a rotation)", |b| {
        b.iter(|| {
            sign(
                black_box(&rotating),
                "evt_2Jx0Yc8v3Qm1",
                1_764_064_800,
                black_box(&body),
            )
            .unwrap()
        })
    });
}

fn rule_evaluation(c: &mut Criterion) {
    let conditions: Vec<Condition> = serde_json::from_value(json!([
        {"property": "cart.total", "op": "gte", "value": 100},
        {"property": "page.url", "op": "contains", "value": "/checkout"},
        {"property": "visitor.country", "op": "ne", "value": "XX"},
        {"property": "cart.coupon", "op": "exists"},
    ]))
    .unwrap();
    let properties: Map<String, Value> = serde_json::from_value(json!({
        "cart": {"total": 149.5, "items": 3, "coupon": "WELCOME10"},
        "page": {"url": "https://shop.example.com/checkout/step-2", "title": "Checkout"},
        "visitor": {"country": "DE", "returning": true},
    }))
    .unwrap();
    c.bench_function(
        "rule conditions (4 conditions on dotted paths, all hold)",
        |b| {
            b.iter(|| {
                assert!(conditions_hold(
                    black_box(&conditions),
                    black_box(&properties)
                ))
            })
        },
    );
}

fn envelope_serialisation(c: &mut Criterion) {
    let ticket = json!({
        "id": 1042, "workspace_id": 1, "site_id": 1, "contact_id": 77,
        "customer_email": "ada@example.com", "subject": "Cannot log in", "status": "open",
        "priority": "normal", "department_id": 2, "assignee_id": null, "tags": ["vip", "login"],
        "source": "api", "created_at": "2026-11-25T10:00:00.000Z", "updated_at": "2026-11-25T10:00:00.000Z",
    });
    let one = Output {
        data: ticket.clone(),
        next_cursor: None,
    };
    let page = Output {
        data: Value::Array(vec![ticket; 50]),
        next_cursor: Some(Some("c1_992".into())),
    };
    let request_id = RequestId::generate();
    c.bench_function("envelope (one ticket)", |b| {
        b.iter(|| success_body(black_box(&one), black_box(&request_id)))
    });
    c.bench_function("envelope (a page of 50 tickets)", |b| {
        b.iter(|| success_body(black_box(&page), black_box(&request_id)))
    });
}

criterion_group!(
    benches,
    key_verification,
    webhook_signing,
    rule_evaluation,
    envelope_serialisation
);
criterion_main!(benches);
