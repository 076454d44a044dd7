//! The daily rollups analytics read (per endpoint with a latency histogram, per tool, per account
//! and day, per install) and the keys' last use: summed per batch in memory, stored with the
//! batch as one JSON row of `rollup_deltas`, and added to the rollup rows with upserts by the
//! follower ([`super::follower`]).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbErr,
    EntityTrait, IntoActiveModel, QueryFilter, QueryTrait,
};
use serde::{Deserialize, Serialize};

use super::counters::PeriodKey;
use super::running::add_running_sums;
use super::{statement_sizes, EventKind, NewEvent};
use crate::domain::dialect::{self, add_excluded, later_of_excluded};
use crate::domain::histogram;
use crate::domain::periods::BillingPeriod;
use crate::entity::{
    api_key, usage_daily_endpoint, usage_daily_install, usage_daily_key, usage_daily_overall,
    usage_daily_tool, usage_daily_total, usage_key_period,
};

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
    fn absorb(&mut self, other: CallSums) {
        self.calls += other.calls;
        self.successes += other.successes;
        self.failures += other.failures;
        self.latency_sum_ms += other.latency_sum_ms;
        self.latency_count += other.latency_count;
    }

    /// One finished API call worth `cost` calls.
    fn finish(&mut self, status: Option<i32>, latency: Option<i64>, cost: i64) {
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

    fn finish(&mut self, status: Option<i32>, latency: Option<i64>, cost: i64) {
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
type ToolKey = (String, String, String, String, String);
/// (day, skill, platform, version); unknown values are empty.
type InstallKey = (String, String, String, String);

/// Installs to add to one daily install rollup row.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct InstallDelta {
    anonymous: i64,
    attributed: i64,
    last_at: i64,
}

impl InstallDelta {
    fn absorb(&mut self, other: InstallDelta) {
        self.anonymous += other.anonymous;
        self.attributed += other.attributed;
        self.last_at = self.last_at.max(other.last_at);
    }
}

/// What a batch adds to the period counters (written with it) and to the rollups (stored with it
/// as JSON, applied by the follower). The maps are stored as lists of (key, value) pairs.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Rollups {
    /// (account, period start) → (period end, calls); not part of the stored delta.
    #[serde(skip)]
    pub(super) periods: BTreeMap<PeriodKey, (i64, i64)>,
    #[serde(with = "as_pairs")]
    endpoints: BTreeMap<EndpointKey, EndpointDelta>,
    #[serde(with = "as_pairs")]
    tools: BTreeMap<ToolKey, (i64, i64)>,
    /// (account, day) → billable calls (API calls by cost, tool uses), and the API calls'
    /// outcomes.
    #[serde(with = "as_pairs")]
    daily: BTreeMap<(String, String), CallSums>,
    #[serde(with = "as_pairs")]
    installs: BTreeMap<InstallKey, InstallDelta>,
    /// key id → its latest use (unix ms), for `api_keys.last_used_at`.
    #[serde(default)]
    key_touches: BTreeMap<String, i64>,
    /// (key id, period start in unix ms) → calls made with the key in that billing period.
    #[serde(default, with = "as_pairs")]
    key_periods: BTreeMap<(String, i64), i64>,
    /// (key id, day) → calls made with the key that day, and how many of them failed.
    #[serde(default, with = "as_pairs")]
    key_days: BTreeMap<(String, String), KeyDayDelta>,
}

/// Calls to add to one key's daily row.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct KeyDayDelta {
    calls: i64,
    failures: i64,
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

