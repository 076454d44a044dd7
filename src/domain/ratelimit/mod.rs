//! Per-minute request limits: one GCRA limiter (governor) per key — or per client address for
//! installs — kept in a bounded cache that drops limiters idle for longer than it takes them to
//! refill. A limiter is made anew when its allowance changes (an admin edited the plan).
//!
//! The limiters read the service's `Clock`, so tests can move time instead of sleeping.
//!
//! Per-key limits are [`KeyLimits`]: shared by all instances through Redis when
//! `TALLY_REDIS_URL` is set ([`shared`]), else, and while Redis is unreachable, per instance.

pub mod shared;
mod window;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::Clock;
use shared::SharedLimits;
use window::ceil_secs;
pub use window::{MinuteWindow, RateDecision};

/// Limiters unused this long are dropped (a dropped one would be full again anyway).
const IDLE_EVICTION: Duration = Duration::from_secs(120);

/// The service clock as a governor time source: nanoseconds since the Unix epoch. Every limiter
/// reads it, so tests move time instead of waiting.
#[derive(Clone)]
pub struct ServiceClock(pub Arc<dyn Clock>);

impl GovernorClock for ServiceClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let nanos = self.0.now().timestamp_nanos_opt().unwrap_or(0).max(0);
        Nanos::from(nanos as u64)
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, ServiceClock, StateInformationMiddleware>;

struct Entry {
    per_minute: u32,
    limiter: Limiter,
}

#[derive(Clone)]
pub struct RateLimits {
    limiters: moka::sync::Cache<String, Arc<Entry>>,
    clock: ServiceClock,
}

impl RateLimits {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            limiters: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(IDLE_EVICTION)
                .build(),
            clock: ServiceClock(clock),
        }
    }

    fn limiter(&self, id: &str, per_minute: u32) -> Arc<Entry> {
        let make = || {
            let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
            Arc::new(Entry {
                per_minute,
                limiter: RateLimiter::direct_with_clock(quota, self.clock.clone())
                    .with_middleware::<StateInformationMiddleware>(),
            })
        };
        let entry = self.limiters.get_with_by_ref(id, make);
        if entry.per_minute == per_minute {
            return entry;
        }
        let fresh = make();
        self.limiters.insert(id.to_owned(), fresh.clone());
        fresh
    }

    /// Spends one request of `id`'s allowance of `per_minute` requests a minute.
    pub fn check(&self, id: &str, per_minute: u32) -> RateDecision {
        let per_minute = per_minute.max(1);
        let entry = self.limiter(id, per_minute);
        // Time to earn back one request.
        let interval_nanos = 60_000_000_000u64 / u64::from(per_minute);
        match entry.limiter.check() {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                let missing = u64::from(per_minute.saturating_sub(remaining));
                RateDecision::Allowed(MinuteWindow {
                    limit: per_minute,
                    remaining,
                    reset_secs: ceil_secs(missing * interval_nanos),
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let retry_after_secs = ceil_secs(wait.as_nanos() as u64).max(1);
                RateDecision::Limited {
                    window: MinuteWindow {
                        limit: per_minute,
                        remaining: 0,
                        reset_secs: retry_after_secs,
                    },
                    retry_after_secs,
                }
            }
        }
    }
}

/// The per-minute limits of API keys.
#[derive(Clone)]
pub struct KeyLimits {
    local: RateLimits,
    shared: Option<SharedLimits>,
}

impl KeyLimits {
    pub fn new(clock: Arc<dyn Clock>, shared: Option<SharedLimits>) -> Self {
        Self {
            local: RateLimits::new(clock),
            shared,
        }
    }

    /// Redis, when limits are shared through it.
    pub fn shared(&self) -> Option<&SharedLimits> {
        self.shared.as_ref()
    }

    /// Spends one request of key `id`'s allowance of `per_minute` requests a minute.
    pub async fn check(&self, id: &str, per_minute: u32) -> RateDecision {
        let per_minute = per_minute.max(1);
        if let Some(shared) = &self.shared {
            let now = self.local.clock.0.now().timestamp_micros();
            if let Some(decision) = shared.check(id, per_minute, now).await {
                return decision;
            }
        }
        self.local.check(id, per_minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn the_101st_request_in_a_minute_waits_until_one_is_earned_back() {
        let clock = ManualClock::new(chrono::Utc::now());
        let limits = RateLimits::new(Arc::new(clock.clone()));
        for n in 0..100 {
            match limits.check("k", 100) {
                RateDecision::Allowed(w) => assert_eq!(w.remaining, 99 - n),
                other => panic!("request {n}: {other:?}"),
            }
        }
        let RateDecision::Limited {
            retry_after_secs,
            window,
        } = limits.check("k", 100)
        else {
            panic!("101st allowed");
        };
        assert_eq!(retry_after_secs, 1);
        assert_eq!(window.reset_secs, retry_after_secs);
        assert!(matches!(
            limits.check("other", 100),
            RateDecision::Allowed(_)
        ));
        clock.advance(chrono::Duration::milliseconds(600));
        assert!(matches!(limits.check("k", 100), RateDecision::Allowed(_)));
        assert!(matches!(
            limits.check("k", 100),
            RateDecision::Limited { .. }
        ));
    }

    #[test]
    fn a_new_allowance_takes_effect_at_once() {
        let limits = RateLimits::new(Arc::new(ManualClock::new(chrono::Utc::now())));
        for _ in 0..3 {
            limits.check("k", 3);
        }
        assert!(matches!(limits.check("k", 3), RateDecision::Limited { .. }));
        assert!(matches!(limits.check("k", 10), RateDecision::Allowed(_)));
    }
}
