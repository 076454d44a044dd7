//! Per-key limits shared by every instance through Redis: one atomic script per request runs
//! GCRA (the algorithm of the in-memory limiters) on a state kept in Redis, so all instances
//! spend one allowance: at most the limit plus what refills meanwhile.
//!
//! Redis is an accelerator, not a dependency: when it does not answer within [`REDIS_TIMEOUT`]
//! each instance falls back to its own in-memory limiters at once (logged, counted in
//! `/metrics`, reported by `/ready`), a probe checks Redis every [`PROBE_INTERVAL`], and limits
//! are shared again as soon as it answers. Requests never wait on a Redis known to be away.
//! Redis counts as up only once it has answered: from the start it is asked at once, and
//! `/ready` asks it again on every call, so neither the gauge nor `/ready` vouches for a Redis
//! that is not there.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::window::{ceil_secs, MinuteWindow, RateDecision};
use crate::telemetry::metrics::Metrics;

/// Longest a request waits for Redis before deciding on its own.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(100);
/// How often an unreachable Redis is tried again.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// GCRA on the theoretical arrival time (TAT), in microseconds of the callers' clock.
/// KEYS[1]: the limiter; ARGV: now, emission interval, limit. Answers
/// `{allowed, wait until allowed, time until full again}`.
const GCRA: &str = r"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local earliest = new_tat - interval * limit
if now < earliest then
  return {0, earliest - now, tat - now}
end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', ttl_ms))
return {1, 0, new_tat - now}
";

#[derive(Clone)]
pub struct SharedLimits {
    inner: Arc<Inner>,
}

struct Inner {
    connection: ConnectionManager,
    script: Script,
    /// `NOT_YET`, `UP` or `AWAY`.
    state: AtomicU8,
    probing: AtomicBool,
    metrics: Metrics,
    /// Host and port, for the log (the URL may hold a password).
    address: String,
}

/// Redis has not answered yet: requests try it, but nothing reports it up.
const NOT_YET: u8 = 0;
const UP: u8 = 1;
/// Redis did not answer: requests decide on their own until the probe finds it again.
const AWAY: u8 = 2;

/// Whether limits are shared right now, as `/ready` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisStatus {
    Up,
    /// Not answering, or not answered yet.
    Unreachable,
}

impl SharedLimits {
    /// Connects lazily: Redis need not be up when the service starts. Asks it at once (in the
    /// background, so call this inside a Tokio runtime), so that the gauge turns to 1 when it
    /// answers and a warning is logged when it does not.
    pub fn new(redis_url: &str, metrics: Metrics) -> redis::RedisResult<Self> {
        let client = redis::Client::open(redis_url)?;
        let address = client.get_connection_info().addr().to_string();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(PROBE_INTERVAL);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        metrics.redis_up(false);
        let limits = Self {
            inner: Arc::new(Inner {
                connection,
                script: Script::new(GCRA),
                state: AtomicU8::new(NOT_YET),
                probing: AtomicBool::new(false),
                metrics,
                address,
            }),
        };
        let first = limits.clone();
        tokio::spawn(async move {
            first.ping(REDIS_TIMEOUT).await;
        });
        Ok(limits)
    }

    pub fn status(&self) -> RedisStatus {
        if self.inner.state.load(Ordering::Relaxed) == UP {
            RedisStatus::Up
        } else {
            RedisStatus::Unreachable
        }
    }

    /// Asks Redis now whether it answers (within `within`), and takes the answer as the status:
    /// for the start and `/ready`, which must not repeat what an earlier request found.
    pub async fn ping(&self, within: Duration) -> RedisStatus {
        let mut connection = self.inner.connection.clone();
        let ping = redis::cmd("PING");
        match tokio::time::timeout(within, ping.query_async::<String>(&mut connection)).await {
            Ok(Ok(_)) => self.inner.answered(),
            Ok(Err(err)) => self.went_away(&err.to_string()),
            Err(_) => self.went_away(&format!("no answer within {within:?}")),
        }
        self.status()
    }

