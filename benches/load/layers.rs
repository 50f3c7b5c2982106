//! Where a read's cost lies: the same requests answered by `opsiq-core` in this process, with
//! no HTTP around them. Beside the bare HTTP stack serving an answer as big as the operation's
//! (the baseline's `/bytes/{n}`), it splits a read's server time into the core's part and the
//! HTTP stack's, so a fix is aimed at the layer that costs.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opsiq::core::Opsiq;
use opsiq::core::api::{ApiRequest, Door};
use opsiq::core::types::RequestId;
use opsiq::http::{Routed, Router};
use serde::Serialize;

use crate::drive::cpu_seconds;

/// Builds the `n`th request target (path and query) of a read.
pub type MakePath = Arc<dyn Fn(u64) -> String + Send + Sync>;

/// A read answered by the core alone.
#[derive(Debug, Clone, Serialize)]
pub struct CoreCost {
    pub requests: u64,
    /// This process's CPU time per request: the calling thread's, and the store's writer
    /// thread's for the usage rows (flushed before the clock stops).
    pub cpu_us: f64,
}

/// Runs `Opsiq::handle` on `db` for the requests `paths` builds, routed as `opsiq serve` routes
/// them, one after another on this thread for `duration`, after a short warm-up.
///
/// # Panics
/// When a request is not a read route's, or is not answered 200.
pub fn core_cost(db: &Path, key: &str, paths: &MakePath, duration: Duration) -> CoreCost {
    // Rate limits out of the way, as for `opsiq serve` in this benchmark.
    let opsiq = Opsiq::open(db)
        .expect("open the seeded database")
        .with_rate_limit(1_000_000_000);
    let router = Router::new(opsiq.catalog());
    let authorization = format!("Bearer {key}");
    let call = |n: u64| {
        let target = paths(n);
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let Routed::Action {
            action,
            path_params,
        } = router.route("GET", path)
        else {
            panic!("{path} is not an action's route");
        };
        // The benchmark's queries need no percent-decoding; say so rather than send them wrong.
        assert!(!query.contains(['%', '+']), "{query} needs decoding");
        let query = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (name.to_string(), value.to_string())
            })
            .collect();
        let answer = opsiq.handle(ApiRequest {
            request_id: RequestId::generate(),
            started: Instant::now(),
            authorization: Some(authorization.clone()),
            door: Door::Rest {
                action,
                path_params,
                query,
            },
            idempotency_key: None,
            body: None,
        });
        assert_eq!(
            answer.status,
            200,
            "{target}: {}",
            String::from_utf8_lossy(&answer.body)
        );
    };
    for n in 0..200 {
        call(n);
    }
    opsiq.store().flush().expect("flush");
    let from = cpu_seconds(std::process::id());
    let started = Instant::now();
    let mut requests = 0;
    while started.elapsed() < duration {
        call(requests);
        requests += 1;
    }
    opsiq.store().flush().expect("flush");
    CoreCost {
        requests,
        cpu_us: (cpu_seconds(std::process::id()) - from) * 1e6 / requests.max(1) as f64,
    }
}
