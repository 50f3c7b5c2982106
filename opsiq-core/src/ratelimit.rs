//! Per-key rate limits: each API key may make so many requests a minute (the install's
//! default, or the key's own). Checked after authentication and before the action runs; a
//! request over the limit is refused with 429 and changes nothing.
//!
//! The counters live in this process (a GCRA from the `governor` crate): servers sharing one
//! database each count their own requests.

use foldhash::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use schemars::JsonSchema;
use serde::Serialize;

use crate::types::Id;

/// Requests a minute a key may make when neither the key nor the install says otherwise.
pub const DEFAULT_PER_MINUTE: u32 = 1200;

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// Where a key stands against its limit, for the `RateLimit-*` headers and `meta.me`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RateState {
    /// Requests a minute.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until the full limit is available again.
    pub reset: u64,
}

/// Refused: over the limit, with when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    pub state: RateState,
    pub retry_after: u64,
}

/// The limiters of every key seen by this process.
#[derive(Debug)]
pub struct RateLimits {
    default_per_minute: u32,
    limiters: Mutex<HashMap<Id, (u32, Arc<Limiter>)>>,
    clock: DefaultClock,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::new(DEFAULT_PER_MINUTE)
    }
}

impl RateLimits {
    pub fn new(default_per_minute: u32) -> Self {
        RateLimits {
            default_per_minute: default_per_minute.max(1),
            limiters: Mutex::new(HashMap::default()),
            clock: DefaultClock::default(),
        }
    }

    pub fn default_per_minute(&self) -> u32 {
        self.default_per_minute
    }

    fn limiter(&self, key: Id, limit: u32) -> Arc<Limiter> {
        let mut limiters = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        match limiters.get(&key) {
            Some((current, limiter)) if *current == limit => limiter.clone(),
            _ => {
                let per_minute = NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN);
                let limiter = Arc::new(
                    RateLimiter::direct(Quota::per_minute(per_minute))
                        .with_middleware::<StateInformationMiddleware>(),
                );
                limiters.insert(key, (limit, limiter.clone()));
                limiter
            }
        }
    }

    /// Counts one request of `key` (whose own limit, if any, is `own`).
    pub fn check(&self, key: Id, own: Option<u32>) -> Result<RateState, Exceeded> {
        let limit = own.unwrap_or(self.default_per_minute).max(1);
        let seconds_per_request = 60.0 / f64::from(limit);
        let reset = |remaining: u32| {
            (f64::from(limit - remaining.min(limit)) * seconds_per_request).ceil() as u64
        };
        match self.limiter(key, limit).check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Ok(RateState {
                    limit,
                    remaining,
                    reset: reset(remaining),
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(Exceeded {
                    state: RateState {
                        limit,
                        remaining: 0,
                        reset: reset(0),
                    },
                    retry_after: retry_after.max(1),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_limit_then_is_refused_with_a_retry_after() {
        let limits = RateLimits::new(1000);
        for n in 0..3 {
            let state = limits.check(Id(1), Some(3)).unwrap();
            assert_eq!((state.limit, state.remaining), (3, 2 - n));
        }
        let refused = limits.check(Id(1), Some(3)).unwrap_err();
        assert_eq!(refused.state.remaining, 0);
        assert!((1..=20).contains(&refused.retry_after), "{refused:?}");
        assert_eq!(
            limits.check(Id(2), None).unwrap().limit,
            1000,
            "other keys are not affected"
        );
    }
}
