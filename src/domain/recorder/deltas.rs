//! The sums a batch adds to one rollup row, and the keys of those rows: shared by the in-memory
//! rollups, their upserts and the endpoints' running sums.

use serde::{Deserialize, Serialize};

use crate::domain::histogram;

/// (account, period start in unix ms)
pub(super) type PeriodKey = (String, i64);

/// Call outcomes to add to a daily rollup row (per endpoint, or per account and day). Calls,
/// successes and failures are billable calls (an API call weighs its `cost`), so that what is
/// charted is what is billed; the latency sums are per request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(super) struct CallSums {
    pub(super) calls: i64,
    pub(super) successes: i64,
    pub(super) failures: i64,
    pub(super) latency_sum_ms: i64,
    pub(super) latency_count: i64,
}

impl CallSums {
    pub(super) fn absorb(&mut self, other: CallSums) {
        self.calls += other.calls;
        self.successes += other.successes;
        self.failures += other.failures;
        self.latency_sum_ms += other.latency_sum_ms;
        self.latency_count += other.latency_count;
    }

    /// One finished API call worth `cost` calls.
    pub(super) fn finish(&mut self, status: Option<i32>, latency: Option<i64>, cost: i64) {
        match status {
            Some(code) if (200..400).contains(&code) => self.successes += cost,
            Some(code) if code >= 400 => self.failures += cost,
            _ => {}
        }
        if let Some(ms) = latency {
            self.latency_sum_ms += ms;
            self.latency_count += 1;
        }
    }
}

/// Sums to add to one daily endpoint rollup row (and to the endpoint's running sums).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct EndpointDelta {
    pub(super) sums: CallSums,
    /// API calls (events), whatever their cost.
    pub(super) requests: i64,
    pub(super) latency_buckets: histogram::Counts,
}

impl EndpointDelta {
    pub(super) fn absorb(&mut self, other: EndpointDelta) {
        self.sums.absorb(other.sums);
        self.requests += other.requests;
        for (bucket, count) in other.latency_buckets {
            *self.latency_buckets.entry(bucket).or_default() += count;
        }
    }

    pub(super) fn finish(&mut self, status: Option<i32>, latency: Option<i64>, cost: i64) {
        self.sums.finish(status, latency, cost);
        if let Some(ms) = latency {
            *self
                .latency_buckets
                .entry(histogram::bucket_of(ms))
                .or_default() += 1;
        }
    }
}

/// (account, day, method, endpoint)
pub(super) type EndpointKey = (String, String, String, String);
/// (account, day, kind, skill, tool)
pub(super) type ToolKey = (String, String, String, String, String);
/// (day, skill, platform, version); unknown values are empty.
pub(super) type InstallKey = (String, String, String, String);

/// Installs to add to one daily install rollup row.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(super) struct InstallDelta {
    pub(super) anonymous: i64,
    pub(super) attributed: i64,
    pub(super) last_at: i64,
}

impl InstallDelta {
    pub(super) fn absorb(&mut self, other: InstallDelta) {
        self.anonymous += other.anonymous;
        self.attributed += other.attributed;
        self.last_at = self.last_at.max(other.last_at);
    }
}

/// Calls to add to one key's daily row.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(super) struct KeyDayDelta {
    pub(super) calls: i64,
    pub(super) failures: i64,
}