/// Adds `rollups` to the stored rollup rows and keys' last use.
pub(super) async fn upsert_rollups(
    txn: &DatabaseTransaction,
    rollups: &Rollups,
) -> Result<(), DbErr> {
    let endpoints = rollups
        .endpoints
        .iter()
        .map(
            |((account, day, method, endpoint), d)| usage_daily_endpoint::Model {
                account_id: account.clone(),
                day: day.clone(),
                method: method.clone(),
                endpoint: endpoint.clone(),
                calls: d.sums.calls,
                requests: d.requests,
                successes: d.sums.successes,
                failures: d.sums.failures,
                latency_sum_ms: d.sums.latency_sum_ms,
                latency_count: d.sums.latency_count,
                latency_histogram: histogram::to_json(&d.latency_buckets),
            },
        );
    {
        use usage_daily_endpoint::Column;
        let on_conflict = endpoint_upsert(
            txn.get_database_backend(),
            [
                Column::AccountId,
                Column::Day,
                Column::Method,
                Column::Endpoint,
            ],
            [
                Column::Calls,
                Column::Requests,
                Column::Successes,
                Column::Failures,
                Column::LatencySumMs,
                Column::LatencyCount,
            ],
            Column::LatencyHistogram,
        );
        upsert(txn, endpoints, on_conflict).await?;
    }

    // The same sums over every day so far, for windows of many days.
    add_running_sums(txn, &rollups.endpoints).await?;

    let daily = rollups
        .daily
        .iter()
        .map(|((account, day), sums)| usage_daily_total::Model {
            account_id: account.clone(),
            day: day.clone(),
            calls: sums.calls,
            successes: sums.successes,
            failures: sums.failures,
            latency_sum_ms: sums.latency_sum_ms,
            latency_count: sums.latency_count,
        });
    {
        use usage_daily_total::Column;
        let keys = [Column::AccountId, Column::Day];
        let added = [
            Column::Calls,
            Column::Successes,
            Column::Failures,
            Column::LatencySumMs,
            Column::LatencyCount,
        ];
        upsert(txn, daily, adding(keys, added)).await?;
    }

    // The same calls over all accounts, per day.
    let mut overall: BTreeMap<&str, i64> = BTreeMap::new();
    for ((_, day), sums) in &rollups.daily {
        *overall.entry(day.as_str()).or_default() += sums.calls;
    }
    let overall = overall
        .into_iter()
        .map(|(day, calls)| usage_daily_overall::Model {
            day: day.to_owned(),
            calls,
        });
    {
        use usage_daily_overall::Column;
        upsert(txn, overall, adding([Column::Day], [Column::Calls])).await?;
    }

    let tools = rollups
        .tools
        .iter()
        .map(
            |((account, day, kind, skill, tool), (calls, last))| usage_daily_tool::Model {
                account_id: account.clone(),
                day: day.clone(),
                kind: kind.clone(),
                skill_id: skill.clone(),
                tool_name: tool.clone(),
                calls: *calls,
                last_used_at: *last,
            },
        );
    {
        use usage_daily_tool::Column;
        let keys = [
            Column::AccountId,
            Column::Day,
            Column::Kind,
            Column::SkillId,
            Column::ToolName,
        ];
        let mut on_conflict = adding(keys, [Column::Calls]);
        on_conflict.value(Column::LastUsedAt, later_of_excluded(Column::LastUsedAt));
        upsert(txn, tools, on_conflict).await?;
    }

    let installs = rollups
        .installs
        .iter()
        .map(
            |((day, skill, platform, version), d)| usage_daily_install::Model {
                day: day.clone(),
                skill_id: skill.clone(),
                platform: platform.clone(),
                version: version.clone(),
                installs: d.anonymous + d.attributed,
                anonymous: d.anonymous,
                attributed: d.attributed,
                last_installed_at: d.last_at,
            },
        );
    {
        use usage_daily_install::Column;
        let keys = [
            Column::Day,
            Column::SkillId,
            Column::Platform,
            Column::Version,
        ];
        let added = [Column::Installs, Column::Anonymous, Column::Attributed];
        let mut on_conflict = adding(keys, added);
        on_conflict.value(
            Column::LastInstalledAt,
            later_of_excluded(Column::LastInstalledAt),
        );
        upsert(txn, installs, on_conflict).await?;
    }

    let key_periods =
        rollups
            .key_periods
            .iter()
            .map(|((key, start), calls)| usage_key_period::Model {
                api_key_id: key.clone(),
                period_start: *start,
                calls: *calls,
            });
    {
        use usage_key_period::Column;
        let on_conflict = adding([Column::ApiKeyId, Column::PeriodStart], [Column::Calls]);
        upsert(txn, key_periods, on_conflict).await?;
    }

    let key_days = rollups
        .key_days
        .iter()
        .map(|((key, day), delta)| usage_daily_key::Model {
            api_key_id: key.clone(),
            day: day.clone(),
            calls: delta.calls,
            failures: delta.failures,
        });
    {
        use usage_daily_key::Column;
        let on_conflict = adding(
            [Column::ApiKeyId, Column::Day],
            [Column::Calls, Column::Failures],
        );
        upsert(txn, key_days, on_conflict).await?;
    }

    for (key_id, at) in &rollups.key_touches {
        let Some(at) = Utc.timestamp_millis_opt(*at).single() else {
            continue;
        };
        // Deltas may be applied out of order (several followers): a key's last use never goes
        // back.
        api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::val(at))
            .filter(api_key::Column::Id.eq(key_id.as_str()))
            .filter(
                Condition::any()
                    .add(api_key::Column::LastUsedAt.is_null())
                    .add(api_key::Column::LastUsedAt.lt(at)),
            )
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// The upsert of a daily endpoint rollup row: its sums added, its latency histograms
/// merged bucket by bucket.
fn endpoint_upsert<C: ColumnTrait>(
    backend: sea_orm::DatabaseBackend,
    keys: [C; 4],
    added: [C; 6],
    histogram: C,
) -> OnConflict {
    let mut on_conflict = adding(keys, added);
    on_conflict.value(histogram, dialect::merge_histograms(backend, histogram));
    on_conflict
}

/// `ON CONFLICT (keys) DO UPDATE` adding the proposed value of each `added` column to the stored
/// one: the rollups are counters.
pub(super) fn adding<C: ColumnTrait, const K: usize, const A: usize>(
    keys: [C; K],
    added: [C; A],
) -> OnConflict {
    let mut on_conflict = OnConflict::columns(keys);
    for column in added {
        on_conflict.value(column, add_excluded(column));
    }
    on_conflict
}

/// Multi-row `INSERT ... ON CONFLICT DO UPDATE` of `rows`, in statements of
/// [`statement_sizes`].
pub(super) async fn upsert<M, A>(
    txn: &DatabaseTransaction,
    rows: impl ExactSizeIterator<Item = M>,
    on_conflict: OnConflict,
) -> Result<(), DbErr>
where
    M: IntoActiveModel<A>,
    A: ActiveModelTrait,
{
    let sizes = statement_sizes(rows.len());
    let mut rows = rows.into_iter();
    for size in sizes {
        let insert = A::Entity::insert_many(rows.by_ref().take(size).map(M::into_active_model))
            .on_conflict(on_conflict.clone())
            .into_query();
        txn.execute(&insert).await?;
    }
    Ok(())
}
