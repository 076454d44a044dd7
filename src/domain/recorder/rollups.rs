//! The daily rollups analytics read (per endpoint with a latency histogram, per tool, per account
//! and day, per install) and the keys' last use: summed per batch in memory, stored with the
//! batch as one JSON row of `rollup_deltas`, and added to the rollup rows by the follower
//! ([`super::follower`], with [`super::rollup_upserts`]).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::deltas::{
    CallSums, EndpointDelta, EndpointKey, InstallDelta, InstallKey, KeyDayDelta, PeriodKey, ToolKey,
};
use super::new_event::{EventKind, NewEvent};
use crate::domain::periods::BillingPeriod;

/// What a batch adds to the period counters (written with it) and to the rollups (stored with it
/// as JSON, applied by the follower). The maps are stored as lists of (key, value) pairs.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Rollups {
    /// (account, period start) → (period end, calls); not part of the stored delta.
    #[serde(skip)]
    pub(super) periods: BTreeMap<PeriodKey, (i64, i64)>,
    #[serde(with = "as_pairs")]
    pub(super) endpoints: BTreeMap<EndpointKey, EndpointDelta>,
    #[serde(with = "as_pairs")]
    pub(super) tools: BTreeMap<ToolKey, (i64, i64)>,
    /// (account, day) → billable calls (API calls by cost, tool uses), and the API calls'
    /// outcomes.
    #[serde(with = "as_pairs")]
    pub(super) daily: BTreeMap<(String, String), CallSums>,
    #[serde(with = "as_pairs")]
    pub(super) installs: BTreeMap<InstallKey, InstallDelta>,
    /// key id → its latest use (unix ms), for `api_keys.last_used_at`.
    #[serde(default)]
    pub(super) key_touches: BTreeMap<String, i64>,
    /// (key id, period start in unix ms) → calls made with the key in that billing period.
    #[serde(default, with = "as_pairs")]
    pub(super) key_periods: BTreeMap<(String, i64), i64>,
    /// (key id, day) → calls made with the key that day, and how many of them failed.
    #[serde(default, with = "as_pairs")]
    pub(super) key_days: BTreeMap<(String, String), KeyDayDelta>,
}

/// Serde for maps whose keys are tuples (JSON object keys are strings): a list of pairs.
mod as_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S, K, V>(map: &BTreeMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        K: Serialize,
        V: Serialize,
    {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        Vec::<(K, V)>::deserialize(deserializer).map(|pairs| pairs.into_iter().collect())
    }
}

impl Rollups {
    /// Moves an accepted event's calls, in its key's calls per period, from the period it was
    /// counted in to the one it is counted in after all (see `counters::place_again`).
    pub(super) fn move_key_calls(
        &mut self,
        event: &NewEvent,
        from: BillingPeriod,
        to: BillingPeriod,
    ) {
        let Some(key) = event.api_key_id.as_deref() else {
            return;
        };
        if event.cost <= 0 || from.start_ms() == to.start_ms() {
            return;
        }
        let counted = (key.to_owned(), from.start_ms());
        if let Some(calls) = self.key_periods.get_mut(&counted) {
            *calls -= event.cost;
            if *calls == 0 {
                self.key_periods.remove(&counted);
            }
        }
        *self
            .key_periods
            .entry((key.to_owned(), to.start_ms()))
            .or_default() += event.cost;
    }

    /// True when nothing is to be added to the rollups (the period counters aside).
    pub(super) fn has_no_delta(&self) -> bool {
        self.endpoints.is_empty()
            && self.tools.is_empty()
            && self.daily.is_empty()
            && self.installs.is_empty()
            && self.key_touches.is_empty()
            && self.key_periods.is_empty()
            && self.key_days.is_empty()
    }

    /// Records that `key` was used at `at` (the latest use wins).
    pub(super) fn touch_key(&mut self, key: &str, at: DateTime<Utc>) {
        let at = at.timestamp_millis();
        let slot = self.key_touches.entry(key.to_owned()).or_insert(at);
        *slot = (*slot).max(at);
    }

    /// Adds another batch's delta to this one.
    pub(super) fn absorb(&mut self, other: Rollups) {
        for (key, delta) in other.endpoints {
            self.endpoints.entry(key).or_default().absorb(delta);
        }
        for (key, (calls, last)) in other.tools {
            let slot = self.tools.entry(key).or_insert((0, last));
            slot.0 += calls;
            slot.1 = slot.1.max(last);
        }
        for (key, sums) in other.daily {
            self.daily.entry(key).or_default().absorb(sums);
        }
        for (key, delta) in other.installs {
            self.installs.entry(key).or_default().absorb(delta);
        }
        for (key, at) in other.key_touches {
            let slot = self.key_touches.entry(key).or_insert(at);
            *slot = (*slot).max(at);
        }
        for (key, calls) in other.key_periods {
            *self.key_periods.entry(key).or_default() += calls;
        }
        for (key, delta) in other.key_days {
            let slot = self.key_days.entry(key).or_default();
            slot.calls += delta.calls;
            slot.failures += delta.failures;
        }
    }

    /// A call failed (4xx/5xx) made with `key` on `day`, weighing `cost`.
    fn key_failure(&mut self, key: Option<&str>, day: &str, status: Option<i32>, cost: i64) {
        if let (Some(key), Some(400..)) = (key, status) {
            self.key_days
                .entry((key.to_owned(), day.to_owned()))
                .or_default()
                .failures += cost;
        }
    }

