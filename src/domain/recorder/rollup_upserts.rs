//! Adds a batch's rollups to the stored rollup rows, one upsert per table, and moves the keys'
//! last use forward. Run by the follower ([`super::follower`]) off the commit path.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
};

use super::deltas::{
    CallSums, EndpointDelta, EndpointKey, InstallDelta, InstallKey, KeyDayDelta, ToolKey,
};
use super::rollups::Rollups;
use super::running::add_running_sums;
use super::sql::{adding, adding_merging_histogram, upsert};
use crate::domain::dialect::later_of_excluded;
use crate::domain::histogram;
use crate::entity::{
    api_key, usage_daily_endpoint, usage_daily_install, usage_daily_key, usage_daily_overall,
    usage_daily_tool, usage_daily_total, usage_key_period,
};

/// Adds `rollups` to the stored rollup rows and keys' last use.
pub(super) async fn upsert_rollups(
    txn: &DatabaseTransaction,
    rollups: &Rollups,
) -> Result<(), DbErr> {
    upsert_daily_endpoints(txn, &rollups.endpoints).await?;
    // The same sums over every day so far, for windows of many days.
    add_running_sums(txn, &rollups.endpoints).await?;
    upsert_daily_totals(txn, &rollups.daily).await?;
    upsert_daily_overall(txn, &rollups.daily).await?;
    upsert_daily_tools(txn, &rollups.tools).await?;
    upsert_daily_installs(txn, &rollups.installs).await?;
    upsert_key_periods(txn, &rollups.key_periods).await?;
    upsert_key_days(txn, &rollups.key_days).await?;
    touch_keys(txn, &rollups.key_touches).await
}

async fn upsert_daily_endpoints(
    txn: &DatabaseTransaction,
    endpoints: &BTreeMap<EndpointKey, EndpointDelta>,
) -> Result<(), DbErr> {
    use usage_daily_endpoint::Column;
    let rows =
        endpoints.iter().map(
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
    let on_conflict = adding_merging_histogram(
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
    upsert(txn, rows, on_conflict).await
}

async fn upsert_daily_totals(
    txn: &DatabaseTransaction,
    daily: &BTreeMap<(String, String), CallSums>,
) -> Result<(), DbErr> {
    use usage_daily_total::Column;
    let rows = daily
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
    let keys = [Column::AccountId, Column::Day];
    let added = [
        Column::Calls,
        Column::Successes,
        Column::Failures,
        Column::LatencySumMs,
        Column::LatencyCount,
    ];
    upsert(txn, rows, adding(keys, added)).await
}

/// The same calls as the daily totals, over all accounts, per day.
async fn upsert_daily_overall(
    txn: &DatabaseTransaction,
    daily: &BTreeMap<(String, String), CallSums>,
) -> Result<(), DbErr> {
    use usage_daily_overall::Column;
    let mut overall: BTreeMap<&str, i64> = BTreeMap::new();
    for ((_, day), sums) in daily {
        *overall.entry(day.as_str()).or_default() += sums.calls;
    }
    let rows = overall
        .into_iter()
        .map(|(day, calls)| usage_daily_overall::Model {
            day: day.to_owned(),
            calls,
        });
    upsert(txn, rows, adding([Column::Day], [Column::Calls])).await
}

async fn upsert_daily_tools(
    txn: &DatabaseTransaction,
    tools: &BTreeMap<ToolKey, (i64, i64)>,
) -> Result<(), DbErr> {
    use usage_daily_tool::Column;
    let rows = tools
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
    let keys = [
        Column::AccountId,
        Column::Day,
        Column::Kind,
        Column::SkillId,
        Column::ToolName,
    ];
    let mut on_conflict = adding(keys, [Column::Calls]);
    on_conflict.value(Column::LastUsedAt, later_of_excluded(Column::LastUsedAt));
    upsert(txn, rows, on_conflict).await
}

async fn upsert_daily_installs(
    txn: &DatabaseTransaction,
    installs: &BTreeMap<InstallKey, InstallDelta>,
) -> Result<(), DbErr> {
    use usage_daily_install::Column;
    let rows =
        installs.iter().map(
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
    upsert(txn, rows, on_conflict).await
}

async fn upsert_key_periods(
    txn: &DatabaseTransaction,
    key_periods: &BTreeMap<(String, i64), i64>,
) -> Result<(), DbErr> {
    use usage_key_period::Column;
    let rows = key_periods
        .iter()
        .map(|((key, start), calls)| usage_key_period::Model {
            api_key_id: key.clone(),
            period_start: *start,
            calls: *calls,
        });
    let on_conflict = adding([Column::ApiKeyId, Column::PeriodStart], [Column::Calls]);
    upsert(txn, rows, on_conflict).await
}

async fn upsert_key_days(
    txn: &DatabaseTransaction,
    key_days: &BTreeMap<(String, String), KeyDayDelta>,
) -> Result<(), DbErr> {
    use usage_daily_key::Column;
    let rows = key_days
        .iter()
        .map(|((key, day), delta)| usage_daily_key::Model {
            api_key_id: key.clone(),
            day: day.clone(),
            calls: delta.calls,
            failures: delta.failures,
        });
    let on_conflict = adding(
        [Column::ApiKeyId, Column::Day],
        [Column::Calls, Column::Failures],
    );
    upsert(txn, rows, on_conflict).await
}

/// Moves each key's `last_used_at` to its latest use (unix ms) in `touches`.
async fn touch_keys(
    txn: &DatabaseTransaction,
    touches: &BTreeMap<String, i64>,
) -> Result<(), DbErr> {
    for (key_id, at) in touches {
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