    /// Spends one request of `id`'s allowance in Redis; `None` when Redis cannot decide (the
    /// caller decides on its own, and that request is counted as a fallback).
    pub async fn check(&self, id: &str, per_minute: u32, now_micros: i64) -> Option<RateDecision> {
        if self.inner.state.load(Ordering::Relaxed) == AWAY {
            self.inner.metrics.redis_fallback();
            return None;
        }
        let interval = 60_000_000 / i64::from(per_minute);
        // A changed allowance starts afresh, as the in-memory limiters do.
        let key = format!("tally:ratelimit:{id}:{per_minute}");
        let mut connection = self.inner.connection.clone();
        let mut invocation = self.inner.script.key(key);
        invocation.arg(now_micros).arg(interval).arg(per_minute);
        let answer = tokio::time::timeout(
            REDIS_TIMEOUT,
            invocation.invoke_async::<(i64, i64, i64)>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok((allowed, wait, until_full))) => {
                self.inner.answered();
                Some(decision(
                    allowed == 1,
                    wait,
                    until_full,
                    interval,
                    per_minute,
                ))
            }
            Ok(Err(err)) => {
                self.inner.metrics.redis_fallback();
                self.went_away(&err.to_string());
                None
            }
            Err(_) => {
                self.inner.metrics.redis_fallback();
                self.went_away(&format!("no answer within {REDIS_TIMEOUT:?}"));
                None
            }
        }
    }

    /// Redis did not answer: limits are per instance, said once, until the probe finds it.
    fn went_away(&self, why: &str) {
        let was = self.inner.state.swap(AWAY, Ordering::Relaxed);
        if was != AWAY {
            self.inner.metrics.redis_up(false);
            let address = self.inner.address.as_str();
            if was == UP {
                tracing::warn!(
                    redis = address,
                    error = why,
                    "Redis unreachable: per-key rate limits are per instance until it answers again"
                );
            } else {
                tracing::warn!(
                    redis = address,
                    error = why,
                    "Redis does not answer: per-key rate limits are per instance until it does; \
                     is it running at that address? It is tried again every 500 ms"
                );
            }
        }
        if !self.inner.probing.swap(true, Ordering::Relaxed) {
            tokio::spawn(probe(Arc::downgrade(&self.inner)));
        }
    }
}

impl Inner {
    /// Redis answered: limits are shared (again).
    fn answered(&self) {
        if self.state.load(Ordering::Relaxed) == UP {
            return;
        }
        let was = self.state.swap(UP, Ordering::Relaxed);
        if was == UP {
            return;
        }
        self.metrics.redis_up(true);
        if was == AWAY {
            tracing::info!(redis = %self.address, "Redis answers again: per-key rate limits are shared");
        } else {
            tracing::info!(redis = %self.address, "Redis answers: per-key rate limits are shared");
        }
    }
}

/// Pings Redis until it answers, then shares the limits again. Ends with the limits' owner.
async fn probe(inner: std::sync::Weak<Inner>) {
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.state.load(Ordering::Relaxed) == UP {
            // Found by a request or by `/ready` meanwhile. Gone again since? Then whoever found
            // that saw this probe still running and left the probing to it.
            inner.probing.store(false, Ordering::Relaxed);
            if inner.state.load(Ordering::Relaxed) != AWAY
                || inner.probing.swap(true, Ordering::Relaxed)
            {
                return;
            }
            continue;
        }
        let mut connection = inner.connection.clone();
        let ping = redis::cmd("PING");
        let answer =
            tokio::time::timeout(REDIS_TIMEOUT, ping.query_async::<String>(&mut connection)).await;
        if matches!(answer, Ok(Ok(_))) {
            inner.probing.store(false, Ordering::Relaxed);
            inner.answered();
            return;
        }
    }
}

fn decision(allowed: bool, wait: i64, until_full: i64, interval: i64, limit: u32) -> RateDecision {
    let micros_to_secs = |micros: i64| ceil_secs(micros.max(0) as u64 * 1_000);
    if allowed {
        let spent = (until_full.max(0) as u64)
            .div_ceil(interval as u64)
            .min(u64::from(limit));
        RateDecision::Allowed(MinuteWindow {
            limit,
            remaining: limit - spent as u32,
            reset_secs: micros_to_secs(until_full),
        })
    } else {
        let retry_after_secs = micros_to_secs(wait).max(1);
        RateDecision::Limited {
            window: MinuteWindow {
                limit,
                remaining: 0,
                reset_secs: retry_after_secs,
            },
            retry_after_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allowed_answer_reads_as_the_in_memory_window() {
        // 100 a minute: one interval is 0.6 s; the first request leaves 99, full again in 0.6 s.
        let RateDecision::Allowed(window) = decision(true, 0, 600_000, 600_000, 100) else {
            panic!("refused");
        };
        assert_eq!(
            window,
            MinuteWindow {
                limit: 100,
                remaining: 99,
                reset_secs: 1
            }
        );
    }

    #[test]
    fn a_refusal_waits_at_least_a_second() {
        let RateDecision::Limited {
            retry_after_secs, ..
        } = decision(false, 200_000, 60_000_000, 600_000, 100)
        else {
            panic!("allowed");
        };
        assert_eq!(retry_after_secs, 1);
    }
}