    fn finish_call(
        &mut self,
        key: &EndpointKey,
        status: Option<i32>,
        latency: Option<i64>,
        cost: i64,
    ) {
        self.endpoints
            .entry(key.clone())
            .or_default()
            .finish(status, latency, cost);
        self.daily
            .entry((key.0.clone(), key.1.clone()))
            .or_default()
            .finish(status, latency, cost);
    }

    /// Installs are counted with or without an account (anonymous ones have none).
    fn add_install(&mut self, event: &NewEvent) {
        let metadata: Option<serde_json::Value> = event
            .metadata
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok());
        let field = |name: &str| {
            metadata
                .as_ref()
                .and_then(|m| m.get(name))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let key = (
            day_of(event.occurred_at),
            event.skill_id.clone().unwrap_or_default(),
            field("platform"),
            field("version"),
        );
        let at = event.occurred_at.timestamp_millis();
        let slot = self.installs.entry(key).or_insert(InstallDelta {
            last_at: at,
            ..InstallDelta::default()
        });
        if event.account_id.is_some() {
            slot.attributed += 1;
        } else {
            slot.anonymous += 1;
        }
        slot.last_at = slot.last_at.max(at);
    }

    /// A verified call (counted at `occurred_ms` under `counted_as`, its method and endpoint)
    /// completed by `report`, the finished call. The call moves to the method and endpoint the
    /// report gives, and gets its outcome, weighted like the call was: no call is counted again.
    pub(super) fn complete_call(
        &mut self,
        account: &str,
        verified: VerifiedCall<'_>,
        report: &NewEvent,
    ) {
        let VerifiedCall {
            key,
            occurred_ms,
            counted_as,
            cost,
        } = verified;
        let day = day_of_millis(occurred_ms);
        self.key_failure(key, &day, report.status_code, cost);
        let before = (
            account.to_owned(),
            day.clone(),
            counted_as.0.unwrap_or_default().to_owned(),
            counted_as.1.unwrap_or_default().to_owned(),
        );
        let after = (
            account.to_owned(),
            day,
            report.method.clone().unwrap_or_default(),
            report.endpoint.clone().unwrap_or_default(),
        );
        if before != after {
            let moved_from = self.endpoints.entry(before).or_default();
            moved_from.sums.calls -= cost;
            moved_from.requests -= 1;
            let moved_to = self.endpoints.entry(after.clone()).or_default();
            moved_to.sums.calls += cost;
            moved_to.requests += 1;
        }
        self.finish_call(&after, report.status_code, report.response_time_ms, cost);
    }

    pub(super) fn add_accepted(&mut self, event: &NewEvent) {
        if event.kind == EventKind::Install {
            self.add_install(event);
        }
        let Some(account) = event.account_id.as_ref() else {
            return;
        };
        if let (Some(period), true) = (event.period, event.cost > 0) {
            let slot = self
                .periods
                .entry((account.clone(), period.start_ms()))
                .or_insert((period.end_ms(), 0));
            slot.1 += event.cost;
        }
        let day = day_of(event.occurred_at);
        if event.kind != EventKind::Install {
            self.daily
                .entry((account.clone(), day.clone()))
                .or_default()
                .calls += event.cost;
        }
        self.add_key_calls(event, &day);
        match event.kind {
            EventKind::ApiCall => {
                let key = (
                    account.clone(),
                    day,
                    event.method.clone().unwrap_or_default(),
                    event.endpoint.clone().unwrap_or_default(),
                );
                let row = self.endpoints.entry(key.clone()).or_default();
                row.sums.calls += event.cost;
                row.requests += 1;
                self.finish_call(&key, event.status_code, event.response_time_ms, event.cost);
            }
            EventKind::ToolCall | EventKind::Install => {
                let key = (
                    account.clone(),
                    day,
                    event.kind.as_str().to_owned(),
                    event.skill_id.clone().unwrap_or_default(),
                    event.tool_name.clone().unwrap_or_default(),
                );
                let at = event.occurred_at.timestamp_millis();
                let slot = self.tools.entry(key).or_insert((0, at));
                slot.0 += 1;
                slot.1 = slot.1.max(at);
            }
        }
    }
}

impl Rollups {
    /// The calls of an accepted event to its key's period and daily rows.
    fn add_key_calls(&mut self, event: &NewEvent, day: &str) {
        let Some(key) = event.api_key_id.as_deref() else {
            return;
        };
        if event.cost <= 0 {
            return;
        }
        if let Some(period) = event.period {
            *self
                .key_periods
                .entry((key.to_owned(), period.start_ms()))
                .or_default() += event.cost;
        }
        self.key_days
            .entry((key.to_owned(), day.to_owned()))
            .or_default()
            .calls += event.cost;
        self.key_failure(Some(key), day, event.status_code, event.cost);
    }
}

/// What completing a verified call needs to know of it.
pub(super) struct VerifiedCall<'a> {
    /// The key the call was verified with.
    pub key: Option<&'a str>,
    pub occurred_ms: i64,
    /// The method and endpoint it was counted under.
    pub counted_as: (Option<&'a str>, Option<&'a str>),
    /// The calls it was counted as.
    pub cost: i64,
}

fn day_of(at: DateTime<Utc>) -> String {
    crate::domain::analytics::day_key(at.date_naive())
}

fn day_of_millis(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(day_of)
        .unwrap_or_default()
}
