//! The whole API pipeline on untrusted bytes: the action endpoint's envelope and every catalog
//! action's input decoder, validation and service, against a real SQLite database. A panic or a
//! 5xx is a finding.

#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use opsiq_core::Opsiq;
use opsiq_core::api::{ApiRequest, Door};
use opsiq_core::types::{Id, RequestId};

struct Fixture {
    opsiq: Opsiq,
    authorization: String,
    actions: Vec<String>,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let opsiq = Opsiq::open(dir.path().join("fuzz.db"))
            .unwrap()
            .with_rate_limit(u32::MAX);
        opsiq.bootstrap().unwrap();
        let key = opsiq
            .create_key(Id(1), None, "fuzz", &opsiq_core::Scope::ALL)
            .unwrap();
        let actions = opsiq
            .catalog()
            .actions()
            .iter()
            .map(|a| a.id.clone())
            .collect();
        Fixture {
            opsiq,
            authorization: format!("Bearer {}", key.secret),
            actions,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    // Half the inputs go through the action endpoint as they are; the others are a REST call
    // of one action with the bytes as its body and an `id` path parameter.
    let door = if selector % 2 == 0 {
        Door::ActionEndpoint
    } else {
        let action = f.actions[usize::from(selector / 2) % f.actions.len()].clone();
        Door::Rest {
            action,
            path_params: vec![("id".into(), "1".into())],
            query: Vec::new(),
        }
    };
    let answer = f.opsiq.handle(ApiRequest {
        request_id: RequestId::generate(),
        started: Instant::now(),
        authorization: Some(f.authorization.clone()),
        door,
        idempotency_key: None,
        body: Some(body.to_vec()),
    });
    assert!(
        answer.status < 500 || answer.status == 503,
        "status {} for {:?}",
        answer.status,
        String::from_utf8_lossy(data)
    );
    assert!(
        serde_json::from_slice::<serde_json::Value>(&answer.body).is_ok(),
        "the envelope is JSON"
    );
});
